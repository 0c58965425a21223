//! Table queries: what is in a metrics or input table. A [`TableQuery`] picks columns, a row
//! range, a column filter (the run filter language over column names, see
//! [`filter::parse_column_filter`]), an offset and a limit, and then reads the rows
//! ([`TableQuery::batches`]), aggregates them, optionally grouped by a column
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
//! large appended batch) plus the result. A scan never concatenates a column; aggregates keep
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

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, ArrowNumericType, BooleanArray, Datum, Float32Array, Float64Array, Int64Array,
    PrimitiveArray, RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use super::filter::{self, ColumnName, CompareOp, Expr, Operand, Predicate};
use crate::error::{Error, Result};
use crate::table::{ScanOptions, Table};
use crate::value::Value;

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
            limit: None,
            offset: 0,
        }
    }
}

/// A query over one table, built step by step. Rows are selected in this order: the row
/// range (table row positions), then the filter, then the offset and the limit (counted in
/// rows that passed the filter, as SQL's `OFFSET` and `LIMIT`).
#[derive(Clone, Debug)]
pub struct TableQuery {
    table: Table,
    columns: Option<Vec<String>>,
    rows: Option<Range<u64>>,
    filter: Option<Expr>,
    limit: Option<u64>,
    offset: u64,
}

/// What a table aggregate computes over the rows of a table (or of a group). Not a run
/// filter's output reduction (`outputs.loss.min`, `OutputReduction`).
///
/// [`AggFunc::ALL`] is the one list of functions: the parser of `--agg` text ([`Agg`]'s
/// `FromStr`), its error text and the CLI's help are built from it and [`AggFunc::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AggFunc {
    /// Rows (without a column), or non-null values of a column.
    Count,
    /// Sum of the non-null values: of an integer column exact, as `Int64` (signed columns) or
    /// `UInt64` (unsigned), an [`Error::InvalidInput`] when the sum does not fit; of a float
    /// column as `f64`, NaN if any value is NaN.
    Sum,
    /// Mean of the non-null values, as `f64`; NaN if any value is NaN.
    Mean,
    /// Smallest non-null value: of an integer column exact, as `Int64` or `UInt64`; of a float
    /// column as `f64` (NaN only when every value is NaN, as Arrow's `min`).
    Min,
    /// Largest non-null value: of an integer column exact, as `Int64` or `UInt64`; of a float
    /// column as `f64` (NaN counts as larger than every number, as Arrow's `max`).
    Max,
}

impl AggFunc {
    /// Every function, in the order help and errors list them.
    pub const ALL: [AggFunc; 5] = [
        AggFunc::Count,
        AggFunc::Sum,
        AggFunc::Mean,
        AggFunc::Min,
        AggFunc::Max,
    ];

