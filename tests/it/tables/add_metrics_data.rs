//! Metrics-table tests: add_metrics_data options and rejections.

use super::*;

#[test]
fn metrics_data_with_an_input_table_adds_example_id_and_presents_the_url() {
    let (_dir, _path, store) = new_store();
    let input = store
        .create_table("p", "inputs", &[input_batch(10)])
        .unwrap();
    assert_eq!(input.url(), "p/tables/inputs");
    assert_eq!(input.row_count().unwrap(), 10);
    let run = store.init("p", Some("r")).unwrap();
    let batch = loss_batch((0..10).map(|i| i as f32));
    let infos = run
        .add_metrics_data(
            &batch,
            &MetricsOptions {
                input_table_url: Some(input.url().to_string()),
                ..MetricsOptions::default()
            },
        )
        .unwrap();
    assert_eq!(infos[0].row_count, 10);
    let table = store.table(&infos[0].url).unwrap();
    let info = table.info().unwrap();
    assert_eq!(info.foreign_table_url.as_deref(), Some("p/tables/inputs"));

    let schema = info.schema.clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, [EXAMPLE_ID_COLUMN, "loss", FOREIGN_TABLE_COLUMN]);
    let example_id = schema.field(0);
    assert_eq!(example_id.data_type(), &DataType::Int32);
    assert_eq!(ColumnRole::of(example_id), Some(ColumnRole::ExampleId));
    let foreign = schema.field(2);
    assert_eq!(foreign.data_type(), &dictionary_type());
    assert_eq!(ColumnRole::of(foreign), Some(ColumnRole::ForeignTable));
    assert_eq!(
        foreign.metadata().get(ROLE_KEY).map(String::as_str),
        Some("foreign_table")
    );

    let scanned = scan_all(&table);
    assert_eq!(
        scanned
            .column(0)
            .as_primitive::<Int32Type>()
            .values()
            .to_vec(),
        (0..10).collect::<Vec<i32>>()
    );
    assert_eq!(scanned.column(1).as_ref(), batch.column(0).as_ref());
    for batch in table.scan().unwrap() {
        // One dictionary value per batch, every key pointing at it: the url is not stored per
        // row.
        let dictionary = batch.column(2).as_dictionary::<Int32Type>();
        assert_eq!(dictionary.values().len(), 1);
        assert_eq!(
            dictionary.values().as_string::<i32>().value(0),
            "p/tables/inputs"
        );
        assert!(dictionary.keys().iter().all(|key| key == Some(0)));
    }

    // The url costs no segment bytes: the same rows with an explicit example_id and no input
    // table take exactly as many bytes.
    let explicit = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new(EXAMPLE_ID_COLUMN, DataType::Int32, false),
            Field::new("loss", DataType::Float32, false),
        ])),
        vec![
            Arc::new(Int32Array::from_iter_values(0..10)),
            batch.column(0).clone(),
        ],
    )
    .unwrap();
    let plain = run
        .add_metrics_data(&explicit, &MetricsOptions::default())
        .unwrap();
    assert_eq!(plain[0].file_size, infos[0].file_size);
}

#[test]
fn metrics_data_row_count_must_match_the_input_table() {
    let (_dir, _path, store) = new_store();
    store
        .create_table("p", "inputs", &[input_batch(10)])
        .unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let options = MetricsOptions {
        input_table_url: Some("p/tables/inputs".into()),
        ..MetricsOptions::default()
    };
    for rows in [9u64, 11] {
        let err = run
            .add_metrics_data(&loss_batch((0..rows).map(|i| i as f32)), &options)
            .unwrap_err();
        assert!(
            matches!(err, Error::RowCountMismatch { expected: 10, found } if found == rows),
            "{err:?}"
        );
    }
    let missing = MetricsOptions {
        input_table_url: Some("p/tables/missing".into()),
        ..MetricsOptions::default()
    };
    let err = run
        .add_metrics_data(&loss_batch((0..10).map(|i| i as f32)), &missing)
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    // Nothing was written.
    assert_eq!(run.metrics_tables().unwrap(), vec![]);
    assert_eq!(table_urls(&store), vec!["p/tables/inputs".to_string()]);
    assert_eq!(store.info().unwrap().tables, 1);
}

