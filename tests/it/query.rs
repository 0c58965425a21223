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

#[test]
fn query_runs_counts_and_pages_in_name_order_as_a_whole_read_does() {
    let (_dir, store) = sweep();
    // Many runs in one project, some without the parameter a filter reads.
    for i in 0..300 {
        let run = store.init("many", Some(&format!("r{i:03}"))).unwrap();
        if i % 3 != 0 {
            run.set_parameters(&Value::map([("lr", Value::from(i as f64 / 300.0))]))
                .unwrap();
        }
        run.add_output_value(&Value::map([("acc", Value::from((i % 17) as f64))]))
            .unwrap();
    }
    for filter in [
        "",
        "params.lr < 0.5",
        "outputs.acc > 10 OR params.lr > 0.9",
        "params.lr = 7",
    ] {
        for project in [Some("many"), Some("p"), None] {
            let mut query = store.query_runs().filter(filter).unwrap();
            if let Some(project) = project {
                query = query.project(project);
            }
            let all = query.run().unwrap();
            assert_eq!(
                query.count().unwrap(),
                all.len() as u64,
                "{filter} in {project:?}"
            );
            for (offset, limit) in [(0, 10), (5, 50), (190, 20), (1000, 5)] {
                let page = query.clone().offset(offset).limit(limit).run().unwrap();
                let want: Vec<&str> = names(&all)
                    .into_iter()
                    .skip(offset as usize)
                    .take(limit as usize)
                    .collect();
                assert_eq!(
                    names(&page),
                    want,
                    "{filter} in {project:?}, {offset}+{limit}"
                );
                // Columns of a page are those of the whole read.
                let (runs, table) = query
                    .clone()
                    .offset(offset)
                    .limit(limit)
                    .run_with_values(&["params.lr", "outputs.acc.max"])
                    .unwrap();
                let (_, whole) = query
                    .run_with_values(&["params.lr", "outputs.acc.max"])
                    .unwrap();
                assert_eq!(runs.len(), want.len());
                let skip = offset as usize;
                for column in ["params.lr", "outputs.acc.max"] {
                    let page_column = table.column_by_name(column).unwrap();
                    let whole_column = whole.column_by_name(column).unwrap();
                    if runs.is_empty() {
                        continue;
                    }
                    // As text: a page of nulls may type its column apart from the whole.
                    let cells = |array: &arrow_array::ArrayRef| -> Vec<String> {
                        let options = arrow_cast::display::FormatOptions::default();
                        let formatter =
                            arrow_cast::display::ArrayFormatter::try_new(array, &options).unwrap();
                        (0..array.len())
                            .map(|i| formatter.value(i).to_string())
                            .collect()
                    };
                    assert_eq!(
                        cells(page_column),
                        cells(&whole_column.slice(skip, runs.len())),
                        "{column}: {filter} in {project:?}, {offset}+{limit}"
                    );
                }
            }
        }
    }
    // An unknown project counts nothing.
    assert_eq!(store.query_runs().project("nope").count().unwrap(), 0);
}
