//! Issue 15, appending data: `runstore append` from JSON lines, CSV, Parquet and Arrow IPC,
//! and the library's metrics-table appends, may not truncate, drop or lock away a value.
//!
//! - A number that does not fit its column exactly is an error naming its line (or row) and
//!   column, and nothing of the input is appended; a new table widens a column when a later
//!   row of the same input needs it (item 3).
//! - A CSV column empty in the first rows keeps its later values (item 4).
//! - A schema the reader would refuse is refused before anything is committed (item 5).
//! - `example_id`s outside the input table's rows, or repeated, are refused.
//! - Column names follow the name rules; CSV errors give file line numbers; u64 values above
//!   `i64::MAX` stay exact; Parquet timestamps with a named zone can be scanned.

use std::fs::File;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, NullArray, RecordBatch,
    StringArray, StructArray, TimestampMicrosecondArray, UnionArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, UnionFields};
use runstore::{Error, MetricsOptions, Store, Value, WriterOptions};

use crate::util::{failure, runstore, runstore_with_stdin, stdout, temp_store};

/// A store with run `p/runs/r`; returns the directory guard and the store path.
fn store_with_run() -> (tempfile::TempDir, String) {
    let (dir, path) = temp_store();
    let path = path.to_str().unwrap().to_string();
    stdout(&runstore(&["init", &path, "--project", "p", "--name", "r"]));
    (dir, path)
}

fn append_stdin(store: &str, table: &str, lines: &str) -> Output {
    runstore_with_stdin(&["append", store, "p/runs/r", "--table", table], lines)
}

fn append_file(store: &str, table: &str, file: &Path) -> Output {
    runstore(&[
        "append",
        store,
        "p/runs/r",
        "--table",
        table,
        "--from",
        file.to_str().unwrap(),
    ])
}

