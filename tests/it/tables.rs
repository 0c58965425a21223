//! Metrics tables (issue 3): Arrow columns in the store's file, scanned zero-copy.
//!
//! What is covered, in file order: round trips of every column type with nulls through
//! `add_metrics_data`, the `MetricsWriter` (`append`, `append_row`) and `Store::append_to_table`,
//! across a reopen; zero-copy scans (a scanned buffer lies in a mapping of the store file, as
//! `/proc/self/maps` names it); the tail and sealing; scans with row ranges and projections; the
//! options and rejections of `add_metrics_data`; `update_metrics` and `add_metrics_table`; writer
//! durability; copy, delete, vacuum and a corrupted segment; a reader in a second process; a
//! proptest against a model of the table; and the CLI (`demo`, `show`, `scan`, `tables`).
//!
//! Every rejection asserts the exact `Error` variant and is followed by a look at the state the
//! failed call would have changed.
//!
//! The second-process test runs this binary again with only [`scan_child`] selected and
//! `RUNSTORE_TABLES_SCAN_CHILD=<store path>` in its environment; without that variable
//! `scan_child` returns at once, so a normal run skips it. `RUNSTORE_TABLE_MODEL_CASES=N` runs
//! more proptest cases than the default 32; `PROPTEST_RNG_SEED` repeats a run.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, FixedSizeListArray, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, Int8Array, LargeBinaryArray, RecordBatch,
    RecordBatchOptions, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray, UInt16Array, UInt32Array, UInt64Array,
    UInt8Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use runstore::table::{
    EXAMPLE_ID_COLUMN, FOREIGN_TABLE_COLUMN, ROLE_KEY, SEAL_ROWS, STREAM_DEFAULT,
};
use runstore::{
    check, with_role, ColumnRole, CopyOptions, Error, MetricTableInfo, MetricsOptions,
    MetricsWriter, ScanOptions, Store, Table, TableInfo, Value, WriteDurability, WriterOptions,
};

use crate::util::temp_store;

/// Width of the embeddings of the round-trip tables (the issue's smallest realistic width).
const EMBEDDING_WIDTH: i32 = 64;
/// `SEAL_ROWS` as a row count of a batch.
const SEAL: usize = SEAL_ROWS as usize;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A fresh store in a fresh directory.
fn new_store() -> (tempfile::TempDir, PathBuf, Store) {
    let (dir, path) = temp_store();
    let store = Store::create(&path).expect("create store");
    (dir, path, store)
}

fn immediate() -> WriterOptions {
    WriterOptions {
        durability: WriteDurability::Immediate,
    }
}

fn group(window_ms: u64) -> WriterOptions {
    WriterOptions {
        durability: WriteDurability::Group {
            window: Duration::from_millis(window_ms),
        },
    }
}

fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
    arrow_select::concat::concat_batches(schema, batches).expect("batches concatenate")
}

/// Every row of `table` as one batch.
fn scan_all(table: &Table) -> RecordBatch {
    let schema = table.schema().expect("schema");
    concat(&schema, &table.scan().expect("scan"))
}

/// Compares two batches column by column, naming the first differing cell instead of printing
/// both batches whole.
fn assert_batches_eq(actual: &RecordBatch, expected: &RecordBatch, what: &str) {
    assert_eq!(actual.schema(), expected.schema(), "{what}: schema");
    assert_eq!(actual.num_rows(), expected.num_rows(), "{what}: row count");
    for (index, field) in expected.schema().fields().iter().enumerate() {
        let found = actual.column(index);
        let wanted = expected.column(index);
        if found.as_ref() == wanted.as_ref() {
            continue;
        }
        let row = (0..wanted.len())
            .find(|&row| found.slice(row, 1).as_ref() != wanted.slice(row, 1).as_ref());
        let text = |array: &ArrayRef| {
            row.map(|row| {
                arrow_cast::display::array_value_to_string(array, row)
                    .unwrap_or_else(|e| format!("<{e}>"))
            })
        };
        panic!(
            "{what}: column {} differs at row {row:?}: scanned {:?}, expected {:?}",
            field.name(),
            text(found),
            text(wanted)
        );
    }
}

fn embedding_type(width: i32) -> DataType {
    DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), width)
}

fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// A table of every supported column type; every column but `step` is nullable. `blob`
/// (large binary) is last and only present `with_blob`, since `append_row` does not take it.
fn all_types_schema(with_blob: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("step", DataType::Int64, false),
        Field::new("flag", DataType::Boolean, true),
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        with_role(
            Field::new("i32", DataType::Int32, true),
            ColumnRole::Prediction,
        ),
        Field::new("i64", DataType::Int64, true),
        Field::new("u8", DataType::UInt8, true),
        Field::new("u16", DataType::UInt16, true),
        Field::new("u32", DataType::UInt32, true),
        Field::new("u64", DataType::UInt64, true),
        Field::new("f32", DataType::Float32, true),
        with_role(
            Field::new("f64", DataType::Float64, true),
            ColumnRole::Weight,
        ),
        Field::new("text", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new(
            "ts_utc",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new(
            "ts_offset",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
            true,
        ),
        Field::new("ts_s", DataType::Timestamp(TimeUnit::Second, None), true),
        with_role(
            Field::new("label", dictionary_type(), true),
            ColumnRole::Label,
        ),
        with_role(
            Field::new("embedding", embedding_type(EMBEDDING_WIDTH), true),
            ColumnRole::Embedding,
        ),
    ];
    if with_blob {
        fields.push(Field::new("blob", DataType::LargeBinary, true));
    }
    let metadata = HashMap::from([("written_by".to_string(), "tables.rs".to_string())]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// Row `i` of the all-types table as `append_row` values: extremes, NaN, infinity, -0.0, empty
/// strings, and a null in each nullable column every fifth row (at a different row per column).
fn all_types_row(i: u64, with_blob: bool) -> Vec<Value> {
    let cell = |column: u64, value: Value| {
        if (i + column).is_multiple_of(5) {
            Value::Null
        } else {
            value
        }
    };
    let spread = |low: i64, high: i64| {
        Value::Int(match i % 4 {
            0 => low,
            1 => high,
            _ => low / 2 + (i % 100) as i64,
        })
    };
    let float = match i % 17 {
        7 => f64::NAN,
        8 => f64::INFINITY,
        9 => -0.0,
        _ => i as f64 * 0.25 - 3.0,
    };
    let embedding = (0..EMBEDDING_WIDTH as u64)
        .map(|d| Value::Float(((i * 64 + d) % 4096) as f64 * 0.5))
        .collect();
    let text = if i % 6 == 2 {
        String::new()
    } else {
        format!("row {i} ✓")
    };
    let mut row = vec![
        Value::Int(i as i64),
        cell(1, Value::Bool(i.is_multiple_of(3))),
        cell(2, spread(i8::MIN.into(), i8::MAX.into())),
        cell(3, spread(i16::MIN.into(), i16::MAX.into())),
        cell(4, spread(i32::MIN.into(), i32::MAX.into())),
        cell(5, spread(i64::MIN, i64::MAX)),
        cell(6, spread(0, u8::MAX.into())),
        cell(7, spread(0, u16::MAX.into())),
        cell(8, spread(0, u32::MAX.into())),
        // `Value::Int` stops at i64::MAX; `with_u64_max` puts u64::MAX into batches.
        cell(9, spread(0, i64::MAX)),
        cell(10, Value::Float(float)),
        cell(11, Value::Float(float * 3.0)),
        cell(12, Value::Str(text)),
        cell(13, Value::Int(1_700_000_000_000_000 + i as i64 * 1_000)),
        cell(14, Value::Int(1_700_000_000_000 + i as i64)),
        cell(15, Value::Int(-(i as i64) * 1_000_000_007)),
        cell(16, Value::Int(1_700_000_000 + i as i64)),
        cell(17, Value::from(["cat", "dog", "bird"][(i % 3) as usize])),
        cell(18, Value::List(embedding)),
    ];
    if with_blob {
        let blob = if i % 7 == 1 {
            String::new()
        } else {
            format!("bytes {i}")
        };
        row.push(cell(19, Value::Str(blob)));
    }
    row
}

/// Builds the column of `field` from values, independently of the writer's own builders (a
/// large binary column takes its bytes from strings).
fn column_from_values(field: &Field, cells: &[&Value]) -> ArrayRef {
    let ints = || cells.iter().map(|v| v.as_i64()).collect::<Vec<_>>();
    let floats = || cells.iter().map(|v| v.as_f64()).collect::<Vec<_>>();
    let strs = || cells.iter().map(|v| v.as_str()).collect::<Vec<_>>();
    macro_rules! ints_as {
        ($array:ty, $native:ty) => {
            Arc::new(
                ints()
                    .into_iter()
                    .map(|v| v.map(|v| v as $native))
                    .collect::<$array>(),
            )
        };
    }
    match field.data_type() {
        DataType::Boolean => Arc::new(cells.iter().map(|v| v.as_bool()).collect::<BooleanArray>()),
        DataType::Int8 => ints_as!(Int8Array, i8),
        DataType::Int16 => ints_as!(Int16Array, i16),
        DataType::Int32 => ints_as!(Int32Array, i32),
        DataType::Int64 => ints_as!(Int64Array, i64),
        DataType::UInt8 => ints_as!(UInt8Array, u8),
        DataType::UInt16 => ints_as!(UInt16Array, u16),
        DataType::UInt32 => ints_as!(UInt32Array, u32),
        DataType::UInt64 => ints_as!(UInt64Array, u64),
        DataType::Float32 => Arc::new(
            floats()
                .into_iter()
                .map(|v| v.map(|v| v as f32))
                .collect::<Float32Array>(),
        ),
        DataType::Float64 => Arc::new(floats().into_iter().collect::<Float64Array>()),
        DataType::Utf8 => Arc::new(StringArray::from(strs())),
        DataType::LargeBinary => Arc::new(LargeBinaryArray::from_opt_vec(
            strs().into_iter().map(|s| s.map(str::as_bytes)).collect(),
        )),
        DataType::Timestamp(TimeUnit::Second, tz) => {
            Arc::new(TimestampSecondArray::from(ints()).with_timezone_opt(tz.clone()))
        }
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            Arc::new(TimestampMillisecondArray::from(ints()).with_timezone_opt(tz.clone()))
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            Arc::new(TimestampMicrosecondArray::from(ints()).with_timezone_opt(tz.clone()))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
            Arc::new(TimestampNanosecondArray::from(ints()).with_timezone_opt(tz.clone()))
        }
        DataType::Dictionary(_, _) => {
            Arc::new(strs().into_iter().collect::<DictionaryArray<Int32Type>>())
        }
        DataType::FixedSizeList(item, width) => {
            let mut builder =
                FixedSizeListBuilder::new(Float32Builder::new(), *width).with_field(item.clone());
            for value in cells {
                match value.as_list() {
                    Some(items) => {
                        for item in items {
                            let item = item.as_f64().expect("a number") as f32;
                            builder.values().append_value(item);
                        }
                        builder.append(true);
                    }
                    None => {
                        builder.values().append_nulls(*width as usize);
                        builder.append(false);
                    }
                }
            }
            Arc::new(builder.finish())
        }
        other => panic!("no test converter for {other}"),
    }
}

fn batch_from_rows(schema: &SchemaRef, rows: &[Vec<Value>]) -> RecordBatch {
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let cells: Vec<&Value> = rows.iter().map(|row| &row[index]).collect();
            column_from_values(field, &cells)
        })
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options).expect("rows form a batch")
}

