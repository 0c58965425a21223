//! Table queries (`Table::query`): projection, row ranges, column filters, aggregates and
//! downsampled reads, each compared with a naive row-by-row computation over the same rows,
//! on tables whose rows span several sealed chunks and a tail; and the exact rejection of bad
//! filters. A proptest checks random filters over random small tables against a naive
//! evaluator of SQL's three-valued logic.

use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt64Type};
use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use proptest::prelude::*;
use runstore::table::SEAL_ROWS;
use runstore::{Agg, Error, Store, Table};

use crate::util::temp_store;

/// One row of the test tables, as the naive computations see it.
#[derive(Clone, Debug)]
struct Row {
    step: i64,
    epoch: Option<i64>,
    loss: Option<f64>,
    split: Option<String>,
    flag: Option<bool>,
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("epoch", DataType::Int64, true),
        Field::new("loss", DataType::Float64, true),
        Field::new("split", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, true),
    ]))
}

fn batch(rows: &[Row]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.step))),
        Arc::new(rows.iter().map(|r| r.epoch).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.loss).collect::<Float64Array>()),
        Arc::new(
            rows.iter()
                .map(|r| r.split.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(rows.iter().map(|r| r.flag).collect::<BooleanArray>()),
    ];
    RecordBatch::try_new(schema(), columns).unwrap()
}

/// A deterministic row `i`: nulls, NaNs and strings sprinkled in.
fn row(i: i64) -> Row {
    let loss = match i % 97 {
        0 => None,
        1 => Some(f64::NAN),
        _ => Some(((i * 7919) % 1000) as f64 / 1000.0 + (i % 5) as f64),
    };
    Row {
        step: i,
        epoch: (i % 13 != 0).then_some(i / 10_000),
        loss,
        split: match i % 3 {
            0 => Some("train".into()),
            1 => Some("val_a".into()),
            _ => None,
        },
        flag: (i % 11 != 0).then_some(i % 2 == 0),
    }
}

/// A table of `rows` rows: two sealed chunks of `SEAL_ROWS` and more, then a tail.
fn big_table(store: &Store) -> (Table, Vec<Row>) {
    let seal = SEAL_ROWS as i64;
    let rows: Vec<Row> = (0..2 * seal + 3_000).map(row).collect();
    let first = batch(&rows[..seal as usize]);
    let second = batch(&rows[seal as usize..(2 * seal + 1_000) as usize]);
    let table = store.create_table("p", "big", &[first, second]).unwrap();
    store
        .append_to_table(table.url(), &batch(&rows[(2 * seal + 1_000) as usize..]))
        .unwrap();
    let info = table.info().unwrap();
    assert_eq!(info.chunk_count, 2);
    assert_eq!(info.tail_rows, 2_000);
    (table, rows)
}

fn small_table(store: &Store, name: &str, rows: &[Row]) -> Table {
    store.create_table("p", name, &[batch(rows)]).unwrap()
}

