//! API tests: Delete and listing.

use super::*;

#[test]

fn delete_removes_the_run_and_frees_its_name() {
    let (_dir, _path, store) = new_store();
    let doomed = store.init("p", Some("r")).unwrap();
    populate(&doomed, 18);
    let other = store.init("p", Some("s")).unwrap();
    populate(&other, 19);
    let elsewhere = store.init("q", Some("r")).unwrap();
    populate(&elsewhere, 20);
    let expected_others = [run_snapshot(&other), run_snapshot(&elsewhere)];

    doomed.delete().unwrap();
    for result in [
        doomed.info().map(|_| ()),
        doomed.description().map(|_| ()),
        doomed.output_values().map(|_| ()),
        doomed.bulk_list().map(|_| ()),
        doomed.bulk("model.bin").map(|_| ()),
        doomed.set_description("x"),
        doomed.add_output_value(&Value::map([("a", 1)])),
        doomed.put_bulk("x", b"x").map(|_| ()),
        doomed.delete(),
        store.run("p/runs/r").map(|_| ()),
        Run::from_names(&store, "r", "p").map(|_| ()),
        store.delete_run("p/runs/r"),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    }
    assert_eq!(
        [run_snapshot(&other), run_snapshot(&elsewhere)],
        expected_others
    );
    let counts: Vec<(String, u64)> = store
        .projects()
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.run_count))
        .collect();
    assert_eq!(counts, [("p".to_string(), 1), ("q".to_string(), 1)]);
    assert_eq!(store.run_count().unwrap(), 2);
    let info = store.info().unwrap();
    assert_eq!(info.runs, 2);
    assert_eq!(info.outputs, 10);
    assert_eq!(info.inputs, 2);
    assert_eq!(info.blobs, 4);

    let reborn = store.init("p", Some("r")).unwrap();
    assert_eq!(reborn.url(), "p/runs/r");
    assert_ne!(reborn.id(), doomed.id());
    assert_eq!(reborn.output_count().unwrap(), 0);
    assert!(reborn.bulk_list().unwrap().is_empty());
    assert_eq!(reborn.parameters().unwrap(), empty_map());
    // The old handle does not reach the new run of the same name.
    let err = doomed.info().unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[test]

fn store_delete_run_deletes_by_url() {
    let (_dir, _path, store) = new_store();
    populate(&store.init("p", Some("r")).unwrap(), 21);
    let keep = store.init("p", Some("keep")).unwrap();
    store.delete_run("p/runs/r").unwrap();
    assert_eq!(store.run_count().unwrap(), 1);
    assert_eq!(store.runs(None).unwrap(), vec![keep]);
    let err = store.delete_run("p/runs/r").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = store.delete_run("p/run/keep").unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn runs_are_listed_by_project_then_name() {
    let (_dir, _path, store) = new_store();
    // Created out of order; "ab" sorts between "a" and "b" and must not leak into "a".
    for (project, name) in [
        ("b", "run-2"),
        ("a", "run-10"),
        ("ab", "x"),
        ("a", "run-2"),
        ("b", "run-1"),
        ("a", "Run-3"),
        ("a", "run-1"),
    ] {
        store.init(project, Some(name)).unwrap();
    }
    let urls = |runs: Vec<Run>| -> Vec<String> { runs.iter().map(Run::url).collect() };
    assert_eq!(
        urls(store.runs(None).unwrap()),
        [
            "a/runs/Run-3",
            "a/runs/run-1",
            "a/runs/run-10",
            "a/runs/run-2",
            "ab/runs/x",
            "b/runs/run-1",
            "b/runs/run-2",
        ]
    );
    assert_eq!(
        urls(store.runs(Some("a")).unwrap()),
        [
            "a/runs/Run-3",
            "a/runs/run-1",
            "a/runs/run-10",
            "a/runs/run-2"
        ]
    );
    assert_eq!(urls(store.runs(Some("ab")).unwrap()), ["ab/runs/x"]);
    assert_eq!(
        urls(store.runs(Some("b")).unwrap()),
        ["b/runs/run-1", "b/runs/run-2"]
    );
    assert!(store.runs(Some("missing")).unwrap().is_empty());
    assert!(store.runs(Some("")).unwrap().is_empty());
    assert_eq!(store.run_count().unwrap(), 7);
    // Listed handles are live runs.
    for run in store.runs(None).unwrap() {
        assert_eq!(run.info().unwrap().url, run.url());
    }
}

#[test]
fn projects_lists_projects_by_name_with_run_counts() {
    let (_dir, _path, store) = new_store();
    let before = now_us();
    for (project, name) in [("zeta", "1"), ("alpha", "1"), ("alpha", "2"), ("mid", "1")] {
        store.init(project, Some(name)).unwrap();
    }
    let after = now_us();
    let counts = |store: &Store| -> Vec<(String, u64)> {
        store
            .projects()
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.run_count))
            .collect()
    };
    assert_eq!(
        counts(&store),
        [
            ("alpha".to_string(), 2),
            ("mid".to_string(), 1),
            ("zeta".to_string(), 1)
        ]
    );
    for project in store.projects().unwrap() {
        assert!(before <= project.created_us && project.created_us <= after);
    }
    let alpha_created = store.projects().unwrap()[0].created_us;
    store.init("alpha", Some("3")).unwrap();
    let projects = store.projects().unwrap();
    assert_eq!(projects[0].run_count, 3);
    assert_eq!(projects[0].created_us, alpha_created);
    assert_eq!(store.info().unwrap().projects, 3);
    assert_eq!(store.info().unwrap().runs, 5);
}

#[test]
fn store_info_counts_projects_runs_inputs_outputs_and_blobs() {
    let (_dir, path, store) = new_store();
    let a = store.init("p", Some("a")).unwrap();
    populate(&a, 22);
    let b = store.init("q", Some("b")).unwrap();
    b.add_output_values(&[Value::map([("x", 1)]), Value::map([("x", 2)])])
        .unwrap();
    b.add_input_value(&Value::map([("y", 1)])).unwrap();
    b.add_input_value(&Value::map([("y", 2)])).unwrap();
    b.put_bulk("blob", &[7u8; 1000]).unwrap();
    store.init("q", Some("c")).unwrap();
    let info = store.info().unwrap();
    assert_eq!(info.path, path);
    assert_eq!(info.projects, 2);
    assert_eq!(info.runs, 3);
    assert_eq!(info.outputs, 7);
    assert_eq!(info.inputs, 3);
    assert_eq!(info.blobs, 3);
    assert_eq!(info.file_bytes, file_len(&path));
    assert!(info.column_used_bytes >= 100_022 + 1000);
    assert!(info.column_used_bytes <= info.column_extent_bytes);
    assert!(info.redb_bytes > 0 && info.redb_bytes < info.file_bytes);
    assert!(info.extent_count >= 2);
    assert_eq!(store.run_count().unwrap(), info.runs);
}