fn all_types_batch(rows: Range<u64>, with_blob: bool) -> RecordBatch {
    let rows: Vec<Vec<Value>> = rows.map(|i| all_types_row(i, with_blob)).collect();
    batch_from_rows(&all_types_schema(with_blob), &rows)
}

/// `batch` with u64::MAX where the row generator had to stop at i64::MAX.
fn with_u64_max(batch: &RecordBatch) -> RecordBatch {
    let index = batch.schema().index_of("u64").expect("u64 column");
    let column: UInt64Array = batch
        .column(index)
        .as_primitive::<UInt64Type>()
        .iter()
        .map(|v| v.map(|v| if v == i64::MAX as u64 { u64::MAX } else { v }))
        .collect();
    assert!(column.iter().any(|v| v == Some(u64::MAX)));
    let mut columns = batch.columns().to_vec();
    columns[index] = Arc::new(column);
    RecordBatch::try_new(batch.schema(), columns).expect("same shape")
}

fn assert_all_types_roles(schema: &Schema) {
    let role = |name: &str| ColumnRole::of(schema.field_with_name(name).expect("column"));
    assert_eq!(role("label"), Some(ColumnRole::Label));
    assert_eq!(role("embedding"), Some(ColumnRole::Embedding));
    assert_eq!(role("i32"), Some(ColumnRole::Prediction));
    assert_eq!(role("f64"), Some(ColumnRole::Weight));
    assert_eq!(role("text"), None);
    assert_eq!(
        schema.metadata().get("written_by").map(String::as_str),
        Some("tables.rs")
    );
}

/// {id: Int64, value: Float64}, both non-null.
fn id_value_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// Rows `range` of the id/value table: row `i` is `(i, i / 2)`.
fn id_value_batch(range: Range<u64>) -> RecordBatch {
    RecordBatch::try_new(
        id_value_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(
                range.clone().map(|i| i as i64),
            )),
            Arc::new(Float64Array::from_iter_values(
                range.map(|i| i as f64 * 0.5),
            )),
        ],
    )
    .expect("id/value batch")
}

/// The `id` column of every batch, concatenated, checking `value` on the way.
fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out = Vec::new();
    for batch in batches {
        let id = batch.column(0).as_primitive::<Int64Type>();
        let value = batch.column(1).as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            assert_eq!(value.value(row), id.value(row) as f64 * 0.5, "row {row}");
            out.push(id.value(row));
        }
    }
    out
}

fn range_vec(range: Range<u64>) -> Vec<i64> {
    range.map(|i| i as i64).collect()
}

/// {loss: Float32, embedding: FixedSizeList<Float32, 64>}, row `i` holding `i`-derived values.
fn loss_embedding_batch(range: Range<u64>) -> RecordBatch {
    let rows = (range.end - range.start) as usize;
    let loss = Float32Array::from_iter_values(range.clone().map(|i| i as f32 * 0.001));
    let values = Float32Array::from_iter_values(
        range.flat_map(|i| (0..EMBEDDING_WIDTH as u64).map(move |d| (i * 7 + d) as f32)),
    );
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let embedding =
        FixedSizeListArray::try_new(item.clone(), EMBEDDING_WIDTH, Arc::new(values), None)
            .expect("embedding");
    assert_eq!(embedding.len(), rows);
    let schema = Arc::new(Schema::new(vec![
        Field::new("loss", DataType::Float32, false),
        with_role(
            Field::new(
                "embedding",
                DataType::FixedSizeList(item, EMBEDDING_WIDTH),
                false,
            ),
            ColumnRole::Embedding,
        ),
    ]));
    RecordBatch::try_new(schema, vec![Arc::new(loss), Arc::new(embedding)]).expect("batch")
}

/// An input table's rows: {image: Utf8, label: Int32}.
fn input_batch(rows: u64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("image", DataType::Utf8, false),
        with_role(
            Field::new("label", DataType::Int32, false),
            ColumnRole::Label,
        ),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("img/{i:05}.png")),
            )),
            Arc::new(Int32Array::from_iter_values(
                (0..rows).map(|i| (i % 10) as i32),
            )),
        ],
    )
    .expect("input batch")
}

/// A one-column Float32 batch named `loss`.
fn loss_batch(values: impl IntoIterator<Item = f32>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "loss",
        DataType::Float32,
        false,
    )]));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(Float32Array::from_iter_values(values))],
    )
    .expect("loss batch")
}

fn table_urls(store: &Store) -> Vec<String> {
    store
        .tables(None)
        .expect("list tables")
        .into_iter()
        .map(|info| info.url)
        .collect()
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").len()
}

/// The path of the mapping of this process that contains `address`, as `/proc/self/maps` shows
/// it (empty for anonymous memory, `[heap]` for the heap).
fn mapping_path_of(address: usize) -> Option<String> {
    let maps = fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        if (start..end).contains(&address) {
            // address, permissions, offset, device, inode, then the path (which may hold spaces).
            let path: Vec<&str> = line.split_whitespace().skip(5).collect();
            return Some(path.join(" "));
        }
    }
    None
}