fn steps(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("step")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[test]
fn scan_query_projects_ranges_offsets_and_limits_across_chunks_and_tail() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let (table, rows) = big_table(&store);
    let total = rows.len() as u64;

    let batches = table.query().columns(&["loss", "step"]).batches().unwrap();
    assert_eq!(batches[0].schema().fields().len(), 2);
    assert_eq!(batches[0].schema().field(0).name(), "loss");
    assert_eq!(steps(&batches), (0..total as i64).collect::<Vec<_>>());

    let seal = SEAL_ROWS;
    let range = seal - 10..2 * seal + 1_500;
    let got = steps(&table.query().rows(range.clone()).batches().unwrap());
    assert_eq!(
        got,
        (range.start as i64..range.end as i64).collect::<Vec<_>>()
    );

    let got = steps(
        &table
            .query()
            .rows(range.clone())
            .offset(5)
            .limit(50_000)
            .batches()
            .unwrap(),
    );
    let start = range.start as i64 + 5;
    assert!(got == (start..start + 50_000).collect::<Vec<_>>());
    // A limit past the range's end stops at the range.
    let got = steps(
        &table
            .query()
            .rows(range.clone())
            .limit(1 << 40)
            .batches()
            .unwrap(),
    );
    assert_eq!(got.len() as u64, range.end - range.start);

    // A range past the end is cut to the table; an empty selection gives no batches.
    let got = steps(&table.query().rows(total - 3..total + 10).batches().unwrap());
    assert_eq!(
        got,
        vec![total as i64 - 3, total as i64 - 2, total as i64 - 1]
    );
    assert!(table
        .query()
        .rows(total..total + 5)
        .batches()
        .unwrap()
        .is_empty());
    assert!(table.query().limit(0).batches().unwrap().is_empty());
    assert_eq!(
        table
            .query()
            .columns(&["split"])
            .schema()
            .unwrap()
            .field(0)
            .name(),
        "split"
    );

    // Filter, then offset and limit count passing rows, across the chunk boundary.
    let got = steps(
        &table
            .query()
            .filter("split = 'train' AND step >= 65000")
            .unwrap()
            .offset(100)
            .limit(1_000)
            .batches()
            .unwrap(),
    );
    let expected: Vec<i64> = rows
        .iter()
        .filter(|r| r.split.as_deref() == Some("train") && r.step >= 65_000)
        .map(|r| r.step)
        .skip(100)
        .take(1_000)
        .collect();
    assert_eq!(got, expected);

    // Filter columns need not be projected; the projection is what comes back.
    let batches = table
        .query()
        .columns(&["step"])
        .filter("loss > 4.5")
        .unwrap()
        .batches()
        .unwrap();
    assert_eq!(batches[0].num_columns(), 1);
    let expected: Vec<i64> = rows
        .iter()
        .filter(|r| r.loss.is_some_and(|l| l > 4.5))
        .map(|r| r.step)
        .collect();
    assert_eq!(steps(&batches), expected);

    let error = table.query().columns(&["nope"]).batches().unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
}

/// The rows of the filter table, and the steps each filter selects.
fn filter_rows() -> Vec<Row> {
    let r = |step, epoch, loss, split: Option<&str>, flag| Row {
        step,
        epoch,
        loss,
        split: split.map(str::to_string),
        flag,
    };
    vec![
        r(0, Some(1), Some(0.5), Some("train"), Some(true)),
        r(1, Some(2), Some(1.5), Some("val"), Some(false)),
        r(2, None, None, None, None),
        r(3, Some(3), Some(f64::NAN), Some("Train_x"), Some(true)),
        r(4, Some(2), Some(2.0), Some("a%b"), Some(false)),
        r(5, Some(5), Some(-1.0), Some("a_b"), None),
        r(6, Some(-1), Some(2.0), Some("100% sure"), Some(true)),
    ]
}

