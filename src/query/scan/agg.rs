//! Table aggregates: what they are (`AggFunc`, the one list of functions; `Agg`, a function
//! and its column, parsed from `--agg` text) and how batches fold into them: one `Partial` per
//! aggregate and group, exact for integer columns (`min`, `max` and `sum` kept as integers,
//! a sum that does not fit an error), and `GroupKey`, a group column's value ordered as the
//! result lists groups (ascending, null last).
//!
//! `TableQuery::aggregate` (in `mod.rs`) reads the batches and builds the result columns.

use std::cmp::Ordering;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{DataType, Schema};

use super::column_filter::{kind, Kind, NumberColumn};
use crate::error::{Error, Result};

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

/// One aggregate of a [`TableQuery::aggregate`](super::TableQuery::aggregate): a function and
/// the column it reads.
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

/// One aggregate's running state for one group. An integer column fills the `int_` fields
/// (exact), any other number column the `f64` ones.
#[derive(Clone, Debug, Default)]
pub(super) struct Partial {
    pub(super) rows: u64,
    pub(super) values: u64,
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

    pub(super) fn result(&self, func: AggFunc) -> Option<f64> {
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
pub(super) fn integer_result_type(agg: &Agg, schema: &Schema) -> Option<DataType> {
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
pub(super) fn integer_results<'p>(
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
pub(super) fn min_f64(a: f64, b: f64) -> f64 {
    if a.is_nan() {
        b
    } else if b.is_nan() {
        a
    } else {
        a.min(b)
    }
}

pub(super) fn max_f64(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

pub(super) fn update_partials(
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
pub(super) fn key_type(data_type: &DataType) -> Option<DataType> {
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
pub(super) enum GroupKey {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    Null,
}

impl GroupKey {
    /// The key at `index` of `keys` (cast to a [`key_type`]).
    pub(super) fn of(keys: &ArrayRef, index: usize) -> GroupKey {
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
    pub(super) fn array<'k>(
        keys: impl Iterator<Item = &'k GroupKey>,
        key_type: &DataType,
    ) -> ArrayRef {
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
