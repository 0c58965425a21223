//! Table queries: what is in a metrics or input table. A [`TableQuery`] picks columns, a row
//! range, a column filter (the run filter language over column names, see
//! [`filter::parse_column_filter`]), a sort column, an offset and a limit, and then counts the
//! rows ([`TableQuery::count`]), reads them ([`TableQuery::batches`]), aggregates them, optionally grouped by a column
//! ([`TableQuery::aggregate`]), or downsamples one column into buckets for plotting
//! ([`TableQuery::downsample`]).
//!
//! This module owns the meaning of a column filter over record batches and the aggregates; it
//! leaves reading to `Table::scan_with` (one snapshot, zero-copy batches chunk by chunk) and
//! the text of filters to [`filter`]. Every computation is an Arrow compute kernel over one
//! batch at a time (comparisons, `like`, Kleene logic, `filter`, `sort_to_indices`, `take`,
//! `partition`, `min`, `max`, `sum`, `cast`).
//!
//! The invariant it keeps: memory is bounded by one chunk (at most `SEAL_ROWS` rows, or a
//! large appended batch) plus the result. A scan never concatenates a column (a sorted read
//! holds its candidates, at most twice the rows it returns); aggregates keep
//! one partial per group and downsampling one per bucket.
//!
//! Filters use SQL's three-valued logic as run filters do: a comparison with a null or NaN is
//! unknown, `AND`/`OR`/`NOT` combine unknowns as SQL does (Arrow's `and_kleene`, `or_kleene`,
//! `not`), and a row passes only when the filter is true. Unlike run parameters, a column has
//! one type, so a value that cannot fit it (a string against a float column, `LIKE` on a
//! number) is an [`Error::InvalidQuery`] pointing at the column's name, not a silent false.
//! Numbers compare exactly: an integer column against an integer or a float, or two columns of
//! any number types, never round an integer to `f64` (as `runs --filter` does); strings,
//! dictionary-encoded strings and booleans compare as themselves. Aggregates of integer
//! columns are exact too: `min`, `max` and `sum` keep the column's integers (`Int64` or
//! `UInt64`), and a sum that does not fit is an error rather than a rounded number.
//!
//! Its parts: this file holds the query (`TableQuery`: building it, choosing rows, and the
//! three reads: batches, aggregates, downsampling); `column_filter` checks a column filter
//! against a schema and evaluates it per batch; `agg` defines the aggregates (`AggFunc`,
//! `Agg`) and folds batches into per-group partial results; `downsample` folds batches into
//! buckets; `order` reads the rows sorted.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, UInt64Array};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use super::filter::{self, Expr};
use crate::error::{Error, Result};
use crate::table::{ScanOptions, Table};

mod agg;
mod column_filter;
mod downsample;
mod order;

use agg::{integer_result_type, integer_results, key_type, update_partials, GroupKey, Partial};
pub use agg::{Agg, AggFunc};
use column_filter::{check_filter, evaluate, filter_columns, kind, Kind};
use downsample::Downsampler;
use order::Order;

/// Most buckets a downsampled read may ask for: a plot is a few thousand pixels wide, and this
/// bounds the result (eight `f64`-sized columns per bucket, 64 MiB at most).
pub const DOWNSAMPLE_BUCKETS_MAX: usize = 1 << 20;

impl Table {
    /// A query over this table; see [`TableQuery`].
    ///
    /// ```no_run
    /// # fn main() -> runstore::Result<()> {
    /// # let store = runstore::Store::open_read_only("exp.runs")?;
    /// use runstore::Agg;
    /// let table = store.table("mnist/runs/baseline/metrics_0000")?;
    /// let rows = table.query().columns(&["epoch", "loss"]).filter("loss < 0.5")?.limit(100).batches()?;
    /// let per_epoch = table.query().aggregate(Some("epoch"), &[Agg::mean("loss"), Agg::count()])?;
    /// let plot = table.query().downsample("loss", 1000)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn query(&self) -> TableQuery {
        TableQuery {
            table: self.clone(),
            columns: None,
            rows: None,
            filter: None,
            order: None,
            limit: None,
            offset: 0,
        }
    }
}

