//! API tests: Failed calls change nothing.

use super::*;

#[test]
fn failed_calls_change_nothing() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    populate(&run, 60);
    let other = store.init("p", Some("other")).unwrap();
    let expected = snapshot(&store);
    let expected_info = store.info().unwrap();
    let map = Value::map([("ok", 1)]);

    let errors: Vec<Error> = vec![
        run.set_parameters(&Value::from(1)).unwrap_err(),
        run.add_input_value(&Value::List(vec![map.clone()]))
            .unwrap_err(),
        run.add_output_values(&[map.clone(), Value::Null, map.clone()])
            .unwrap_err(),
        run.add_input_table("").unwrap_err(),
        run.put_bulk("bad//name", b"x").map(|_| ()).unwrap_err(),
        run.delete_bulk("missing").unwrap_err(),
        run.copy(&CopyOptions {
            run_name: Some("other".into()),
            ..CopyOptions::default()
        })
        .map(|_| ())
        .unwrap_err(),
        run.copy(&CopyOptions {
            destination_url: Some("p/runs/r".into()),
            if_exists: CopyIfExists::Overwrite,
            ..CopyOptions::default()
        })
        .map(|_| ())
        .unwrap_err(),
        store
            .init_with(
                "p",
                Some("r"),
                &InitOptions {
                    if_exists: InitIfExists::Raise,
                    ..InitOptions::default()
                },
            )
            .map(|_| ())
            .unwrap_err(),
        store
            .init_with(
                "p",
                Some("new"),
                &InitOptions {
                    parameters: Some(Value::from("x")),
                    ..InitOptions::default()
                },
            )
            .map(|_| ())
            .unwrap_err(),
        store.delete_run("p/runs/missing").unwrap_err(),
    ];
    assert_eq!(errors.len(), 11);
    assert_eq!(snapshot(&store), expected);
    assert_eq!(store.info().unwrap(), expected_info);
    assert_eq!(store.active_run().unwrap(), other);

    // A source that fails halfway through a multi-chunk blob leaves no blob and no bytes.
    let err = run
        .put_bulk_from("half", &mut FailingReader { good: 6 * MIB })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == io::ErrorKind::Other),
        "{err:?}"
    );
    let err = run.bulk("half").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(snapshot(&store), expected);
    let info = store.info().unwrap();
    assert_eq!(info.column_used_bytes, expected_info.column_used_bytes);
    assert_eq!(info.blobs, expected_info.blobs);
    // The space is reused and the store stays sound.
    let later = Rng::new(61).bytes(5 * MIB);
    run.put_bulk("later", &later).unwrap();
    assert_bytes_eq(&run.bulk_bytes("later").unwrap(), &later, "later");
    assert_bytes_eq(
        &run.bulk_bytes("model.bin").unwrap(),
        &Rng::new(60).bytes(100_060),
        "model.bin",
    );
    drop((run, other, store));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn open_for_writing_removes_temp_files_of_dead_processes() {
    let (_dir, path) = temp_store();
    Store::create(&path).unwrap();
    let dir = path.parent().unwrap();
    // No process has a pid this large (Linux caps pids at 2^22).
    let stale = dir.join(".test.runs.vacuum-999999999-1");
    let live = dir.join(format!(".test.runs.vacuum-{}-1", std::process::id()));
    let other = dir.join(".other.runs.vacuum-999999999-1");
    for file in [&stale, &live, &other] {
        std::fs::write(file, b"partial").unwrap();
    }
    drop(Store::open(&path).unwrap());
    assert!(!stale.exists());
    assert!(live.exists());
    assert!(other.exists());
}

#[test]
fn column_extents_grow_in_place_when_they_end_the_file() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    for i in 0..8u8 {
        run.put_bulk(&format!("b{i}"), &vec![i; 700 * 1024])
            .unwrap();
    }
    let superblock = store.superblock();
    let column_extents = superblock.column_extents().count();
    assert_eq!(column_extents, 1, "{superblock:?}");
    drop(run);
    drop(store);
    let report = runstore::check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