/// Every row of `p/runs/r/<table>`, concatenated.
fn scan_table(store: &str, table: &str) -> RecordBatch {
    let store = Store::open_read_only(store).unwrap();
    let table = store.table(&format!("p/runs/r/{table}")).unwrap();
    let batches = table.scan().unwrap();
    let schema = table.schema().unwrap();
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

fn rows(store: &str, table: &str) -> usize {
    scan_table(store, table).num_rows()
}

/// `runstore check` reports no problem.
fn assert_checks(store: &str) {
    let output = stdout(&runstore(&["check", store]));
    assert!(output.contains("; 0 problems"), "{output}");
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None)
            .unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

fn write_arrow(path: &Path, batch: &RecordBatch) {
    let mut writer =
        arrow_ipc::writer::FileWriter::try_new(File::create(path).unwrap(), &batch.schema())
            .unwrap();
    writer.write(batch).unwrap();
    writer.finish().unwrap();
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

// Item 3: numbers are never truncated.

#[test]
fn append_json_fraction_into_an_int64_column_is_an_error_naming_line_and_column() {
    let (_dir, store) = store_with_run();
    stdout(&append_stdin(&store, "m", "{\"step\":1,\"a\":1}\n"));
    let stderr = failure(&append_stdin(
        &store,
        "m",
        "{\"step\":2,\"a\":3}\n{\"step\":3,\"a\":2.7}\n",
    ));
    assert!(
        stderr.contains("line 2") && stderr.contains("column a"),
        "{stderr}"
    );
    assert_eq!(
        rows(&store, "m"),
        1,
        "nothing of the failed input is appended"
    );
}

#[test]
fn append_json_new_table_widens_an_int_column_when_a_later_row_has_a_fraction() {
    let (_dir, store) = store_with_run();
    // Far past any first batch used for inference.
    let mut lines = String::new();
    for step in 0..10_000 {
        lines.push_str(&format!("{{\"step\":{step},\"loss\":2}}\n"));
    }
    lines.push_str("{\"step\":10000,\"loss\":1.5}\n");
    stdout(&append_stdin(&store, "m", &lines));
    let batch = scan_table(&store, "m");
    assert_eq!(batch.num_rows(), 10_001);
    let loss = batch.column_by_name("loss").unwrap();
    assert_eq!(loss.data_type(), &DataType::Float64);
    let loss = loss.as_primitive::<Float64Type>();
    assert_eq!(loss.value(0), 2.0);
    assert_eq!(loss.value(10_000), 1.5);
    let step = batch.column_by_name("step").unwrap();
    assert_eq!(step.data_type(), &DataType::Int64);
}

#[test]
fn append_parquet_float_into_an_int32_column_is_an_error_naming_row_and_column() {
    let (dir, store) = store_with_run();
    let first = dir.path().join("first.parquet");
    write_parquet(
        &first,
        &batch(vec![(
            "n",
            Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef,
        )]),
    );
    stdout(&append_file(&store, "m", &first));
    let second = dir.path().join("second.parquet");
    write_parquet(
        &second,
        &batch(vec![(
            "n",
            Arc::new(Float64Array::from(vec![3.0, 1.9])) as ArrayRef,
        )]),
    );
    let stderr = failure(&append_file(&store, "m", &second));
    assert!(
        stderr.contains("row 2") && stderr.contains("column n") && stderr.contains("1.9"),
        "{stderr}"
    );
    assert_eq!(rows(&store, "m"), 2);
    // A float with no fraction fits and is appended.
    let third = dir.path().join("third.parquet");
    write_parquet(
        &third,
        &batch(vec![(
            "n",
            Arc::new(Float64Array::from(vec![3.0])) as ArrayRef,
        )]),
    );
    stdout(&append_file(&store, "m", &third));
    let n = scan_table(&store, "m");
    assert_eq!(
        n.column(0).as_primitive::<Int32Type>().values().as_ref(),
        [1, 2, 3]
    );
}

#[test]
fn append_out_of_range_numbers_into_float32_and_integer_columns_are_errors() {
    let (dir, store) = store_with_run();
    let first = dir.path().join("first.arrow");
    write_arrow(
        &first,
        &batch(vec![
            ("x", Arc::new(Float32Array::from(vec![0.5])) as ArrayRef),
            ("i", Arc::new(Int32Array::from(vec![1])) as _),
        ]),
    );
    stdout(&append_file(&store, "m", &first));
    for (line, column) in [
        ("{\"x\":1e300,\"i\":1}", "column x"),
        ("{\"x\":0.5,\"i\":3000000000}", "column i"),
        ("{\"x\":0.5,\"i\":-1e10}", "column i"),
    ] {
        let stderr = failure(&append_stdin(
            &store,
            "m",
            &format!("{{\"x\":0.5,\"i\":1}}\n{line}\n"),
        ));
        assert!(
            stderr.contains("line 2") && stderr.contains(column),
            "{line}: {stderr}"
        );
    }
    let wide = dir.path().join("wide.parquet");
    write_parquet(
        &wide,
        &batch(vec![
            (
                "x",
                Arc::new(Float64Array::from(vec![0.25, 1e300])) as ArrayRef,
            ),
            ("i", Arc::new(Int64Array::from(vec![1, 2])) as _),
        ]),
    );
    let stderr = failure(&append_file(&store, "m", &wide));
    assert!(
        stderr.contains("row 2") && stderr.contains("column x"),
        "{stderr}"
    );
    // 0.1 rounds to the nearest f32 (the rule for fractions), and NaN stays NaN.
    stdout(&append_stdin(
        &store,
        "m",
        "{\"x\":0.1,\"i\":7}\n{\"x\":\"NaN\",\"i\":8}\n",
    ));
    let m = scan_table(&store, "m");
    let x = m.column(0).as_primitive::<Float32Type>();
    assert_eq!(x.value(1), 0.1f32);
    assert!(x.value(2).is_nan());
    assert_eq!(m.num_rows(), 3);
}

#[test]
fn append_json_embedding_beyond_f32_keeps_its_values_or_names_the_line() {
    let (_dir, store) = store_with_run();
    // A new table: the embedding widens to f64 rather than store inf.
    stdout(&append_stdin(
        &store,
        "new",
        "{\"emb\":[0.5,0.25]}\n{\"emb\":[1e39,0.2]}\n",
    ));
    let new = scan_table(&store, "new");
    let emb = new.column(0).as_fixed_size_list();
    let values = emb.values().as_primitive::<Float64Type>();
    assert_eq!(values.values().as_ref(), [0.5, 0.25, 1e39, 0.2]);
    // An existing f32 embedding refuses it.
    stdout(&append_stdin(&store, "old", "{\"emb\":[0.5,0.25]}\n"));
    let stderr = failure(&append_stdin(&store, "old", "{\"emb\":[1e39,0.2]}\n"));
    assert!(
        stderr.contains("line 1") && stderr.contains("column emb"),
        "{stderr}"
    );
    assert_eq!(rows(&store, "old"), 1);
}

#[test]
fn append_json_u64_above_i64_max_stays_exact() {
    let (_dir, store) = store_with_run();
    stdout(&append_stdin(
        &store,
        "ids",
        "{\"id\":1}\n{\"id\":18446744073709551615}\n{\"id\":9223372036854775808}\n",
    ));
    let ids = scan_table(&store, "ids");
    let id = ids.column(0);
    assert_eq!(id.data_type(), &DataType::UInt64);
    assert_eq!(
        id.as_primitive::<UInt64Type>().values().as_ref(),
        [1, u64::MAX, 1 << 63]
    );
    // Into an existing Int64 column it is an error, not a float.
    stdout(&append_stdin(&store, "small", "{\"id\":1}\n"));
    let stderr = failure(&append_stdin(
        &store,
        "small",
        "{\"id\":18446744073709551615}\n",
    ));
    assert!(
        stderr.contains("line 1") && stderr.contains("column id"),
        "{stderr}"
    );
    // Negative and huge in one new column fits no integer type: an error, not a float.
    let stderr = failure(&append_stdin(
        &store,
        "mixed",
        "{\"id\":-1}\n{\"id\":18446744073709551615}\n",
    ));
    assert!(
        stderr.contains("line 2") && stderr.contains("column id"),
        "{stderr}"
    );
}

#[test]
fn append_json_integers_beyond_2_pow_53_into_a_float_column_are_errors() {
    let (_dir, store) = store_with_run();
    stdout(&append_stdin(&store, "m", "{\"x\":0.5}\n"));
    let stderr = failure(&append_stdin(&store, "m", "{\"x\":9007199254740993}\n"));
    assert!(
        stderr.contains("line 1") && stderr.contains("column x"),
        "{stderr}"
    );
    stdout(&append_stdin(&store, "m", "{\"x\":9007199254740992}\n"));
}

#[test]
fn metrics_writer_rows_that_do_not_fit_float_columns_exactly_are_errors() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("f32", DataType::Float32, true),
        Field::new("f64", DataType::Float64, true),
        Field::new(
            "emb",
            DataType::FixedSizeList(Arc::new(Field::new_list_field(DataType::Float32, true)), 2),
            true,
        ),
    ]));
    let options = WriterOptions {
        durability: runstore::WriteDurability::Immediate,
    };
    let mut writer = run
        .metrics_writer(schema, "m", "default_stream", &options)
        .unwrap();
    let emb = |a: f64, b: f64| Value::List(vec![Value::Float(a), Value::Float(b)]);
    for row in [
        vec![Value::Float(1e300), Value::Null, Value::Null],
        vec![Value::Null, Value::Int((1 << 53) + 1), Value::Null],
        vec![Value::Int((1 << 24) + 1), Value::Null, Value::Null],
        vec![Value::Null, Value::Null, emb(1e39, 0.2)],
    ] {
        let error = writer.append_row(&row).unwrap_err();
        assert!(
            matches!(error, Error::SchemaMismatch { .. }),
            "{row:?}: {error}"
        );
    }
    writer
        .append_row(&[Value::Float(0.1), Value::Int(1 << 53), emb(0.5, f64::NAN)])
        .unwrap();
    let info = writer.close().unwrap();
    assert_eq!(info.row_count, 1);
}

