//! Metrics-table tests: Writer durability and append_row rejections.

use super::*;

#[test]
fn writer_immediate_appends_are_visible_to_a_read_only_handle_at_once() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let mut writer = run
        .metrics_writer(id_value_schema(), "steps", "train", &immediate())
        .unwrap();
    let url = writer.url().to_string();
    let reader = Store::open_read_only(&path).unwrap();
    let err = MetricsWriter::open(&reader, &url, &immediate()).unwrap_err();
    assert!(matches!(err, Error::ReadOnly), "{err:?}");
    for k in 0..12u64 {
        if k % 2 == 0 {
            writer
                .append_row(&[Value::Int(k as i64), Value::Float(k as f64 * 0.5)])
                .unwrap();
        } else {
            writer.append(&id_value_batch(k..k + 1)).unwrap();
        }
        if k == 6 {
            writer.flush().unwrap();
        }
        let table = reader.table(&url).unwrap();
        assert_eq!(table.row_count().unwrap(), k + 1, "after append {k}");
        assert_eq!(ids(&table.scan().unwrap()), range_vec(0..k + 1));
    }
    let info = writer.close().unwrap();
    assert_eq!(reader.table(&url).unwrap().info().unwrap(), info);
}

#[test]
fn writer_group_commit_makes_rows_visible_within_its_window() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let mut writer = run
        .metrics_writer(id_value_schema(), "steps", "train", &group(50))
        .unwrap();
    let url = writer.url().to_string();
    let reader = Store::open_read_only(&path).unwrap();
    let table = reader.table(&url).unwrap();
    for i in 0..100 {
        writer
            .append_row(&[Value::Int(i), Value::Float(i as f64 * 0.5)])
            .unwrap();
    }
    let appended = Instant::now();
    loop {
        let rows = table.row_count().unwrap();
        if rows == 100 {
            break;
        }
        assert!(
            appended.elapsed() < Duration::from_secs(1),
            "{rows} of 100 rows visible {:?} after the appends",
            appended.elapsed()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(ids(&table.scan().unwrap()), range_vec(0..100));
    let info = writer.close().unwrap();
    assert_eq!(
        (
            info.row_count,
            info.sealed_rows,
            info.tail_rows,
            info.chunk_count
        ),
        (100, 100, 0, 1)
    );
    assert_eq!(table.info().unwrap(), info);
}

/// {step: Int64 non-null, small: Int8, loss: Float32, tag: Utf8, emb: FixedSizeList<f32, 4>}.
fn mixed_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("small", DataType::Int8, true),
        Field::new("loss", DataType::Float32, true),
        Field::new("tag", DataType::Utf8, true),
        Field::new("emb", embedding_type(4), true),
    ]))
}

fn mixed_row(step: i64) -> Vec<Value> {
    vec![
        Value::Int(step),
        Value::Int(-7),
        Value::Float(0.5),
        Value::from("ok"),
        Value::List(vec![
            Value::Float(1.0),
            Value::Int(2),
            Value::Float(3.0),
            Value::Int(4),
        ]),
    ]
}

#[test]
fn writer_append_row_rejects_a_wrong_type_and_appends_nothing() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let schema = mixed_schema();
    for durability in [immediate(), group(10_000)] {
        let mut writer = run
            .metrics_writer(schema.clone(), "mixed", "train", &durability)
            .unwrap();
        let url = writer.url().to_string();
        writer.append_row(&mixed_row(0)).unwrap();
        let bad = |column: usize, value: Value| {
            let mut row = mixed_row(99);
            row[column] = value;
            row
        };
        let cases = [
            ("step", bad(0, Value::from("x"))),
            ("step", bad(0, Value::Null)),
            ("step", bad(0, Value::Float(1.5))),
            ("small", bad(1, Value::Int(300))),
            ("small", bad(1, Value::Int(-129))),
            ("loss", bad(2, Value::from("0.5"))),
            ("loss", bad(2, Value::Bool(true))),
            ("tag", bad(3, Value::Int(1))),
            ("emb", bad(4, Value::List(vec![Value::Float(1.0); 3]))),
            ("emb", bad(4, Value::List(vec![Value::from("a"); 4]))),
            ("emb", bad(4, Value::Float(1.0))),
        ];
        for (column, row) in &cases {
            let err = writer.append_row(row).unwrap_err();
            assert!(
                matches!(&err, Error::SchemaMismatch { column: c, table, .. } if c == column && table == &url),
                "{column}: {err:?}"
            );
        }
        for len in [4, 6, 0] {
            let mut row = mixed_row(99);
            row.resize(len, Value::Null);
            let err = writer.append_row(&row).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{len}: {err:?}");
        }
        let null_row = [
            Value::Int(1),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ];
        writer.append_row(&null_row).unwrap();
        let info = writer.close().unwrap();
        assert_eq!(info.row_count, 2, "only the good rows were appended");
        let expected = batch_from_rows(&schema, &[mixed_row(0), null_row.to_vec()]);
        assert_batches_eq(&scan_all(&store.table(&url).unwrap()), &expected, &url);
    }
}

