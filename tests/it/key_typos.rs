//! Typos in run queries are errors, not empty answers: a filter, sort key or value column
//! naming a parameter or output key that no run holds gets `Error::UnknownKey` with the
//! closest key, in the library and on the command line; so does an unknown project or run on
//! the command line. A key only some runs hold is a real question and is answered.

use runstore::{Error, Store, Value};

use crate::util::{failure, runstore, runstore_ok, temp_store};

/// Two runs in project `p`: both with `lr` and `val_accuracy`, one with `momentum` and an
/// `opt.name`; a third run in `q` with only `batch` and a `note` that is null.
fn store() -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let (dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    for (name, momentum) in [("a", Some(0.9)), ("b", None)] {
        let run = store.init("p", Some(name)).unwrap();
        let mut params = vec![("lr", Value::from(0.01))];
        if let Some(momentum) = momentum {
            params.push(("momentum", Value::from(momentum)));
            params.push(("opt", Value::map([("name", Value::from("adam"))])));
        }
        run.set_parameters(&Value::map(params)).unwrap();
        run.add_output_value(&Value::map([("val_accuracy", Value::from(0.9))]))
            .unwrap();
    }
    let run = store.init("q", Some("c")).unwrap();
    run.set_parameters(&Value::map([
        ("batch", Value::from(32i64)),
        ("note", Value::Null),
    ]))
    .unwrap();
    (dir, path, store)
}

fn unknown(result: runstore::Result<impl std::fmt::Debug>) -> (String, String, Option<String>) {
    match result {
        Err(Error::UnknownKey {
            kind,
            key,
            suggestion,
        }) => (kind.to_string(), key, suggestion),
        other => panic!("expected UnknownKey, got {other:?}"),
    }
}

#[test]
fn query_of_an_output_no_run_has_is_unknown_key_with_a_suggestion() {
    let (_dir, _path, store) = store();
    let query = store.query_runs().filter("outputs.val_acc > 0.5").unwrap();
    let error = query.run().unwrap_err();
    assert_eq!(
        error.to_string(),
        "no run has output 'val_acc' (did you mean 'val_accuracy'?)"
    );
    assert_eq!(
        unknown(query.count()),
        (
            "output".into(),
            "val_acc".into(),
            Some("val_accuracy".into())
        )
    );
}

#[test]
fn query_keys_are_case_sensitive_and_a_case_slip_is_suggested() {
    let (_dir, _path, store) = store();
    let query = store.query_runs().filter("params.LR > 0").unwrap();
    assert_eq!(
        unknown(query.run()),
        ("parameter".into(), "LR".into(), Some("lr".into()))
    );
}

#[test]
fn sort_keys_and_value_columns_are_checked_too() {
    let (_dir, _path, store) = store();
    let query = store
        .query_runs()
        .order_by("outputs.val_accurcy DESC")
        .unwrap();
    assert_eq!(unknown(query.run()).2.as_deref(), Some("val_accuracy"));
    let query = store.query_runs().limit(5);
    assert_eq!(
        unknown(query.values(&["params.lr", "params.momentun"])),
        (
            "parameter".into(),
            "momentun".into(),
            Some("momentum".into())
        )
    );
    // Without a limit the columns are read with the selection: checked the same.
    assert_eq!(
        unknown(store.query_runs().values(&["params.opt.nme"])).1,
        "opt.nme"
    );
    // Nothing close: no suggestion, still an error.
    assert_eq!(
        unknown(
            store
                .query_runs()
                .filter("params.zzzzzz = 1")
                .unwrap()
                .run()
        )
        .2,
        None
    );
}

#[test]
fn keys_some_runs_hold_are_answered_not_refused() {
    let (_dir, _path, store) = store();
    // Only run `a` has momentum, only `c` (another project) has batch.
    let runs = store
        .query_runs()
        .filter("params.momentum > 0.5")
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(runs.len(), 1);
    let runs = store
        .query_runs()
        .project("p")
        .filter("params.batch = 32")
        .unwrap()
        .run()
        .unwrap();
    assert!(runs.is_empty());
    let table = store
        .query_runs()
        .project("p")
        .values(&["params.opt.name", "outputs.val_accuracy.max", "status"])
        .unwrap();
    assert_eq!(table.num_rows(), 2);
    // A key held only with null values is held (the index leaves it out; the rows have it).
    let table = store.query_runs().values(&["params.note"]).unwrap();
    assert_eq!(table.num_rows(), 3);
    // Where absence is the question, a key no run has is not a typo.
    assert_eq!(
        store
            .query_runs()
            .filter("outputs.loss.count = 0 AND params.nothing IS NULL")
            .unwrap()
            .count()
            .unwrap(),
        3
    );
    // Attributes are not keys: never refused.
    assert_eq!(
        store
            .query_runs()
            .filter("name = 'a' AND created > 0")
            .unwrap()
            .count()
            .unwrap(),
        1
    );
}

#[test]
fn a_store_without_runs_answers_any_key_with_nothing() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let runs = store
        .query_runs()
        .filter("params.lr > 0")
        .unwrap()
        .run()
        .unwrap();
    assert!(runs.is_empty());
}

#[test]
fn cli_runs_names_the_unknown_key_project_and_run() {
    let (_dir, path, store) = store();
    drop(store);
    let path = path.to_str().unwrap();
    let stderr = failure(&runstore(&[
        "runs",
        path,
        "--filter",
        "outputs.val_acc > 0.9",
    ]));
    assert!(
        stderr.contains("no run has output 'val_acc' (did you mean 'val_accuracy'?)"),
        "{stderr}"
    );
    let stderr = failure(&runstore(&["runs", path, "--order-by", "params.LR"]));
    assert!(stderr.contains("(did you mean 'lr'?)"), "{stderr}");
    assert!(!stderr.contains("--columns"), "{stderr}");
    let stderr = failure(&runstore(&[
        "runs",
        path,
        "--columns",
        "params.lr,outputs.acc",
    ]));
    assert!(stderr.contains("no run has output 'acc'"), "{stderr}");
    let stderr = failure(&runstore(&["runs", path, "--project", "nope"]));
    assert!(
        stderr.contains("no project \"nope\"") && stderr.contains("its projects: p, q"),
        "{stderr}"
    );
    let stderr = failure(&runstore(&["runs", path, "--project", "P"]));
    assert!(stderr.contains("(did you mean 'p'?)"), "{stderr}");
    let stderr = failure(&runstore(&["show", path, "nope/runs/r"]));
    assert!(stderr.contains("no project \"nope\""), "{stderr}");
    let stderr = failure(&runstore(&["show", path, "p/runs/A"]));
    assert!(
        stderr.contains("no run \"A\" in project \"p\"") && stderr.contains("did you mean 'a'?"),
        "{stderr}"
    );
    let stderr = failure(&runstore(&["set-status", path, "p/runs/zz", "completed"]));
    assert!(
        stderr.contains("no run \"zz\" in project \"p\""),
        "{stderr}"
    );
    // A key only some runs have is a question with an answer.
    let out = runstore_ok(&["runs", path, "--filter", "params.momentum > 0", "--json"]);
    assert_eq!(out.lines().count(), 1);
}