/// Asserts that the `len` bytes at `ptr` lie in a mapping of the file `path`.
fn assert_in_file_mapping(ptr: *const u8, len: usize, path: &Path, what: &str) {
    let canonical = path.canonicalize().expect("canonical path");
    let canonical = canonical.to_string_lossy();
    for address in [ptr as usize, ptr as usize + len - 1] {
        let found = mapping_path_of(address);
        assert_eq!(
            found.as_deref(),
            Some(canonical.as_ref()),
            "{what}: byte at {address:#x} is not in a mapping of the store file"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Round trips of every type

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

// ---------------------------------------------------------------------------------------------
// 2. Zero-copy

#[test]
fn table_scan_after_reopen_points_into_the_mapping_of_the_store_file() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let batch = loss_embedding_batch(0..4096);
    let url = run
        .add_metrics_data(&batch, &MetricsOptions::default())
        .unwrap()[0]
        .url
        .clone();
    // A table whose rows are all in the tail: those are decoded from redb, so they are copies,
    // which shows that the check below can tell the two apart.
    let tail_url = run
        .metrics_writer(batch.schema(), "tail", "train", &immediate())
        .unwrap()
        .close()
        .unwrap()
        .url;
    store
        .append_to_table(&tail_url, &loss_embedding_batch(0..100))
        .unwrap();
    drop((run, store));

    for read_only in [false, true] {
        let store = if read_only {
            Store::open_read_only(&path).unwrap()
        } else {
            Store::open(&path).unwrap()
        };
        let batches = store.table(&url).unwrap().scan().unwrap();
        assert_eq!(batches.len(), 1);
        let loss = batches[0].column(0).as_primitive::<Float32Type>();
        assert_eq!(loss.values()[4095], 4095.0 * 0.001);
        assert_in_file_mapping(
            loss.values().as_ptr().cast(),
            loss.len() * 4,
            &path,
            "loss values",
        );
        let embedding = batches[0].column(1).as_fixed_size_list();
        let child = embedding.values().as_primitive::<Float32Type>();
        assert_eq!(child.len(), 4096 * EMBEDDING_WIDTH as usize);
        assert_in_file_mapping(
            child.values().as_ptr().cast(),
            child.len() * 4,
            &path,
            "embedding values",
        );

        let tail = store.table(&tail_url).unwrap().scan().unwrap();
        let tail_loss = tail[0].column(0).as_primitive::<Float32Type>();
        let canonical = path.canonicalize().unwrap().to_string_lossy().into_owned();
        assert_ne!(
            mapping_path_of(tail_loss.values().as_ptr() as usize).as_deref(),
            Some(canonical.as_str()),
            "tail rows are copies"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Tail, sealing, ranges and projections

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

// ---------------------------------------------------------------------------------------------
// 4. add_metrics_data options and rejections

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

// ---------------------------------------------------------------------------------------------
// 5. metrics_tables, update_metrics, add_metrics_table

fn external_info(url: &str, stream_name: &str) -> MetricTableInfo {
    MetricTableInfo {
        url: url.into(),
        stream_name: stream_name.into(),
        row_count: 5,
        file_size: 100,
    }
}

#[test]
fn run_metrics_tables_lists_written_tables_with_live_counts() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let infos = run
        .add_metrics_data(&id_value_batch(0..10), &MetricsOptions::default())
        .unwrap();
    assert_eq!(run.metrics_tables().unwrap(), infos);
    assert_eq!(
        infos[0].file_size,
        store
            .table(&infos[0].url)
            .unwrap()
            .info()
            .unwrap()
            .file_size
    );
    let mut writer = run
        .metrics_writer(id_value_schema(), "steps", "train", &immediate())
        .unwrap();
    let listed = run.metrics_tables().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (
            listed[1].url.as_str(),
            listed[1].stream_name.as_str(),
            listed[1].row_count
        ),
        ("p/runs/r/steps_0000", "train", 0)
    );
    writer.append(&id_value_batch(0..7)).unwrap();
    let listed = run.metrics_tables().unwrap();
    assert_eq!(listed[1].row_count, 7, "the listing follows the writer");
    let info = writer.close().unwrap();
    assert_eq!(run.metrics_tables().unwrap()[1].file_size, info.file_size);
    let handles: Vec<String> = run
        .metrics_table_handles()
        .unwrap()
        .iter()
        .map(|t| t.url().to_string())
        .collect();
    assert_eq!(handles, ["p/runs/r/metrics_0000", "p/runs/r/steps_0000"]);
    let expected = run.metrics_tables().unwrap();
    drop((run, store));
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(
        store.run("p/runs/r").unwrap().metrics_tables().unwrap(),
        expected
    );
}

#[test]
fn run_update_metrics_adds_each_url_once_and_checks_store_urls() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let other = store.init("p", Some("other")).unwrap();
    let other_info = other
        .add_metrics_data(&id_value_batch(0..4), &MetricsOptions::default())
        .unwrap()
        .remove(0);

    let external = external_info("s3://bucket/metrics/epoch_1.parquet", "val");
    run.update_metrics(std::slice::from_ref(&external)).unwrap();
    assert_eq!(run.metrics_tables().unwrap(), vec![external.clone()]);
    run.update_metrics(&[external.clone(), external.clone()])
        .unwrap();
    assert_eq!(run.metrics_tables().unwrap(), vec![external.clone()]);
    run.update_metrics(std::slice::from_ref(&other_info))
        .unwrap();
    run.update_metrics(std::slice::from_ref(&other_info))
        .unwrap();
    let expected = vec![external.clone(), other_info.clone()];
    assert_eq!(run.metrics_tables().unwrap(), expected);

    // A url of the store's form must name a stored table; the whole call then fails.
    let fresh = external_info("/data/other.parquet", "val");
    for missing in ["p/runs/r/nope_0000", "p/tables/nope"] {
        let err = run
            .update_metrics(&[fresh.clone(), external_info(missing, "val")])
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{missing}: {err:?}");
    }
    let err = run
        .update_metrics(&[fresh.clone(), external_info("s3://bucket/x", "")])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(run.metrics_tables().unwrap(), expected);
    run.update_metrics(std::slice::from_ref(&fresh)).unwrap();
    assert_eq!(run.metrics_tables().unwrap().len(), 3);
}

#[test]
fn run_add_metrics_table_attaches_a_stored_table_once() {
    let (_dir, _path, store) = new_store();
    let input = store
        .create_table("p", "inputs", &[input_batch(3)])
        .unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let other = store.init("p", Some("other")).unwrap();
    let url = other
        .add_metrics_data(&id_value_batch(0..4), &MetricsOptions::default())
        .unwrap()[0]
        .url
        .clone();
    run.add_metrics_table(&url).unwrap();
    run.add_metrics_table(&url).unwrap();
    let listed = run.metrics_tables().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].url.as_str(),
            listed[0].stream_name.as_str(),
            listed[0].row_count
        ),
        (url.as_str(), STREAM_DEFAULT, 4)
    );
    store.append_to_table(&url, &id_value_batch(4..6)).unwrap();
    assert_eq!(run.metrics_tables().unwrap()[0].row_count, 6);

    run.add_metrics_table(input.url()).unwrap();
    assert_eq!(run.metrics_tables().unwrap().len(), 2);
    let err = run.add_metrics_table("p/runs/other/nope_0000").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(run.metrics_tables().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// 6. Writer durability and append_row rejections

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

// ---------------------------------------------------------------------------------------------
// 7. Copy, delete, vacuum, corruption

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
        Error::Corrupted { offset, reason } => {
            assert_eq!(*offset, segment_offset as u64, "{reason}");
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

// ---------------------------------------------------------------------------------------------
// 8. A reader in another process

const SCAN_CHILD_ENV: &str = "RUNSTORE_TABLES_SCAN_CHILD";
const SCAN_CHILD_URL_ENV: &str = "RUNSTORE_TABLES_SCAN_URL";
/// How long the child writes.
const SCAN_CHILD_WRITE: Duration = Duration::from_secs(2);

/// {i: Int64, f32: Float32, f64: Float64, s: Utf8, e: FixedSizeList<f32, 4>}; row `i` holds
/// `i` in every column.
fn prefix_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, false),
        Field::new("f32", DataType::Float32, false),
        Field::new("f64", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("e", embedding_type(4), true),
    ]))
}