/// A query over one table, built step by step. Rows are selected in this order: the row
/// range (table row positions), then the filter, then the sort (when asked for), then the
/// offset and the limit (counted in rows that passed the filter, as SQL's `OFFSET` and
/// `LIMIT`).
#[derive(Clone, Debug)]
pub struct TableQuery {
    table: Table,
    columns: Option<Vec<String>>,
    rows: Option<Range<u64>>,
    filter: Option<Expr>,
    order: Option<Order>,
    limit: Option<u64>,
    offset: u64,
}

impl TableQuery {
    /// Only these columns, in this order (default: all). Filter columns need not be among them.
    pub fn columns(mut self, columns: &[&str]) -> TableQuery {
        self.columns = Some(columns.iter().map(|c| c.to_string()).collect());
        self
    }

    /// Only rows at these positions of the table (before the filter).
    pub fn rows(mut self, rows: Range<u64>) -> TableQuery {
        self.rows = Some(rows);
        self
    }

    /// Only rows the column filter selects, e.g. `loss < 0.5 AND predicted != label`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQuery`] with the 1-based column of the offending token: a parse error,
    /// an unknown column (with a suggestion), a value or operator that does not fit the
    /// column's type, or a list column (an embedding), which filters cannot compare.
    pub fn filter(mut self, text: &str) -> Result<TableQuery> {
        let expr = filter::parse_column_filter(text).map_err(|error| Error::InvalidQuery {
            column: error.column,
            message: error.message,
        })?;
        if let Some(expr) = &expr {
            check_filter(expr, &*self.table.schema()?)?;
        }
        self.filter = expr;
        Ok(self)
    }

    /// Rows sorted by `column` (ascending, or descending), nulls last and ties in table order,
    /// before the offset and the limit apply. Only [`TableQuery::batches`] sorts; the sort
    /// column need not be among the chosen columns.
    ///
    /// Memory: besides the result, the sort holds a key and a position for up to twice
    /// `offset + limit` rows (every selected row without a limit).
    ///
    /// # Errors
    ///
    /// None here; [`TableQuery::batches`] reports an unknown column ([`Error::NotFound`]) or
    /// one that cannot be sorted (a list, a struct: [`Error::InvalidInput`]).
    pub fn order_by(mut self, column: &str, descending: bool) -> TableQuery {
        self.order = Some(Order {
            column: column.to_string(),
            descending,
        });
        self
    }

    /// At most this many rows (after the filter and the offset).
    pub fn limit(mut self, limit: u64) -> TableQuery {
        self.limit = Some(limit);
        self
    }

    /// Skip this many rows that pass the filter first.
    pub fn offset(mut self, offset: u64) -> TableQuery {
        self.offset = offset;
        self
    }