#[test]
fn metrics_overrides_that_do_not_convert_exactly_are_errors() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let data = batch(vec![
        (
            "s",
            Arc::new(StringArray::from(vec!["1", "abc"])) as ArrayRef,
        ),
        ("f", Arc::new(Float64Array::from(vec![1.0, 1.5])) as _),
    ]);
    for (column, to) in [("s", DataType::Int64), ("f", DataType::Int32)] {
        let mut options = MetricsOptions::default();
        options
            .override_column_schemas
            .insert(column.into(), Field::new(column, to, true));
        let error = run.add_metrics_data(&data, &options).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidInput { reason } if reason.contains(column) && reason.contains("row 2")),
            "{error}"
        );
    }
    assert!(run.metrics_tables().unwrap().is_empty());
}

// Item 4: CSV never drops a value.

#[test]
fn append_csv_column_empty_in_the_first_rows_keeps_its_later_values() {
    let (dir, store) = store_with_run();
    let csv = dir.path().join("late.csv");
    let mut text = String::from("step,note\n");
    for step in 0..3000 {
        text.push_str(&format!("{step},\n"));
    }
    text.push_str("3000,diverged\n");
    std::fs::write(&csv, text).unwrap();
    stdout(&append_file(&store, "m", &csv));
    let m = scan_table(&store, "m");
    let note = m.column_by_name("note").unwrap().as_string::<i32>();
    assert_eq!(note.value(3000), "diverged");
    assert_eq!(note.null_count(), 3000);

    // Across two appends: a column empty in the whole first file still takes later values.
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "step,late\n1,\n2,\n").unwrap();
    stdout(&append_file(&store, "two", &empty));
    let later = dir.path().join("later.csv");
    std::fs::write(&later, "step,late\n3,0.5\n").unwrap();
    stdout(&append_file(&store, "two", &later));
    let two = scan_table(&store, "two");
    let late = two.column_by_name("late").unwrap();
    assert_eq!(late.null_count(), 2, "{late:?}");
    assert_eq!(late.len(), 3);
}