/// A sliced batch (its arrays at a non-zero offset, as `RecordBatch::slice` makes them) must be
/// written as the rows it shows, by every write path. `layout::unsliced` copies a sliced array
/// with `arrow_select::concat::concat(&[array])`, but concat of a single array returns
/// `array.slice(0, len)` without copying, so `layout::flatten` meets the offset and its
/// `assert_eq!(data.offset(), 0)` (or the one on the null buffer's offset) panics.
#[test]

fn table_writes_of_a_sliced_batch_store_the_rows_it_shows() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let schema = all_types_schema(true);
    let sliced = all_types_batch(0..100, true).slice(30, 40);
    let expected = all_types_batch(30..70, true);
    assert_batches_eq(&sliced, &expected, "the slice shows rows 30..70");

    let chunk_url = catch_unwind(AssertUnwindSafe(|| {
        run.add_metrics_data(&sliced, &MetricsOptions::default())
            .unwrap()[0]
            .url
            .clone()
    }))
    .unwrap_or_else(|_| panic!("add_metrics_data panicked on a sliced batch"));
    let tail_url = run
        .metrics_writer(schema.clone(), "tail", "train", &immediate())
        .unwrap()
        .close()
        .unwrap()
        .url;
    catch_unwind(AssertUnwindSafe(|| {
        store.append_to_table(&tail_url, &sliced)
    }))
    .unwrap_or_else(|_| panic!("append_to_table panicked on a sliced batch"))
    .unwrap();
    let mut writer = run
        .metrics_writer(schema.clone(), "writer", "train", &immediate())
        .unwrap();
    let writer_url = writer.url().to_string();
    catch_unwind(AssertUnwindSafe(|| writer.append(&sliced)))
        .unwrap_or_else(|_| panic!("MetricsWriter::append panicked on a sliced batch"))
        .unwrap();
    writer.close().unwrap();
    drop((run, store));

    let store = Store::open(&path).unwrap();
    for url in [chunk_url, tail_url, writer_url] {
        assert_batches_eq(&scan_all(&store.table(&url).unwrap()), &expected, &url);
    }
}

/// `append_row` documents which column types it takes; a `Value::Null` for a column of another
/// type passes its check and then reaches `unreachable!` (large binary, fixed-size lists of
/// integers) or a failed downcast (dictionaries with keys other than Int32).
#[test]

fn writer_append_row_null_in_an_unsupported_column_is_an_error_not_a_panic() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let unsupported = [
        DataType::LargeBinary,
        DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Int32, true)), 2),
        DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8)),
    ];
    let mut panicked = Vec::new();
    for data_type in unsupported {
        let schema = Arc::new(Schema::new(vec![
            Field::new("step", DataType::Int64, false),
            Field::new("other", data_type.clone(), true),
        ]));
        let mut writer = run
            .metrics_writer(schema, "odd", "train", &immediate())
            .unwrap();
        let url = writer.url().to_string();
        let result = catch_unwind(AssertUnwindSafe(|| {
            writer.append_row(&[Value::Int(1), Value::Null])
        }));
        let Ok(result) = result else {
            panicked.push(data_type.to_string());
            continue;
        };
        let expected_rows = match result {
            Ok(()) => 1,
            Err(err) => {
                assert!(matches!(err, Error::SchemaMismatch { .. }), "{err:?}");
                0
            }
        };
        // The writer still works, and the table holds exactly what was accepted.
        let batch = RecordBatch::try_new(
            writer.schema().clone(),
            vec![
                Arc::new(Int64Array::from(vec![2])),
                arrow_array::new_null_array(&data_type, 1),
            ],
        )
        .unwrap();
        writer.append(&batch).unwrap();
        assert_eq!(writer.close().unwrap().row_count, expected_rows + 1);
        assert_eq!(
            store.table(&url).unwrap().row_count().unwrap(),
            expected_rows + 1
        );
    }
    assert!(
        panicked.is_empty(),
        "append_row panicked on a null in a column of type {panicked:?}"
    );
}

