//! API tests: The active run.

use super::*;

#[test]
fn active_run_with_none_set_is_no_active_run() {
    let (_dir, path, store) = new_store();
    let err = store.active_run().unwrap_err();
    assert!(matches!(err, Error::NoActiveRun), "{err:?}");
    store.init("p", Some("r")).unwrap();
    drop(store);
    // The active run belongs to a handle, not to the file.
    let store = Store::open(&path).unwrap();
    let err = store.active_run().unwrap_err();
    assert!(matches!(err, Error::NoActiveRun), "{err:?}");
}

#[test]
fn init_makes_the_new_run_active_for_every_clone_of_the_handle() {
    let (_dir, _path, store) = new_store();
    let clone = store.clone();
    let a = store.init("p", Some("a")).unwrap();
    assert_eq!(store.active_run().unwrap(), a);
    assert_eq!(clone.active_run().unwrap(), a);
    let b = clone.init("p", Some("b")).unwrap();
    assert_eq!(store.active_run().unwrap(), b);
    assert_eq!(store.active_run().unwrap().url(), "p/runs/b");
    // Looking a run up does not change the active run.
    Run::from_url(&store, "p/runs/a").unwrap();
    Run::from_names(&store, "a", "p").unwrap();
    store.run("p/runs/a").unwrap();
    assert_eq!(store.active_run().unwrap(), b);
}

#[test]
fn set_active_run_and_set_active_run_url_switch_the_active_run() {
    let (_dir, _path, store) = new_store();
    let a = store.init("p", Some("a")).unwrap();
    let b = store.init("p", Some("b")).unwrap();
    store.set_active_run(&a).unwrap();
    assert_eq!(store.active_run().unwrap(), a);
    store.set_active_run_url("p/runs/b").unwrap();
    assert_eq!(store.active_run().unwrap(), b);

    // Failures leave the active run as it was.
    let err = store.set_active_run_url("p/run/a").unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    let err = store.set_active_run_url("p/runs/missing").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let (_other_dir, _other_path, other) = new_store();
    let foreign = other.init("p", Some("a")).unwrap();
    let err = store.set_active_run(&foreign).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(store.active_run().unwrap(), b);
    assert_eq!(other.active_run().unwrap(), foreign);
}

#[test]

fn set_active_run_of_a_deleted_run_is_not_found() {
    let (_dir, _path, store) = new_store();
    let doomed = store.init("p", Some("doomed")).unwrap();
    let b = store.init("p", Some("b")).unwrap();
    doomed.delete().unwrap();
    let err = store.set_active_run(&doomed).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = store.set_active_run_url("p/runs/doomed").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(store.active_run().unwrap(), b);
}

#[test]

fn active_run_deleted_is_no_active_run() {
    let (_dir, _path, store) = new_store();
    let a = store.init("p", Some("a")).unwrap();
    a.delete().unwrap();
    let err = store.active_run().unwrap_err();
    assert!(matches!(err, Error::NoActiveRun), "{err:?}");

    store.init("p", Some("b")).unwrap();
    store.delete_run("p/runs/b").unwrap();
    let err = store.active_run().unwrap_err();
    assert!(matches!(err, Error::NoActiveRun), "{err:?}");

    // A new run of the deleted run's name is a new run, and the active one.
    let again = store.init("p", Some("a")).unwrap();
    assert_ne!(again.id(), a.id());
    assert_eq!(store.active_run().unwrap(), again);
}