#[test]
fn append_into_an_existing_null_typed_column_is_an_error_not_a_dropped_value() {
    let (dir, store) = store_with_run();
    let first = dir.path().join("nulls.arrow");
    write_arrow(
        &first,
        &batch(vec![
            ("step", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("late", Arc::new(NullArray::new(1)) as _),
        ]),
    );
    stdout(&append_file(&store, "m", &first));
    let csv = dir.path().join("values.csv");
    std::fs::write(&csv, "step,late\n2,\n3,0.5\n").unwrap();
    let stderr = failure(&append_file(&store, "m", &csv));
    assert!(
        stderr.contains("line 3") && stderr.contains("column late"),
        "{stderr}"
    );
    let stderr = failure(&append_stdin(&store, "m", "{\"step\":2,\"late\":0.5}\n"));
    assert!(
        stderr.contains("line 1") && stderr.contains("column late"),
        "{stderr}"
    );
    assert_eq!(rows(&store, "m"), 1);
}

#[test]
fn append_csv_errors_name_file_lines_counting_the_header_and_quoted_newlines() {
    let (dir, store) = store_with_run();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "step,note\n1,a\n").unwrap();
    stdout(&append_file(&store, "m", &good));
    let csv = dir.path().join("bad.csv");
    // Line 1 header, lines 2-3 one quoted field, line 4 fine, line 5 bad.
    std::fs::write(&csv, "step,note\n2,\"two\nlines\"\n3,c\nfour,d\n").unwrap();
    let stderr = failure(&append_file(&store, "m", &csv));
    assert!(
        stderr.contains("line 5") && stderr.contains("column step"),
        "{stderr}"
    );
    assert_eq!(rows(&store, "m"), 1);
}

// Item 5: a schema the reader refuses is refused before the commit.

fn nested_struct(depth: usize) -> ArrayRef {
    let mut array: ArrayRef = Arc::new(Int32Array::from(vec![1]));
    for _ in 0..depth {
        let field = Field::new("s", array.data_type().clone(), true);
        array = Arc::new(StructArray::from(vec![(Arc::new(field), array)]));
    }
    array
}

fn nested_list(depth: usize) -> ArrayRef {
    let mut array: ArrayRef = Arc::new(Int32Array::from(vec![1]));
    for _ in 0..depth {
        let field = Arc::new(Field::new_list_field(array.data_type().clone(), true));
        let offsets = arrow_buffer::OffsetBuffer::from_lengths([array.len()]);
        array = Arc::new(arrow_array::ListArray::new(field, offsets, array, None));
    }
    array
}

