//! API tests: Vacuum, backup, check, copying the file.

use super::*;

#[test]
fn vacuum_shrinks_the_file_and_keeps_every_remaining_byte() {
    let (dir, path, store) = new_store();
    let mut rng = Rng::new(23);
    // 12 MiB of garbage: one blob replaced, one deleted.
    let big = store.init("p", Some("big")).unwrap();
    big.put_bulk("weights", &rng.bytes(8 * MIB)).unwrap();
    big.put_bulk("weights", b"small now").unwrap();
    big.put_bulk("optimizer", &rng.bytes(4 * MIB)).unwrap();
    big.delete_bulk("optimizer").unwrap();
    let keep = store.init("p", Some("keep")).unwrap();
    populate(&keep, 24);
    let shared = rng.bytes(6 * MIB);
    keep.put_bulk("checkpoint", &shared).unwrap();
    let copy = keep
        .copy(&CopyOptions {
            project_name: Some("q".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    let expected = snapshot(&store);
    let ids: Vec<u64> = store.runs(None).unwrap().iter().map(Run::id).collect();
    drop((big, keep, copy, store));
    let size_before = file_len(&path);

    let report = Store::vacuum(&path).unwrap();
    let size_after = file_len(&path);
    assert_eq!(report.bytes_before, size_before);
    assert_eq!(report.bytes_after, size_after);
    assert_eq!(report.runs, 3);
    assert!(
        size_after + 10 * MIB as u64 <= size_before,
        "vacuum went from {size_before} to {size_after} bytes"
    );
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);

    let store = Store::open(&path).unwrap();
    assert_eq!(snapshot(&store), expected);
    // The 6 MiB segment shared by the run and its copy was copied once (twice would be 12).
    let info = store.info().unwrap();
    assert!(
        info.column_used_bytes >= 6 * MIB as u64 && info.column_used_bytes < 9 * MIB as u64,
        "{} column bytes",
        info.column_used_bytes
    );
    for url in ["p/runs/keep", "q/runs/keep"] {
        let run = store.run(url).unwrap();
        assert_bytes_eq(&run.bulk_bytes("checkpoint").unwrap(), &shared, url);
    }
    // The vacuumed store keeps working: new blobs land past the copied ones, new ids are new.
    let fresh = store.init("p", Some("fresh")).unwrap();
    assert!(!ids.contains(&fresh.id()));
    let more = rng.bytes(MIB + 3);
    fresh.put_bulk("more", &more).unwrap();
    assert_bytes_eq(&fresh.bulk_bytes("more").unwrap(), &more, "new blob");
    for url in ["p/runs/keep", "q/runs/keep"] {
        let run = store.run(url).unwrap();
        assert_bytes_eq(&run.bulk_bytes("checkpoint").unwrap(), &shared, url);
    }
    drop((fresh, store));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]

fn vacuum_reclaims_the_space_of_a_deleted_run() {
    let (dir, path, store) = new_store();
    let doomed = store.init("p", Some("doomed")).unwrap();
    doomed
        .put_bulk("weights", &Rng::new(25).bytes(12 * MIB))
        .unwrap();
    let keep = store.init("p", Some("keep")).unwrap();
    populate(&keep, 26);
    doomed.delete().unwrap();
    let expected = snapshot(&store);
    drop((doomed, keep, store));
    let size_before = file_len(&path);
    let report = Store::vacuum(&path).unwrap();
    assert_eq!(report.runs, 1);
    assert_eq!(report.bytes_before, size_before);
    assert_eq!(report.bytes_after, file_len(&path));
    assert!(
        report.bytes_after + 10 * MIB as u64 <= size_before,
        "vacuum went from {size_before} to {} bytes",
        report.bytes_after
    );
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
    let store = Store::open(&path).unwrap();
    assert_eq!(snapshot(&store), expected);
    drop(store);
    assert!(check(&path).unwrap().is_ok());
}

#[test]
fn vacuum_of_a_store_open_for_writing_in_this_process_is_already_open() {
    let (_dir, path, store) = new_store();
    store.init("p", Some("r")).unwrap();
    let err = Store::vacuum(&path).unwrap_err();
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn backup_to_writes_a_store_equal_to_the_source() {
    let (dir, _path, store) = new_store();
    for (i, (project, name)) in [("p", "a"), ("p", "b"), ("q", "c")].into_iter().enumerate() {
        populate(&store.init(project, Some(name)).unwrap(), 30 + i as u64);
    }
    store
        .run("q/runs/c")
        .unwrap()
        .put_bulk("big", &Rng::new(31).bytes(5 * MIB))
        .unwrap();
    let expected = snapshot(&store);
    let dest = dir.path().join("backup.runs");
    let bytes = store.backup_to(&dest).unwrap();
    assert_eq!(bytes, file_len(&dest));

    // The writer goes on; the backup keeps the state at the time it was taken.
    store
        .run("p/runs/a")
        .unwrap()
        .add_output_value(&Value::map([("after", 1)]))
        .unwrap();
    let err = store.backup_to(&dest).unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
        "{err:?}"
    );
    let report = check(&dest).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.runs, 3);
    let backup = Store::open(&dest).unwrap();
    assert_eq!(snapshot(&backup), expected);
    assert_eq!(backup.info().unwrap().runs, 3);
    backup.init("p", Some("only-in-backup")).unwrap();
    assert_eq!(store.run_count().unwrap(), 3);
}

#[test]

fn backup_to_writes_a_store_that_opens_read_only() {
    let (dir, _path, store) = new_store();
    populate(&store.init("p", Some("a")).unwrap(), 32);
    let expected = snapshot(&store);
    let dest = dir.path().join("backup.runs");
    store.backup_to(&dest).unwrap();
    let backup = Store::open_read_only(&dest).unwrap();
    assert_eq!(snapshot(&backup), expected);
}

#[test]
fn check_of_a_healthy_store_reports_no_problems() {
    let (_dir, path, store) = new_store();
    let a = store.init("p", Some("a")).unwrap();
    populate(&a, 40);
    a.put_bulk("big", &Rng::new(41).bytes(5 * MIB)).unwrap();
    let b = store.init("q", Some("b")).unwrap();
    populate(&b, 42);
    a.copy(&CopyOptions::default()).unwrap();
    store.init("q", Some("empty")).unwrap();
    b.delete_bulk("labels.txt").unwrap();
    drop((a, b, store));
    assert!(!Store::check_database(&path).unwrap());
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.problems.is_empty());
    assert!(!report.redb_repaired);
    assert_eq!(report.runs, 4);
    assert_eq!(report.blobs, 3 + 3 + 1);
    // Each run's segments are verified, so a's shared segments count for a and for its copy.
    let a_bytes = (100_040 + "cat\ndog\n40\n".len() + 5 * MIB) as u64;
    assert_eq!(report.segment_bytes, 2 * a_bytes + 100_042);
}