    /// The schema of [`TableQuery::batches`]: the chosen columns of the table.
    pub fn schema(&self) -> Result<SchemaRef> {
        let schema = self.table.schema()?;
        let Some(columns) = &self.columns else {
            return Ok(schema);
        };
        let indices = columns
            .iter()
            .map(|name| column_index(&schema, name, self.table.url()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(schema.project(&indices).map_err(arrow_error)?))
    }

    /// The selected rows, as record batches (one per chunk or tail entry that has any).
    /// Without a filter, fixed-width buffers of sealed chunks point into the file's mapping.
    pub fn batches(&self) -> Result<Vec<RecordBatch>> {
        if let Some(order) = &self.order {
            let batch = self.sorted_batch(order)?;
            return Ok(if batch.num_rows() == 0 {
                Vec::new()
            } else {
                vec![batch]
            });
        }
        let schema = self.schema()?;
        let needed: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let range = self.range()?;
        let mut out = Vec::new();
        self.visit(&needed, range, false, &mut |batch, _| {
            out.push(batch.clone());
            Ok(true)
        })?;
        Ok(out)
    }

    /// How many rows the row range and the filter select, before the offset and the limit
    /// (SQL's `COUNT(*)` of the query without them). Without a filter this reads no column.
    pub fn count(&self) -> Result<u64> {
        let mut all = self.clone();
        all.offset = 0;
        all.limit = None;
        let range = all.range()?;
        if all.filter.is_none() {
            return Ok(range.end - range.start);
        }
        let mut count = 0u64;
        all.visit(&[], range, false, &mut |batch, _| {
            count += batch.num_rows() as u64;
            Ok(true)
        })?;
        Ok(count)
    }

    /// Aggregates of the selected rows, one row per group: the group column first (when
    /// `group_by` is given; groups ascending, null last), then one column per aggregate named
    /// by [`Agg::output_name`] (`count` as `UInt64`, `sum`, `min` and `max` of an integer
    /// column as `Int64` or `UInt64` (exact), the others `Float64`; null for a group without
    /// values). Without `group_by` there is exactly one row, even when no row is
    /// selected. Memory holds one partial result per group.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown column; [`Error::InvalidInput`] for an aggregate other
    /// than `count` of a non-numeric column, a sum of integers beyond `Int64` (`UInt64` for an
    /// unsigned column), or a group column of a type that cannot be a key
    /// (lists, structs, binary).
    pub fn aggregate(&self, group_by: Option<&str>, aggs: &[Agg]) -> Result<RecordBatch> {
        let schema = self.table.schema()?;
        let mut needed: Vec<String> = Vec::new();
        let key_field = match group_by {
            Some(name) => {
                let field = schema.field(column_index(&schema, name, self.table.url())?);
                let key_type = key_type(field.data_type()).ok_or_else(|| Error::InvalidInput {
                    reason: format!(
                        "cannot group by column {name} of type {}",
                        field.data_type()
                    ),
                })?;
                needed.push(name.to_string());
                Some((field.clone(), key_type))
            }
            None => None,
        };
        let mut value_columns: Vec<usize> = Vec::with_capacity(aggs.len());
        for agg in aggs {
            let Some(column) = &agg.column else {
                value_columns.push(usize::MAX);
                continue;
            };
            let field = schema.field(column_index(&schema, column, self.table.url())?);
            if !agg.func.only_counts() && kind(field.data_type()) != Kind::Number {
                return Err(Error::InvalidInput {
                    reason: format!(
                        "{} needs a numeric column; {column} is {}",
                        agg.output_name(),
                        field.data_type()
                    ),
                });
            }
            let at = match needed.iter().position(|n| n == column) {
                Some(at) => at,
                None => {
                    needed.push(column.clone());
                    needed.len() - 1
                }
            };
            value_columns.push(at);
        }
        let mut groups: BTreeMap<GroupKey, Vec<Partial>> = BTreeMap::new();
        if key_field.is_none() {
            groups.insert(GroupKey::Null, vec![Partial::default(); aggs.len()]);
        }
        let range = self.range()?;
        self.visit(&needed, range, false, &mut |batch, _| {
            let rows = batch.num_rows();
            let Some((_, key_type)) = &key_field else {
                let partials = groups.entry(GroupKey::Null).or_default();
                update_partials(partials, aggs, &value_columns, batch, 0..rows)?;
                return Ok(true);
            };
            // Sort the batch by the key so that each group is one run of rows.
            let indices = arrow_ord::sort::sort_to_indices(batch.column(0), None, None)
                .map_err(arrow_error)?;
            let sorted =
                arrow_select::take::take_record_batch(batch, &indices).map_err(arrow_error)?;
            let keys = arrow_cast::cast(sorted.column(0), key_type).map_err(arrow_error)?;
            let ranges = arrow_ord::partition::partition(std::slice::from_ref(&keys))
                .map_err(arrow_error)?
                .ranges();
            for range in ranges {
                let key = GroupKey::of(&keys, range.start);
                let partials = groups
                    .entry(key)
                    .or_insert_with(|| vec![Partial::default(); aggs.len()]);
                update_partials(partials, aggs, &value_columns, &sorted, range)?;
            }
            Ok(true)
        })?;

        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        if let Some((field, key_type)) = &key_field {
            let keys = GroupKey::array(groups.keys(), key_type);
            let keys = arrow_cast::cast(&keys, field.data_type()).map_err(arrow_error)?;
            fields.push(Field::new(field.name(), field.data_type().clone(), true));
            columns.push(keys);
        }
        for (i, agg) in aggs.iter().enumerate() {
            let partials = groups.values().map(|partials| &partials[i]);
            if agg.func.only_counts() {
                let counts: UInt64Array = partials
                    .map(|p| {
                        Some(if agg.column.is_some() {
                            p.values
                        } else {
                            p.rows
                        })
                    })
                    .collect();
                fields.push(Field::new(agg.output_name(), DataType::UInt64, false));
                columns.push(Arc::new(counts));
            } else if let Some(integer_type) = integer_result_type(agg, &schema) {
                let (array, data_type) = integer_results(agg, integer_type, partials)?;
                fields.push(Field::new(agg.output_name(), data_type, true));
                columns.push(array);
            } else {
                let values: Float64Array = partials.map(|p| p.result(agg.func)).collect();
                fields.push(Field::new(agg.output_name(), DataType::Float64, true));
                columns.push(Arc::new(values));
            }
        }
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(groups.len()));
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
            .map_err(arrow_error)
    }

