//! Downsampling for plots: the selected rows of one numeric column (and optionally an x
//! column) folded into buckets of consecutive rows, each keeping its first and last row,
//! count, min, max and last value; one `Bucket` in progress, never the whole column.
//!
//! `TableQuery::downsample_with_x` (in `mod.rs`) counts the rows and feeds the batches.

use std::sync::Arc;

use arrow_array::builder::{Float64Builder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{
    Array, ArrayRef, ArrowNumericType, Float32Array, Float64Array, PrimitiveArray, RecordBatch,
};
use arrow_schema::{DataType, Field, Schema};

use super::agg::{max_f64, min_f64};
use super::column_filter::as_f64;
use super::{arrow_error, RowPositions};
use crate::error::Result;

/// A chunk of the downsampled column: `f32` as stored (no converted copy, the common case
/// for metrics), any other number type converted to `f64`.
enum Numbers {
    F32(Float32Array),
    F64(Float64Array),
}

impl Numbers {
    fn of(column: &ArrayRef) -> Result<Numbers> {
        Ok(match column.data_type() {
            DataType::Float32 => Numbers::F32(column.as_primitive::<Float32Type>().clone()),
            _ => Numbers::F64(as_f64(column)?),
        })
    }

    fn len(&self) -> usize {
        match self {
            Numbers::F32(values) => values.len(),
            Numbers::F64(values) => values.len(),
        }
    }

    /// Min, max (Arrow's kernels: NaN above every number) and the last non-null value of
    /// `take` values from `at`.
    fn min_max_last(&self, at: usize, take: usize) -> (Option<f64>, Option<f64>, Option<f64>) {
        fn stats<T: ArrowNumericType>(
            values: &PrimitiveArray<T>,
            at: usize,
            take: usize,
            to_f64: impl Fn(T::Native) -> f64,
        ) -> (Option<f64>, Option<f64>, Option<f64>) {
            let slice = values.slice(at, take);
            let last = (0..take)
                .rev()
                .find(|&i| slice.is_valid(i))
                .map(|i| to_f64(slice.value(i)));
            (
                arrow_arith::aggregate::min(&slice).map(&to_f64),
                arrow_arith::aggregate::max(&slice).map(&to_f64),
                last,
            )
        }
        match self {
            Numbers::F32(values) => stats(values, at, take, f64::from),
            Numbers::F64(values) => stats(values, at, take, |v| v),
        }
    }
}

/// One bucket being filled.
#[derive(Debug)]
struct Bucket {
    index: u64,
    first_row: u64,
    last_row: u64,
    rows: u64,
    min: Option<f64>,
    max: Option<f64>,
    last: Option<f64>,
    x_first: Option<f64>,
    x_last: Option<f64>,
}

/// Cuts `selected` rows, arriving in order, into buckets; keeps one bucket open.
pub(super) struct Downsampler {
    selected: u64,
    buckets: u64,
    with_x: bool,
    /// Rows seen so far (the ordinal of the next row).
    seen: u64,
    open: Option<Bucket>,
    index: UInt64Builder,
    first_row: UInt64Builder,
    last_row: UInt64Builder,
    count: UInt64Builder,
    min: Float64Builder,
    max: Float64Builder,
    last: Float64Builder,
    x_first: Float64Builder,
    x_last: Float64Builder,
}

impl Downsampler {
    pub(super) fn new(selected: u64, buckets: u64, with_x: bool) -> Downsampler {
        // Fewer rows than buckets: a bucket per row.
        let buckets = buckets.min(selected);
        let capacity = usize::try_from(buckets).unwrap_or(0);
        Downsampler {
            selected,
            buckets,
            with_x,
            seen: 0,
            open: None,
            index: UInt64Builder::with_capacity(capacity),
            first_row: UInt64Builder::with_capacity(capacity),
            last_row: UInt64Builder::with_capacity(capacity),
            count: UInt64Builder::with_capacity(capacity),
            min: Float64Builder::with_capacity(capacity),
            max: Float64Builder::with_capacity(capacity),
            last: Float64Builder::with_capacity(capacity),
            x_first: Float64Builder::with_capacity(capacity),
            x_last: Float64Builder::with_capacity(capacity),
        }
    }

    /// The bucket of the row with ordinal `ordinal`: `floor(ordinal * buckets / selected)`.
    fn bucket_of(&self, ordinal: u64) -> u64 {
        let bucket = u128::from(ordinal) * u128::from(self.buckets) / u128::from(self.selected);
        (bucket as u64).min(self.buckets - 1)
    }

    /// The first ordinal of `bucket`: `ceil(bucket * selected / buckets)`.
    fn bucket_start(&self, bucket: u64) -> u64 {
        let product = u128::from(bucket) * u128::from(self.selected);
        product.div_ceil(u128::from(self.buckets)) as u64
    }

    pub(super) fn add(&mut self, batch: &RecordBatch, rows: &RowPositions) -> Result<()> {
        if self.buckets == 0 {
            return Ok(());
        }
        let values = Numbers::of(batch.column(0))?;
        let x = if self.with_x {
            Some(as_f64(batch.column(1))?)
        } else {
            None
        };
        let length = values.len();
        let mut at = 0usize;
        while at < length {
            let bucket = self.bucket_of(self.seen);
            let end_ordinal = if bucket + 1 == self.buckets {
                u64::MAX
            } else {
                self.bucket_start(bucket + 1)
            };
            let take = (end_ordinal - self.seen).min((length - at) as u64) as usize;
            if self.open.as_ref().is_some_and(|open| open.index != bucket) {
                self.close();
            }
            let (min, max, last) = values.min_max_last(at, take);
            let x_at = |index: usize| {
                x.as_ref()
                    .filter(|x| x.is_valid(index))
                    .map(|x| x.value(index))
            };
            let open = self.open.get_or_insert_with(|| Bucket {
                index: bucket,
                first_row: rows.at(at),
                last_row: rows.at(at),
                rows: 0,
                min: None,
                max: None,
                last: None,
                x_first: x_at(at),
                x_last: None,
            });
            open.rows += take as u64;
            open.last_row = rows.at(at + take - 1);
            open.x_last = x_at(at + take - 1);
            if let Some(min) = min {
                open.min = Some(open.min.map_or(min, |sofar| min_f64(sofar, min)));
            }
            if let Some(max) = max {
                open.max = Some(open.max.map_or(max, |sofar| max_f64(sofar, max)));
            }
            if last.is_some() {
                open.last = last;
            }
            at += take;
            self.seen += take as u64;
        }
        Ok(())
    }

    fn close(&mut self) {
        let Some(bucket) = self.open.take() else {
            return;
        };
        self.index.append_value(bucket.index);
        self.first_row.append_value(bucket.first_row);
        self.last_row.append_value(bucket.last_row);
        self.count.append_value(bucket.rows);
        self.min.append_option(bucket.min);
        self.max.append_option(bucket.max);
        self.last.append_option(bucket.last);
        self.x_first.append_option(bucket.x_first);
        self.x_last.append_option(bucket.x_last);
    }

    pub(super) fn finish(mut self) -> Result<RecordBatch> {
        self.close();
        let mut fields = vec![
            Field::new("bucket", DataType::UInt64, false),
            Field::new("first_row", DataType::UInt64, false),
            Field::new("last_row", DataType::UInt64, false),
            Field::new("count", DataType::UInt64, false),
            Field::new("min", DataType::Float64, true),
            Field::new("max", DataType::Float64, true),
            Field::new("last", DataType::Float64, true),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.index.finish()),
            Arc::new(self.first_row.finish()),
            Arc::new(self.last_row.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.min.finish()),
            Arc::new(self.max.finish()),
            Arc::new(self.last.finish()),
        ];
        if self.with_x {
            fields.push(Field::new("x_first", DataType::Float64, true));
            fields.push(Field::new("x_last", DataType::Float64, true));
            columns.push(Arc::new(self.x_first.finish()));
            columns.push(Arc::new(self.x_last.finish()));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(arrow_error)
    }
}