#[test]
fn metrics_data_with_its_own_example_id_skips_the_row_count_check() {
    let (_dir, _path, store) = new_store();
    store
        .create_table("p", "inputs", &[input_batch(10)])
        .unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("loss", DataType::Float32, false),
            Field::new(EXAMPLE_ID_COLUMN, DataType::Int32, false),
        ])),
        vec![
            Arc::new(Float32Array::from(vec![0.5, 0.25, 0.125, 1.0])),
            Arc::new(Int32Array::from(vec![7, 3, 9, 0])),
        ],
    )
    .unwrap();
    let infos = run
        .add_metrics_data(
            &batch,
            &MetricsOptions {
                input_table_url: Some("p/tables/inputs".into()),
                ..MetricsOptions::default()
            },
        )
        .unwrap();
    assert_eq!(infos[0].row_count, 4);
    let table = store.table(&infos[0].url).unwrap();
    assert_eq!(
        table.info().unwrap().foreign_table_url.as_deref(),
        Some("p/tables/inputs")
    );
    let scanned = scan_all(&table);
    let names: Vec<String> = scanned
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["loss", EXAMPLE_ID_COLUMN, FOREIGN_TABLE_COLUMN]);
    assert_eq!(scanned.column(0).as_ref(), batch.column(0).as_ref());
    assert_eq!(scanned.column(1).as_ref(), batch.column(1).as_ref());
}

#[test]
fn metrics_data_override_casts_a_column_and_applies_its_metadata() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("predicted", DataType::Int64, true),
            Field::new("loss", DataType::Float64, false),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![3, 1, 4, 1, 5])),
            Arc::new(Float64Array::from(vec![0.1, 0.2, 0.3, 0.4, 0.5])),
        ],
    )
    .unwrap();
    let mut metadata = HashMap::new();
    metadata.insert("unit".to_string(), "class".to_string());
    let wanted = with_role(
        Field::new("ignored", DataType::Int32, false).with_metadata(metadata),
        ColumnRole::Prediction,
    );
    let options = MetricsOptions {
        override_column_schemas: HashMap::from([("predicted".to_string(), wanted)]),
        ..MetricsOptions::default()
    };
    let infos = run.add_metrics_data(&batch, &options).unwrap();
    let scanned = scan_all(&store.table(&infos[0].url).unwrap());
    let schema = scanned.schema();
    let field = schema.field(0);
    assert_eq!(field.name(), "predicted");
    assert_eq!(field.data_type(), &DataType::Int32);
    assert!(!field.is_nullable());
    assert_eq!(ColumnRole::of(field), Some(ColumnRole::Prediction));
    assert_eq!(
        field.metadata().get("unit").map(String::as_str),
        Some("class")
    );
    assert_eq!(
        scanned
            .column(0)
            .as_primitive::<Int32Type>()
            .values()
            .to_vec(),
        vec![3, 1, 4, 1, 5]
    );
    assert_eq!(schema.field(1).data_type(), &DataType::Float64);
    assert_eq!(scanned.column(1).as_ref(), batch.column(1).as_ref());

    // An override for a column the data does not have is rejected, and nothing is written.
    let bad = MetricsOptions {
        override_column_schemas: HashMap::from([(
            "missing".to_string(),
            Field::new("missing", DataType::Int32, true),
        )]),
        ..MetricsOptions::default()
    };
    let err = run.add_metrics_data(&batch, &bad).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(run.metrics_tables().unwrap().len(), 1);
}