    /// A downsampled read of one numeric column for plotting: the selected rows are cut into
    /// `buckets` runs of consecutive rows of (nearly) equal size, and each bucket gives
    /// `bucket`, `first_row` and `last_row` (table row positions), `count` (rows), and `min`,
    /// `max` and `last` of the column's non-null values (as `f64`; null when the bucket has
    /// none). With fewer selected rows than buckets each row is its own bucket.
    ///
    /// Reads one chunk at a time, never the whole column; with a filter it reads the filter's
    /// columns twice, first to count the rows that pass.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for zero buckets, more than [`DOWNSAMPLE_BUCKETS_MAX`], or a
    /// non-numeric column; [`Error::NotFound`] for an unknown column.
    pub fn downsample(&self, column: &str, buckets: usize) -> Result<RecordBatch> {
        self.downsample_with_x(column, None, buckets)
    }

    /// [`TableQuery::downsample`] with an x column (a step, say): two more columns, `x_first`
    /// and `x_last`, give its value (as `f64`) at each bucket's first and last row.
    pub fn downsample_with_x(
        &self,
        column: &str,
        x: Option<&str>,
        buckets: usize,
    ) -> Result<RecordBatch> {
        if buckets == 0 || buckets > DOWNSAMPLE_BUCKETS_MAX {
            return Err(Error::InvalidInput {
                reason: format!(
                    "{buckets} buckets; a downsampled read takes 1 to {DOWNSAMPLE_BUCKETS_MAX}"
                ),
            });
        }
        let schema = self.table.schema()?;
        let mut needed = vec![column.to_string()];
        needed.extend(x.map(str::to_string));
        for name in &needed {
            let field = schema.field(column_index(&schema, name, self.table.url())?);
            if kind(field.data_type()) != Kind::Number {
                return Err(Error::InvalidInput {
                    reason: format!(
                        "a downsampled read needs numeric columns; {name} is {}",
                        field.data_type()
                    ),
                });
            }
        }
        // One range for both passes: rows below the count seen here never change, so the
        // count and the buckets agree even while a writer appends.
        let range = self.range()?;
        let selected = if self.filter.is_none() {
            range.end - range.start
        } else {
            let mut count = 0u64;
            self.visit(&[], range.clone(), false, &mut |batch, _| {
                count += batch.num_rows() as u64;
                Ok(true)
            })?;
            count
        };
        let mut sampler = Downsampler::new(selected, buckets as u64, x.is_some());
        self.visit(&needed, range, true, &mut |batch, rows| {
            sampler.add(batch, rows)?;
            Ok(true)
        })?;
        sampler.finish()
    }

