//! Column filters over record batches: checking a parsed filter against a table's schema
//! (every column known, every value and operator fitting the column's type) and evaluating
//! it on one batch at a time with Arrow kernels and Kleene logic, numbers compared exactly.
//!
//! The text of a filter is `query::filter`'s (`parse_column_filter`); which rows a query
//! reads is `mod.rs`'s.

use std::cmp::Ordering;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Datum, Float64Array, Int64Array, RecordBatch, StringArray,
    UInt64Array,
};
use arrow_schema::{DataType, Schema};

use super::arrow_error;
use crate::error::{Error, Result};
use crate::query::filter::{self, ColumnName, CompareOp, Expr, Operand, Predicate};
use crate::value::Value;

/// How a filter sees a column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Number,
    Text,
    Bool,
    /// Lists, structs, maps (an embedding): filters cannot compare them.
    Nested,
    /// Anything else (timestamps, binary): only `IS [NOT] NULL` applies.
    Other,
}

pub(super) fn kind(data_type: &DataType) -> Kind {
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
pub(super) fn filter_columns(expr: &Expr) -> Vec<String> {
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
pub(super) fn check_filter(expr: &Expr, schema: &Schema) -> Result<()> {
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
pub(super) fn evaluate(expr: &Expr, batch: &RecordBatch) -> Result<BooleanArray> {
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
pub(super) enum NumberColumn {
    Int(Int64Array),
    UInt(UInt64Array),
    Float(Float64Array),
}

impl NumberColumn {
    pub(super) fn of(column: &ArrayRef) -> Result<NumberColumn> {
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

pub(super) fn as_f64(column: &ArrayRef) -> Result<Float64Array> {
    let numbers = arrow_cast::cast(column, &DataType::Float64).map_err(arrow_error)?;
    Ok(numbers.as_primitive::<Float64Type>().clone())
}
