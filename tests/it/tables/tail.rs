//! Metrics-table tests: Tail, sealing, ranges and projections.

use super::*;

#[test]
fn table_small_appends_stay_in_the_tail_until_flush_seals_them() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let mut writer = run
        .metrics_writer(id_value_schema(), "steps", "train", &immediate())
        .unwrap();
    let table = store.table(writer.url()).unwrap();
    for k in 0..5u64 {
        writer.append(&id_value_batch(k * 10..k * 10 + 10)).unwrap();
        let info = table.info().unwrap();
        assert_eq!(
            (
                info.row_count,
                info.sealed_rows,
                info.tail_rows,
                info.chunk_count
            ),
            ((k + 1) * 10, 0, (k + 1) * 10, 0)
        );
    }
    for i in 50..53 {
        writer
            .append_row(&[Value::Int(i), Value::Float(i as f64 * 0.5)])
            .unwrap();
    }
    let info = table.info().unwrap();
    assert_eq!((info.tail_rows, info.chunk_count), (53, 0));
    assert!(info.file_size > 0, "tail entries count in file_size");

    writer.flush().unwrap();
    let info = table.info().unwrap();
    assert_eq!(
        (
            info.row_count,
            info.sealed_rows,
            info.tail_rows,
            info.chunk_count
        ),
        (53, 53, 0, 1)
    );
    let batches = table.scan().unwrap();
    assert_eq!(batches.len(), 1, "one chunk, one batch");
    assert_eq!(ids(&batches), range_vec(0..53));

    // A flush with an empty tail changes nothing.
    writer.flush().unwrap();
    assert_eq!(table.info().unwrap(), info);

    writer.append(&id_value_batch(53..54)).unwrap();
    let info = table.info().unwrap();
    assert_eq!((info.tail_rows, info.chunk_count), (1, 1));
    let info = writer.close().unwrap();
    assert_eq!(
        (
            info.row_count,
            info.sealed_rows,
            info.tail_rows,
            info.chunk_count
        ),
        (54, 54, 0, 2)
    );
    assert_eq!(ids(&table.scan().unwrap()), range_vec(0..54));
}

#[test]
fn table_tail_is_sealed_when_it_reaches_seal_rows() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let url = run
        .metrics_writer(id_value_schema(), "steps", "train", &immediate())
        .unwrap()
        .close()
        .unwrap()
        .url;
    let table = store.table(&url).unwrap();
    let quarter = SEAL_ROWS / 4;
    for k in 0..3 {
        store
            .append_to_table(&url, &id_value_batch(k * quarter..(k + 1) * quarter))
            .unwrap();
        let info = table.info().unwrap();
        assert_eq!((info.tail_rows, info.chunk_count), ((k + 1) * quarter, 0));
    }
    store
        .append_to_table(&url, &id_value_batch(3 * quarter..SEAL_ROWS))
        .unwrap();
    let info = table.info().unwrap();
    assert_eq!(
        (info.sealed_rows, info.tail_rows, info.chunk_count),
        (SEAL_ROWS, 0, 1)
    );
    store
        .append_to_table(&url, &id_value_batch(SEAL_ROWS..SEAL_ROWS + 1))
        .unwrap();
    let info = table.info().unwrap();
    assert_eq!((info.tail_rows, info.chunk_count), (1, 1));
    assert_eq!(ids(&table.scan().unwrap()), range_vec(0..SEAL_ROWS + 1));
}

#[test]
fn table_batch_of_seal_rows_goes_straight_to_a_chunk_in_order() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let mut writer = run
        .metrics_writer(id_value_schema(), "steps", "train", &immediate())
        .unwrap();
    let table = store.table(writer.url()).unwrap();
    let state = |table: &Table| {
        let info = table.info().unwrap();
        (info.sealed_rows, info.tail_rows, info.chunk_count)
    };

    // Straight to a chunk on an empty table.
    writer.append(&id_value_batch(0..SEAL_ROWS)).unwrap();
    assert_eq!(state(&table), (SEAL_ROWS, 0, 1));
    // A small tail, then a large batch: the tail is sealed first so rows stay in order.
    writer
        .append(&id_value_batch(SEAL_ROWS..SEAL_ROWS + 7))
        .unwrap();
    assert_eq!(state(&table), (SEAL_ROWS, 7, 1));
    let mut next = SEAL_ROWS + 7;
    writer
        .append(&id_value_batch(next..next + SEAL_ROWS + 3))
        .unwrap();
    next += SEAL_ROWS + 3;
    assert_eq!(state(&table), (next, 0, 3));
    // Through `Store::append_to_table` as well.
    store
        .append_to_table(table.url(), &id_value_batch(next..next + 2))
        .unwrap();
    next += 2;
    store
        .append_to_table(table.url(), &id_value_batch(next..next + SEAL_ROWS))
        .unwrap();
    next += SEAL_ROWS;
    assert_eq!(state(&table), (next, 0, 5));
    let batches = table.scan().unwrap();
    let lengths: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(lengths, vec![SEAL, 7, SEAL + 3, 2, SEAL]);
    assert_eq!(ids(&batches), range_vec(0..next));
    drop(writer);
}