fn prefix_row(i: u64) -> Vec<Value> {
    vec![
        Value::Int(i as i64),
        Value::Float(i as f64),
        Value::Float(i as f64),
        Value::Str(i.to_string()),
        Value::List(vec![Value::Float(i as f64); 4]),
    ]
}

fn prefix_batch(rows: Range<u64>) -> RecordBatch {
    let rows: Vec<Vec<Value>> = rows.map(prefix_row).collect();
    batch_from_rows(&prefix_schema(), &rows)
}

/// The number of rows of a scan of the prefix table, or the first row that is not row `i` in
/// every column.
fn check_prefix(batches: &[RecordBatch]) -> Result<u64, String> {
    let mut row = 0u64;
    for batch in batches {
        let i = batch.column(0).as_primitive::<Int64Type>();
        let f32s = batch.column(1).as_primitive::<Float32Type>();
        let f64s = batch.column(2).as_primitive::<Float64Type>();
        let s = batch.column(3).as_string::<i32>();
        let e = batch.column(4).as_fixed_size_list();
        for at in 0..batch.num_rows() {
            let embedding = e.value(at);
            let embedding = embedding.as_primitive::<Float32Type>();
            let good = i.value(at) == row as i64
                && f32s.value(at) == row as f32
                && f64s.value(at) == row as f64
                && s.value(at) == row.to_string()
                && embedding.values().iter().all(|v| *v == row as f32)
                && [f64s.is_null(at), s.is_null(at), e.is_null(at)] == [false; 3];
            if !good {
                return Err(format!("row {row} is torn: {:?}", batch.slice(at, 1)));
            }
            row += 1;
        }
    }
    Ok(row)
}

/// The child's side of the reader test: appends rows for [`SCAN_CHILD_WRITE`] with per-call
/// durability (single rows, small batches, one batch of `SEAL_ROWS`), sealing now and then,
/// and prints the number of rows it wrote. Does nothing unless started by that test.
#[test]
fn scan_child() {
    let Ok(path) = std::env::var(SCAN_CHILD_ENV) else {
        return;
    };
    let url = std::env::var(SCAN_CHILD_URL_ENV).expect("scan child: table url");
    let store = Store::open(&path).expect("scan child: open the store");
    let mut writer = MetricsWriter::open(&store, &url, &immediate()).expect("scan child: writer");
    let started = Instant::now();
    let mut next = 0u64;
    let mut step = 0u64;
    let mut big_done = false;
    while started.elapsed() < SCAN_CHILD_WRITE {
        step += 1;
        if !big_done && started.elapsed() > SCAN_CHILD_WRITE / 2 {
            writer
                .append(&prefix_batch(next..next + SEAL_ROWS))
                .expect("scan child: large append");
            next += SEAL_ROWS;
            big_done = true;
        } else if step.is_multiple_of(5) {
            let len = 1 + step % 13;
            writer
                .append(&prefix_batch(next..next + len))
                .expect("scan child: append");
            next += len;
        } else {
            writer
                .append_row(&prefix_row(next))
                .expect("scan child: append_row");
            next += 1;
        }
        if step.is_multiple_of(40) {
            writer.flush().expect("scan child: flush");
        }
    }
    let info = writer.close().expect("scan child: close");
    assert_eq!(info.row_count, next);
    println!("scan child wrote {next} rows");
}

