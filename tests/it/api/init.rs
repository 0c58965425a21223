//! API tests: init and names.

use super::*;

#[test]
fn init_with_a_name_creates_an_empty_run() {
    let (_dir, _path, store) = new_store();
    let before = now_us();
    let run = store.init("mnist", Some("baseline")).unwrap();
    let after = now_us();
    assert_eq!(run.name(), "baseline");
    assert_eq!(run.project(), "mnist");
    assert_eq!(run.url(), "mnist/runs/baseline");
    assert_eq!(run.bulk_data_url(), "mnist/runs/baseline/bulk_data");
    assert_eq!(run.store().path(), store.path());
    let info = run.info().unwrap();
    assert_eq!(info.url, "mnist/runs/baseline");
    assert_eq!(info.project, "mnist");
    assert_eq!(info.name, "baseline");
    assert_eq!(info.description, "");
    assert_eq!(info.status, RunStatus::Empty);
    assert_eq!(info.parameters, empty_map());
    assert!(info.input_tables.is_empty());
    assert!(info.input_values.is_empty());
    assert_eq!(info.output_count, 0);
    assert!(info.metrics.is_empty());
    assert_eq!(info.created_us, info.last_modified_us);
    assert!(before <= info.created_us && info.created_us <= after);
    assert_eq!(run.status().unwrap(), RunStatus::Empty);
    assert_eq!(run.description().unwrap(), "");
    assert_eq!(run.parameters().unwrap(), empty_map());
    assert!(run.input_tables().unwrap().is_empty());
    assert!(run.input_values().unwrap().is_empty());
    assert!(run.output_values().unwrap().is_empty());
    assert_eq!(run.output_count().unwrap(), 0);
    assert_eq!(run.last_output().unwrap(), None);
    assert!(run.metrics_tables().unwrap().is_empty());
    assert!(run.bulk_list().unwrap().is_empty());
    let projects = store.projects().unwrap();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].name, "mnist");
    assert_eq!(projects[0].run_count, 1);
    assert!(before <= projects[0].created_us && projects[0].created_us <= after);
}

#[test]
fn init_without_a_name_generates_unique_adjective_noun_names() {
    let (_dir, _path, store) = new_store();
    let mut names = HashSet::new();
    for _ in 0..200 {
        let run = store.init("p", None).unwrap();
        let name = run.name().to_string();
        let (adjective, noun) = name
            .split_once('-')
            .unwrap_or_else(|| panic!("{name:?} is not adjective-noun"));
        for word in [adjective, noun] {
            assert!(
                !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()),
                "{name:?} is not adjective-noun"
            );
        }
        assert_eq!(run.status().unwrap(), RunStatus::Empty);
        assert!(names.insert(name.clone()), "{name:?} was generated twice");
    }
    assert_eq!(store.run_count().unwrap(), 200);
    let listed: HashSet<String> = store
        .runs(Some("p"))
        .unwrap()
        .iter()
        .map(|run| run.name().to_string())
        .collect();
    assert_eq!(listed, names);
}

#[test]
fn init_rejects_invalid_project_and_run_names_with_invalid_name() {
    let (_dir, _path, store) = new_store();
    let too_long = "x".repeat(257);
    for bad in ["", too_long.as_str(), "a/b", "a\nb"] {
        let is_invalid =
            |err: &Error| matches!(err, Error::InvalidName { name, .. } if name == bad);
        let err = store.init(bad, Some("r")).unwrap_err();
        assert!(is_invalid(&err), "project {bad:?}: {err:?}");
        let err = store.init(bad, None).unwrap_err();
        assert!(is_invalid(&err), "project {bad:?}: {err:?}");
        let err = store.init("p", Some(bad)).unwrap_err();
        assert!(is_invalid(&err), "run {bad:?}: {err:?}");
        for if_exists in [
            InitIfExists::Raise,
            InitIfExists::Rename,
            InitIfExists::Overwrite,
            InitIfExists::Reuse,
        ] {
            let options = InitOptions {
                if_exists,
                ..InitOptions::default()
            };
            let err = store.init_with("p", Some(bad), &options).unwrap_err();
            assert!(is_invalid(&err), "run {bad:?}: {err:?}");
            let err = store.init_with(bad, Some("r"), &options).unwrap_err();
            assert!(is_invalid(&err), "project {bad:?}: {err:?}");
        }
    }
    assert_eq!(store.run_count().unwrap(), 0);
    assert!(store.projects().unwrap().is_empty());
    let err = store.active_run().unwrap_err();
    assert!(matches!(err, Error::NoActiveRun), "{err:?}");

    // 256 bytes is the limit, for both.
    let longest = "y".repeat(256);
    let run = store.init(&longest, Some(&longest)).unwrap();
    assert_eq!(run.name(), longest);
    assert_eq!(run.project(), longest);
    assert_eq!(store.run(&run.url()).unwrap(), run);
    assert_eq!(Run::from_names(&store, &longest, &longest).unwrap(), run);
}