fn union_column() -> ArrayRef {
    let fields = UnionFields::try_new(
        [0, 1],
        [
            Field::new("i", DataType::Int32, true),
            Field::new("f", DataType::Float64, true),
        ],
    )
    .unwrap();
    Arc::new(
        UnionArray::try_new(
            fields,
            vec![0, 1].into(),
            None,
            vec![
                Arc::new(Int32Array::from(vec![1, 0])) as ArrayRef,
                Arc::new(Float64Array::from(vec![0.0, 2.5])),
            ],
        )
        .unwrap(),
    )
}

#[test]
fn appends_of_schemas_the_reader_refuses_are_invalid_input_and_leave_the_store_checkable() {
    let (dir, path) = temp_store();
    let store_path = path.to_str().unwrap().to_string();
    {
        let store = Store::create(&path).unwrap();
        let run = store.init("p", Some("r")).unwrap();
        let cases: Vec<(&str, ArrayRef)> = vec![
            ("struct 33", nested_struct(33)),
            ("struct 41", nested_struct(41)),
            ("list 33", nested_list(33)),
            ("list 62", nested_list(62)),
            ("union", union_column()),
        ];
        for (what, column) in cases {
            let data = batch(vec![("c", column)]);
            let error = run
                .add_metrics_data(&data, &MetricsOptions::default())
                .unwrap_err();
            assert!(
                matches!(error, Error::InvalidInput { .. }),
                "{what}: {error}"
            );
            let error = run
                .append_metrics("t", &mut std::iter::once(Ok(data.clone())))
                .unwrap_err();
            assert!(
                matches!(error, Error::InvalidInput { .. }),
                "{what}: {error}"
            );
            let error = store
                .create_table("p", "t", std::slice::from_ref(&data))
                .unwrap_err();
            assert!(
                matches!(error, Error::InvalidInput { .. }),
                "{what}: {error}"
            );
            let error = run
                .metrics_writer(
                    data.schema(),
                    "w",
                    "default_stream",
                    &WriterOptions::default(),
                )
                .unwrap_err();
            assert!(
                matches!(error, Error::InvalidInput { .. }),
                "{what}: {error}"
            );
        }
        // The deepest nesting the reader takes is stored and read back.
        let data = batch(vec![("c", nested_struct(31)), ("l", nested_list(31))]);
        run.add_metrics_data(&data, &MetricsOptions::default())
            .unwrap();
        let table = &run.metrics_table_handles().unwrap()[0];
        assert_eq!(
            table.scan().unwrap()[0].column(0).as_ref(),
            data.column(0).as_ref()
        );
    }
    // And through the CLI: an Arrow file with a union column.
    let file = dir.path().join("union.arrow");
    write_arrow(&file, &batch(vec![("u", union_column())]));
    let stderr = failure(&runstore(&[
        "append",
        &store_path,
        "p/runs/r",
        "--table",
        "u",
        "--from",
        file.to_str().unwrap(),
    ]));
    assert!(stderr.contains("invalid input"), "{stderr}");
    assert!(!stderr.contains("corrupt"), "{stderr}");
    assert_checks(&store_path);
}

// Smaller items.

#[test]
fn metrics_data_example_ids_must_name_distinct_rows_of_the_input_table() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let input = batch(vec![(
        "x",
        Arc::new(Int64Array::from_iter_values(0..20_000)) as ArrayRef,
    )]);
    store.create_table("p", "data", &[input]).unwrap();
    let options = MetricsOptions {
        input_table_url: Some("p/tables/data".into()),
        ..MetricsOptions::default()
    };
    let with_ids = |ids: Vec<i32>| {
        let n = ids.len();
        batch(vec![
            ("example_id", Arc::new(Int32Array::from(ids)) as ArrayRef),
            ("loss", Arc::new(Float64Array::from(vec![0.5; n])) as _),
        ])
    };
    for (ids, what) in [
        ((19_000..21_000).collect::<Vec<i32>>(), "20000"),
        (vec![0, 1, -1], "-1"),
        (vec![5, 6, 5], "5"),
    ] {
        let error = run.add_metrics_data(&with_ids(ids), &options).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidInput { reason } if reason.contains("example_id") && reason.contains(what)),
            "{error}"
        );
    }
    assert!(run.metrics_tables().unwrap().is_empty());
    run.add_metrics_data(&with_ids(vec![19_999, 0, 7]), &options)
        .unwrap();
}