#[test]
fn scan_query_filters_with_every_operator_nulls_and_nan() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let table = small_table(&store, "f", &filter_rows());
    let check = |filter: &str, expected: &[i64]| {
        let got = steps(&table.query().filter(filter).unwrap().batches().unwrap());
        assert_eq!(got, expected, "{filter}");
    };
    check("loss = 2", &[4, 6]);
    check("loss == 2.0", &[4, 6]);
    check("loss != 2", &[0, 1, 5]);
    check("loss <> 2", &[0, 1, 5]);
    check("loss < 1.5", &[0, 5]);
    check("loss <= 1.5", &[0, 1, 5]);
    check("loss > 1.5", &[4, 6]);
    check("loss >= 1.5", &[1, 4, 6]);
    check("NOT loss >= 1.5", &[0, 5]);
    check("loss IS NULL", &[2]);
    check("loss IS NOT NULL", &[0, 1, 3, 4, 5, 6]);
    check("loss IN (0.5, 2)", &[0, 4, 6]);
    check("loss NOT IN (0.5, 2)", &[1, 5]);
    check("epoch = 2", &[1, 4]);
    check("epoch > 1.5", &[1, 3, 4, 5]);
    check("epoch < loss", &[6]);
    check("epoch >= `loss`", &[0, 1, 4, 5]);
    check("loss != epoch", &[0, 1, 5, 6]);
    check("split = 'train'", &[0]);
    check("split = \"train\"", &[0]);
    check("split < 'b'", &[3, 4, 5, 6]);
    check("split LIKE 'a%'", &[4, 5]);
    check("split LIKE 'a\\%b'", &[4]);
    check("split LIKE 'a\\_b'", &[5]);
    check("split LIKE '%\\%%'", &[4, 6]);
    check("split NOT LIKE 'a%'", &[0, 1, 3, 6]);
    check("split ILIKE 'TRAIN%'", &[0, 3]);
    check("split NOT ILIKE 'train%'", &[1, 4, 5, 6]);
    check("split IN ('val', 'a_b')", &[1, 5]);
    check("split NOT IN ('val', 'a_b')", &[0, 3, 4, 6]);
    check("flag = TRUE", &[0, 3, 6]);
    check("flag != TRUE", &[1, 4]);
    check("flag IS NULL", &[2, 5]);
    check("\"split\" = 'val' OR flag IS NULL", &[1, 2, 5]);
    check("loss > 1 AND split LIKE 'a%'", &[4]);
    check("loss > 1 OR split = 'train'", &[0, 1, 4, 6]);
    check("NOT (loss > 1 OR split = 'train')", &[5]);
    check("(epoch = 2 OR epoch = 5) AND NOT flag = TRUE", &[1, 4]);
    check("NOT (loss < 100)", &[]);
    check("loss < 100 OR loss IS NULL", &[0, 1, 2, 4, 5, 6]);
    check("  ", &[0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn scan_query_rejects_bad_filters_with_the_column_of_the_token() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let table = small_table(&store, "f", &filter_rows());
    let reject = |filter: &str| -> (usize, String) {
        match table.query().filter(filter) {
            Err(Error::InvalidQuery { column, message }) => (column, message),
            other => panic!("{filter}: expected InvalidQuery, got {other:?}"),
        }
    };
    let (column, message) = reject("step > 1 AND los < 1");
    assert_eq!(column, 14);
    assert_eq!(message, "unknown column 'los' (did you mean 'loss'?)");
    let (column, message) = reject("step > 1 AND loss = 'high'");
    assert_eq!(column, 14);
    assert_eq!(
        message,
        "column 'loss' is Float64; it cannot be compared with the string 'high'"
    );
    let (column, message) = reject("loss LIKE '1%'");
    assert_eq!(column, 1);
    assert_eq!(message, "LIKE matches strings; column 'loss' is Float64");
    let (column, message) = reject("split = 3");
    assert_eq!(column, 1);
    assert!(message.contains("the number 3"), "{message}");
    let (column, message) = reject("flag IN (TRUE, 'x')");
    assert_eq!(column, 1);
    assert!(message.contains("the string 'x'"), "{message}");
    let (column, message) = reject("loss < split");
    assert_eq!(column, 8);
    assert!(message.contains("do not compare"), "{message}");
    let (column, message) = reject("loss < nothing");
    assert_eq!(column, 8);
    assert!(message.starts_with("unknown column 'nothing'"), "{message}");
    let (column, message) = reject("loss < ");
    assert_eq!(column, 8);
    assert!(message.starts_with("expected a value"), "{message}");
    let (column, _) = reject("(loss < 1");
    assert_eq!(column, 10);
    let (column, message) = reject("loss = NULL");
    assert_eq!(column, 8);
    assert!(message.contains("IS NULL"), "{message}");

    // Embeddings cannot be filtered.
    let mut builder = FixedSizeListBuilder::new(Float32Builder::new(), 2);
    builder.values().append_slice(&[1.0, 2.0]);
    builder.append(true);
    let embedding = RecordBatch::try_from_iter([
        ("embedding", Arc::new(builder.finish()) as ArrayRef),
        ("loss", Arc::new(Float32Array::from(vec![0.5])) as ArrayRef),
    ])
    .unwrap();
    let table = store.create_table("p", "emb", &[embedding]).unwrap();
    match table.query().filter("loss > 0 AND embedding IS NOT NULL") {
        Err(Error::InvalidQuery { column, message }) => {
            assert_eq!(column, 14);
            assert!(message.contains("FixedSizeList"), "{message}");
            assert!(
                message.starts_with("column 'embedding' holds lists"),
                "{message}"
            );
        }
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
    // A float32 column compares with numbers.
    let got = table
        .query()
        .filter("loss > 0.25")
        .unwrap()
        .batches()
        .unwrap();
    assert_eq!(got[0].num_rows(), 1);
}

/// Naive partial results of one group: (rows, values, sum, min, max) over non-null values.
#[derive(Clone, Debug, Default)]
struct Naive {
    rows: u64,
    values: Vec<f64>,
}

impl Naive {
    fn sum(&self) -> Option<f64> {
        (!self.values.is_empty()).then(|| self.values.iter().sum())
    }
    fn mean(&self) -> Option<f64> {
        self.sum().map(|s| s / self.values.len() as f64)
    }
    /// Arrow's order: NaN above every number.
    fn min(&self) -> Option<f64> {
        let numbers: Vec<f64> = self
            .values
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .collect();
        match numbers.iter().copied().reduce(f64::min) {
            Some(min) => Some(min),
            None => self.values.first().copied(),
        }
    }
    fn max(&self) -> Option<f64> {
        if self.values.iter().any(|v| v.is_nan()) {
            return Some(f64::NAN);
        }
        self.values.iter().copied().reduce(f64::max)
    }
}

fn same(got: Option<f64>, expected: Option<f64>, what: &str) {
    match (got, expected) {
        (Some(g), Some(e)) if g.is_nan() && e.is_nan() => {}
        (Some(g), Some(e)) => assert!(
            (g - e).abs() <= 1e-9 * e.abs().max(1.0),
            "{what}: {g} != {e}"
        ),
        (g, e) => assert_eq!(g, e, "{what}"),
    }
}

fn column_f64(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let column = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no {name}"));
    column.as_primitive::<Float64Type>().iter().collect()
}

fn column_u64(batch: &RecordBatch, name: &str) -> Vec<u64> {
    let column = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no {name}"));
    column.as_primitive::<UInt64Type>().values().to_vec()
}

#[test]
fn scan_query_aggregates_match_a_naive_computation() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let (table, rows) = big_table(&store);
    let aggs = [
        Agg::count(),
        Agg::count_of("loss"),
        Agg::sum("loss"),
        Agg::mean("loss"),
        Agg::min("loss"),
        Agg::max("loss"),
    ];

    // Without a group: one row, over a filter that skips the NaNs and one that keeps them.
    for (filter, keep) in [
        (
            "step >= 0",
            Box::new(|_: &Row| true) as Box<dyn Fn(&Row) -> bool>,
        ),
        (
            "split = 'train' AND NOT loss > 4",
            Box::new(|r: &Row| {
                // NaN > 4 is unknown, and so is its negation.
                r.split.as_deref() == Some("train") && r.loss.is_some_and(|l| l <= 4.0)
            }),
        ),
    ] {
        let result = table
            .query()
            .filter(filter)
            .unwrap()
            .aggregate(None, &aggs)
            .unwrap();
        assert_eq!(result.num_rows(), 1);
        let mut naive = Naive::default();
        for r in rows.iter().filter(|r| keep(r)) {
            naive.rows += 1;
            naive.values.extend(r.loss);
        }
        assert_eq!(column_u64(&result, "count"), [naive.rows], "{filter}");
        assert_eq!(
            column_u64(&result, "count(loss)"),
            [naive.values.len() as u64]
        );
        same(column_f64(&result, "sum(loss)")[0], naive.sum(), "sum");
        same(column_f64(&result, "mean(loss)")[0], naive.mean(), "mean");
        same(column_f64(&result, "min(loss)")[0], naive.min(), "min");
        same(column_f64(&result, "max(loss)")[0], naive.max(), "max");
    }

    // Grouped by epoch (nulls last), without the NaN rows.
    let result = table
        .query()
        .filter("NOT loss IN (-1)")
        .unwrap()
        .aggregate(Some("epoch"), &aggs)
        .unwrap();
    let mut groups: std::collections::BTreeMap<Option<i64>, Naive> = Default::default();
    for r in rows.iter().filter(|r| r.loss.is_some_and(|l| !l.is_nan())) {
        let group = groups.entry(r.epoch).or_default();
        group.rows += 1;
        group.values.extend(r.loss);
    }
    // BTreeMap orders None first; the query puts null last.
    let mut expected: Vec<(Option<i64>, Naive)> = groups.into_iter().collect();
    expected.rotate_left(1);
    let keys: Vec<Option<i64>> = result
        .column(0)
        .as_primitive::<Int64Type>()
        .iter()
        .collect();
    assert_eq!(keys, expected.iter().map(|(k, _)| *k).collect::<Vec<_>>());
    assert_eq!(result.schema().field(0).name(), "epoch");
    let counts = column_u64(&result, "count");
    let means = column_f64(&result, "mean(loss)");
    let mins = column_f64(&result, "min(loss)");
    let maxs = column_f64(&result, "max(loss)");
    for (i, (_, naive)) in expected.iter().enumerate() {
        assert_eq!(counts[i], naive.rows);
        same(means[i], naive.mean(), "mean");
        same(mins[i], naive.min(), "min");
        same(maxs[i], naive.max(), "max");
    }

    // Grouped by a string column, over an empty selection: no rows.
    let result = table
        .query()
        .filter("step < 0")
        .unwrap()
        .aggregate(Some("split"), &aggs)
        .unwrap();
    assert_eq!(result.num_rows(), 0);
    let result = table
        .query()
        .rows(0..30)
        .aggregate(Some("split"), &[Agg::count(), Agg::max("step")])
        .unwrap();
    let keys: Vec<Option<&str>> = result.column(0).as_string::<i32>().iter().collect();
    assert_eq!(keys, [Some("train"), Some("val_a"), None]);
    assert_eq!(column_u64(&result, "count"), [10, 10, 10]);
    // An integer column's max keeps its integers (exact, issue 15).
    let max_step: Vec<Option<i64>> = result
        .column_by_name("max(step)")
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .collect();
    assert_eq!(max_step, [Some(27), Some(28), Some(29)]);
    // Over nothing without a group: one row, count 0, the rest null.
    let result = table.query().rows(0..0).aggregate(None, &aggs).unwrap();
    assert_eq!(column_u64(&result, "count"), [0]);
    assert_eq!(column_f64(&result, "mean(loss)"), [None]);

    let error = table
        .query()
        .aggregate(None, &[Agg::mean("split")])
        .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
    let error = table.query().aggregate(Some("nope"), &aggs).unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    assert_eq!("mean:loss".parse::<Agg>().unwrap(), Agg::mean("loss"));
    assert_eq!("count".parse::<Agg>().unwrap(), Agg::count());
    assert!(matches!(
        "median:loss".parse::<Agg>(),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        "mean".parse::<Agg>(),
        Err(Error::InvalidInput { .. })
    ));
}

/// The naive downsample: buckets of the selected rows by `floor(i * buckets / n)`.
fn naive_downsample(selected: &[&Row], buckets: usize) -> Vec<(u64, u64, u64, Naive)> {
    let n = selected.len();
    let buckets = buckets.min(n);
    let mut out: Vec<(u64, u64, u64, Naive)> = Vec::new();
    for (i, r) in selected.iter().enumerate() {
        let bucket = (i as u128 * buckets as u128 / n as u128) as usize;
        if out.len() == bucket {
            out.push((r.step as u64, r.step as u64, 0, Naive::default()));
        }
        let entry = &mut out[bucket];
        entry.1 = r.step as u64;
        entry.2 += 1;
        entry.3.rows += 1;
        entry.3.values.extend(r.loss);
    }
    out
}

fn check_downsample(table: &Table, rows: &[Row], filter: &str, buckets: usize) {
    let result = table
        .query()
        .filter(filter)
        .unwrap()
        .downsample_with_x("loss", Some("step"), buckets)
        .unwrap();
    let query = runstore::fuzz::filter::parse_column_filter(filter).unwrap();
    let selected: Vec<&Row> = match query {
        None => rows.iter().collect(),
        Some(_) => {
            let kept = steps(&table.query().filter(filter).unwrap().batches().unwrap());
            kept.iter().map(|&s| &rows[s as usize]).collect()
        }
    };
    let naive = naive_downsample(&selected, buckets);
    assert_eq!(result.num_rows(), naive.len(), "{filter} / {buckets}");
    let first = column_u64(&result, "first_row");
    let last = column_u64(&result, "last_row");
    let count = column_u64(&result, "count");
    let min = column_f64(&result, "min");
    let max = column_f64(&result, "max");
    let last_value = column_f64(&result, "last");
    let x_first = column_f64(&result, "x_first");
    let x_last = column_f64(&result, "x_last");
    assert_eq!(
        column_u64(&result, "bucket"),
        (0..naive.len() as u64).collect::<Vec<_>>()
    );
    for (i, (first_row, last_row, rows_in, naive)) in naive.iter().enumerate() {
        assert_eq!(first[i], *first_row);
        assert_eq!(last[i], *last_row);
        assert_eq!(count[i], *rows_in);
        assert_eq!(x_first[i], Some(*first_row as f64));
        assert_eq!(x_last[i], Some(*last_row as f64));
        same(min[i], naive.min(), "min");
        same(max[i], naive.max(), "max");
        same(last_value[i], naive.values.last().copied(), "last");
    }
}

#[test]
fn scan_query_downsample_matches_a_naive_computation() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let (table, rows) = big_table(&store);
    // Buckets that do not divide the rows, spanning both chunks and the tail.
    check_downsample(&table, &rows, "", 1_000);
    check_downsample(&table, &rows, "", 7);
    check_downsample(&table, &rows, "", 1);
    check_downsample(&table, &rows, "split = 'val_a' AND loss < 3", 333);
    // More buckets than rows: one bucket per row.
    check_downsample(&table, &rows, "step < 40 AND step > 30", 1_000);
    let result = table.query().rows(10..15).downsample("loss", 100).unwrap();
    assert_eq!(column_u64(&result, "first_row"), [10, 11, 12, 13, 14]);
    assert_eq!(column_u64(&result, "count"), [1; 5]);
    // A row range and a limit narrow what is bucketed.
    let result = table
        .query()
        .rows(SEAL_ROWS - 5..SEAL_ROWS + 5)
        .limit(6)
        .downsample("loss", 2)
        .unwrap();
    assert_eq!(
        column_u64(&result, "first_row"),
        [SEAL_ROWS - 5, SEAL_ROWS - 2]
    );
    assert_eq!(column_u64(&result, "last_row"), [SEAL_ROWS - 3, SEAL_ROWS]);
    // Nothing selected: no buckets.
    let result = table
        .query()
        .filter("step < 0")
        .unwrap()
        .downsample("loss", 10)
        .unwrap();
    assert_eq!(result.num_rows(), 0);

    for (column, buckets) in [("loss", 0), ("split", 10)] {
        let error = table.query().downsample(column, buckets).unwrap_err();
        assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
    }
    let error = table.query().downsample("nope", 10).unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
}

