//! `Store::batch`: many runs and changes in one commit, with the same checks and results as
//! the per-call API, and nothing written when any step fails.

use runstore::{Error, InitOptions, RunStatus, Store, Value};

use crate::util::temp_store;

fn params(lr: f64) -> Value {
    Value::map([("lr", Value::from(lr)), ("opt", Value::from("adam"))])
}

#[test]
fn batch_writes_what_the_per_call_api_writes() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let outputs = [
        Value::map([("acc", Value::from(0.5))]),
        Value::map([("acc", Value::from(0.7))]),
    ];
    let batched = store
        .batch(|batch| {
            let run = batch.init_with("p", Some("batched"), &InitOptions::default())?;
            batch.set_parameters(&run, &params(0.01))?;
            batch.add_output_values(&run, &outputs)?;
            batch.set_status(&run, RunStatus::Completed)?;
            batch.set_description(&run, "d")?;
            Ok(run)
        })
        .unwrap();
    let single = store.init("p", Some("single")).unwrap();
    single.set_parameters(&params(0.01)).unwrap();
    single.add_output_values(&outputs).unwrap();
    single.set_status(RunStatus::Completed).unwrap();
    single.set_description("d").unwrap();
    let (a, b) = (batched.info().unwrap(), single.info().unwrap());
    assert_eq!(a.parameters, b.parameters);
    assert_eq!(a.status, b.status);
    assert_eq!(a.description, b.description);
    assert_eq!(batched.output_values().unwrap(), outputs.to_vec());
    // The last run a batch creates is the active run, as after Store::init.
    let (_dir2, path2) = temp_store();
    let other = Store::create(&path2).unwrap();
    let last = other
        .batch(|batch| {
            batch.init("p", Some("x"))?;
            batch.init("p", Some("y"))
        })
        .unwrap();
    assert_eq!(other.active_run().unwrap(), last);
    drop((store, batched, single));
    let report = runstore::check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn batch_failure_writes_nothing() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let result = store.batch(|batch| {
        let run = batch.init("p", Some("a"))?;
        batch.set_parameters(&run, &params(0.1))?;
        // Not a map: the same error as Run::set_parameters gives.
        batch.set_parameters(&run, &Value::from(1i64))
    });
    assert!(matches!(result, Err(Error::InvalidValue { .. })));
    assert_eq!(store.run_count().unwrap(), 0);
    assert!(matches!(
        store.batch(|batch| batch.init("p", Some("bad/name"))),
        Err(Error::InvalidName { .. })
    ));
    assert_eq!(store.run_count().unwrap(), 0);
}

#[test]
fn batch_refuses_writes_that_bypass_it() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let result = store.batch(|batch| {
        let run = batch.init("p", Some("a"))?;
        // A per-call write would wait for the batch's own commit: refused, not deadlocked.
        run.set_status_running()
    });
    assert!(matches!(result, Err(Error::InvalidInput { .. })));
    assert_eq!(store.run_count().unwrap(), 0);
    // After the batch, per-call writes work again.
    store
        .init("p", Some("b"))
        .unwrap()
        .set_status_running()
        .unwrap();
}

#[test]
fn a_panic_in_the_batch_closure_propagates_and_writes_nothing() {
    let (_dir, path) = crate::util::temp_store();
    let store = runstore::Store::create(&path).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.batch(|b| {
            b.init("p", Some("r"))?;
            panic!("caller bug");
            #[allow(unreachable_code)]
            Ok(())
        })
    }));
    assert!(caught.is_err(), "the caller's panic must reach the caller");
    assert_eq!(store.run_count().unwrap(), 0);
    // The handle is not poisoned: the caller's panic says nothing about the file.
    store.init("p", Some("r")).unwrap();
    assert_eq!(store.run_count().unwrap(), 1);
}