    /// The function's name, as `--agg` and [`Agg::output_name`] write it.
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Mean => "mean",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
        }
    }

    /// Whether the function only counts values (and so reads a column of any type, and
    /// without a column counts rows) rather than reading numbers.
    pub fn only_counts(self) -> bool {
        matches!(self, AggFunc::Count)
    }

    /// The names in [`AggFunc::ALL`] as a list for people, joined by commas and a final `or`.
    pub fn names_listed() -> String {
        let names: Vec<&str> = AggFunc::ALL.into_iter().map(AggFunc::name).collect();
        match names.split_last() {
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// The forms of aggregate text [`Agg`] parses, comma-separated, with `column` standing for
    /// the column: first the names that need no column, then `<name>:<column>` for each.
    pub fn forms_listed(column: &str) -> String {
        let without_column = AggFunc::ALL
            .into_iter()
            .filter(|func| func.only_counts())
            .map(|func| func.name().to_string());
        let with_column = AggFunc::ALL
            .into_iter()
            .map(|func| format!("{}:{column}", func.name()));
        without_column
            .chain(with_column)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One aggregate of a [`TableQuery::aggregate`]: a function and the column it reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Agg {
    /// The function.
    pub func: AggFunc,
    /// The column; `None` only for [`Agg::count`] (rows).
    pub column: Option<String>,
}

impl Agg {
    /// Rows in the group.
    pub fn count() -> Agg {
        Agg {
            func: AggFunc::Count,
            column: None,
        }
    }

    /// Non-null values of `column` in the group.
    pub fn count_of(column: &str) -> Agg {
        Agg::of(AggFunc::Count, column)
    }

    /// Sum of `column`.
    pub fn sum(column: &str) -> Agg {
        Agg::of(AggFunc::Sum, column)
    }

    /// Mean of `column`.
    pub fn mean(column: &str) -> Agg {
        Agg::of(AggFunc::Mean, column)
    }

    /// Minimum of `column`.
    pub fn min(column: &str) -> Agg {
        Agg::of(AggFunc::Min, column)
    }

    /// Maximum of `column`.
    pub fn max(column: &str) -> Agg {
        Agg::of(AggFunc::Max, column)
    }

    fn of(func: AggFunc, column: &str) -> Agg {
        Agg {
            func,
            column: Some(column.to_string()),
        }
    }

    /// The name of the result column: `count`, or `mean(loss)` and the like.
    pub fn output_name(&self) -> String {
        match &self.column {
            None => self.func.name().to_string(),
            Some(column) => format!("{}({column})", self.func.name()),
        }
    }
}

impl FromStr for Agg {
    type Err = Error;

    /// Reads one of [`AggFunc::forms_listed`] (names in any case): `count` or `<name>:<col>`.
    fn from_str(text: &str) -> Result<Agg> {
        let (name, column) = match text.split_once(':') {
            Some((name, column)) => (name.trim(), Some(column.trim())),
            None => (text.trim(), None),
        };
        let func = AggFunc::ALL
            .into_iter()
            .find(|func| func.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::InvalidInput {
                reason: format!(
                    "unknown aggregate {name:?}; expected {}",
                    AggFunc::names_listed()
                ),
            })?;
        match (func, column) {
            (func, None) if func.only_counts() => Ok(Agg { func, column: None }),
            (_, Some(column)) if !column.is_empty() => Ok(Agg::of(func, column)),
            _ => Err(Error::InvalidInput {
                reason: format!(
                    "aggregate {text:?} needs a column, as in {}:loss",
                    func.name()
                ),
            }),
        }
    }
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

// ---------------------------------------------------------------------------------------------
// Filters

/// How a filter sees a column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Number,
    Text,
    Bool,
    /// Lists, structs, maps (an embedding): filters cannot compare them.
    Nested,
    /// Anything else (timestamps, binary): only `IS [NOT] NULL` applies.
    Other,
}

fn kind(data_type: &DataType) -> Kind {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64 => Kind::Number,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Text,
        DataType::Dictionary(_, values) if kind(values) == Kind::Text => Kind::Text,
        DataType::Boolean => Kind::Bool,
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(..)
        | DataType::Struct(_)
        | DataType::Map(..)
        | DataType::Union(..) => Kind::Nested,
        _ => Kind::Other,
    }
}

fn value_kind(value: &Value) -> (Kind, String) {
    match value {
        Value::Int(int) => (Kind::Number, format!("the number {int}")),
        Value::Float(float) => (Kind::Number, format!("the number {float}")),
        Value::Str(text) => (Kind::Text, format!("the string '{text}'")),
        Value::Bool(b) => (
            Kind::Bool,
            format!("the boolean {}", b.to_string().to_uppercase()),
        ),
        other => (Kind::Other, format!("the value {other}")),
    }
}

/// Every column a filter reads, each once, in order of first appearance.
fn filter_columns(expr: &Expr) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    };
    for_each_comparison(expr, &mut |comparison| {
        if let Operand::Column(column) = &comparison.operand {
            add(&column.name);
        }
        if let Predicate::CompareColumn { other, .. } = &comparison.predicate {
            add(&other.name);
        }
        Ok(())
    })
    .unwrap_or_default();
    names
}

fn for_each_comparison(
    expr: &Expr,
    f: &mut dyn FnMut(&filter::Comparison) -> Result<()>,
) -> Result<()> {
    match expr {
        Expr::And(operands) | Expr::Or(operands) => {
            for operand in operands {
                for_each_comparison(operand, f)?;
            }
            Ok(())
        }
        Expr::Not(operand) => for_each_comparison(operand, f),
        Expr::Comparison(comparison) => f(comparison),
    }
}

