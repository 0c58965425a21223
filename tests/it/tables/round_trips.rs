//! Metrics-table tests: Round trips of every type.

use super::*;

#[test]
fn metrics_data_round_trips_every_type_with_nulls_through_reopen() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let batch = with_u64_max(&all_types_batch(0..300, true));
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        assert_eq!(
            column.null_count() > 0,
            field.is_nullable(),
            "column {} has nulls exactly when nullable",
            field.name()
        );
    }

    let infos = run
        .add_metrics_data(&batch, &MetricsOptions::default())
        .unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].url, "p/runs/r/metrics_0000");
    assert_eq!(infos[0].stream_name, STREAM_DEFAULT);
    assert_eq!(infos[0].row_count, 300);
    let table = store.table(&infos[0].url).unwrap();
    let info = table.info().unwrap();
    assert_eq!(info.file_size, infos[0].file_size);
    assert_eq!(info.foreign_table_url, None);
    assert_eq!(
        (info.sealed_rows, info.tail_rows, info.chunk_count),
        (300, 0, 1)
    );
    assert_batches_eq(&scan_all(&table), &batch, "before reopen");
    drop((table, run, store));

    let store = Store::open(&path).unwrap();
    let table = store.table("p/runs/r/metrics_0000").unwrap();
    let scanned = scan_all(&table);
    assert_batches_eq(&scanned, &batch, "after reopen");
    assert_all_types_roles(&scanned.schema());
    assert_eq!(table.info().unwrap(), info);
    drop((table, store));

    let store = Store::open_read_only(&path).unwrap();
    let table = store.table("p/runs/r/metrics_0000").unwrap();
    assert_batches_eq(&scan_all(&table), &batch, "read-only");
}

#[test]
fn writer_round_trips_every_type_with_nulls_through_append_and_reopen() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let schema = all_types_schema(true);
    let mut writer = run
        .metrics_writer(schema.clone(), "samples", "eval", &immediate())
        .unwrap();
    let url = writer.url().to_string();
    assert_eq!(url, "p/runs/r/samples_0000");
    assert_eq!(writer.schema(), &schema);

    let first = with_u64_max(&all_types_batch(0..100, true));
    let second = all_types_batch(100..130, true);
    let third = all_types_batch(130..200, true);
    writer.append(&first).unwrap();
    writer.flush().unwrap();
    writer.append(&second).unwrap();
    writer.append(&third).unwrap();
    let table = store.table(&url).unwrap();
    let info = table.info().unwrap();
    assert_eq!(
        (info.sealed_rows, info.tail_rows, info.chunk_count),
        (100, 100, 1)
    );
    let expected = concat(&schema, &[first.clone(), second.clone(), third.clone()]);
    assert_batches_eq(&scan_all(&table), &expected, "chunk and tail");

    let info = writer.close().unwrap();
    assert_eq!(info.row_count, 200);
    assert_eq!(
        (info.sealed_rows, info.tail_rows, info.chunk_count),
        (200, 0, 2)
    );
    assert_eq!(info.stream_name, "eval");
    let fourth = all_types_batch(200..250, true);
    store.append_to_table(&url, &fourth).unwrap();
    drop((table, run, store));

    let store = Store::open(&path).unwrap();
    let table = store.table(&url).unwrap();
    let info = table.info().unwrap();
    assert_eq!(
        (info.sealed_rows, info.tail_rows, info.chunk_count),
        (200, 50, 2)
    );
    let expected = concat(&schema, &[first, second, third, fourth]);
    let scanned = scan_all(&table);
    assert_batches_eq(&scanned, &expected, "after reopen");
    assert_all_types_roles(&scanned.schema());
}

#[test]
fn writer_round_trips_every_supported_type_through_append_row() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let schema = all_types_schema(false);
    let mut writer = run
        .metrics_writer(schema.clone(), "rows", "train", &group(20))
        .unwrap();
    let url = writer.url().to_string();
    let rows: Vec<Vec<Value>> = (0..150).map(|i| all_types_row(i, false)).collect();
    for (i, row) in rows.iter().enumerate() {
        writer.append_row(row).unwrap();
        if i == 60 {
            writer.flush().unwrap();
        }
    }
    let info = writer.close().unwrap();
    assert_eq!(info.row_count, 150);
    assert_eq!(info.tail_rows, 0);
    drop((run, store));

    let store = Store::open(&path).unwrap();
    let scanned = scan_all(&store.table(&url).unwrap());
    assert_batches_eq(&scanned, &batch_from_rows(&schema, &rows), "after reopen");
    assert_all_types_roles(&scanned.schema());
}

#[test]
fn group_commit_writer_closes_without_waiting_out_its_window() {
    // `close` wakes the flusher; a wake-up that arrives before the flusher waits must not be
    // lost (it was: close then waited a whole window). With a 60 s window, a lost wake-up
    // shows as a close of about a minute; a correct one takes a commit.
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let schema = all_types_schema(false);
    let rows: Vec<Vec<Value>> = (0..3).map(|i| all_types_row(i, false)).collect();
    let mut slowest = Duration::ZERO;
    let mut urls = Vec::new();
    for round in 0..5 {
        let mut writer = run
            .metrics_writer(schema.clone(), "rows", "train", &group(60_000))
            .unwrap();
        urls.push(writer.url().to_string());
        if round % 2 == 0 {
            for row in &rows {
                writer.append_row(row).unwrap();
            }
        }
        let started = Instant::now();
        let info = writer.close().unwrap();
        slowest = slowest.max(started.elapsed());
        assert_eq!(info.tail_rows, 0, "close seals");
    }
    assert!(
        slowest < Duration::from_secs(30),
        "close waited out the flusher's window: {slowest:?}"
    );
    drop((run, store));
    let store = Store::open(&path).unwrap();
    for (round, url) in urls.iter().enumerate() {
        let expected = if round % 2 == 0 { rows.len() } else { 0 };
        assert_eq!(
            store.table(url).unwrap().row_count().unwrap(),
            expected as u64,
            "{url}"
        );
    }
}