fn read_to_string_thread(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

#[test]
fn table_scans_in_another_process_see_a_consistent_prefix_while_a_writer_appends_and_seals() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let url = run
        .metrics_writer(prefix_schema(), "live", "train", &immediate())
        .unwrap()
        .close()
        .unwrap()
        .url;
    drop((run, store));

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tables::scan_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCAN_CHILD_ENV, &path)
        .env(SCAN_CHILD_URL_ENV, &url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = read_to_string_thread(child.stdout.take().unwrap());
    let stderr = read_to_string_thread(child.stderr.take().unwrap());

    let mut counts: Vec<u64> = Vec::new();
    let mut needs_repair = 0;
    let mut long_lived: Option<Store> = None;
    let mut failure = None;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && failure.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child hangs"
        );
        let fresh = match Store::open_read_only(&path) {
            Ok(store) => store,
            Err(Error::NeedsRepair { .. }) => {
                needs_repair += 1;
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(err) => {
                failure = Some(format!("open_read_only: {err:?}"));
                break;
            }
        };
        let long_lived = long_lived.get_or_insert_with(|| fresh.clone());
        for reader in [&fresh, &*long_lived] {
            let scanned = reader
                .table(&url)
                .and_then(|table| table.scan())
                .map_err(|err| format!("scan: {err:?}"))
                .and_then(|batches| check_prefix(&batches));
            match scanned {
                Ok(rows) => counts.push(rows),
                Err(err) => failure = Some(err),
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if failure.is_some() {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(failure, None, "child stderr:\n{stderr}");
    assert!(
        status.success(),
        "child failed: {status}\n{stdout}\n{stderr}"
    );
    assert_eq!(
        needs_repair, 0,
        "read-only opens failed with NeedsRepair while the writer was alive"
    );
    let written: u64 = stdout
        .lines()
        .find_map(|line| line.split("scan child wrote ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no row count from the child:\n{stdout}\n{stderr}"));

    assert!(counts.len() >= 20, "only {} scans", counts.len());
    assert!(
        counts.windows(2).all(|pair| pair[0] <= pair[1]),
        "scans went backwards: {counts:?}"
    );
    let mut distinct = counts.clone();
    distinct.dedup();
    assert!(
        distinct.len() >= 3,
        "the scans did not overlap the writes: {distinct:?}"
    );
    assert!(
        counts.iter().any(|&n| n > SEAL_ROWS),
        "no scan saw the large chunk: {distinct:?}"
    );

    let store = Store::open_read_only(&path).unwrap();
    let table = store.table(&url).unwrap();
    assert_eq!(check_prefix(&table.scan().unwrap()), Ok(written));
    assert_eq!(table.info().unwrap().tail_rows, 0);
    drop((table, store, long_lived));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

// ---------------------------------------------------------------------------------------------
// 9. proptest against a model

/// A row of the model table: {step: Int64, loss: Float64, note: Utf8 nullable}.
type ModelRow = (i64, f64, Option<String>);

#[derive(Clone, Debug)]
enum TableOp {
    /// `Store::append_to_table` (a tail entry).
    Append(Vec<ModelRow>),
    /// `MetricsWriter::append` with per-call durability.
    WriterAppend(Vec<ModelRow>),
    /// `MetricsWriter::append_row`.
    AppendRow(ModelRow),
    /// `MetricsWriter::flush` (seals the tail).
    Flush,
    /// Closes the writer (sealing) if one is open, drops the store, opens it read-only to
    /// compare, then read-write.
    Reopen,
    /// A scan of some rows and columns (column indices, in the order asked).
    Scan {
        start: u64,
        len: u64,
        columns: Vec<usize>,
    },
}

const MODEL_COLUMNS: [&str; 3] = ["step", "loss", "note"];

fn model_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("loss", DataType::Float64, false),
        Field::new("note", DataType::Utf8, true),
    ]))
}

fn model_batch(rows: &[ModelRow]) -> RecordBatch {
    RecordBatch::try_new(
        model_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.2.as_deref()))),
        ],
    )
    .expect("model batch")
}

/// Cells of a row compared exactly (floats by bits, so NaN equals itself).
#[derive(Clone, Debug, PartialEq)]
enum ModelCell {
    Int(i64),
    Bits(u64),
    Text(Option<String>),
}

fn model_cells(row: &ModelRow, columns: &[usize]) -> Vec<ModelCell> {
    columns
        .iter()
        .map(|&c| match c {
            0 => ModelCell::Int(row.0),
            1 => ModelCell::Bits(row.1.to_bits()),
            _ => ModelCell::Text(row.2.clone()),
        })
        .collect()
}

fn scanned_cells(batches: &[RecordBatch], columns: &[usize]) -> Vec<Vec<ModelCell>> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells = columns
                .iter()
                .enumerate()
                .map(|(at, &c)| {
                    let column = batch.column(at);
                    match c {
                        0 => ModelCell::Int(column.as_primitive::<Int64Type>().value(row)),
                        1 => ModelCell::Bits(
                            column.as_primitive::<Float64Type>().value(row).to_bits(),
                        ),
                        _ => {
                            let strings = column.as_string::<i32>();
                            ModelCell::Text(
                                strings
                                    .is_valid(row)
                                    .then(|| strings.value(row).to_string()),
                            )
                        }
                    }
                })
                .collect();
            out.push(cells);
        }
    }
    out
}

fn model_row() -> impl Strategy<Value = ModelRow> {
    (
        any::<i64>(),
        any::<f64>(),
        proptest::option::of("[a-zé ]{0,6}"),
    )
}

fn table_op() -> impl Strategy<Value = TableOp> {
    prop_oneof![
        4 => vec(model_row(), 1..20).prop_map(TableOp::Append),
        3 => vec(model_row(), 1..20).prop_map(TableOp::WriterAppend),
        5 => model_row().prop_map(TableOp::AppendRow),
        1 => Just(TableOp::Flush),
        1 => Just(TableOp::Reopen),
        2 => (
            0u64..300,
            0u64..80,
            proptest::sample::subsequence(vec![0usize, 1, 2], 1..=3).prop_shuffle()
        )
            .prop_map(|(start, len, columns)| TableOp::Scan { start, len, columns }),
    ]
}