/// The schema of a metrics table joined to an input table by `example_id`.
fn joined_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("example_id", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
    ]))
}

#[test]
fn open_metrics_writer_places_and_joins_a_streamed_table() {
    let (_dir, _path, store) = new_store();
    store
        .create_table("p", "inputs", &[input_batch(10)])
        .unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let options = MetricsOptions {
        input_table_url: Some("p/tables/inputs".into()),
        table_writer_base_name: "metrics_val".into(),
        stream_name: "validation".into(),
        ..MetricsOptions::default()
    };
    let mut writer = run
        .open_metrics_writer(joined_schema(), &options, &immediate())
        .unwrap();
    assert_eq!(writer.url(), "p/runs/r/metrics_val_0000");
    // attached from the start, before any row
    let attached = run.metrics_tables().unwrap();
    assert_eq!(attached.len(), 1);
    assert_eq!(attached[0].url, "p/runs/r/metrics_val_0000");
    assert_eq!(attached[0].stream_name, "validation");
    for chunk in [0..4u64, 4..10] {
        let batch = RecordBatch::try_new(
            joined_schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    chunk.clone().map(|i| i as i64),
                )),
                Arc::new(Float64Array::from_iter_values(
                    chunk.map(|i| i as f64 * 0.5),
                )),
            ],
        )
        .unwrap();
        writer.append(&batch).unwrap();
    }
    let info = writer.close().unwrap();
    assert_eq!(info.row_count, 10);
    assert_eq!(info.foreign_table_url.as_deref(), Some("p/tables/inputs"));
    assert_eq!(info.stream_name, "validation");
    assert_eq!(
        ids(&store.table(&info.url).unwrap().scan().unwrap()),
        range_vec(0..10)
    );
}

#[test]
fn open_metrics_writer_refuses_what_it_cannot_join() {
    let (_dir, _path, store) = new_store();
    store
        .create_table("p", "inputs", &[input_batch(3)])
        .unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let joined = |url: &str| MetricsOptions {
        input_table_url: Some(url.into()),
        ..MetricsOptions::default()
    };
    // no example_id column: a streamed table cannot be numbered by position
    let err = run
        .open_metrics_writer(id_value_schema(), &joined("p/tables/inputs"), &immediate())
        .unwrap_err();
    assert!(
        err.to_string().contains("needs an integer example_id"),
        "{err}"
    );
    // an example_id that is not an integer
    let float_ids = Arc::new(Schema::new(vec![Field::new(
        "example_id",
        DataType::Float64,
        false,
    )]));
    let err = run
        .open_metrics_writer(float_ids, &joined("p/tables/inputs"), &immediate())
        .unwrap_err();
    assert!(
        err.to_string().contains("example ids are integers"),
        "{err}"
    );
    // a missing input table
    let err = run
        .open_metrics_writer(joined_schema(), &joined("p/tables/nope"), &immediate())
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    // no columns
    let err = run
        .open_metrics_writer(
            Arc::new(Schema::empty()),
            &MetricsOptions::default(),
            &immediate(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    // nothing was created or attached by the refused calls
    assert!(run.metrics_tables().unwrap().is_empty());
}

/// A slice of a larger batch shares the larger batch's buffers; its size is that of the rows
/// in view. Counting the shared buffers whole made every 1,000-row slice of a 2,000,000-row
/// batch (32 MB) look over the seal threshold: a chunk per append, each append rewriting the
/// list of all chunks (the bench's W1 at 10,000,000 steps took 134 s instead of ~4).
#[test]
fn slices_of_a_large_batch_are_appended_as_their_own_rows_not_the_whole_buffer() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let big = id_value_batch(0..2_000_000);
    let mut writer = run
        .metrics_writer(id_value_schema(), "steps", "train", &immediate())
        .unwrap();
    for start in (0..20_000).step_by(1_000) {
        writer.append(&big.slice(start, 1_000)).unwrap();
    }
    let info = writer.close().unwrap();
    assert_eq!(info.row_count, 20_000);
    // 20,000 small rows: at most the one chunk the close seals, not twenty.
    assert!(info.chunk_count <= 1, "{info:?}");
    let url = info.url.clone();
    // The one-shot append of the store takes slices too.
    for start in (20_000..40_000).step_by(1_000) {
        store
            .append_to_table(&url, &big.slice(start, 1_000))
            .unwrap();
    }
    let table = store.table(&url).unwrap();
    let info = table.info().unwrap();
    assert!(info.chunk_count <= 2, "{info:?}");
    assert_eq!(ids(&table.scan().unwrap()), range_vec(0..40_000));
}
