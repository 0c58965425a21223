//! The key index (`catalog::index`): kept in step with parameters and outputs through every
//! write path (set, overwrite, append, delete, copy within and across stores, vacuum), checked
//! by `check`, built when a writable open upgrades a store written before it existed, and
//! giving the same answers as the unindexed path a read-only open of such a store takes.

use runstore::{CopyOptions, Store, Value};

use crate::query_model::{naive, FullRun};
use crate::util::{assert_checks, runstore, temp_store};

fn urls(store: &Store, query: &str) -> Vec<String> {
    store
        .query_runs()
        .query(query)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .run()
        .unwrap()
        .iter()
        .map(|run| run.url())
        .collect()
}

#[test]
fn overwritten_parameters_and_appended_outputs_are_what_queries_see() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("a")).unwrap();
    run.set_parameters(&Value::map([
        ("lr", Value::Float(0.1)),
        ("opt", Value::map([("name", Value::Str("sgd".into()))])),
    ]))
    .unwrap();
    assert_eq!(urls(&store, "params.lr = 0.1"), ["p/runs/a"]);
    assert_eq!(urls(&store, "params.opt.name = 'sgd'"), ["p/runs/a"]);
    // Overwrite one key and replace a nested map by a number.
    run.set_parameters(&Value::map([
        ("lr", Value::Float(0.01)),
        ("opt", Value::Int(3)),
    ]))
    .unwrap();
    assert!(urls(&store, "params.lr = 0.1").is_empty());
    assert_eq!(urls(&store, "params.lr = 0.01"), ["p/runs/a"]);
    // No run holds `opt.name` any more; a run did, so the key is no typo: the query finds
    // nothing rather than failing (the registry keeps keys runs once had).
    assert!(urls(&store, "params.opt.name = 'sgd'").is_empty());
    assert!(matches!(
        store
            .query_runs()
            .query("params.opt.nmae = 'sgd'")
            .unwrap()
            .run(),
        Err(runstore::Error::UnknownKey { .. })
    ));
    assert_eq!(urls(&store, "params.opt = 3"), ["p/runs/a"]);

    for (epoch, acc) in [(1, 0.5), (2, 0.25), (3, 0.75)] {
        run.add_output_value(&Value::map([
            ("epoch", Value::Int(epoch)),
            ("acc", Value::Float(acc)),
        ]))
        .unwrap();
    }
    assert_eq!(urls(&store, "outputs.acc = 0.75"), ["p/runs/a"]);
    assert_eq!(urls(&store, "outputs.acc.min = 0.25"), ["p/runs/a"]);
    assert_eq!(urls(&store, "outputs.acc.max = 0.75"), ["p/runs/a"]);
    assert_eq!(urls(&store, "outputs.acc.first = 0.5"), ["p/runs/a"]);
    assert_eq!(urls(&store, "outputs.acc.count = 3"), ["p/runs/a"]);
    assert_eq!(urls(&store, "outputs.acc.mean = 0.5"), ["p/runs/a"]);
    assert_eq!(urls(&store, "outputs.loss.count = 0"), ["p/runs/a"]);
    drop((run, store));
    assert_checks(&path);
}

#[test]
fn maps_and_large_values_are_read_from_the_runs_rows() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let long = "x".repeat(5_000);
    let a = store.init("p", Some("a")).unwrap();
    a.set_parameters(&Value::map([("note", Value::Str(long.clone()))]))
        .unwrap();
    a.add_output_value(&Value::map([(
        "eval",
        Value::map([("f1", Value::Float(0.5))]),
    )]))
    .unwrap();
    a.add_output_value(&Value::map([("text", Value::Str(long.clone()))]))
        .unwrap();
    let b = store.init("p", Some("b")).unwrap();
    b.set_parameters(&Value::map([("note", Value::Str("short".into()))]))
        .unwrap();
    b.add_output_value(&Value::map([("eval", Value::Float(1.0))]))
        .unwrap();
    assert_eq!(urls(&store, "params.note LIKE 'xxx%'"), ["p/runs/a"]);
    assert_eq!(
        urls(&store, &format!("params.note = '{long}'")),
        ["p/runs/a"]
    );
    assert_eq!(urls(&store, "params.note = 'short'"), ["p/runs/b"]);
    assert_eq!(urls(&store, "outputs.text LIKE 'x%'"), ["p/runs/a"]);
    assert_eq!(urls(&store, "outputs.text.first LIKE 'x%'"), ["p/runs/a"]);
    // A map never equals a number; `!=` holds between different kinds.
    assert_eq!(urls(&store, "outputs.eval != 1"), ["p/runs/a"]);
    assert_eq!(urls(&store, "outputs.eval = 1"), ["p/runs/b"]);
    assert_eq!(urls(&store, "outputs.eval.f1 = 0.5"), ["p/runs/a"]);
    assert_eq!(
        urls(&store, "outputs.eval IS NOT NULL ORDER BY name DESC"),
        ["p/runs/b", "p/runs/a"]
    );
}