/// The store, the open writer (if any) and the model: every row, and how many are in the tail.
struct ModelHarness {
    path: PathBuf,
    url: String,
    store: Option<Store>,
    writer: Option<MetricsWriter>,
    rows: Vec<ModelRow>,
    tail_rows: u64,
}

impl ModelHarness {
    fn store(&self) -> &Store {
        self.store.as_ref().expect("store is open")
    }

    fn writer(&mut self) -> &mut MetricsWriter {
        if self.writer.is_none() {
            let writer =
                MetricsWriter::open(self.store(), &self.url, &immediate()).expect("open writer");
            self.writer = Some(writer);
        }
        self.writer.as_mut().expect("writer")
    }

    fn apply(&mut self, op: &TableOp) -> Result<(), TestCaseError> {
        match op {
            TableOp::Append(rows) => {
                self.store()
                    .append_to_table(&self.url, &model_batch(rows))
                    .map_err(|e| TestCaseError::fail(format!("append_to_table: {e}")))?;
                self.rows.extend(rows.iter().cloned());
                self.tail_rows += rows.len() as u64;
            }
            TableOp::WriterAppend(rows) => {
                self.writer()
                    .append(&model_batch(rows))
                    .map_err(|e| TestCaseError::fail(format!("append: {e}")))?;
                self.rows.extend(rows.iter().cloned());
                self.tail_rows += rows.len() as u64;
            }
            TableOp::AppendRow(row) => {
                let note = row.2.as_deref().map_or(Value::Null, Value::from);
                self.writer()
                    .append_row(&[Value::Int(row.0), Value::Float(row.1), note])
                    .map_err(|e| TestCaseError::fail(format!("append_row: {e}")))?;
                self.rows.push(row.clone());
                self.tail_rows += 1;
            }
            TableOp::Flush => {
                self.writer()
                    .flush()
                    .map_err(|e| TestCaseError::fail(format!("flush: {e}")))?;
                self.tail_rows = 0;
            }
            TableOp::Reopen => {
                if let Some(writer) = self.writer.take() {
                    let info = writer
                        .close()
                        .map_err(|e| TestCaseError::fail(format!("close: {e}")))?;
                    prop_assert_eq!(info.row_count, self.rows.len() as u64);
                    self.tail_rows = 0;
                }
                self.store = None;
                self.store = Some(Store::open_read_only(&self.path).expect("open read-only"));
                self.check_table()?;
                self.store = None;
                self.store = Some(Store::open(&self.path).expect("reopen"));
            }
            TableOp::Scan {
                start,
                len,
                columns,
            } => {
                let names = columns
                    .iter()
                    .map(|&c| MODEL_COLUMNS[c].to_string())
                    .collect();
                let batches = self
                    .store()
                    .table(&self.url)
                    .and_then(|table| {
                        table.scan_with(&ScanOptions {
                            columns: Some(names),
                            rows: Some(*start..start + len),
                        })
                    })
                    .map_err(|e| TestCaseError::fail(format!("scan: {e}")))?;
                let total = self.rows.len();
                let from = (*start as usize).min(total);
                let to = ((start + len) as usize).min(total);
                let expected: Vec<Vec<ModelCell>> = self.rows[from..to]
                    .iter()
                    .map(|row| model_cells(row, columns))
                    .collect();
                prop_assert_eq!(scanned_cells(&batches, columns), expected);
            }
        }
        self.check_table()
    }

    /// The table's facts and every row equal the model.
    fn check_table(&self) -> Result<(), TestCaseError> {
        let table = self.store().table(&self.url).expect("table");
        let info = table.info().expect("info");
        prop_assert_eq!(info.row_count, self.rows.len() as u64);
        prop_assert_eq!(info.tail_rows, self.tail_rows);
        prop_assert_eq!(info.sealed_rows + info.tail_rows, info.row_count);
        let batches = table.scan().expect("scan");
        let all = [0, 1, 2];
        let expected: Vec<Vec<ModelCell>> =
            self.rows.iter().map(|row| model_cells(row, &all)).collect();
        prop_assert_eq!(scanned_cells(&batches, &all), expected);
        Ok(())
    }
}

fn run_model_case(ops: &[TableOp]) -> Result<(), TestCaseError> {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).expect("create store");
    let run = store.init("p", Some("r")).expect("init");
    let url = run
        .metrics_writer(model_schema(), "model", "train", &immediate())
        .and_then(MetricsWriter::close)
        .expect("create table")
        .url;
    drop(run);
    let mut harness = ModelHarness {
        path,
        url,
        store: Some(store),
        writer: None,
        rows: Vec::new(),
        tail_rows: 0,
    };
    for op in ops {
        harness.apply(op)?;
    }
    Ok(())
}

#[test]
fn table_matches_a_model_under_random_appends_flushes_and_reopens() {
    let cases = std::env::var("RUNSTORE_TABLE_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&vec(table_op(), 1..=30), |ops| run_model_case(&ops));
    if let Err(error) = result {
        panic!("{error}");
    }
}

// ---------------------------------------------------------------------------------------------
// 10. The CLI

const DEMO_RUN: &str = "cifar10-sweep/runs/resnet18-lr0.1";

fn runstore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runstore"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the runstore binary")
}