/// Checks a parsed column filter against a schema: every column exists and is a scalar, and
/// every value and operator fits its column's type.
fn check_filter(expr: &Expr, schema: &Schema) -> Result<()> {
    let lookup = |column: &ColumnName| -> Result<(Kind, &DataType)> {
        let Ok(field) = schema.field_with_name(&column.name) else {
            let names = schema.fields().iter().map(|f| f.name().as_str());
            let hint = match filter::suggest(&column.name, names) {
                Some(name) => format!(" (did you mean '{name}'?)"),
                None => {
                    let names: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    format!(" (the table has {})", names.join(", "))
                }
            };
            return Err(query_error(
                column,
                format!("unknown column '{}'{hint}", column.name),
            ));
        };
        let kind = kind(field.data_type());
        if kind == Kind::Nested {
            return Err(query_error(
                column,
                format!(
                    "column '{}' holds lists or records ({}); a filter compares single values \
                     such as numbers and strings",
                    column.name,
                    field.data_type()
                ),
            ));
        }
        Ok((kind, field.data_type()))
    };
    for_each_comparison(expr, &mut |comparison| {
        let Operand::Column(column) = &comparison.operand else {
            return Err(Error::InvalidQuery {
                column: 1,
                message: "a column filter names columns only".into(),
            });
        };
        let (column_kind, data_type) = lookup(column)?;
        let fits = |value: &Value| -> Result<()> {
            let (kind, text) = value_kind(value);
            if kind == column_kind && kind != Kind::Other {
                return Ok(());
            }
            Err(query_error(
                column,
                format!(
                    "column '{}' is {data_type}; it cannot be compared with {text}",
                    column.name
                ),
            ))
        };
        match &comparison.predicate {
            Predicate::IsNull { .. } => Ok(()),
            Predicate::Compare { value, .. } => fits(value),
            Predicate::CompareWide { value, .. } => fits(&Value::Float(*value as f64)),
            Predicate::In { values, .. } => values.iter().try_for_each(fits),
            Predicate::Like { .. } if column_kind == Kind::Text => Ok(()),
            Predicate::Like { pattern, .. } => Err(query_error(
                column,
                format!(
                    "{} matches strings; column '{}' is {data_type}",
                    if pattern.is_case_insensitive() {
                        "ILIKE"
                    } else {
                        "LIKE"
                    },
                    column.name
                ),
            )),
            Predicate::CompareColumn { other, .. } => {
                let (other_kind, other_type) = lookup(other)?;
                if other_kind == column_kind && other_kind != Kind::Other {
                    return Ok(());
                }
                Err(query_error(
                    other,
                    format!(
                        "column '{}' is {data_type} and column '{}' is {other_type}; they do \
                         not compare",
                        column.name, other.name
                    ),
                ))
            }
        }
    })
}

fn query_error(column: &ColumnName, message: String) -> Error {
    Error::InvalidQuery {
        column: column.column,
        message,
    }
}

/// The filter's truth for each row of `batch`: true, false, or null for unknown.
fn evaluate(expr: &Expr, batch: &RecordBatch) -> Result<BooleanArray> {
    match expr {
        Expr::And(operands) | Expr::Or(operands) => {
            let is_and = matches!(expr, Expr::And(_));
            let mut result: Option<BooleanArray> = None;
            for operand in operands {
                let truth = evaluate(operand, batch)?;
                result = Some(match result {
                    None => truth,
                    Some(sofar) if is_and => {
                        arrow_arith::boolean::and_kleene(&sofar, &truth).map_err(arrow_error)?
                    }
                    Some(sofar) => {
                        arrow_arith::boolean::or_kleene(&sofar, &truth).map_err(arrow_error)?
                    }
                });
            }
            Ok(result.unwrap_or_else(|| BooleanArray::from(vec![is_and; batch.num_rows()])))
        }
        Expr::Not(operand) => {
            arrow_arith::boolean::not(&evaluate(operand, batch)?).map_err(arrow_error)
        }
        Expr::Comparison(comparison) => compare(comparison, batch),
    }
}

