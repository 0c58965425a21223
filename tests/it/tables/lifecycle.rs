//! Metrics-table tests: Copy, delete, vacuum, corruption.

use super::*;

#[test]
fn run_copy_shares_metrics_segments_under_the_new_url() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let big = run
        .add_metrics_data(&loss_embedding_batch(0..20_000), &MetricsOptions::default())
        .unwrap()
        .remove(0);
    let mut writer = run
        .metrics_writer(id_value_schema(), "steps", "train", &immediate())
        .unwrap();
    writer.append(&id_value_batch(0..10)).unwrap();
    let steps_url = writer.close().unwrap().url;
    store
        .append_to_table(&steps_url, &id_value_batch(10..15))
        .unwrap();
    let originals = run.metrics_tables().unwrap();
    assert!(big.file_size >= 20_000 * 65 * 4, "{}", big.file_size);

    let before = file_len(&path);
    let copy = run
        .copy(&CopyOptions {
            run_name: Some("r-copy".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    let grown = file_len(&path) - before;
    assert!(
        grown < big.file_size / 10,
        "copying grew the file by {grown} bytes for {} bytes of tables",
        big.file_size
    );
    let copies = copy.metrics_tables().unwrap();
    let expected: Vec<MetricTableInfo> = originals
        .iter()
        .map(|m| MetricTableInfo {
            url: m.url.replace("p/runs/r/", "p/runs/r-copy/"),
            ..m.clone()
        })
        .collect();
    assert_eq!(copies, expected);
    for (original, copied) in originals.iter().zip(&copies) {
        let original = store.table(&original.url).unwrap();
        let copied = store.table(&copied.url).unwrap();
        let original_info = original.info().unwrap();
        let copied_info = copied.info().unwrap();
        assert_eq!(
            copied_info,
            TableInfo {
                url: copied.url().to_string(),
                ..original_info
            }
        );
        assert_batches_eq(&scan_all(&copied), &scan_all(&original), copied.url());
    }
    // The copy is its own table: appending to it leaves the original alone.
    store
        .append_to_table("p/runs/r-copy/steps_0000", &id_value_batch(15..20))
        .unwrap();
    assert_eq!(store.table(&steps_url).unwrap().row_count().unwrap(), 15);
    let copied_steps = store.table("p/runs/r-copy/steps_0000").unwrap();
    assert_eq!(ids(&copied_steps.scan().unwrap()), range_vec(0..20));
    assert_eq!(run.metrics_tables().unwrap(), originals);
}

#[test]
fn run_delete_deletes_its_metrics_tables() {
    let (_dir, path, store) = new_store();
    store
        .create_table("p", "inputs", &[input_batch(4)])
        .unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let metrics_url = run
        .add_metrics_data(
            &loss_batch([1.0, 2.0, 3.0, 4.0]),
            &MetricsOptions {
                input_table_url: Some("p/tables/inputs".into()),
                ..MetricsOptions::default()
            },
        )
        .unwrap()[0]
        .url
        .clone();
    let steps_url = run
        .metrics_writer(id_value_schema(), "steps", "train", &immediate())
        .unwrap()
        .close()
        .unwrap()
        .url;
    store
        .append_to_table(&steps_url, &id_value_batch(0..5))
        .unwrap();
    let copy = run
        .copy(&CopyOptions {
            run_name: Some("r-copy".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    let before = file_len(&path);
    run.delete().unwrap();
    assert!(file_len(&path) >= before, "segments stay until vacuum");

    for url in [&metrics_url, &steps_url] {
        let err = store.table(url).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{url}: {err:?}");
        let err = MetricsWriter::open(&store, url, &immediate()).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{url}: {err:?}");
    }
    assert_eq!(
        table_urls(&store),
        [
            "p/runs/r-copy/metrics_0000",
            "p/runs/r-copy/steps_0000",
            "p/tables/inputs"
        ]
    );
    let copied_steps = store.table("p/runs/r-copy/steps_0000").unwrap();
    assert_eq!(ids(&copied_steps.scan().unwrap()), range_vec(0..5));
    assert_eq!(copy.metrics_tables().unwrap().len(), 2);

    // A new run of the same name starts with fresh tables: none of the old rows (tail
    // included) come back.
    let again = store.init("p", Some("r")).unwrap();
    assert_eq!(again.metrics_tables().unwrap(), vec![]);
    let mut writer = again
        .metrics_writer(id_value_schema(), "steps", "train", &immediate())
        .unwrap();
    assert_eq!(writer.url(), steps_url);
    writer.append(&id_value_batch(100..101)).unwrap();
    assert_eq!(
        ids(&store.table(&steps_url).unwrap().scan().unwrap()),
        vec![100]
    );
    drop((writer, again, run, copy, copied_steps, store));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn vacuum_keeps_metrics_tables_intact_and_check_passes() {
    let (_dir, path, store) = new_store();
    store
        .create_table("p", "inputs", &[input_batch(20_000)])
        .unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let big = run
        .add_metrics_data(
            &loss_embedding_batch(0..20_000),
            &MetricsOptions {
                input_table_url: Some("p/tables/inputs".into()),
                ..MetricsOptions::default()
            },
        )
        .unwrap()
        .remove(0);
    let mut writer = run
        .metrics_writer(all_types_schema(true), "samples", "eval", &immediate())
        .unwrap();
    writer.append(&all_types_batch(0..50, true)).unwrap();
    writer.flush().unwrap();
    let samples_url = writer.close().unwrap().url;
    store
        .append_to_table(&samples_url, &all_types_batch(50..60, true))
        .unwrap();
    run.copy(&CopyOptions {
        run_name: Some("r-copy".into()),
        ..CopyOptions::default()
    })
    .unwrap();
    let gone = store.init("p", Some("gone")).unwrap();
    let gone_bytes = gone
        .add_metrics_data(&loss_embedding_batch(0..10_000), &MetricsOptions::default())
        .unwrap()[0]
        .file_size;
    gone.delete().unwrap();

    let snapshot = |store: &Store| -> Vec<(TableInfo, RecordBatch)> {
        store
            .tables(None)
            .unwrap()
            .into_iter()
            .map(|info| {
                let rows = scan_all(&store.table(&info.url).unwrap());
                (info, rows)
            })
            .collect()
    };
    let before = snapshot(&store);
    assert_eq!(before.len(), 5);
    let shared_bytes: u64 = before.iter().map(|(info, _)| info.file_size).sum();
    drop((gone, run, store));

    // Column bytes in use (up to the high-water mark): the file itself also holds extent
    // slack and redb's free pages, so its length says less.
    let used_before = Store::open_read_only(&path)
        .unwrap()
        .info()
        .unwrap()
        .column_used_bytes;
    let report = Store::vacuum(&path).unwrap();
    assert!(report.bytes_after < report.bytes_before, "{report:?}");
    let used_after = Store::open_read_only(&path)
        .unwrap()
        .info()
        .unwrap()
        .column_used_bytes;
    assert!(
        used_after + gone_bytes <= used_before,
        "the deleted run's {gone_bytes} bytes are reclaimed: {used_before} -> {used_after}"
    );
    assert!(
        used_after < shared_bytes - big.file_size * 9 / 10,
        "segments shared by the copy are written once: {used_after} bytes used, \
         {shared_bytes} listed, {} shared",
        big.file_size
    );
    let store = Store::open(&path).unwrap();
    let after = snapshot(&store);
    assert_eq!(after.len(), before.len());
    for ((info_after, rows_after), (info_before, rows_before)) in after.iter().zip(&before) {
        assert_eq!(info_after, info_before);
        assert_batches_eq(rows_after, rows_before, &info_before.url);
    }
    assert_eq!(
        store
            .table(&big.url)
            .unwrap()
            .info()
            .unwrap()
            .foreign_table_url
            .as_deref(),
        Some("p/tables/inputs")
    );
    // Still writable: the tail keeps going where it was.
    store
        .append_to_table(&samples_url, &all_types_batch(60..61, true))
        .unwrap();
    assert_eq!(store.table(&samples_url).unwrap().row_count().unwrap(), 61);
    drop(store);
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.tables, 5);
}

#[test]
fn table_scan_reports_a_corrupted_segment_and_check_finds_it() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    // A distinctive pattern: 0x4B1D in the high half of every value, the row in the low half.
    let pattern: Vec<f32> = (0..1024u32)
        .map(|i| f32::from_bits(0x4B1D_0000 | i))
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("marker", DataType::Float32, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(0..1024)),
            Arc::new(Float32Array::from(pattern.clone())),
        ],
    )
    .unwrap();
    let url = run
        .add_metrics_data(&batch, &MetricsOptions::default())
        .unwrap()[0]
        .url
        .clone();
    drop((run, store));

    let mut bytes = fs::read(&path).unwrap();
    let needle: Vec<u8> = pattern[..8].iter().flat_map(|v| v.to_le_bytes()).collect();
    let found: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle.as_slice())
        .map(|(at, _)| at)
        .collect();
    assert_eq!(found.len(), 1, "the pattern is in the file once: {found:?}");
    let segment_offset = found[0];
    bytes[segment_offset + 500 * 4] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    let store = Store::open(&path).unwrap();
    let table = store.table(&url).unwrap();
    let err = table.scan().unwrap_err();
    match &err {
        Error::Corrupted { reason, .. } => {
            assert_eq!(
                err.corrupted_offset(),
                Some(segment_offset as u64),
                "{reason}"
            );
            assert!(reason.contains(&url), "{reason}");
            assert!(reason.contains("marker"), "{reason}");
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
    // A projection that does not touch the bad column still works.
    let ids_only = table
        .scan_with(&ScanOptions {
            columns: Some(vec!["id".into()]),
            rows: None,
        })
        .unwrap();
    assert_eq!(ids_only[0].num_rows(), 1024);
    drop((table, store));

    let report = check(&path).unwrap();
    assert!(!report.is_ok());
    assert!(
        report.problems.iter().any(|p| p.contains(&url)),
        "{:?}",
        report.problems
    );
}