#[test]
fn metrics_data_table_names_count_up_per_base_name_with_their_stream() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let batch = loss_batch([1.0, 2.0]);
    let eval = MetricsOptions {
        table_writer_base_name: "eval".into(),
        stream_name: "validation".into(),
        ..MetricsOptions::default()
    };
    let mut urls = Vec::new();
    for options in [
        &MetricsOptions::default(),
        &MetricsOptions::default(),
        &eval,
        &eval,
    ] {
        let infos = run.add_metrics_data(&batch, options).unwrap();
        assert_eq!(infos[0].stream_name, options.stream_name);
        let table_info = store.table(&infos[0].url).unwrap().info().unwrap();
        assert_eq!(table_info.stream_name, options.stream_name);
        urls.push(infos[0].url.clone());
    }
    assert_eq!(
        urls,
        [
            "p/runs/r/metrics_0000",
            "p/runs/r/metrics_0001",
            "p/runs/r/eval_0000",
            "p/runs/r/eval_0001"
        ]
    );
    let listed: Vec<(String, String)> = run
        .metrics_tables()
        .unwrap()
        .into_iter()
        .map(|m| (m.url, m.stream_name))
        .collect();
    assert_eq!(
        listed,
        [
            (
                "p/runs/r/metrics_0000".to_string(),
                STREAM_DEFAULT.to_string()
            ),
            (
                "p/runs/r/metrics_0001".to_string(),
                STREAM_DEFAULT.to_string()
            ),
            ("p/runs/r/eval_0000".to_string(), "validation".to_string()),
            ("p/runs/r/eval_0001".to_string(), "validation".to_string()),
        ]
    );
    // The numbering is per run.
    let other = store.init("p", Some("other")).unwrap();
    let infos = other
        .add_metrics_data(&batch, &MetricsOptions::default())
        .unwrap();
    assert_eq!(infos[0].url, "p/runs/other/metrics_0000");
    let err = run
        .add_metrics_data(
            &batch,
            &MetricsOptions {
                table_writer_base_name: "a/b".into(),
                ..MetricsOptions::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    assert_eq!(run.metrics_tables().unwrap().len(), 4);
}

#[test]
fn metrics_data_rejects_an_empty_batch_and_writes_nothing() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let empty = loss_batch([]);
    assert_eq!(empty.num_rows(), 0);
    let err = run
        .add_metrics_data(&empty, &MetricsOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let no_columns = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(5)),
    )
    .unwrap();
    let err = run
        .add_metrics_data(&no_columns, &MetricsOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    // The constant column's name is reserved.
    let reserved = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            FOREIGN_TABLE_COLUMN,
            DataType::Int32,
            false,
        )])),
        vec![Arc::new(Int32Array::from(vec![1]))],
    )
    .unwrap();
    let err = run
        .add_metrics_data(&reserved, &MetricsOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");

    assert_eq!(run.metrics_tables().unwrap(), vec![]);
    assert_eq!(table_urls(&store), Vec::<String>::new());
    assert_eq!(store.info().unwrap().tables, 0);
    // The failed calls did not take a table name either.
    let infos = run
        .add_metrics_data(&loss_batch([1.0]), &MetricsOptions::default())
        .unwrap();
    assert_eq!(infos[0].url, "p/runs/r/metrics_0000");
}

/// `update_metrics` rejects an info with an empty stream name, but `add_metrics_data` and
/// `metrics_writer` create tables with one, whose infos `update_metrics` would then refuse.
#[test]