fn batch_column<'b>(batch: &'b RecordBatch, column: &ColumnName) -> Result<&'b ArrayRef> {
    batch
        .column_by_name(&column.name)
        .ok_or_else(|| query_error(column, format!("unknown column '{}'", column.name)))
}

fn compare(comparison: &filter::Comparison, batch: &RecordBatch) -> Result<BooleanArray> {
    let Operand::Column(name) = &comparison.operand else {
        return Err(Error::InvalidQuery {
            column: 1,
            message: "a column filter names columns only".into(),
        });
    };
    let column = batch_column(batch, name)?;
    match &comparison.predicate {
        Predicate::IsNull { negated: false } => {
            arrow_arith::boolean::is_null(column).map_err(arrow_error)
        }
        Predicate::IsNull { negated: true } => {
            arrow_arith::boolean::is_not_null(column).map_err(arrow_error)
        }
        Predicate::Compare { op, value } => compare_value(column, *op, value),
        Predicate::CompareWide { op, value } => {
            let numbers = NumberColumn::of(column)?;
            Ok(compare_numbers(
                *op,
                &numbers,
                |_| Number::Int(*value),
                None,
            ))
        }
        Predicate::In { values, negated } => {
            let mut result: Option<BooleanArray> = None;
            for value in values {
                let truth = compare_value(column, CompareOp::Eq, value)?;
                result = Some(match result {
                    None => truth,
                    Some(sofar) => {
                        arrow_arith::boolean::or_kleene(&sofar, &truth).map_err(arrow_error)?
                    }
                });
            }
            let result =
                result.unwrap_or_else(|| BooleanArray::from(vec![false; batch.num_rows()]));
            if *negated {
                arrow_arith::boolean::not(&result).map_err(arrow_error)
            } else {
                Ok(result)
            }
        }
        Predicate::Like { pattern, negated } => {
            let text = arrow_cast::cast(column, &DataType::Utf8).map_err(arrow_error)?;
            let kernel = match (pattern.is_case_insensitive(), *negated) {
                (false, false) => arrow_string::like::like,
                (false, true) => arrow_string::like::nlike,
                (true, false) => arrow_string::like::ilike,
                (true, true) => arrow_string::like::nilike,
            };
            // The escaped form, so that Arrow's escapes mean what the filter language's do.
            let pattern = StringArray::new_scalar(pattern.escaped());
            kernel(&text, &pattern).map_err(arrow_error)
        }
        Predicate::CompareColumn { op, other } => {
            let right = batch_column(batch, other)?;
            match kind(column.data_type()) {
                Kind::Number if is_integer(column.data_type()) || is_integer(right.data_type()) => {
                    let left = NumberColumn::of(column)?;
                    let right = NumberColumn::of(right)?;
                    Ok(compare_numbers(
                        *op,
                        &left,
                        |i| right.value(i),
                        right.nulls(),
                    ))
                }
                Kind::Number => {
                    let left = as_f64(column)?;
                    let right = as_f64(right)?;
                    let result = compare_op(*op, &left, &right)?;
                    let result = null_where_nan(result, &left)?;
                    null_where_nan(result, &right)
                }
                Kind::Text => {
                    let left = arrow_cast::cast(column, &DataType::Utf8).map_err(arrow_error)?;
                    let right = arrow_cast::cast(right, &DataType::Utf8).map_err(arrow_error)?;
                    compare_op(*op, &left, &right)
                }
                _ => compare_op(*op, column, right),
            }
        }
    }
}