    /// The row range to scan: the asked-for range within the table's rows; without a filter
    /// the offset and the limit narrow it too.
    fn range(&self) -> Result<Range<u64>> {
        let total = self.table.row_count()?;
        let rows = self.rows.clone().unwrap_or(0..total);
        let mut range = rows.start.min(total)..rows.end.min(total).max(rows.start.min(total));
        if self.filter.is_none() {
            range.start = range.start.saturating_add(self.offset).min(range.end);
            if let Some(limit) = self.limit {
                range.end = range.end.min(range.start.saturating_add(limit));
            }
        }
        Ok(range)
    }

    /// Calls `visit` with each non-empty batch of selected rows, holding the `needed` columns
    /// in that order, and their table row positions (`rows`: the first position and, when
    /// `want_rows` and a filter is set, every position). Stops when `visit` returns false.
    fn visit(
        &self,
        needed: &[String],
        range: Range<u64>,
        want_rows: bool,
        visit: &mut dyn FnMut(&RecordBatch, &RowPositions) -> Result<bool>,
    ) -> Result<()> {
        let mut read: Vec<String> = needed.to_vec();
        if let Some(expr) = &self.filter {
            for name in filter_columns(expr) {
                if !read.contains(&name) {
                    read.push(name);
                }
            }
        }
        let batches = self.table.scan_with(&ScanOptions {
            columns: Some(read),
            rows: Some(range.clone()),
        })?;
        let (mut skip, mut left) = match self.filter {
            Some(_) => (self.offset, self.limit),
            None => (0, None),
        };
        let keep: Vec<usize> = (0..needed.len()).collect();
        let mut first_row = range.start;
        for batch in batches {
            if left == Some(0) {
                break;
            }
            let start = first_row;
            first_row += batch.num_rows() as u64;
            let (batch, positions) = match &self.filter {
                None => (batch, None),
                Some(expr) => {
                    let mask = evaluate(expr, &batch)?;
                    let filtered = arrow_select::filter::filter_record_batch(&batch, &mask)
                        .map_err(arrow_error)?;
                    let positions = if want_rows {
                        let all = UInt64Array::from_iter_values(start..first_row);
                        let kept =
                            arrow_select::filter::filter(&all, &mask).map_err(arrow_error)?;
                        Some(kept.as_primitive::<UInt64Type>().clone())
                    } else {
                        None
                    };
                    (filtered, positions)
                }
            };
            let rows = batch.num_rows() as u64;
            let from = skip.min(rows);
            skip -= from;
            let take = left.map_or(rows - from, |left| left.min(rows - from));
            if let Some(left) = &mut left {
                *left -= take;
            }
            if take == 0 {
                continue;
            }
            let (from, take) = (from as usize, take as usize);
            let batch = batch
                .slice(from, take)
                .project(&keep)
                .map_err(arrow_error)?;
            let rows = match positions {
                Some(positions) => RowPositions::Listed(positions.slice(from, take)),
                None => RowPositions::From(start + from as u64),
            };
            if !visit(&batch, &rows)? {
                break;
            }
        }
        Ok(())
    }
}

/// Table row positions of a batch of selected rows.
enum RowPositions {
    /// Consecutive, from this position.
    From(u64),
    /// One per row.
    Listed(UInt64Array),
}

impl RowPositions {
    fn at(&self, index: usize) -> u64 {
        match self {
            RowPositions::From(first) => first + index as u64,
            RowPositions::Listed(positions) => positions.value(index),
        }
    }
}

fn arrow_error(error: ArrowError) -> Error {
    Error::InvalidInput {
        reason: error.to_string(),
    }
}

fn column_index(schema: &Schema, name: &str, url: &str) -> Result<usize> {
    schema.index_of(name).map_err(|_| Error::NotFound {
        what: format!("column {name} of table {url}"),
    })
}