#[test]
fn column_names_with_control_characters_are_refused_from_every_source() {
    let (dir, store) = store_with_run();
    let csv = dir.path().join("nul.csv");
    std::fs::write(&csv, "step,\"a\nb\"\n1,2\n").unwrap();
    let stderr = failure(&append_file(&store, "m", &csv));
    assert!(stderr.contains("control character"), "{stderr}");
    let csv = dir.path().join("nul2.csv");
    std::fs::write(&csv, "step,a\0b\n1,2\n").unwrap();
    let stderr = failure(&append_file(&store, "m", &csv));
    assert!(stderr.contains("control character"), "{stderr}");
    let parquet = dir.path().join("names.parquet");
    write_parquet(
        &parquet,
        &batch(vec![(
            "a\u{0}b",
            Arc::new(Int32Array::from(vec![1])) as ArrayRef,
        )]),
    );
    let stderr = failure(&append_file(&store, "m", &parquet));
    assert!(stderr.contains("control character"), "{stderr}");
    let stderr = failure(&append_stdin(&store, "m", "{\"a\\nb\":1}\n"));
    assert!(stderr.contains("control character"), "{stderr}");
    // The library too, for nested struct fields as well.
    let path = dir.path().join("lib.runs");
    let lib = Store::create(&path).unwrap();
    let run = lib.init("p", Some("r")).unwrap();
    let nested = StructArray::from(vec![(
        Arc::new(Field::new("x\u{1b}y", DataType::Int32, true)),
        Arc::new(Int32Array::from(vec![1])) as ArrayRef,
    )]);
    for data in [
        batch(vec![(
            "a\nb",
            Arc::new(Int32Array::from(vec![1])) as ArrayRef,
        )]),
        batch(vec![("s", Arc::new(nested) as ArrayRef)]),
    ] {
        let error = run
            .add_metrics_data(&data, &MetricsOptions::default())
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidName { .. } | Error::InvalidInput { .. }
            ),
            "{error}"
        );
    }
    // Names the store's other rules would refuse as path parts are fine for columns.
    run.add_metrics_data(
        &batch(vec![(
            "train/loss",
            Arc::new(Float64Array::from(vec![0.5])) as ArrayRef,
        )]),
        &MetricsOptions::default(),
    )
    .unwrap();
}

#[test]
fn parquet_timestamps_with_a_named_zone_append_and_scan_in_every_format() {
    let (dir, store) = store_with_run();
    for zone in ["UTC", "Europe/Berlin", "+02:00"] {
        let table = format!("t{}", zone.len());
        let file = dir.path().join(format!("{table}.parquet"));
        let times = TimestampMicrosecondArray::from(vec![Some(1_700_000_000_000_000), None])
            .with_timezone(zone);
        write_parquet(
            &file,
            &batch(vec![
                ("at", Arc::new(times) as ArrayRef),
                ("x", Arc::new(Int64Array::from(vec![1, 2])) as _),
            ]),
        );
        stdout(&append_file(&store, &table, &file));
        let url = format!("p/runs/r/{table}");
        for format in ["table", "csv", "json"] {
            let out = stdout(&runstore(&["scan", &store, &url, "--format", format]));
            assert!(out.contains(":13:20"), "{zone} {format}: {out}");
        }
    }
}