fn compare_value(column: &ArrayRef, op: CompareOp, value: &Value) -> Result<BooleanArray> {
    match value {
        // The common cases run Arrow's kernels, which are exact for them.
        Value::Int(int) if column.data_type() == &DataType::Int64 => {
            compare_op(op, column, &Int64Array::new_scalar(*int))
        }
        Value::Float(float) if !is_integer(column.data_type()) => {
            let numbers = as_f64(column)?;
            let result = compare_op(op, &numbers, &Float64Array::new_scalar(*float))?;
            null_where_nan(result, &numbers)
        }
        // The rest compare exactly one by one: an integer never passes through f64.
        Value::Int(_) | Value::Float(_) => {
            let literal = match value {
                Value::Int(int) => Number::Int(i128::from(*int)),
                _ => Number::Float(value.as_f64().unwrap_or(f64::NAN)),
            };
            let numbers = NumberColumn::of(column)?;
            Ok(compare_numbers(op, &numbers, |_| literal, None))
        }
        Value::Str(text) => {
            let strings = arrow_cast::cast(column, &DataType::Utf8).map_err(arrow_error)?;
            compare_op(op, &strings, &StringArray::new_scalar(text))
        }
        Value::Bool(b) => compare_op(op, column, &BooleanArray::new_scalar(*b)),
        other => Err(Error::InvalidInput {
            reason: format!("a filter cannot compare with {other}"),
        }),
    }
}

fn compare_op(op: CompareOp, left: &dyn Datum, right: &dyn Datum) -> Result<BooleanArray> {
    use arrow_ord::cmp;
    let kernel = match op {
        CompareOp::Eq => cmp::eq,
        CompareOp::Ne => cmp::neq,
        CompareOp::Lt => cmp::lt,
        CompareOp::Le => cmp::lt_eq,
        CompareOp::Gt => cmp::gt,
        CompareOp::Ge => cmp::gt_eq,
    };
    kernel(left, right).map_err(arrow_error)
}

/// A comparison with a NaN is unknown, as in run filters (Arrow's comparisons order NaN above
/// every number instead).
fn null_where_nan(result: BooleanArray, numbers: &Float64Array) -> Result<BooleanArray> {
    let nan = BooleanArray::from_unary(numbers, f64::is_nan);
    if nan.true_count() == 0 {
        return Ok(result);
    }
    let result = arrow_select::nullif::nullif(&result, &nan).map_err(arrow_error)?;
    Ok(result.as_boolean().clone())
}

/// Whether `data_type` is one of the integer types (`Int8`..`Int64`, `UInt8`..`UInt64`).
fn is_integer(data_type: &DataType) -> bool {
    data_type.is_integer()
}

/// One number of a column or a filter, exactly: every `i64` and `u64` as an integer.
#[derive(Clone, Copy, Debug)]
enum Number {
    Int(i128),
    Float(f64),
}