// ---------------------------------------------------------------------------------------------
// Random filters against a naive evaluator

/// A random comparison, as text, over the columns of [`Row`].
fn comparison() -> impl Strategy<Value = String> {
    let op = prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]);
    let number = prop::sample::select(vec!["-1", "0", "0.5", "1", "2", "2.5", "3"]);
    let text = prop::sample::select(vec!["'a'", "'ab'", "'b'", "'B'", "''"]);
    let pattern = prop::sample::select(vec!["'a%'", "'%b'", "'_'", "'A%'", "'%'"]);
    prop_oneof![
        (
            prop::sample::select(vec!["epoch", "loss"]),
            op.clone(),
            number.clone()
        )
            .prop_map(|(c, o, n)| format!("{c} {o} {n}")),
        (op.clone(), text).prop_map(|(o, t)| format!("split {o} {t}")),
        (
            prop::sample::select(vec!["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"]),
            pattern
        )
            .prop_map(|(l, p)| format!("split {l} {p}")),
        (op.clone(), prop::sample::select(vec!["TRUE", "FALSE"]))
            .prop_map(|(o, b)| format!("flag {o} {b}")),
        op.prop_map(|o| format!("epoch {o} loss")),
        (
            prop::sample::select(vec!["epoch", "loss", "split", "flag"]),
            any::<bool>()
        )
            .prop_map(|(c, n)| format!("{c} IS {}NULL", if n { "NOT " } else { "" })),
        (any::<bool>(), prop::collection::vec(number, 1..3)).prop_map(|(not, values)| format!(
            "loss {}IN ({})",
            if not { "NOT " } else { "" },
            values.join(", ")
        )),
    ]
}

