//! API tests: Store: create, open, read-only, probe, format checks.

use super::*;

#[test]
fn create_makes_an_empty_store_and_leaves_no_temp_file() {
    let (dir, path) = temp_store();
    let before = now_us();
    let store = Store::create(&path).unwrap();
    assert_eq!(store.path(), path.as_path());
    assert!(!store.is_read_only());
    let info = store.info().unwrap();
    assert_eq!(info.path, path);
    assert_eq!(info.format_version, 1);
    assert_eq!(info.catalog_version, 4);
    assert_eq!(info.projects, 0);
    assert_eq!(info.runs, 0);
    assert_eq!(info.outputs, 0);
    assert_eq!(info.inputs, 0);
    assert_eq!(info.blobs, 0);
    assert_eq!(info.column_used_bytes, 0);
    assert_eq!(info.file_bytes, file_len(&path));
    assert_eq!(store.run_count().unwrap(), 0);
    assert!(store.projects().unwrap().is_empty());
    assert!(store.runs(None).unwrap().is_empty());
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
    Store::probe(&path).unwrap();
    // The new store is usable at once.
    let run = store.init("p", Some("r")).unwrap();
    assert!(run.created().unwrap() >= before);
    drop((run, store));
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}

#[test]
fn create_on_an_existing_file_is_already_exists_and_leaves_it_untouched() {
    let (dir, path) = temp_store();
    fs::write(&path, b"precious bytes that are not a store").unwrap();
    let err = Store::create(&path).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(
        fs::read(&path).unwrap(),
        b"precious bytes that are not a store"
    );
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}

#[test]
fn create_on_an_existing_store_is_already_exists_and_keeps_its_runs() {
    let (dir, path, store) = new_store();
    populate(&store.init("p", Some("r")).unwrap(), 1);
    drop(store);
    let bytes = fs::read(&path).unwrap();
    let err = Store::create(&path).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert!(fs::read(&path).unwrap() == bytes, "the store file changed");
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.run("p/runs/r").unwrap().output_count().unwrap(), 5);
}

#[test]
fn create_replacing_puts_an_empty_store_over_an_existing_one() {
    let (dir, path, store) = new_store();
    populate(&store.init("p", Some("r")).unwrap(), 1);
    drop(store);
    let store = Store::create_replacing(&path).unwrap();
    assert_eq!(store.run_count().unwrap(), 0);
    assert!(store.projects().unwrap().is_empty());
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}

#[test]
fn open_reads_back_what_a_closed_writer_committed() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    populate(&run, 7);
    let expected = snapshot(&store);
    drop((run, store));
    let store = Store::open(&path).unwrap();
    assert!(!store.is_read_only());
    assert_eq!(snapshot(&store), expected);
    // Still writable.
    store.init("p", Some("s")).unwrap();
    assert_eq!(store.run_count().unwrap(), 2);
}

#[test]
fn open_or_create_creates_a_missing_store_then_opens_it() {
    let (dir, path) = temp_store();
    let store = Store::open_or_create(&path).unwrap();
    assert_eq!(store.run_count().unwrap(), 0);
    store.init("p", Some("r")).unwrap();
    drop(store);
    let store = Store::open_or_create(&path).unwrap();
    assert_eq!(store.run_count().unwrap(), 1);
    assert_eq!(store.runs(None).unwrap()[0].url(), "p/runs/r");
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}

