//! Metrics tables (issue 3): Arrow columns in the store's file, scanned zero-copy.
//!
//! What is covered, one file a section, in this order: round trips of every column type with nulls through
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
//! The second-process test runs this binary again with only `second_process::scan_child`
//! selected and `RUNSTORE_TABLES_SCAN_CHILD=<store path>` in its environment; without that
//! variable `scan_child` returns at once, so a normal run skips it. `RUNSTORE_TABLE_MODEL_CASES=N` runs
//! more proptest cases than the default 32; `PROPTEST_RNG_SEED` repeats a run.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Stdio;
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

use crate::util::{child_test, file_len, file_names, new_store, runstore, runstore_ok, temp_store};

mod add_metrics_data;
mod cli;
mod lifecycle;
mod metrics_tables;
mod model;
mod round_trips;
mod second_process;
mod tail;
mod writer;
mod zero_copy;

/// Width of the embeddings of the round-trip tables (the smallest realistic width).
const EMBEDDING_WIDTH: i32 = 64;
/// `SEAL_ROWS` as a row count of a batch.
const SEAL: usize = SEAL_ROWS as usize;

// ---------------------------------------------------------------------------------------------
// Helpers

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