fn filter_text() -> impl Strategy<Value = String> {
    comparison().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) AND ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) OR ({b})")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

fn random_row() -> impl Strategy<Value = Row> {
    (
        prop::option::of(-1i64..4),
        prop::option::of(prop_oneof![
            Just(f64::NAN),
            prop::sample::select(vec![-1.0, 0.0, 0.5, 1.0, 2.0, 2.5, 3.0])
        ]),
        prop::option::of(prop::sample::select(vec!["", "a", "ab", "b", "B", "Ab"])),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(epoch, loss, split, flag)| Row {
            step: 0,
            epoch,
            loss,
            split: split.map(str::to_string),
            flag,
        })
}

/// SQL's truth of a comparison over one row: `None` is unknown.
fn naive_truth(expr: &runstore::fuzz::filter::Expr, row: &Row) -> Option<bool> {
    use runstore::fuzz::filter::{CompareOp, Expr, Operand, Predicate};
    use runstore::Value;
    #[derive(Clone, PartialEq, PartialOrd)]
    enum Cell {
        Number(f64),
        Text(String),
        Bool(bool),
    }
    let cell = |name: &str| -> Option<Cell> {
        match name {
            "epoch" => row.epoch.map(|e| Cell::Number(e as f64)),
            "loss" => row.loss.map(Cell::Number),
            "split" => row.split.clone().map(Cell::Text),
            "flag" => row.flag.map(Cell::Bool),
            other => panic!("column {other}"),
        }
    };
    let literal = |value: &Value| match value {
        Value::Int(i) => Cell::Number(*i as f64),
        Value::Float(f) => Cell::Number(*f),
        Value::Str(s) => Cell::Text(s.clone()),
        Value::Bool(b) => Cell::Bool(*b),
        other => panic!("literal {other}"),
    };
    let compare = |left: &Option<Cell>, op: CompareOp, right: &Option<Cell>| -> Option<bool> {
        let (Some(left), Some(right)) = (left, right) else {
            return None;
        };
        let ordering = left.partial_cmp(right)?;
        Some(match op {
            CompareOp::Eq => ordering.is_eq(),
            CompareOp::Ne => ordering.is_ne(),
            CompareOp::Lt => ordering.is_lt(),
            CompareOp::Le => ordering.is_le(),
            CompareOp::Gt => ordering.is_gt(),
            CompareOp::Ge => ordering.is_ge(),
        })
    };
    match expr {
        // SQL's AND is the minimum and OR the maximum of false < unknown < true.
        Expr::And(operands) => {
            let mut truth = Some(true);
            for operand in operands {
                truth = match (truth, naive_truth(operand, row)) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
            }
            truth
        }
        Expr::Or(operands) => {
            let mut truth = Some(false);
            for operand in operands {
                truth = match (truth, naive_truth(operand, row)) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                };
            }
            truth
        }
        Expr::Not(e) => naive_truth(e, row).map(|t| !t),
        Expr::Comparison(c) => {
            let Operand::Column(column) = &c.operand else {
                panic!("not a column: {c:?}")
            };
            let left = cell(&column.name);
            match &c.predicate {
                Predicate::IsNull { negated } => Some(left.is_none() != *negated),
                Predicate::Compare { op, value } => compare(&left, *op, &Some(literal(value))),
                Predicate::CompareColumn { op, other } => compare(&left, *op, &cell(&other.name)),
                Predicate::CompareWide { .. } => panic!("no wide integers in generated filters"),
                Predicate::In { values, negated } => {
                    let mut truth = Some(false);
                    for value in values {
                        truth = match (truth, compare(&left, CompareOp::Eq, &Some(literal(value))))
                        {
                            (Some(true), _) | (_, Some(true)) => Some(true),
                            (Some(false), Some(false)) => Some(false),
                            _ => None,
                        };
                    }
                    truth.map(|t| t != *negated)
                }
                Predicate::Like { pattern, negated } => match left {
                    Some(Cell::Text(text)) => Some(pattern.matches(&text) != *negated),
                    None => None,
                    _ => panic!("LIKE on a non-string"),
                },
            }
        }
    }
}