#[test]
fn init_with_rename_of_a_taken_256_byte_name_is_invalid_name() {
    let (_dir, _path, store) = new_store();
    let longest = "z".repeat(256);
    store.init("p", Some(&longest)).unwrap();
    let err = store.init("p", Some(&longest)).unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn init_with_sets_description_and_parameters() {
    let (_dir, _path, store) = new_store();
    let parameters = json(r#"{"lr": 0.01, "epochs": 2, "model": {"depth": 50}}"#);
    let options = InitOptions {
        description: Some("first try".into()),
        parameters: Some(parameters.clone()),
        if_exists: InitIfExists::Raise,
    };
    let run = store.init_with("p", Some("r"), &options).unwrap();
    assert_eq!(run.description().unwrap(), "first try");
    assert_eq!(run.parameters().unwrap(), parameters);
    assert_eq!(run.status().unwrap(), RunStatus::Empty);
    assert_eq!(store.active_run().unwrap(), run);
}

#[test]
fn init_with_non_map_parameters_is_invalid_value_and_creates_nothing() {
    let (_dir, _path, store) = new_store();
    for parameters in [
        Value::from(1),
        Value::from("lr=0.1"),
        Value::List(vec![Value::from(1)]),
        Value::Null,
    ] {
        let options = InitOptions {
            parameters: Some(parameters),
            ..InitOptions::default()
        };
        let err = store.init_with("p", Some("r"), &options).unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    }
    assert_eq!(store.run_count().unwrap(), 0);
    assert!(store.projects().unwrap().is_empty());
}

#[test]
fn init_with_raise_on_a_taken_name_is_already_exists() {
    let (_dir, _path, store) = new_store();
    let first = store.init("p", Some("r")).unwrap();
    populate(&first, 2);
    let expected = snapshot(&store);
    let options = InitOptions {
        if_exists: InitIfExists::Raise,
        ..InitOptions::default()
    };
    let err = store.init_with("p", Some("r"), &options).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(snapshot(&store), expected);
    // The same name in another project is free.
    let other = store.init_with("q", Some("r"), &options).unwrap();
    assert_eq!(other.url(), "q/runs/r");
}

#[test]
fn init_with_rename_picks_the_first_free_suffix() {
    let (_dir, _path, store) = new_store();
    let rename = InitOptions {
        if_exists: InitIfExists::Rename,
        ..InitOptions::default()
    };
    assert_eq!(InitOptions::default().if_exists, InitIfExists::Rename);
    let first = store.init("p", Some("r")).unwrap();
    populate(&first, 4);
    let expected_first = run_snapshot(&first);
    let second = store.init_with("p", Some("r"), &rename).unwrap();
    assert_eq!(second.name(), "r_0000");
    let third = store.init("p", Some("r")).unwrap();
    assert_eq!(third.name(), "r_0001");
    assert_eq!(third.status().unwrap(), RunStatus::Empty);
    assert_eq!(third.output_count().unwrap(), 0);
    assert_eq!(run_snapshot(&first), expected_first);
    let names: Vec<String> = store
        .runs(Some("p"))
        .unwrap()
        .iter()
        .map(|run| run.name().to_string())
        .collect();
    assert_eq!(names, ["r", "r_0000", "r_0001"]);
}

#[test]

fn init_with_rename_reuses_a_freed_suffix() {
    let (_dir, _path, store) = new_store();
    store.init("p", Some("r")).unwrap();
    let second = store.init("p", Some("r")).unwrap();
    let third = store.init("p", Some("r")).unwrap();
    assert_eq!(third.name(), "r_0001");
    second.delete().unwrap();
    let fourth = store.init("p", Some("r")).unwrap();
    assert_eq!(fourth.name(), "r_0000");
    assert_ne!(fourth.id(), second.id());
}

#[test]

fn init_with_overwrite_replaces_the_old_run() {
    let (_dir, _path, store) = new_store();
    let old = store.init("p", Some("r")).unwrap();
    populate(&old, 5);
    let bystander = store.init("p", Some("other")).unwrap();
    populate(&bystander, 6);
    let expected_bystander = run_snapshot(&bystander);
    let options = InitOptions {
        if_exists: InitIfExists::Overwrite,
        ..InitOptions::default()
    };
    let new = store.init_with("p", Some("r"), &options).unwrap();
    assert_eq!(new.url(), "p/runs/r");
    assert_ne!(new.id(), old.id());
    assert_eq!(new.status().unwrap(), RunStatus::Empty);
    assert_eq!(new.description().unwrap(), "");
    assert_eq!(new.parameters().unwrap(), empty_map());
    assert!(new.input_tables().unwrap().is_empty());
    assert!(new.input_values().unwrap().is_empty());
    assert_eq!(new.output_count().unwrap(), 0);
    assert!(new.output_values().unwrap().is_empty());
    assert!(new.bulk_list().unwrap().is_empty());
    let err = new.bulk_bytes("model.bin").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    // The old handle points at a run that is gone.
    let err = old.info().unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 2);
    let info = store.info().unwrap();
    assert_eq!(info.outputs, 5);
    assert_eq!(info.inputs, 1);
    assert_eq!(info.blobs, 2);
    assert_eq!(run_snapshot(&bystander), expected_bystander);
    assert_eq!(store.active_run().unwrap(), new);
}

#[test]
fn init_with_reuse_returns_the_same_run_with_status_running() {
    let (_dir, _path, store) = new_store();
    let first = store.init("p", Some("r")).unwrap();
    populate(&first, 8);
    let before = run_snapshot(&first);
    assert_eq!(before.info.status, RunStatus::Completed);
    store.init("p", Some("other")).unwrap();
    let options = InitOptions {
        if_exists: InitIfExists::Reuse,
        ..InitOptions::default()
    };
    let reused = store.init_with("p", Some("r"), &options).unwrap();
    assert_eq!(reused, first);
    assert_eq!(reused.id(), first.id());
    assert_eq!(reused.url(), "p/runs/r");
    let after = run_snapshot(&reused);
    assert_eq!(after.info.status, RunStatus::Running);
    assert_eq!(after.info.created_us, before.info.created_us);
    assert!(after.info.last_modified_us >= before.info.last_modified_us);
    assert_eq!(after.info.parameters, before.info.parameters);
    assert_eq!(after.info.input_values, before.info.input_values);
    assert_eq!(after.outputs, before.outputs);
    assert_eq!(after.blobs, before.blobs);
    assert_eq!(store.run_count().unwrap(), 2);
    assert_eq!(store.active_run().unwrap(), first);
}

#[test]
fn init_with_reuse_of_a_free_name_creates_the_run() {
    let (_dir, _path, store) = new_store();
    let options = InitOptions {
        if_exists: InitIfExists::Reuse,
        ..InitOptions::default()
    };
    let run = store.init_with("p", Some("r"), &options).unwrap();
    assert_eq!(run.url(), "p/runs/r");
    assert_eq!(store.run_count().unwrap(), 1);
}
