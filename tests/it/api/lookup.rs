//! API tests: Looking runs up.

use super::*;

#[test]
fn run_from_url_from_names_and_store_run_find_the_same_run() {
    let (_dir, _path, store) = new_store();
    let run = store.init("proj", Some("r1")).unwrap();
    store.init("proj", Some("r2")).unwrap();
    let by_url = Run::from_url(&store, "proj/runs/r1").unwrap();
    let by_names = Run::from_names(&store, "r1", "proj").unwrap();
    let by_store = store.run("proj/runs/r1").unwrap();
    for found in [&by_url, &by_names, &by_store] {
        assert_eq!(found, &run);
        assert_eq!(found.id(), run.id());
        assert_eq!(found.name(), "r1");
        assert_eq!(found.project(), "proj");
        assert_eq!(found.url(), "proj/runs/r1");
        assert_eq!(found.bulk_data_url(), "proj/runs/r1/bulk_data");
    }
    assert_ne!(store.run("proj/runs/r2").unwrap().id(), run.id());
    assert_eq!(run_url("proj", "r1"), "proj/runs/r1");
    assert_eq!(
        parse_run_url("proj/runs/r1").unwrap(),
        ("proj".to_string(), "r1".to_string())
    );
    // A run handle reads the latest commit, whichever handle made it.
    by_url.set_description("via url").unwrap();
    assert_eq!(by_names.description().unwrap(), "via url");
}

#[test]
fn run_from_url_rejects_malformed_urls_with_invalid_url() {
    let (_dir, _path, store) = new_store();
    store.init("p", Some("x")).unwrap();
    for bad in [
        "p/run/x",
        "p/runs",
        "p/runs/x/y",
        "/runs/x",
        "p/runs/",
        "",
        "p",
        "p/runs/x/",
        "p/tables/x",
    ] {
        let is_invalid = |err: &Error| matches!(err, Error::InvalidUrl { url, .. } if url == bad);
        let err = Run::from_url(&store, bad).unwrap_err();
        assert!(is_invalid(&err), "from_url {bad:?}: {err:?}");
        let err = store.run(bad).unwrap_err();
        assert!(is_invalid(&err), "run {bad:?}: {err:?}");
        let err = parse_run_url(bad).unwrap_err();
        assert!(is_invalid(&err), "parse_run_url {bad:?}: {err:?}");
        let err = store.delete_run(bad).unwrap_err();
        assert!(is_invalid(&err), "delete_run {bad:?}: {err:?}");
    }
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn run_from_url_of_a_missing_run_is_not_found() {
    let (_dir, _path, store) = new_store();
    store.init("p", Some("x")).unwrap();
    for (project, name) in [("p", "y"), ("q", "x"), ("p", "X")] {
        let url = run_url(project, name);
        let err = Run::from_url(&store, &url).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{url}: {err:?}");
        let err = store.run(&url).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{url}: {err:?}");
        let err = Run::from_names(&store, name, project).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{url}: {err:?}");
        let err = store.run_by_names(name, project).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{url}: {err:?}");
    }
}