#[test]
fn scan_query_random_filters_agree_with_a_naive_evaluator() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let count = std::sync::atomic::AtomicU32::new(0);
    let config = ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    };
    proptest!(config, |(rows in prop::collection::vec(random_row(), 1..40),
                        filters in prop::collection::vec(filter_text(), 1..6))| {
        let rows: Vec<Row> = rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| Row { step: i as i64, ..r })
            .collect();
        let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let table = store.create_table("p", &format!("t{n}"), &[batch(&rows)]).unwrap();
        for filter in &filters {
            let expr = runstore::fuzz::filter::parse_column_filter(filter).unwrap().unwrap();
            let expected: Vec<i64> = rows
                .iter()
                .filter(|r| naive_truth(&expr, r) == Some(true))
                .map(|r| r.step)
                .collect();
            let got = steps(&table.query().filter(filter).unwrap().batches().unwrap());
            prop_assert_eq!(got, expected, "{}", filter);
        }
    });
}

#[test]
fn scan_query_downsamples_f32_columns_as_stored() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let values: Vec<Option<f32>> = (0..1_000)
        .map(|i| match i % 37 {
            0 => None,
            1 => Some(f32::NAN),
            _ => Some((i as f32 * 0.37).sin()),
        })
        .collect();
    let batch = RecordBatch::try_from_iter([(
        "value",
        Arc::new(values.iter().copied().collect::<Float32Array>()) as ArrayRef,
    )])
    .unwrap();
    let table = store.create_table("p", "f32", &[batch]).unwrap();
    let result = table.query().downsample("value", 30).unwrap();
    let rows: Vec<Row> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Row {
            step: i as i64,
            epoch: None,
            loss: v.map(f64::from),
            split: None,
            flag: None,
        })
        .collect();
    let selected: Vec<&Row> = rows.iter().collect();
    let naive = naive_downsample(&selected, 30);
    assert_eq!(result.num_rows(), 30);
    let (min, max, last) = (
        column_f64(&result, "min"),
        column_f64(&result, "max"),
        column_f64(&result, "last"),
    );
    for (i, (_, _, _, naive)) in naive.iter().enumerate() {
        same(min[i], naive.min(), "min");
        same(max[i], naive.max(), "max");
        same(last[i], naive.values.last().copied(), "last");
    }
}