#[test]
fn ingest_library_reads_every_format_from_bytes_with_the_same_rules() {
    use runstore::ingest::{self, Format};
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
    let batches: Vec<RecordBatch> = ingest::read(
        Format::JsonLines,
        b"{\"a\":1}\n{\"a\":2}\n".to_vec(),
        "input",
        None,
    )
    .unwrap()
    .collect::<runstore::Result<_>>()
    .unwrap();
    assert_eq!(batches[0].num_rows(), 2);
    let error = ingest::read(
        Format::JsonLines,
        b"{\"a\":1}\n{\"a\":2.5}\n".to_vec(),
        "input",
        Some(schema.clone()),
    )
    .unwrap()
    .collect::<runstore::Result<Vec<_>>>()
    .unwrap_err();
    assert!(error.to_string().contains("input line 2"), "{error}");
    let error = ingest::read(Format::Csv, b"a\n1\n2.5\n".to_vec(), "in.csv", Some(schema))
        .and_then(|batches| batches.collect::<runstore::Result<Vec<_>>>())
        .unwrap_err();
    assert!(error.to_string().contains("in.csv line 3"), "{error}");
    let struct_fields = Fields::from(vec![Field::new("x", DataType::Int64, true)]);
    let batches: Vec<RecordBatch> = ingest::read(
        Format::JsonLines,
        b"{\"s\":{\"x\":1}}\n".to_vec(),
        "input",
        None,
    )
    .unwrap()
    .collect::<runstore::Result<_>>()
    .unwrap();
    assert_eq!(
        batches[0].schema().field(0).data_type(),
        &DataType::Struct(struct_fields)
    );
}

/// Seed inputs of every format, for the mutation test.
fn seed_inputs(dir: &Path) -> Vec<(runstore::ingest::Format, Vec<u8>)> {
    use runstore::ingest::Format;
    let rows = batch(vec![
        ("a", Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef),
        (
            "b",
            Arc::new(Float64Array::from(vec![0.5, 1.5, f64::NAN])) as _,
        ),
        ("c", Arc::new(StringArray::from(vec!["x", "y", "z"])) as _),
    ]);
    let parquet = dir.join("seed.parquet");
    write_parquet(&parquet, &rows);
    let arrow = dir.join("seed.arrow");
    write_arrow(&arrow, &rows);
    vec![
        (
            Format::JsonLines,
            b"{\"a\":1,\"b\":0.5,\"c\":\"x\",\"e\":[0.5,1.5],\"s\":{\"x\":[1,2]}}\n{\"a\":2,\"b\":\"NaN\",\"c\":null}\n"
                .to_vec(),
        ),
        (Format::Csv, b"a,b,c\n1,0.5,x\n2,,\"y\nz\"\n3,1e3,2024-01-02\n".to_vec()),
        (Format::Parquet, std::fs::read(&parquet).unwrap()),
        (Format::Arrow, std::fs::read(&arrow).unwrap()),
    ]
}

#[test]
fn ingest_of_mutated_inputs_fails_cleanly_or_appends_readable_rows() {
    let (dir, path) = temp_store();
    let seeds = seed_inputs(dir.path());
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let seed = crate::util::seed_from_env("RUNSTORE_INGEST_SEED");
    let mut rng = crate::util::Rng::new(seed);
    let mut appended = 0;
    for iteration in 0..600 {
        let (format, original) = &seeds[iteration % seeds.len()];
        let mut bytes = original.clone();
        for _ in 0..rng.range(1, 4) {
            let at = rng.below(bytes.len() as u64) as usize;
            match rng.below(3) {
                0 => bytes[at] = rng.next_u64() as u8,
                1 => bytes.truncate(at.max(1)),
                _ => {
                    let tokens = b"{}[],\":.e-0\n";
                    bytes.insert(at, tokens[rng.below(tokens.len() as u64) as usize]);
                }
            }
        }
        // Half into a table of the seed's own schema, half into a new one.
        let table = if iteration % 2 == 0 {
            format!("seed{}", iteration % seeds.len())
        } else {
            format!("t{iteration}")
        };
        let result = runstore::ingest::append(&run, &table, *format, bytes, "input");
        if let Some(report) = result.ok().filter(|report| report.rows_appended > 0) {
            appended += report.rows_appended;
            let table = store.table(&report.table.url).unwrap();
            let rows: usize = table
                .scan()
                .unwrap()
                .iter()
                .map(RecordBatch::num_rows)
                .sum();
            assert_eq!(rows as u64, report.table.row_count, "seed {seed}");
        }
    }
    assert!(appended > 0, "seed {seed}: some mutations still parse");
    drop(run);
    drop(store);
    let report = runstore::check(&path).unwrap();
    assert!(
        report.problems.is_empty(),
        "seed {seed}: {:?}",
        report.problems
    );
}