/// Checks one ranged, projected scan of the table built by
/// `table_scan_with_ranges_and_projections_crosses_chunk_and_tail_boundaries`: row `r` has
/// `value` r, `example_id` r % 10 and `input_table_id` `input_url`.
fn check_ranged_scan(
    table: &Table,
    total: u64,
    rows: &Range<u64>,
    columns: Option<&[&str]>,
    input_url: &str,
) {
    let what = format!("rows {rows:?}, columns {columns:?}");
    let batches = table
        .scan_with(&ScanOptions {
            columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
            rows: Some(rows.clone()),
        })
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let names: Vec<&str> = columns.map_or(
        vec![EXAMPLE_ID_COLUMN, "value", FOREIGN_TABLE_COLUMN],
        |c| c.to_vec(),
    );
    let start = rows.start.min(total);
    let end = rows.end.min(total).max(start);
    let mut row = start;
    for batch in &batches {
        let schema = batch.schema();
        let found: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(found, names, "{what}: columns");
        for (name, column) in names.iter().zip(batch.columns()) {
            for at in 0..batch.num_rows() {
                let r = row + at as u64;
                match *name {
                    "value" => assert_eq!(
                        column.as_primitive::<Int64Type>().value(at),
                        r as i64,
                        "{what}: value of row {r}"
                    ),
                    EXAMPLE_ID_COLUMN => assert_eq!(
                        column.as_primitive::<Int32Type>().value(at),
                        (r % 10) as i32,
                        "{what}: example_id of row {r}"
                    ),
                    _ => {
                        let dictionary = column.as_dictionary::<Int32Type>();
                        let values = dictionary.values().as_string::<i32>();
                        let key = dictionary.keys().value(at) as usize;
                        assert_eq!(values.value(key), input_url, "{what}: row {r}");
                    }
                }
            }
        }
        row += batch.num_rows() as u64;
    }
    assert_eq!(row, end, "{what}: rows returned");
}

#[test]
fn table_scan_with_ranges_and_projections_crosses_chunk_and_tail_boundaries() {
    let (_dir, _path, store) = new_store();
    let input_url = store
        .create_table("p", "inputs", &[input_batch(10)])
        .unwrap()
        .url()
        .to_string();
    let run = store.init("p", Some("r")).unwrap();
    let values = |range: Range<u64>| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(range.map(|i| i as i64)))
    };
    let first = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "value",
            DataType::Int64,
            false,
        )])),
        vec![values(0..10)],
    )
    .unwrap();
    let url = run
        .add_metrics_data(
            &first,
            &MetricsOptions {
                input_table_url: Some(input_url.clone()),
                ..MetricsOptions::default()
            },
        )
        .unwrap()[0]
        .url
        .clone();
    let appended = |range: Range<u64>| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new(EXAMPLE_ID_COLUMN, DataType::Int32, false),
                Field::new("value", DataType::Int64, false),
            ])),
            vec![
                Arc::new(Int32Array::from_iter_values(
                    range.clone().map(|i| (i % 10) as i32),
                )),
                values(range),
            ],
        )
        .unwrap()
    };
    store
        .append_to_table(&url, &appended(10..10 + SEAL_ROWS))
        .unwrap();
    let mut next = 10 + SEAL_ROWS;
    for _ in 0..3 {
        store
            .append_to_table(&url, &appended(next..next + 4))
            .unwrap();
        next += 4;
    }
    let total = next;
    let table = store.table(&url).unwrap();
    let info = table.info().unwrap();
    assert_eq!(
        (
            info.row_count,
            info.sealed_rows,
            info.tail_rows,
            info.chunk_count
        ),
        (total, 10 + SEAL_ROWS, 12, 2)
    );

    let boundary = 10 + SEAL_ROWS;
    #[allow(clippy::reversed_empty_ranges)]
    let ranges = [
        0..total,
        0..10,
        5..15,
        9..11,
        boundary - 5..boundary + 5,
        boundary - 1..boundary + 9,
        boundary + 3..boundary + 5,
        boundary + 2..total,
        boundary + 11..boundary + 12,
        3..3,
        total - 1..total + 100,
        total + 5..total + 10,
        20..10,
    ];
    let projections: [Option<&[&str]>; 6] = [
        None,
        Some(&["value"]),
        Some(&[FOREIGN_TABLE_COLUMN, "value"]),
        Some(&["value", EXAMPLE_ID_COLUMN]),
        Some(&[FOREIGN_TABLE_COLUMN]),
        Some(&[EXAMPLE_ID_COLUMN, FOREIGN_TABLE_COLUMN, "value"]),
    ];
    for rows in &ranges {
        for columns in projections {
            check_ranged_scan(&table, total, rows, columns, &input_url);
        }
    }
    let err = table
        .scan_with(&ScanOptions {
            columns: Some(vec!["value".into(), "nope".into()]),
            rows: None,
        })
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}