/// The naive order of `rows` by `key` (nulls last, NaN above every number as Arrow sorts,
/// ties in table order), ascending or descending.
fn naive_sorted<'a>(rows: &[&'a Row], key: &str, descending: bool) -> Vec<&'a Row> {
    let mut sorted: Vec<&Row> = rows.to_vec();
    sorted.sort_by(|a, b| {
        use std::cmp::Ordering;
        let ordered = |a: &Row, b: &Row| -> Option<Ordering> {
            match key {
                "loss" => match (a.loss, b.loss) {
                    (Some(x), Some(y)) => Some(x.total_cmp(&y)),
                    (None, None) => None,
                    (None, _) | (_, None) => None,
                },
                "split" => match (&a.split, &b.split) {
                    (Some(x), Some(y)) => Some(x.cmp(y)),
                    _ => None,
                },
                _ => unreachable!(),
            }
        };
        let null = |r: &Row| match key {
            "loss" => r.loss.is_none(),
            _ => r.split.is_none(),
        };
        match (null(a), null(b)) {
            (true, true) => a.step.cmp(&b.step),
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                let order = ordered(a, b).unwrap();
                let order = if descending { order.reverse() } else { order };
                order.then(a.step.cmp(&b.step))
            }
        }
    });
    sorted
}

#[test]
fn scan_query_sorts_counts_and_pages_like_a_naive_sort() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let (table, rows) = big_table(&store);
    for filter in ["", "epoch >= 1", "split = 'train' AND loss < 3"] {
        let selected: Vec<&Row> = rows
            .iter()
            .filter(|r| match filter {
                "" => true,
                "epoch >= 1" => r.epoch.is_some_and(|e| e >= 1),
                _ => r.split.as_deref() == Some("train") && r.loss.is_some_and(|l| l < 3.0),
            })
            .collect();
        let query = table.query().filter(filter).unwrap();
        assert_eq!(query.count().unwrap(), selected.len() as u64, "{filter}");
        assert_eq!(
            query.clone().offset(5).limit(10).count().unwrap(),
            selected.len() as u64,
            "count ignores offset and limit"
        );
        for (key, descending) in [("loss", false), ("loss", true), ("split", false)] {
            let expected: Vec<i64> = naive_sorted(&selected, key, descending)
                .iter()
                .map(|r| r.step)
                .collect();
            for (offset, limit) in [
                (0u64, Some(10u64)),
                (7, Some(100)),
                (20_000, Some(3)),
                (0, None),
            ] {
                let mut sorted = query
                    .clone()
                    .columns(&["step"])
                    .order_by(key, descending)
                    .offset(offset);
                if let Some(limit) = limit {
                    sorted = sorted.limit(limit);
                }
                let got = steps(&sorted.batches().unwrap());
                let end = limit
                    .map_or(expected.len(), |l| (offset + l) as usize)
                    .min(expected.len());
                let want = expected[(offset as usize).min(end)..end].to_vec();
                assert_eq!(
                    got, want,
                    "{filter} / {key} desc={descending} / {offset} {limit:?}"
                );
            }
        }
    }
    // Lists cannot be sorted; unknown columns are not found.
    let error = table.query().order_by("nope", false).batches().unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
}
