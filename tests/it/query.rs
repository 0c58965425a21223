//! Store-level run queries: `Store::query_runs` with filters, sort keys, limit and offset over
//! real runs (the grammar itself is tested case by case in `src/query/filter.rs`).

use runstore::{Error, Store, Value};

use crate::util::temp_store;

/// Four runs in two projects with numeric and string parameters and a few outputs.
fn sweep() -> (tempfile::TempDir, Store) {
    let (dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let runs = [
        ("p", "a", 0.1, "adam", &[0.5, 0.7][..], true),
        ("p", "b", 0.001, "sgd", &[0.6, 0.9][..], false),
        ("p", "c", 0.005, "adam", &[][..], false),
        ("q", "d", 0.0001, "sgd", &[0.95][..], true),
    ];
    for (project, name, lr, optimizer, accuracies, done) in runs {
        let run = store.init(project, Some(name)).unwrap();
        run.set_parameters(&Value::map([
            ("lr", Value::from(lr)),
            ("optimizer", Value::map([("name", Value::from(optimizer))])),
        ]))
        .unwrap();
        for (epoch, acc) in accuracies.iter().enumerate() {
            run.add_output_value(&Value::map([
                ("epoch", Value::from(epoch as i64)),
                ("acc", Value::from(*acc)),
            ]))
            .unwrap();
        }
        if done {
            run.set_status_completed().unwrap();
        }
    }
    (dir, store)
}

fn names(runs: &[runstore::Run]) -> Vec<&str> {
    runs.iter().map(|run| run.name()).collect()
}

#[test]
fn query_runs_filters_numeric_params_and_latest_outputs() {
    let (_dir, store) = sweep();
    let runs = store
        .query_runs()
        .filter("params.lr < 0.01 AND outputs.acc > 0.5")
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(names(&runs), ["b", "d"]);
}

#[test]
fn query_runs_supports_or_not_parentheses_and_nested_params() {
    let (_dir, store) = sweep();
    let runs = store
        .query_runs()
        .filter("(params.optimizer.name = 'adam' OR status = 'COMPLETED') AND NOT name = 'a'")
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(names(&runs), ["c", "d"]);
}

#[test]
fn query_runs_orders_with_nulls_last_and_pages() {
    let (_dir, store) = sweep();
    let ordered = store
        .query_runs()
        .order_by("outputs.acc DESC")
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(names(&ordered), ["d", "b", "a", "c"]);
    let page = store
        .query_runs()
        .order_by("outputs.acc DESC")
        .unwrap()
        .offset(1)
        .limit(2)
        .run()
        .unwrap();
    assert_eq!(names(&page), ["b", "a"]);
    let max_first = store
        .query_runs()
        .query("outputs.acc.count >= 1 ORDER BY outputs.acc.max ASC LIMIT 2")
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(names(&max_first), ["a", "b"]);
}

#[test]
fn query_runs_restricted_to_a_project() {
    let (_dir, store) = sweep();
    let runs = store
        .query_runs()
        .project("q")
        .filter("params.lr < 1")
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(names(&runs), ["d"]);
}

#[test]
fn query_runs_reports_the_column_of_a_parse_error() {
    let (_dir, store) = sweep();
    let error = store.query_runs().filter("params.lr < ").unwrap_err();
    assert!(
        matches!(error, Error::InvalidQuery { column: 13, .. }),
        "{error}"
    );
    let error = store
        .query_runs()
        .order_by("outputs.acc SIDEWAYS")
        .unwrap_err();
    assert!(matches!(error, Error::InvalidQuery { .. }), "{error}");
}