fn metrics_data_rejects_an_empty_stream_name_as_update_metrics_does() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let err = run
        .add_metrics_data(
            &loss_batch([1.0]),
            &MetricsOptions {
                stream_name: String::new(),
                ..MetricsOptions::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = run
        .metrics_writer(id_value_schema(), "steps", "", &immediate())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(run.metrics_tables().unwrap(), vec![]);
    assert_eq!(store.info().unwrap().tables, 0);
}

#[test]
fn metrics_columns_of_unequal_length_are_rejected_and_nothing_is_written() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let err = run
        .add_metrics_columns(
            vec![
                (
                    "a".into(),
                    Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef,
                ),
                ("b".into(), Arc::new(Float64Array::from(vec![0.5, 1.5]))),
            ],
            &MetricsOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = run
        .add_metrics_columns(
            vec![
                ("a".into(), Arc::new(Int32Array::from(vec![1])) as ArrayRef),
                ("a".into(), Arc::new(Int32Array::from(vec![2]))),
            ],
            &MetricsOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = run
        .add_metrics_columns(vec![], &MetricsOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(run.metrics_tables().unwrap(), vec![]);
    assert_eq!(store.info().unwrap().tables, 0);

    // Equal lengths work, and a column with nulls becomes nullable.
    let infos = run
        .add_metrics_columns(
            vec![
                (
                    "a".into(),
                    Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef,
                ),
                (
                    "b".into(),
                    Arc::new(Float64Array::from(vec![Some(0.5), None])),
                ),
            ],
            &MetricsOptions::default(),
        )
        .unwrap();
    let scanned = scan_all(&store.table(&infos[0].url).unwrap());
    assert_eq!(scanned.num_rows(), 2);
    assert!(scanned.schema().field(1).is_nullable());
    assert_eq!(scanned.column(1).null_count(), 1);
}

#[test]
fn append_to_table_rejects_a_mismatched_batch_and_writes_nothing() {
    let (dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let url = run
        .add_metrics_data(&id_value_batch(0..10), &MetricsOptions::default())
        .unwrap()[0]
        .url
        .clone();
    store
        .append_to_table(&url, &id_value_batch(10..13))
        .unwrap();
    let table = store.table(&url).unwrap();
    let before = table.info().unwrap();
    let rows_before = scan_all(&table);

    let ids = Arc::new(Int64Array::from(vec![13, 14])) as ArrayRef;
    let batch = |fields: Vec<Field>, columns: Vec<ArrayRef>| {
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    };
    let float32_value = batch(
        vec![
            Field::new("id", DataType::Int64, false),
            Field::new("value", DataType::Float32, false),
        ],
        vec![ids.clone(), Arc::new(Float32Array::from(vec![6.5, 7.0]))],
    );
    let swapped = batch(
        vec![
            Field::new("value", DataType::Float64, false),
            Field::new("id", DataType::Int64, false),
        ],
        vec![Arc::new(Float64Array::from(vec![6.5, 7.0])), ids.clone()],
    );
    let extra = batch(
        vec![
            Field::new("id", DataType::Int64, false),
            Field::new("value", DataType::Float64, false),
            Field::new("more", DataType::Int64, false),
        ],
        vec![
            ids.clone(),
            Arc::new(Float64Array::from(vec![6.5, 7.0])),
            ids.clone(),
        ],
    );
    let nulls = batch(
        vec![
            Field::new("id", DataType::Int64, false),
            Field::new("value", DataType::Float64, true),
        ],
        vec![
            ids.clone(),
            Arc::new(Float64Array::from(vec![Some(6.5), None])),
        ],
    );
    for (what, bad) in [
        ("a Float32 value column", &float32_value),
        ("swapped columns", &swapped),
        ("an extra column", &extra),
        ("a null in a non-nullable column", &nulls),
    ] {
        let err = store.append_to_table(&url, bad).unwrap_err();
        assert!(
            matches!(&err, Error::SchemaMismatch { table, .. } if table == &url),
            "{what}: {err:?}"
        );
    }
    let err = store
        .append_to_table(&url, &id_value_batch(0..0))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    let err = store
        .append_to_table("p/runs/r/missing_0000", &id_value_batch(0..1))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    // Nothing was written, and the same holds through a writer (which is kept open to the end:
    // dropping it seals the tail).
    let mut writer = MetricsWriter::open(&store, &url, &immediate()).unwrap();
    let err = writer.append(&float32_value).unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err:?}");
    let err = writer.append(&id_value_batch(0..0)).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(table.info().unwrap(), before);
    assert_batches_eq(&scan_all(&table), &rows_before, "after the rejections");
    drop((writer, table, run, store));
    assert!(check(&path).unwrap().is_ok());
    drop(dir);
}