/// How two numbers order, exactly (an integer is never rounded to a float); `None` when
/// either is NaN.
fn number_cmp(left: Number, right: Number) -> Option<Ordering> {
    match (left, right) {
        (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
        (Number::Int(a), Number::Float(b)) => int_float_cmp(a, b),
        (Number::Float(a), Number::Int(b)) => int_float_cmp(b, a).map(Ordering::reverse),
        (Number::Float(a), Number::Float(b)) => a.partial_cmp(&b),
    }
}

/// Compares an integer (any `i64` or `u64`) with a float without rounding either.
fn int_float_cmp(int: i128, float: f64) -> Option<Ordering> {
    // 2^100: beyond every i64 and u64, and every float of smaller magnitude truncates to an
    // i128 exactly.
    const BOUND: f64 = (1u128 << 100) as f64;
    if float.is_nan() {
        return None;
    }
    if float >= BOUND {
        return Some(Ordering::Less);
    }
    if float <= -BOUND {
        return Some(Ordering::Greater);
    }
    let whole = float.trunc();
    // In range, so the cast is exact.
    Some(int.cmp(&(whole as i128)).then_with(|| {
        // Same whole part: the float's fraction decides.
        whole.partial_cmp(&float).unwrap_or(Ordering::Equal)
    }))
}

/// A numeric column as read for exact comparison and aggregates: signed integers widened to
/// `i64`, unsigned ones to `u64`, floats to `f64` (all without loss).
enum NumberColumn {
    Int(Int64Array),
    UInt(UInt64Array),
    Float(Float64Array),
}

impl NumberColumn {
    fn of(column: &ArrayRef) -> Result<NumberColumn> {
        let data_type = column.data_type();
        Ok(if data_type.is_signed_integer() {
            let ints = arrow_cast::cast(column, &DataType::Int64).map_err(arrow_error)?;
            NumberColumn::Int(ints.as_primitive::<Int64Type>().clone())
        } else if data_type.is_unsigned_integer() {
            let ints = arrow_cast::cast(column, &DataType::UInt64).map_err(arrow_error)?;
            NumberColumn::UInt(ints.as_primitive::<UInt64Type>().clone())
        } else {
            NumberColumn::Float(as_f64(column)?)
        })
    }

    fn len(&self) -> usize {
        match self {
            NumberColumn::Int(values) => values.len(),
            NumberColumn::UInt(values) => values.len(),
            NumberColumn::Float(values) => values.len(),
        }
    }

    fn nulls(&self) -> Option<&arrow_buffer::NullBuffer> {
        match self {
            NumberColumn::Int(values) => values.nulls(),
            NumberColumn::UInt(values) => values.nulls(),
            NumberColumn::Float(values) => values.nulls(),
        }
    }

    /// The value at `index` (whatever is under a null).
    fn value(&self, index: usize) -> Number {
        match self {
            NumberColumn::Int(values) => Number::Int(i128::from(values.value(index))),
            NumberColumn::UInt(values) => Number::Int(i128::from(values.value(index))),
            NumberColumn::Float(values) => Number::Float(values.value(index)),
        }
    }
}

/// `left op right` row by row, exactly: null where either side is null or NaN (unknown).
fn compare_numbers(
    op: CompareOp,
    left: &NumberColumn,
    right: impl Fn(usize) -> Number,
    right_nulls: Option<&arrow_buffer::NullBuffer>,
) -> BooleanArray {
    let is_null = |nulls: Option<&arrow_buffer::NullBuffer>, i: usize| {
        nulls.is_some_and(|nulls| nulls.is_null(i))
    };
    (0..left.len())
        .map(|i| {
            if is_null(left.nulls(), i) || is_null(right_nulls, i) {
                return None;
            }
            let ordering = number_cmp(left.value(i), right(i))?;
            Some(match op {
                CompareOp::Eq => ordering == Ordering::Equal,
                CompareOp::Ne => ordering != Ordering::Equal,
                CompareOp::Lt => ordering == Ordering::Less,
                CompareOp::Le => ordering != Ordering::Greater,
                CompareOp::Gt => ordering == Ordering::Greater,
                CompareOp::Ge => ordering != Ordering::Less,
            })
        })
        .collect()
}

fn as_f64(column: &ArrayRef) -> Result<Float64Array> {
    let numbers = arrow_cast::cast(column, &DataType::Float64).map_err(arrow_error)?;
    Ok(numbers.as_primitive::<Float64Type>().clone())
}

// ---------------------------------------------------------------------------------------------
// Aggregates

/// One aggregate's running state for one group. An integer column fills the `int_` fields
/// (exact), any other number column the `f64` ones.
#[derive(Clone, Debug, Default)]
struct Partial {
    rows: u64,
    values: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    int_sum: i128,
    int_min: Option<i128>,
    int_max: Option<i128>,
}

impl Partial {
    /// Folds in the non-null values of an integer column (and `rows` rows), exactly.
    fn add_integers(&mut self, rows: usize, integers: impl Iterator<Item = i128>) {
        self.rows += rows as u64;
        for integer in integers {
            self.values += 1;
            // An i128 holds the sum of 2^63 u64s; saturating only marks the impossible.
            self.int_sum = self.int_sum.saturating_add(integer);
            self.int_min = Some(self.int_min.map_or(integer, |sofar| sofar.min(integer)));
            self.int_max = Some(self.int_max.map_or(integer, |sofar| sofar.max(integer)));
        }
    }

    /// The exact result of `sum`, `min` or `max` over an integer column.
    fn int_result(&self, func: AggFunc) -> Option<i128> {
        match func {
            AggFunc::Sum => (self.values > 0).then_some(self.int_sum),
            AggFunc::Min => self.int_min,
            AggFunc::Max => self.int_max,
            AggFunc::Count | AggFunc::Mean => None,
        }
    }

    /// Folds in the non-null values of `numbers` (and `rows` rows).
    fn add(&mut self, rows: usize, numbers: Option<&Float64Array>) {
        self.rows += rows as u64;
        let Some(numbers) = numbers else {
            return;
        };
        self.values += (numbers.len() - numbers.null_count()) as u64;
        self.sum += arrow_arith::aggregate::sum(numbers).unwrap_or(0.0);
        if let Some(min) = arrow_arith::aggregate::min(numbers) {
            self.min = Some(self.min.map_or(min, |sofar| min_f64(sofar, min)));
        }
        if let Some(max) = arrow_arith::aggregate::max(numbers) {
            self.max = Some(self.max.map_or(max, |sofar| max_f64(sofar, max)));
        }
    }

    fn result(&self, func: AggFunc) -> Option<f64> {
        match func {
            AggFunc::Count => Some(self.values as f64),
            AggFunc::Sum => (self.values > 0).then_some(self.sum),
            // One of the two sums is zero: the column's values went to the other.
            AggFunc::Mean => {
                (self.values > 0).then(|| (self.sum + self.int_sum as f64) / self.values as f64)
            }
            AggFunc::Min => self.min,
            AggFunc::Max => self.max,
        }
    }
}

/// The type of an exact aggregate (`sum`, `min`, `max`) of an integer column: `Int64` for
/// signed columns, `UInt64` for unsigned ones; `None` for every other aggregate.
fn integer_result_type(agg: &Agg, schema: &Schema) -> Option<DataType> {
    if !matches!(agg.func, AggFunc::Sum | AggFunc::Min | AggFunc::Max) {
        return None;
    }
    let data_type = schema
        .field_with_name(agg.column.as_deref()?)
        .ok()?
        .data_type();
    if data_type.is_signed_integer() {
        Some(DataType::Int64)
    } else if data_type.is_unsigned_integer() {
        Some(DataType::UInt64)
    } else {
        None
    }
}

/// One exact aggregate's column over the groups' partials; a sum outside `data_type` is an
/// error naming it, never a wrapped or rounded number.
fn integer_results<'p>(
    agg: &Agg,
    data_type: DataType,
    partials: impl Iterator<Item = &'p Partial>,
) -> Result<(ArrayRef, DataType)> {
    let results = partials.map(|partial| partial.int_result(agg.func));
    let overflow = |value: i128| Error::InvalidInput {
        reason: format!(
            "{} is {value}, which does not fit in {data_type}; mean:{} gives the average as a \
             float",
            agg.output_name(),
            agg.column.as_deref().unwrap_or_default()
        ),
    };
    let array: ArrayRef = if data_type == DataType::Int64 {
        let values = results
            .map(|result| {
                result
                    .map(|v| i64::try_from(v).map_err(|_| overflow(v)))
                    .transpose()
            })
            .collect::<Result<Int64Array>>()?;
        Arc::new(values)
    } else {
        let values = results
            .map(|result| {
                result
                    .map(|v| u64::try_from(v).map_err(|_| overflow(v)))
                    .transpose()
            })
            .collect::<Result<UInt64Array>>()?;
        Arc::new(values)
    };
    Ok((array, data_type))
}