/// `check` writes nothing, so it runs beside a writer (issue 15, item 9: it was refused with
/// `AlreadyOpen`) and checks the last commit.
#[test]
fn check_of_a_store_open_for_writing_in_this_process_checks_its_last_commit() {
    let (_dir, path, store) = new_store();
    store.init("p", Some("r")).unwrap();
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.runs, 1);
    store.init("p", Some("s")).unwrap();
    assert_eq!(check(&path).unwrap().runs, 2);
    drop(store);
    assert!(check(&path).unwrap().is_ok());
}

#[test]
fn copy_of_the_closed_file_opens_with_identical_content() {
    let (dir, path, store) = new_store();
    for (i, (project, name)) in [("p", "a"), ("p", "b"), ("q", "c"), ("r", "d")]
        .into_iter()
        .enumerate()
    {
        populate(&store.init(project, Some(name)).unwrap(), 50 + i as u64);
    }
    let c = store.run("q/runs/c").unwrap();
    c.put_bulk("big", &Rng::new(51).bytes(6 * MIB)).unwrap();
    c.copy(&CopyOptions::default()).unwrap();
    c.delete_bulk("labels.txt").unwrap();
    let expected = snapshot(&store);
    let expected_info = store.info().unwrap();
    let expected_projects = store.projects().unwrap();
    drop((c, store));

    let copied = dir.path().join("copied.runs");
    fs::copy(&path, &copied).unwrap();
    let store = Store::open(&copied).unwrap();
    assert_eq!(snapshot(&store), expected);
    assert_eq!(store.projects().unwrap(), expected_projects);
    let info = store.info().unwrap();
    assert_eq!(info.path, copied);
    assert_eq!(info.runs, expected_info.runs);
    assert_eq!(info.outputs, expected_info.outputs);
    assert_eq!(info.inputs, expected_info.inputs);
    assert_eq!(info.blobs, expected_info.blobs);
    assert_eq!(info.column_used_bytes, expected_info.column_used_bytes);
    assert_eq!(info.file_bytes, expected_info.file_bytes);
    drop(store);
    let report = check(&copied).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