#[test]
fn ties_at_the_limit_are_settled_by_project_and_name() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    // Created in an order unlike the name order, so run ids disagree with names.
    for (project, name, score) in [
        ("q", "z", 1),
        ("p", "y", 2),
        ("q", "a", 2),
        ("p", "b", 2),
        ("p", "a", 3),
    ] {
        let run = store.init(project, Some(name)).unwrap();
        run.set_parameters(&Value::map([("score", Value::Int(score))]))
            .unwrap();
    }
    assert_eq!(
        urls(
            &store,
            "params.score >= 2 ORDER BY params.score ASC LIMIT 2"
        ),
        ["p/runs/b", "p/runs/y"]
    );
    assert_eq!(
        urls(
            &store,
            "params.score >= 2 ORDER BY params.score ASC LIMIT 2 OFFSET 2"
        ),
        ["q/runs/a", "p/runs/a"]
    );
    assert_eq!(
        urls(&store, "params.score > 0 LIMIT 3"),
        ["p/runs/a", "p/runs/b", "p/runs/y"]
    );
    assert_eq!(
        store
            .query_runs()
            .project("q")
            .filter("params.score > 0")
            .unwrap()
            .run()
            .unwrap()
            .iter()
            .map(|run| run.url())
            .collect::<Vec<_>>(),
        ["q/runs/a", "q/runs/z"]
    );
}