#[test]
fn open_of_a_missing_path_is_not_found() {
    let (dir, path) = temp_store();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = Store::probe(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = check(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = Store::vacuum(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    // Nothing was created by the failed opens.
    assert!(file_names(dir.path()).is_empty());
}

#[test]
fn open_read_only_rejects_every_write_with_read_only() {
    let (dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    populate(&run, 3);
    let expected = snapshot(&store);
    drop((run, store));
    let bytes = fs::read(&path).unwrap();

    let store = Store::open_read_only(&path).unwrap();
    assert!(store.is_read_only());
    let run = store.run("p/runs/r").unwrap();
    let map = Value::map([("a", 1)]);
    let errors = [
        store.init("p", Some("new")).map(|_| ()).unwrap_err(),
        store
            .init_with("p", None, &InitOptions::default())
            .map(|_| ())
            .unwrap_err(),
        run.set_description("x").unwrap_err(),
        run.set_parameters(&map).unwrap_err(),
        run.add_input_table("t").unwrap_err(),
        run.add_input_value(&map).unwrap_err(),
        run.add_output_value(&map).unwrap_err(),
        run.add_output_values(std::slice::from_ref(&map))
            .unwrap_err(),
        run.set_status_running().unwrap_err(),
        run.set_status(RunStatus::Paused).unwrap_err(),
        run.put_bulk("b", b"bytes").map(|_| ()).unwrap_err(),
        run.put_bulk_from("b", &mut &b"bytes"[..])
            .map(|_| ())
            .unwrap_err(),
        run.delete_bulk("model.bin").unwrap_err(),
        run.copy(&CopyOptions::default()).map(|_| ()).unwrap_err(),
        run.delete().unwrap_err(),
        store.delete_run("p/runs/r").unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, Error::ReadOnly), "{err:?}");
    }
    // A backup reads: from a read-only handle it copies one snapshot into a new store.
    let elsewhere = tempfile::tempdir().unwrap();
    store
        .backup_to(elsewhere.path().join("backup.runs"))
        .unwrap();
    let copy = Store::open_read_only(elsewhere.path().join("backup.runs")).unwrap();
    assert_eq!(snapshot(&copy), expected);
    drop(copy);
    // Reads work, and nothing changed, in the store or in the file.
    assert_eq!(snapshot(&store), expected);
    assert_eq!(store.info().unwrap().runs, 1);
    drop((run, store));
    assert!(fs::read(&path).unwrap() == bytes, "the store file changed");
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}

#[test]
fn open_read_only_follows_commits_of_a_writer_in_the_same_process() {
    let (_dir, path, writer) = new_store();
    writer.init("p", Some("a")).unwrap();
    let reader = Store::open_read_only(&path).unwrap();
    let reader_a = reader.run("p/runs/a").unwrap();
    assert_eq!(reader.run_count().unwrap(), 1);

    // Commits made after the reader opened, including one that grows the file by a new column
    // extent (a superblock change the reader must pick up).
    let writer_a = writer.run("p/runs/a").unwrap();
    writer_a.set_description("changed").unwrap();
    writer_a
        .add_output_value(&Value::map([("epoch", 1)]))
        .unwrap();
    let blob = Rng::new(11).bytes(5 * MIB + 17);
    writer_a.put_bulk("weights", &blob).unwrap();
    let writer_b = writer.init("q", Some("b")).unwrap();
    writer_b.set_parameters(&json(r#"{"lr": 0.5}"#)).unwrap();

    assert_eq!(reader_a.description().unwrap(), "changed");
    assert_eq!(
        reader_a.output_values().unwrap(),
        vec![Value::map([("epoch", 1)])]
    );
    assert_bytes_eq(
        &reader_a.bulk_bytes("weights").unwrap(),
        &blob,
        "blob seen by the reader",
    );
    assert_eq!(reader.run_count().unwrap(), 2);
    let reader_b = reader.run("q/runs/b").unwrap();
    assert_eq!(reader_b.parameters().unwrap(), json(r#"{"lr": 0.5}"#));
    assert_eq!(snapshot(&reader), snapshot(&writer));
}

#[test]
fn open_for_writing_twice_in_one_process_is_already_open() {
    let (_dir, path, store) = new_store();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err:?}");
    // Where /proc tells (Linux), the holder is named: this very process.
    #[cfg(target_os = "linux")]
    {
        assert!(
            matches!(
                err,
                Error::AlreadyOpen {
                    holder: runstore::Holder::ThisProcess,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("by this process"), "{err}");
    }
    // The first handle is unaffected.
    store.init("p", Some("r")).unwrap();
    drop(store);
    Store::open(&path).unwrap();
}

#[test]
fn probe_and_open_reject_files_that_are_not_stores_with_not_a_store() {
    let (dir, _) = temp_store();
    let random = dir.path().join("random.bin");
    fs::write(&random, Rng::new(5).bytes(256 * 1024)).unwrap();
    let sqlite = dir.path().join("sqlite.db");
    let mut sqlite_bytes = b"SQLite format 3\0".to_vec();
    sqlite_bytes.extend_from_slice(&[0x10, 0x00, 0x01, 0x01, 0x00, 0x40, 0x20, 0x20]);
    sqlite_bytes.resize(200 * 1024, 0);
    fs::write(&sqlite, &sqlite_bytes).unwrap();
    let empty = dir.path().join("empty.runs");
    fs::write(&empty, b"").unwrap();

    for path in [&random, &sqlite, &empty] {
        let bytes = fs::read(path).unwrap();
        let is_not_a_store = |err: &Error| matches!(err, Error::NotAStore { path: p } if p == path);
        let err = Store::probe(path).unwrap_err();
        assert!(is_not_a_store(&err), "probe {path:?}: {err:?}");
        let err = Store::open(path).unwrap_err();
        assert!(is_not_a_store(&err), "open {path:?}: {err:?}");
        let err = Store::open_read_only(path).unwrap_err();
        assert!(is_not_a_store(&err), "open_read_only {path:?}: {err:?}");
        let err = Store::open_or_create(path).unwrap_err();
        assert!(is_not_a_store(&err), "open_or_create {path:?}: {err:?}");
        let err = check(path).unwrap_err();
        assert!(is_not_a_store(&err), "check {path:?}: {err:?}");
        let err = Store::vacuum(path).unwrap_err();
        assert!(is_not_a_store(&err), "vacuum {path:?}: {err:?}");
        assert!(fs::read(path).unwrap() == bytes, "{path:?} changed");
    }
}

/// Applies `patch` to the 64-byte header of both superblock slots of the closed store at `path`.
fn patch_both_slots(path: &Path, patch: impl Fn(&mut [u8])) {
    const SLOT_BYTES: usize = 64 * 1024;
    let mut bytes = fs::read(path).unwrap();
    for slot in 0..2 {
        let start = slot * SLOT_BYTES;
        assert_eq!(&bytes[start..start + 8], b"RUNSTORE", "slot {slot} magic");
        patch(&mut bytes[start..start + 64]);
    }
    fs::write(path, bytes).unwrap();
}

#[test]
fn open_of_a_store_with_version_99_is_unsupported_version() {
    let (_dir, path, store) = new_store();
    store.init("p", Some("r")).unwrap();
    drop(store);
    // The CRC is left stale on purpose: the version is checked first.
    patch_both_slots(&path, |header| {
        header[8..12].copy_from_slice(&99u32.to_le_bytes());
    });
    let is_unsupported = |err: &Error| matches!(err, Error::UnsupportedVersion { path: p, found: 99, supported: 1 } if p == &path);
    let err = Store::probe(&path).unwrap_err();
    assert!(is_unsupported(&err), "{err:?}");
    let err = Store::open(&path).unwrap_err();
    assert!(is_unsupported(&err), "{err:?}");
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(is_unsupported(&err), "{err:?}");
    let err = Store::open_or_create(&path).unwrap_err();
    assert!(is_unsupported(&err), "{err:?}");
}

#[test]
fn open_of_a_store_with_both_superblock_crcs_damaged_is_corrupted() {
    let (_dir, path, store) = new_store();
    store.init("p", Some("r")).unwrap();
    drop(store);
    patch_both_slots(&path, |header| {
        for byte in &mut header[60..64] {
            *byte ^= 0xFF;
        }
    });
    let err = Store::probe(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    let err = check(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
}
