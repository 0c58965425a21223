//! API tests: Copy.

use super::*;

#[test]
fn copy_without_options_goes_next_to_the_source_as_name_0000() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 10);
    let expected_source = run_snapshot(&source);
    let first = source.copy(&CopyOptions::default()).unwrap();
    assert_eq!(first.url(), "p/runs/r_0000");
    assert_ne!(first.id(), source.id());
    assert_same_content(&first, &source);
    let second = source.copy(&CopyOptions::default()).unwrap();
    assert_eq!(second.url(), "p/runs/r_0001");
    assert_same_content(&second, &source);
    assert_eq!(run_snapshot(&source), expected_source);
    assert_eq!(store.run("p/runs/r_0000").unwrap(), first);
    assert_eq!(store.run_count().unwrap(), 3);
    let info = store.info().unwrap();
    assert_eq!(info.outputs, 15);
    assert_eq!(info.inputs, 3);
    assert_eq!(info.blobs, 6);
    // Copying does not change the active run.
    assert_eq!(store.active_run().unwrap(), source);
}

#[test]
fn copy_with_run_name_uses_that_name_in_the_source_project() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 11);
    let copy = source
        .copy(&CopyOptions {
            run_name: Some("r-copy".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(copy.url(), "p/runs/r-copy");
    assert_same_content(&copy, &source);
}

#[test]
fn copy_with_project_name_creates_the_project() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 12);
    let before = now_us();
    let copy = source
        .copy(&CopyOptions {
            project_name: Some("archive".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(copy.url(), "archive/runs/r");
    assert_eq!(copy.project(), "archive");
    assert_same_content(&copy, &source);
    let projects = store.projects().unwrap();
    let names: Vec<(&str, u64)> = projects
        .iter()
        .map(|p| (p.name.as_str(), p.run_count))
        .collect();
    assert_eq!(names, [("archive", 1), ("p", 1)]);
    assert!(projects[0].created_us >= before);
    let both = source
        .copy(&CopyOptions {
            run_name: Some("renamed".into()),
            project_name: Some("other".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(both.url(), "other/runs/renamed");
    assert_same_content(&both, &source);
}

#[test]
fn copy_with_destination_url_copies_there() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 13);
    let copy = source
        .copy(&CopyOptions {
            destination_url: Some("q/runs/z".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(copy.url(), "q/runs/z");
    assert_same_content(&copy, &source);
    for bad in ["q/run/z", "q/runs", "q/runs/z/w", "/runs/z"] {
        let err = source
            .copy(&CopyOptions {
                destination_url: Some(bad.into()),
                ..CopyOptions::default()
            })
            .unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{bad:?}: {err:?}");
    }
    assert_eq!(store.run_count().unwrap(), 2);
}

#[test]
fn copy_with_url_and_names_together_is_invalid_input() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    for options in [
        CopyOptions {
            destination_url: Some("q/runs/z".into()),
            run_name: Some("z".into()),
            ..CopyOptions::default()
        },
        CopyOptions {
            destination_url: Some("q/runs/z".into()),
            project_name: Some("q".into()),
            ..CopyOptions::default()
        },
    ] {
        let err = source.copy(&options).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn copy_with_invalid_names_is_invalid_name() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    for options in [
        CopyOptions {
            run_name: Some("a/b".into()),
            ..CopyOptions::default()
        },
        CopyOptions {
            project_name: Some(String::new()),
            ..CopyOptions::default()
        },
        CopyOptions {
            run_name: Some("x".repeat(257)),
            ..CopyOptions::default()
        },
    ] {
        let err = source.copy(&options).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    }
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn copy_if_exists_raise_and_rename() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 14);
    let target = store.init("p", Some("t")).unwrap();
    populate(&target, 15);
    target.put_bulk("only-in-target", b"old").unwrap();
    let expected_target = run_snapshot(&target);
    let to_t = |if_exists| CopyOptions {
        run_name: Some("t".into()),
        if_exists,
        ..CopyOptions::default()
    };
    assert_eq!(CopyOptions::default().if_exists, CopyIfExists::Raise);

    let err = source.copy(&to_t(CopyIfExists::Raise)).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    let err = source
        .copy(&CopyOptions {
            destination_url: Some("p/runs/t".into()),
            ..CopyOptions::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(run_snapshot(&target), expected_target);

    let renamed = source.copy(&to_t(CopyIfExists::Rename)).unwrap();
    assert_eq!(renamed.url(), "p/runs/t_0000");
    assert_same_content(&renamed, &source);
    let renamed = source.copy(&to_t(CopyIfExists::Rename)).unwrap();
    assert_eq!(renamed.url(), "p/runs/t_0001");
    assert_eq!(run_snapshot(&target), expected_target);
    assert_eq!(store.run_count().unwrap(), 4);
    // With no existing destination, every policy just copies.
    for (i, if_exists) in [
        CopyIfExists::Raise,
        CopyIfExists::Rename,
        CopyIfExists::Overwrite,
    ]
    .into_iter()
    .enumerate()
    {
        let copy = source
            .copy(&CopyOptions {
                run_name: Some(format!("fresh-{i}")),
                if_exists,
                ..CopyOptions::default()
            })
            .unwrap();
        assert_eq!(copy.name(), format!("fresh-{i}"));
        assert_same_content(&copy, &source);
    }
}

#[test]

fn copy_if_exists_overwrite_replaces_the_destination() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 14);
    let target = store.init("p", Some("t")).unwrap();
    populate(&target, 15);
    target.put_bulk("only-in-target", b"old").unwrap();
    let bystander = store.init("p", Some("u")).unwrap();
    populate(&bystander, 16);
    let expected_bystander = run_snapshot(&bystander);
    let overwritten = source
        .copy(&CopyOptions {
            run_name: Some("t".into()),
            if_exists: CopyIfExists::Overwrite,
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(overwritten.url(), "p/runs/t");
    assert_ne!(overwritten.id(), target.id());
    assert_same_content(&overwritten, &source);
    let err = overwritten.bulk_bytes("only-in-target").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = target.info().unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 3);
    let info = store.info().unwrap();
    assert_eq!(info.outputs, 15);
    assert_eq!(info.blobs, 6);
    assert_eq!(run_snapshot(&bystander), expected_bystander);
    // The same through a destination url.
    let again = source
        .copy(&CopyOptions {
            destination_url: Some("p/runs/u".into()),
            if_exists: CopyIfExists::Overwrite,
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(again.url(), "p/runs/u");
    assert_same_content(&again, &source);
    assert_eq!(store.run_count().unwrap(), 3);
}

#[test]
fn copy_overwriting_the_source_itself_is_rejected() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 16);
    let expected = run_snapshot(&source);
    for options in [
        CopyOptions {
            destination_url: Some("p/runs/r".into()),
            if_exists: CopyIfExists::Overwrite,
            ..CopyOptions::default()
        },
        CopyOptions {
            run_name: Some("r".into()),
            if_exists: CopyIfExists::Overwrite,
            ..CopyOptions::default()
        },
    ] {
        let err = source.copy(&options).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }
    let err = source
        .copy(&CopyOptions {
            run_name: Some("r".into()),
            ..CopyOptions::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(run_snapshot(&source), expected);
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn copy_and_source_change_independently() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 17);
    let copy = source.copy(&CopyOptions::default()).unwrap();
    let source_before = run_snapshot(&source);

    copy.set_description("the copy").unwrap();
    copy.set_parameters(&json(r#"{"lr": 9.0, "new": true}"#))
        .unwrap();
    copy.add_input_table("other/tables/x").unwrap();
    copy.add_input_value(&Value::map([("split", "test")]))
        .unwrap();
    copy.add_output_value(&Value::map([("epoch", 99)])).unwrap();
    copy.set_status_cancelled().unwrap();
    copy.put_bulk("model.bin", b"replaced in the copy").unwrap();
    copy.delete_bulk("labels.txt").unwrap();
    copy.put_bulk("new.bin", b"new").unwrap();
    assert_eq!(run_snapshot(&source), source_before);

    let copy_before = run_snapshot(&copy);
    source.set_description("the source").unwrap();
    source
        .add_output_value(&Value::map([("epoch", 5)]))
        .unwrap();
    source.put_bulk("labels.txt", b"changed").unwrap();
    source.delete_bulk("model.bin").unwrap();
    assert_eq!(run_snapshot(&copy), copy_before);
}

#[test]

fn copy_survives_deleting_its_source() {
    let (_dir, path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 17);
    let blob = Rng::new(21).bytes(9 * MIB);
    source.put_bulk("checkpoint", &blob).unwrap();
    let copy = source.copy(&CopyOptions::default()).unwrap();
    let copy_before = run_snapshot(&copy);
    source.delete().unwrap();
    // The shared segments outlive the source.
    assert_eq!(run_snapshot(&copy), copy_before);
    assert_bytes_eq(&copy.bulk_bytes("checkpoint").unwrap(), &blob, "copy");
    drop((source, copy, store));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.runs, 1);
}

#[test]
fn copy_of_a_run_with_a_20_mib_blob_shares_its_segments() {
    let (_dir, path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    let blob = Rng::new(20).bytes(20 * MIB);
    source.put_bulk("checkpoint", &blob).unwrap();
    let before = store.info().unwrap();
    let copy = source.copy(&CopyOptions::default()).unwrap();
    let after = store.info().unwrap();
    let growth = after.file_bytes - before.file_bytes;
    assert!(
        growth < 2 * MIB as u64,
        "copying grew the file by {growth} bytes"
    );
    assert_eq!(after.column_used_bytes, before.column_used_bytes);
    assert_eq!(after.blobs, 2);
    assert_bytes_eq(&copy.bulk_bytes("checkpoint").unwrap(), &blob, "copy");
    assert_bytes_eq(&source.bulk_bytes("checkpoint").unwrap(), &blob, "source");
    drop((source, copy, store));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // check verifies each run's segments: the shared 20 MiB once per run.
    assert_eq!(report.segment_bytes, 2 * 20 * MIB as u64);
}

#[test]

fn copy_of_a_deleted_run_is_not_found() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    source.delete().unwrap();
    let err = source.copy(&CopyOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 0);
}
