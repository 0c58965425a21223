//! The ingest parsers (`runstore::ingest`: JSON lines, CSV, Parquet, Arrow IPC) on arbitrary
//! bytes, appended into a temporary store: an error or a table that reads back, never a panic.
//!
//! Input: `[selector: u8][bytes]`. The selector's low two bits pick the format; bit 2 appends
//! into an existing table (Int32, Float32, Utf8, an f32 embedding and a struct column) so the
//! exact conversions run, and clear lets the input's own or inferred schema create the table.
//! A successful append must be readable: a scan returns the rows the report counts, and
//! `check` finds no problem.
#![no_main]

use std::sync::Arc;

use arrow_array::{
    ArrayRef, FixedSizeListArray, Float32Array, Int32Array, RecordBatch, StringArray, StructArray,
};
use arrow_schema::{DataType, Field};
use libfuzzer_sys::fuzz_target;
use runstore::ingest::{self, Format};
use runstore::Store;

fn existing_rows() -> RecordBatch {
    let item = Arc::new(Field::new_list_field(DataType::Float32, true));
    let embedding = FixedSizeListArray::try_new(
        item,
        2,
        Arc::new(Float32Array::from(vec![0.5, 1.5])),
        None,
    )
    .expect("embedding");
    let nested = StructArray::from(vec![(
        Arc::new(Field::new("x", DataType::Int32, true)),
        Arc::new(Int32Array::from(vec![1])) as ArrayRef,
    )]);
    RecordBatch::try_from_iter([
        ("a", Arc::new(Int32Array::from(vec![1])) as ArrayRef),
        ("b", Arc::new(Float32Array::from(vec![0.5])) as _),
        ("c", Arc::new(StringArray::from(vec!["x"])) as _),
        ("e", Arc::new(embedding) as _),
        ("s", Arc::new(nested) as _),
    ])
    .expect("batch")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let format = match selector & 3 {
        0 => Format::JsonLines,
        1 => Format::Csv,
        2 => Format::Parquet,
        _ => Format::Arrow,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::create(dir.path().join("fuzz.runs")).expect("create");
    let run = store.init("p", Some("r")).expect("init");
    let mut before = 0;
    if selector & 4 != 0 {
        let rows = existing_rows();
        run.append_metrics("t", &mut std::iter::once(Ok(rows.clone())))
            .expect("existing table");
        before = rows.num_rows() as u64;
    }
    let Ok(report) = ingest::append(&run, "t", format, bytes.to_vec(), "input") else {
        return;
    };
    if report.rows_appended == 0 {
        return;
    }
    let table = store.table("p/runs/r/t").expect("the appended table exists");
    let rows: usize = table
        .scan()
        .expect("an appended table scans")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows as u64, before + report.rows_appended);
    drop(table);
    drop(run);
    drop(store);
    let report = runstore::check(dir.path().join("fuzz.runs")).expect("check runs");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
});