#[test]
fn delete_copy_copy_to_and_vacuum_keep_the_index_exact() {
    let (dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    for (name, lr) in [("a", 0.1), ("b", 0.01), ("c", 0.001)] {
        let run = store.init("p", Some(name)).unwrap();
        run.set_parameters(&Value::map([("lr", Value::Float(lr))]))
            .unwrap();
        run.add_output_value(&Value::map([("acc", Value::Float(lr * 5.0))]))
            .unwrap();
    }
    store.run("p/runs/b").unwrap().delete().unwrap();
    assert_eq!(urls(&store, "params.lr < 1"), ["p/runs/a", "p/runs/c"]);
    let copy = store
        .run("p/runs/c")
        .unwrap()
        .copy(&CopyOptions {
            run_name: Some("c2".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    copy.add_output_value(&Value::map([("acc", Value::Float(0.9))]))
        .unwrap();
    assert_eq!(urls(&store, "outputs.acc > 0.5"), ["p/runs/c2"]);
    assert_eq!(
        urls(&store, "outputs.acc.first = 0.005"),
        ["p/runs/c", "p/runs/c2"]
    );

    let other_path = dir.path().join("other.runs");
    let other = Store::create(&other_path).unwrap();
    store
        .run("p/runs/a")
        .unwrap()
        .copy_to(&other, &CopyOptions::default())
        .unwrap();
    assert_eq!(
        urls(&other, "params.lr = 0.1 AND outputs.acc = 0.5"),
        ["p/runs/a"]
    );
    drop(other);
    assert_checks(&other_path);

    drop(copy);
    drop(store);
    assert_checks(&path);
    Store::vacuum(&path).unwrap();
    assert_checks(&path);
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(
        urls(&store, "params.lr < 1"),
        ["p/runs/a", "p/runs/c", "p/runs/c2"]
    );
    assert_eq!(urls(&store, "outputs.acc.count = 2"), ["p/runs/c2"]);
}

/// A copy of `tests/fixtures/<name>` in `dir`, so a test never touches the fixture.
fn fixture(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::copy(source, &path).unwrap();
    path
}

/// A copy of `tests/fixtures/catalog_v1.runs` in `dir`.
fn v1_fixture(dir: &std::path::Path) -> std::path::PathBuf {
    fixture(dir, "catalog_v1.runs")
}

/// `tests/fixtures/catalog_v1.runs` was written by the build before sealed values and the
/// key index (commit d4ab327's `runstore init/log/set-status`): two projects, seven runs,
/// nested and list parameters, a 2,000-byte parameter, nested outputs.
#[test]
fn a_store_written_before_the_index_is_upgraded_by_a_writable_open() {
    let (dir, _) = temp_store();
    let path = v1_fixture(dir.path());
    match Store::open_read_only(&path) {
        Err(runstore::Error::NeedsUpgrade { found: 1, .. }) => {}
        other => panic!("expected NeedsUpgrade, got {other:?}"),
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.info().unwrap().catalog_version, 4);
    // In project and name order, as the name index keeps them.
    let runs: Vec<FullRun> = store
        .runs(None)
        .unwrap()
        .iter()
        .map(FullRun::read)
        .collect();
    assert_eq!(runs.len(), 7);
    assert_eq!(
        store
            .run("text/runs/big")
            .unwrap()
            .parameters()
            .unwrap()
            .get("note")
            .and_then(Value::as_str)
            .map(str::len),
        Some(2000)
    );
    for query in [
        "params.lr < 0.01 ORDER BY outputs.acc DESC",
        "params.opt.name = 'adam' AND outputs.loss.min < 6 ORDER BY params.opt.beta DESC LIMIT 3",
        "outputs.eval.f1 > 0.5",
        "params.note LIKE 'xx%'",
        "outputs.acc.count = 3 AND status != 'COMPLETED' ORDER BY outputs.acc.first",
        "params.tags IS NOT NULL",
        "",
    ] {
        let expected = naive(&runs, query, None);
        assert_eq!(urls(&store, query), expected, "{query}");
    }
    assert_eq!(
        urls(&store, "params.lr < 0.01 ORDER BY outputs.acc DESC"),
        [
            "text/runs/big",
            "vision/runs/run4",
            "vision/runs/run3",
            "vision/runs/run1"
        ]
    );
    drop(store);
    assert_checks(&path);
    // Upgraded once, it opens read-only like any other store.
    let read_only = Store::open_read_only(&path).unwrap();
    assert_eq!(urls(&read_only, "outputs.eval.f1 > 0.5"), ["text/runs/big"]);
}

#[test]
fn the_upgrade_command_upgrades_and_then_says_so() {
    let (dir, _) = temp_store();
    let path = v1_fixture(dir.path());
    let path_text = path.to_str().unwrap();
    let out = runstore(&["runs", path_text]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("runstore upgrade"), "{stderr}");
    let first = runstore(&["upgrade", path_text]);
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stdout).contains("from catalog version 1 to 4"));
    let second = runstore(&["upgrade", path_text]);
    assert!(String::from_utf8_lossy(&second.stdout).contains("is at catalog version 4"));
    assert!(runstore(&["runs", path_text]).status.success());
}

/// `tests/fixtures/catalog_v2.runs` was written by the build before the order index (main at
/// 6c2a43b, `runstore init/log`): two projects, seven runs; `acc`'s latest values are
/// numbers, a string, a map, and absent (run `text/runs/c`), with ties at 0.7.
#[test]
fn a_store_written_before_the_order_index_is_upgraded_by_a_writable_open() {
    let (dir, _) = temp_store();
    let path = fixture(dir.path(), "catalog_v2.runs");
    match Store::open_read_only(&path) {
        Err(runstore::Error::NeedsUpgrade { found: 2, .. }) => {}
        other => panic!("expected NeedsUpgrade, got {other:?}"),
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.info().unwrap().catalog_version, 4);
    let runs: Vec<FullRun> = store
        .runs(None)
        .unwrap()
        .iter()
        .map(FullRun::read)
        .collect();
    assert_eq!(runs.len(), 7);
    assert_eq!(
        urls(&store, "ORDER BY outputs.acc DESC LIMIT 5"),
        [
            "text/runs/a",
            "vision/runs/run4",
            "vision/runs/run2",
            "text/runs/b",
            "vision/runs/run1"
        ]
    );
    for query in [
        "ORDER BY outputs.acc DESC LIMIT 3",
        "ORDER BY outputs.acc ASC LIMIT 2 OFFSET 1",
        "params.lr < 0.01 AND outputs.acc > 0.5 ORDER BY outputs.acc DESC LIMIT 10",
        "params.lr < 0.01 ORDER BY outputs.acc ASC LIMIT 10",
        "ORDER BY outputs.eval.f1 DESC LIMIT 1",
    ] {
        assert_eq!(urls(&store, query), naive(&runs, query, None), "{query}");
    }
    // Appending moves a run in the order index.
    store
        .run("vision/runs/run3")
        .unwrap()
        .add_output_value(&Value::map([("acc", Value::Float(0.99))]))
        .unwrap();
    assert_eq!(
        urls(
            &store,
            "outputs.acc > 0.5 ORDER BY outputs.acc DESC LIMIT 2"
        ),
        ["vision/runs/run3", "vision/runs/run2"]
    );
    drop(store);
    assert_checks(&path);
    let read_only = Store::open_read_only(&path).unwrap();
    assert_eq!(
        urls(&read_only, "ORDER BY outputs.acc ASC LIMIT 1"),
        ["text/runs/b"]
    );
}

/// `tests/fixtures/catalog_v3.runs` is `catalog_v2.runs` upgraded by the build before the
/// parameter key registry (main at 1e522ed, `runstore upgrade`): catalog version 3, with the
/// per-path parameter and output indexes (`param_index`, `output_index`) that version 4
/// replaces.
#[test]
fn a_store_with_the_parameter_index_is_upgraded_by_a_writable_open() {
    let (dir, _) = temp_store();
    let path = fixture(dir.path(), "catalog_v3.runs");
    match Store::open_read_only(&path) {
        Err(runstore::Error::NeedsUpgrade { found: 3, .. }) => {}
        other => panic!("expected NeedsUpgrade, got {other:?}"),
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.info().unwrap().catalog_version, 4);
    let tables: Vec<String> = store
        .catalog_stats()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    for gone in ["param_index", "output_index"] {
        assert!(!tables.iter().any(|t| t == gone), "{tables:?}");
    }
    for new in ["param_keys", "output_keys", "output_stats"] {
        assert!(tables.iter().any(|t| t == new), "{tables:?}");
    }
    let runs: Vec<FullRun> = store
        .runs(None)
        .unwrap()
        .iter()
        .map(FullRun::read)
        .collect();
    assert_eq!(runs.len(), 7);
    for query in [
        "params.lr < 0.01 AND outputs.acc > 0.5 ORDER BY outputs.acc DESC LIMIT 10",
        "params.lr < 0.01 ORDER BY outputs.acc ASC LIMIT 10",
        "params.lr >= 0.01",
        "params.lr IS NULL",
        "ORDER BY params.lr DESC",
        "outputs.acc > 0.5",
        "outputs.acc.count >= 1 ORDER BY outputs.acc.max DESC",
        "outputs.eval.f1 IS NOT NULL",
    ] {
        assert_eq!(urls(&store, query), naive(&runs, query, None), "{query}");
    }
    for typo in ["params.lrr < 1", "outputs.acd > 0"] {
        assert!(matches!(
            store.query_runs().query(typo).unwrap().run(),
            Err(runstore::Error::UnknownKey { .. })
        ));
    }
    drop(store);
    assert_checks(&path);
    let read_only = Store::open_read_only(&path).unwrap();
    assert_eq!(
        urls(
            &read_only,
            "params.lr < 0.01 ORDER BY outputs.acc DESC LIMIT 10"
        ),
        naive(
            &runs,
            "params.lr < 0.01 ORDER BY outputs.acc DESC LIMIT 10",
            None
        )
    );
}
