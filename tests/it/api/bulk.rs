//! API tests: Bulk data.

use super::*;

#[test]
fn put_bulk_round_trips_and_bulk_list_lists_blobs_by_name() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let mut rng = Rng::new(3);
    let weights = rng.bytes(300_000);
    let before = now_us();
    assert_eq!(run.put_bulk("weights.bin", &weights).unwrap(), 300_000);
    assert_eq!(run.put_bulk("a-first.txt", b"hello").unwrap(), 5);
    assert_eq!(run.put_bulk("empty", b"").unwrap(), 0);
    let after = now_us();
    assert_bytes_eq(
        &run.bulk_bytes("weights.bin").unwrap(),
        &weights,
        "weights.bin",
    );
    assert_eq!(run.bulk_bytes("a-first.txt").unwrap(), b"hello");
    assert_eq!(run.bulk_bytes("empty").unwrap(), b"");
    let list = run.bulk_list().unwrap();
    let names: Vec<(&str, u64)> = list.iter().map(|b| (b.name.as_str(), b.len)).collect();
    assert_eq!(
        names,
        [("a-first.txt", 5), ("empty", 0), ("weights.bin", 300_000)]
    );
    for blob in &list {
        assert!(
            before <= blob.created_us && blob.created_us <= after,
            "{blob:?}"
        );
    }
    assert_eq!(store.info().unwrap().blobs, 3);
    // Another run's blobs are its own.
    let other = store.init("p", Some("other")).unwrap();
    assert!(other.bulk_list().unwrap().is_empty());
    let err = other.bulk_bytes("a-first.txt").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    drop((run, other, store));
    let store = Store::open(&path).unwrap();
    let run = store.run("p/runs/r").unwrap();
    assert_bytes_eq(
        &run.bulk_bytes("weights.bin").unwrap(),
        &weights,
        "weights.bin after reopening",
    );
    assert_eq!(run.bulk_list().unwrap(), list);
}

#[test]
fn put_bulk_from_streams_9_mib_in_three_chunks_and_bulk_streams_it_back() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    assert_eq!(BLOB_CHUNK_BYTES, 4 * MIB);
    let data = Rng::new(9).bytes(9 * MIB);
    let mut reader = ChunkyReader {
        data: data.clone(),
        position: 0,
        step: 65_521,
    };
    assert_eq!(
        run.put_bulk_from("checkpoint", &mut reader).unwrap(),
        9 * MIB as u64
    );
    assert_eq!(run.bulk_list().unwrap()[0].len, 9 * MIB as u64);

    // One read hands out at most one chunk: 4 MiB, 4 MiB, 1 MiB, then the end.
    let mut stream = run.bulk("checkpoint").unwrap();
    let mut buf = vec![0u8; 16 * MIB];
    let mut sizes = Vec::new();
    let mut streamed = Vec::new();
    loop {
        let n = stream.read(&mut buf).unwrap();
        sizes.push(n);
        if n == 0 {
            break;
        }
        streamed.extend_from_slice(&buf[..n]);
    }
    assert_eq!(sizes, [4 * MIB, 4 * MIB, MIB, 0]);
    assert_bytes_eq(&streamed, &data, "streamed back with large reads");
    // A reader holds the store open, as a clone of the handle does.
    drop(stream);

    // Small reads see the same bytes.
    let mut stream = run.bulk("checkpoint").unwrap();
    let mut small = Vec::new();
    let mut piece = [0u8; 1000];
    loop {
        let n = stream.read(&mut piece).unwrap();
        if n == 0 {
            break;
        }
        small.extend_from_slice(&piece[..n]);
    }
    assert_bytes_eq(&small, &data, "streamed back with small reads");
    assert_bytes_eq(&run.bulk_bytes("checkpoint").unwrap(), &data, "bulk_bytes");
    drop((stream, run, store));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.blobs, 1);
    assert_eq!(report.segment_bytes, 9 * MIB as u64);
}

#[test]
fn put_bulk_of_an_existing_name_replaces_the_blob() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    run.put_bulk("b", &Rng::new(1).bytes(5 * MIB)).unwrap();
    run.put_bulk("keep", b"kept").unwrap();
    assert_eq!(run.put_bulk("b", b"short").unwrap(), 5);
    assert_eq!(run.bulk_bytes("b").unwrap(), b"short");
    assert_eq!(run.bulk_bytes("keep").unwrap(), b"kept");
    let list = run.bulk_list().unwrap();
    let names: Vec<(&str, u64)> = list.iter().map(|b| (b.name.as_str(), b.len)).collect();
    assert_eq!(names, [("b", 5), ("keep", 4)]);
    assert_eq!(store.info().unwrap().blobs, 2);
}