/// Runs the binary and returns its stdout, failing the test on a non-zero exit.
fn runstore_ok(args: &[&str]) -> String {
    let output = runstore(args);
    assert!(
        output.status.success(),
        "runstore {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn cli_demo_store_shows_scans_and_lists_metrics_tables() {
    let (dir, path) = temp_store();
    let path_text = path.to_str().unwrap();
    runstore_ok(&["demo", path_text]);
    assert_eq!(file_names(dir.path()), ["test.runs"]);

    let show: serde_json::Value =
        serde_json::from_str(&runstore_ok(&["show", path_text, DEMO_RUN, "--json"])).unwrap();
    let metrics = show["metrics"].as_array().expect("metrics array");
    for entry in metrics {
        let keys: Vec<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["url", "stream_name", "row_count", "file_size"]);
        assert!(entry["file_size"].as_u64().unwrap() > 0);
    }
    let table_url = format!("{DEMO_RUN}/metrics_0000");
    let evaluation = metrics
        .iter()
        .find(|m| m["url"] == table_url.as_str())
        .unwrap_or_else(|| panic!("no {table_url} in {metrics:?}"));
    assert_eq!(evaluation["row_count"], 10_000);
    assert_eq!(evaluation["stream_name"], STREAM_DEFAULT);
    assert!(evaluation["file_size"].as_u64().unwrap() >= 10_000 * 64 * 4);

    let csv = runstore_ok(&[
        "scan",
        path_text,
        &table_url,
        "--columns",
        "example_id,loss",
        "--limit",
        "3",
        "--format",
        "csv",
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert_eq!(lines[0], "example_id,loss");
    for (i, line) in lines[1..].iter().enumerate() {
        let (id, loss) = line.split_once(',').expect("two cells");
        assert_eq!(id, i.to_string());
        assert!(loss.parse::<f32>().unwrap() > 0.0, "{line}");
    }

    let json = runstore_ok(&[
        "scan",
        path_text,
        &table_url,
        "--columns",
        "example_id,loss",
        "--limit",
        "3",
        "--format",
        "json",
    ]);
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 3, "{json}");
    for (i, object) in objects.iter().enumerate() {
        let keys: Vec<&str> = object
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["example_id", "loss"]);
        assert_eq!(object["example_id"], i);
    }

    // The embedding is one CSV cell holding its 64 numbers, the stored ones.
    let csv = runstore_ok(&[
        "scan",
        path_text,
        &table_url,
        "--columns",
        "embedding",
        "--limit",
        "1",
        "--format",
        "csv",
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert_eq!(lines[0], "embedding");
    let cell = lines[1]
        .strip_prefix("\"[")
        .and_then(|rest| rest.strip_suffix("]\""))
        .unwrap_or_else(|| panic!("not a quoted list: {}", lines[1]));
    let numbers: Vec<f32> = cell
        .split(", ")
        .map(|n| n.parse().unwrap_or_else(|_| panic!("not a number: {n}")))
        .collect();
    assert_eq!(numbers.len(), 64);
    let store = Store::open_read_only(&path).unwrap();
    let batches = store
        .table(&table_url)
        .unwrap()
        .scan_with(&ScanOptions {
            columns: Some(vec!["embedding".into()]),
            rows: Some(0..1),
        })
        .unwrap();
    let stored = batches[0].column(0).as_fixed_size_list().value(0);
    assert_eq!(
        numbers,
        stored.as_primitive::<Float32Type>().values().to_vec()
    );
    drop((batches, store));

    let tables = runstore_ok(&["tables", path_text, DEMO_RUN]);
    assert!(
        tables.contains(&format!("{DEMO_RUN}/steps_0000")),
        "{tables}"
    );
    assert!(tables.contains(&table_url), "{tables}");
    assert!(tables.contains("10000"), "{tables}");
    assert!(tables.trim_end().ends_with("(2 tables)"), "{tables}");
    let json = runstore_ok(&["tables", path_text, DEMO_RUN, "--json"]);
    let urls: Vec<String> = json
        .lines()
        .map(|line| {
            let object: serde_json::Value = serde_json::from_str(line).unwrap();
            object["url"].as_str().unwrap().to_string()
        })
        .collect();
    let mut expected: Vec<String> = metrics
        .iter()
        .map(|m| m["url"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    let mut sorted = urls.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
}

#[test]
fn cli_demo_refuses_to_replace_a_file_that_is_not_a_store() {
    let (dir, path) = temp_store();
    let text = "epoch,loss\n1,0.5\n";
    fs::write(&path, text).unwrap();
    let output = runstore(&["demo", path.to_str().unwrap()]);
    assert!(!output.status.success(), "demo replaced a text file");
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert_eq!(file_names(dir.path()), ["test.runs"]);
    // An empty file is not a store either.
    fs::write(&path, "").unwrap();
    let output = runstore(&["demo", path.to_str().unwrap()]);
    assert!(!output.status.success(), "demo replaced an empty file");
    assert_eq!(fs::read(&path).unwrap(), b"");
}

#[test]
fn cli_demo_replaces_its_own_earlier_store() {
    let (dir, path) = temp_store();
    let path_text = path.to_str().unwrap();
    runstore_ok(&["demo", path_text]);
    let first = Store::open_read_only(&path).unwrap().info().unwrap();
    runstore_ok(&["demo", path_text]);
    let second = Store::open_read_only(&path).unwrap().info().unwrap();
    assert_eq!(file_names(dir.path()), ["test.runs"]);
    assert_eq!((second.runs, second.tables), (first.runs, first.tables));
    assert_eq!((second.runs, second.tables), (4, 9));
    let store = Store::open_read_only(&path).unwrap();
    let run = store.run(DEMO_RUN).unwrap();
    let metrics = run.metrics_tables().unwrap();
    assert_eq!(metrics.len(), 2);
    assert!(metrics.iter().any(|m| m.row_count == 10_000));
}