/// Arrow's order for floats: NaN above every number.
fn min_f64(a: f64, b: f64) -> f64 {
    if a.is_nan() {
        b
    } else if b.is_nan() {
        a
    } else {
        a.min(b)
    }
}

fn max_f64(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn update_partials(
    partials: &mut [Partial],
    aggs: &[Agg],
    value_columns: &[usize],
    batch: &RecordBatch,
    rows: Range<usize>,
) -> Result<()> {
    let length = rows.end - rows.start;
    for ((partial, agg), &at) in partials.iter_mut().zip(aggs).zip(value_columns) {
        if agg.column.is_none() {
            partial.add(length, None);
            continue;
        }
        let column = batch.column(at).slice(rows.start, length);
        if agg.func.only_counts() {
            partial.rows += length as u64;
            partial.values += (column.len() - column.null_count()) as u64;
            continue;
        }
        match NumberColumn::of(&column)? {
            NumberColumn::Int(ints) => {
                partial.add_integers(length, ints.iter().flatten().map(i128::from));
            }
            NumberColumn::UInt(ints) => {
                partial.add_integers(length, ints.iter().flatten().map(i128::from));
            }
            NumberColumn::Float(numbers) => partial.add(length, Some(&numbers)),
        }
    }
    Ok(())
}

/// The type group keys are read as: one per family, so that keys compare within it.
fn key_type(data_type: &DataType) -> Option<DataType> {
    Some(match data_type {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => DataType::Int64,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            DataType::UInt64
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
        DataType::Boolean => DataType::Boolean,
        DataType::Timestamp(..) | DataType::Date64 | DataType::Date32 => DataType::Int64,
        _ if kind(data_type) == Kind::Text => DataType::Utf8,
        _ => return None,
    })
}

/// One group's key. Keys of one query are all of one family (or null); null sorts last.
#[derive(Clone, Debug)]
enum GroupKey {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    Null,
}

impl GroupKey {
    /// The key at `index` of `keys` (cast to a [`key_type`]).
    fn of(keys: &ArrayRef, index: usize) -> GroupKey {
        if keys.is_null(index) {
            return GroupKey::Null;
        }
        match keys.data_type() {
            DataType::Boolean => GroupKey::Bool(keys.as_boolean().value(index)),
            DataType::Int64 => GroupKey::Int(keys.as_primitive::<Int64Type>().value(index)),
            DataType::UInt64 => GroupKey::UInt(keys.as_primitive::<UInt64Type>().value(index)),
            DataType::Float64 => {
                let float = keys.as_primitive::<Float64Type>().value(index);
                // One NaN group, whatever the NaN's bits.
                GroupKey::Float(if float.is_nan() { f64::NAN } else { float })
            }
            _ => GroupKey::Text(keys.as_string::<i32>().value(index).to_string()),
        }
    }

    /// The keys as one array of `key_type`.
    fn array<'k>(keys: impl Iterator<Item = &'k GroupKey>, key_type: &DataType) -> ArrayRef {
        match key_type {
            DataType::Boolean => Arc::new(
                keys.map(|k| match k {
                    GroupKey::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect::<BooleanArray>(),
            ),
            DataType::Int64 => Arc::new(
                keys.map(|k| match k {
                    GroupKey::Int(i) => Some(*i),
                    _ => None,
                })
                .collect::<Int64Array>(),
            ),
            DataType::UInt64 => Arc::new(
                keys.map(|k| match k {
                    GroupKey::UInt(u) => Some(*u),
                    _ => None,
                })
                .collect::<UInt64Array>(),
            ),
            DataType::Float64 => Arc::new(
                keys.map(|k| match k {
                    GroupKey::Float(f) => Some(*f),
                    _ => None,
                })
                .collect::<Float64Array>(),
            ),
            _ => Arc::new(
                keys.map(|k| match k {
                    GroupKey::Text(text) => Some(text.as_str()),
                    _ => None,
                })
                .collect::<StringArray>(),
            ),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            GroupKey::Bool(_) => 0,
            GroupKey::Int(_) => 1,
            GroupKey::UInt(_) => 2,
            GroupKey::Float(_) => 3,
            GroupKey::Text(_) => 4,
            GroupKey::Null => 5,
        }
    }
}

impl Ord for GroupKey {
    fn cmp(&self, other: &GroupKey) -> Ordering {
        match (self, other) {
            (GroupKey::Bool(a), GroupKey::Bool(b)) => a.cmp(b),
            (GroupKey::Int(a), GroupKey::Int(b)) => a.cmp(b),
            (GroupKey::UInt(a), GroupKey::UInt(b)) => a.cmp(b),
            (GroupKey::Float(a), GroupKey::Float(b)) => a.total_cmp(b),
            (GroupKey::Text(a), GroupKey::Text(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &GroupKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for GroupKey {
    fn eq(&self, other: &GroupKey) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for GroupKey {}

// ---------------------------------------------------------------------------------------------
// Downsampling

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
struct Downsampler {
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
    fn new(selected: u64, buckets: u64, with_x: bool) -> Downsampler {
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

    fn add(&mut self, batch: &RecordBatch, rows: &RowPositions) -> Result<()> {
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

    fn finish(mut self) -> Result<RecordBatch> {
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
