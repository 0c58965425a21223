//! API tests: Description and times.

use super::*;

#[test]
fn set_description_round_trips_any_text() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    for text in ["a first try", "ünïcode ✓ and\nnewlines\ttoo", "", "final"] {
        run.set_description(text).unwrap();
        assert_eq!(run.description().unwrap(), text);
        assert_eq!(run.info().unwrap().description, text);
    }
    drop((run, store));
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.run("p/runs/r").unwrap().description().unwrap(),
        "final"
    );
}

/// One change to a run, named by the method it calls.
type Change<'a> = Box<dyn Fn(&Run) + 'a>;

#[test]
fn run_times_are_utc_microseconds_and_last_modified_moves_forward_on_each_change() {
    let (_dir, _path, store) = new_store();
    let before = now_us();
    let run = store.init("p", Some("r")).unwrap();
    let created = run.created().unwrap();
    assert!(
        (US_2020..US_2100).contains(&created),
        "{created} is not microseconds"
    );
    assert!(before <= created && created <= now_us());
    assert_eq!(run.last_modified().unwrap(), created);

    let map = Value::map([("k", 1)]);
    let changes: Vec<(&str, Change)> = vec![
        (
            "set_description",
            Box::new(|r| r.set_description("d").unwrap()),
        ),
        (
            "set_parameters",
            Box::new(|r| r.set_parameters(&Value::map([("lr", 0.1)])).unwrap()),
        ),
        (
            "add_input_table",
            Box::new(|r| r.add_input_table("t").unwrap()),
        ),
        (
            "add_input_value",
            Box::new(|r| r.add_input_value(&map).unwrap()),
        ),
        (
            "add_output_value",
            Box::new(|r| r.add_output_value(&map).unwrap()),
        ),
        (
            "add_output_values",
            Box::new(|r| r.add_output_values(&[map.clone(), map.clone()]).unwrap()),
        ),
        (
            "set_status_running",
            Box::new(|r| r.set_status_running().unwrap()),
        ),
        (
            "set_status",
            Box::new(|r| r.set_status(RunStatus::Paused).unwrap()),
        ),
        (
            "put_bulk",
            Box::new(|r| {
                r.put_bulk("b", b"x").unwrap();
            }),
        ),
        ("delete_bulk", Box::new(|r| r.delete_bulk("b").unwrap())),
    ];
    let mut previous = created;
    for (what, change) in &changes {
        std::thread::sleep(Duration::from_millis(1));
        let earliest = now_us();
        change(&run);
        let latest = now_us();
        let modified = run.last_modified().unwrap();
        assert!(modified > previous, "{what}: {modified} <= {previous}");
        assert!(
            earliest <= modified && modified <= latest,
            "{what}: {modified} outside [{earliest}, {latest}]"
        );
        assert_eq!(run.created().unwrap(), created, "{what} moved created");
        assert_eq!(run.info().unwrap().last_modified_us, modified);
        previous = modified;
    }
    // Reading changes nothing.
    run.info().unwrap();
    run.output_values().unwrap();
    assert_eq!(run.last_modified().unwrap(), previous);
}