#[test]
fn delete_bulk_removes_the_blob_and_a_missing_blob_is_not_found() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    run.put_bulk("a", b"aaa").unwrap();
    run.put_bulk("b", b"bbb").unwrap();
    run.delete_bulk("a").unwrap();
    for result in [
        run.bulk("a").map(|_| ()),
        run.bulk_bytes("a").map(|_| ()),
        run.delete_bulk("a"),
        run.delete_bulk("never-there"),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    }
    assert_eq!(run.bulk_bytes("b").unwrap(), b"bbb");
    let names: Vec<String> = run
        .bulk_list()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["b"]);
    // The name is free again.
    run.put_bulk("a", b"again").unwrap();
    assert_eq!(run.bulk_bytes("a").unwrap(), b"again");
}

#[test]
fn put_bulk_with_an_invalid_name_is_invalid_name_and_stores_nothing() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let before = run.info().unwrap();
    let too_long = "n".repeat(257);
    for bad in ["", "a/../b", "/a", "a//b", "line\nbreak", too_long.as_str()] {
        let is_invalid =
            |err: &Error| matches!(err, Error::InvalidName { name, .. } if name == bad);
        let err = run.put_bulk(bad, b"bytes").unwrap_err();
        assert!(is_invalid(&err), "{bad:?}: {err:?}");
        let err = run.put_bulk_from(bad, &mut &b"bytes"[..]).unwrap_err();
        assert!(is_invalid(&err), "{bad:?}: {err:?}");
    }
    assert!(run.bulk_list().unwrap().is_empty());
    assert_eq!(run.info().unwrap(), before);
    assert_eq!(store.info().unwrap().column_used_bytes, 0);
    let longest = "n".repeat(256);
    run.put_bulk(&longest, b"ok").unwrap();
    assert_eq!(run.bulk_bytes(&longest).unwrap(), b"ok");
}

#[test]
fn bulk_of_a_corrupted_chunk_fails_and_check_reports_it() {
    let (_dir, path, store) = new_store();
    let marker = b"<<api-test corruption marker 5b1f0c7e 91d2a4>>";
    let mut blob = Rng::new(77).bytes(MIB);
    blob[500_000..500_000 + marker.len()].copy_from_slice(marker);
    let healthy = Rng::new(78).bytes(200_000);
    let run = store.init("p", Some("victim")).unwrap();
    run.put_bulk("damaged", &blob).unwrap();
    run.put_bulk("fine", &healthy).unwrap();
    store
        .init("p", Some("bystander"))
        .unwrap()
        .put_bulk("fine", &healthy)
        .unwrap();
    drop((run, store));

    flip_a_byte_of_marker(&path, marker);

    let store = Store::open(&path).unwrap();
    let run = store.run("p/runs/victim").unwrap();
    let err = run.bulk_bytes("damaged").unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    let mut stream = run.bulk("damaged").unwrap();
    let mut out = Vec::new();
    let err = stream.read_to_end(&mut out).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err:?}");
    assert!(
        out.is_empty(),
        "bytes of a chunk failing its CRC were handed out"
    );
    // The rest of the store reads fine.
    assert_bytes_eq(&run.bulk_bytes("fine").unwrap(), &healthy, "fine");
    assert_bytes_eq(
        &store
            .run("p/runs/bystander")
            .unwrap()
            .bulk_bytes("fine")
            .unwrap(),
        &healthy,
        "bystander",
    );
    drop((stream, run, store));

    let report = check(&path).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].contains("damaged") && report.problems[0].contains("checksum"),
        "{:?}",
        report.problems
    );
    assert_eq!(report.runs, 2);
    assert_eq!(report.blobs, 3);
    // A catalog-only check does not read column data, so it cannot see this damage.
    let catalog_only =
        runstore::check_with(&path, &runstore::CheckOptions { column_data: false }).unwrap();
    assert!(catalog_only.is_ok(), "{:?}", catalog_only.problems);
    assert_eq!(catalog_only.segment_bytes, 0);
    // Vacuum refuses to carry corrupt bytes into a new file, and leaves the store as it was.
    let err = Store::vacuum(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    assert_eq!(check(&path).unwrap().problems, report.problems);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.run_count().unwrap(), 2);
    let run = store.run("p/runs/victim").unwrap();
    let err = run.bulk_bytes("damaged").unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    assert_bytes_eq(
        &run.bulk_bytes("fine").unwrap(),
        &healthy,
        "fine after vacuum",
    );
}

#[test]

fn vacuum_that_fails_leaves_no_temp_file() {
    let (dir, path, store) = new_store();
    let marker = b"<<api-test vacuum marker 0c44e1 7d9b>>";
    let mut blob = Rng::new(79).bytes(3 * MIB);
    blob[2 * MIB..2 * MIB + marker.len()].copy_from_slice(marker);
    let run = store.init("p", Some("r")).unwrap();
    run.put_bulk("fine", &Rng::new(80).bytes(MIB)).unwrap();
    run.put_bulk("zz-damaged", &blob).unwrap();
    drop((run, store));
    flip_a_byte_of_marker(&path, marker);
    let err = Store::vacuum(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}
