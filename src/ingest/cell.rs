//! One value of a text input (a JSON scalar or a CSV field) and how a column of them becomes
//! an Arrow array of a given type, exactly (see `table::convert` for the rule) or not at all.

use std::str::FromStr;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, PrimitiveBuilder, StringBuilder};
use arrow_array::timezone::Tz;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, LargeStringArray, StringArray,
};
use arrow_schema::{DataType, TimeUnit};

use crate::table::convert::{self, Inexact};

/// One scalar of the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Cell<'a> {
    /// JSON `null`, an absent key, an empty CSV field.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer (JSON numbers without fraction or exponent that fit i64 or u64).
    Int(i128),
    /// Any other JSON number.
    Float(f64),
    /// A string (every CSV field).
    Str(&'a str),
    /// A JSON list or object where a scalar is wanted: "a list", "an object".
    Nested(&'static str),
}

impl Cell<'_> {
    /// The cell as the input spelled it, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Cell::Null => "null".into(),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(v) => v.to_string(),
            Cell::Float(v) => format!("{v:?}"),
            Cell::Str(s) => {
                let mut text: String = s.chars().take(60).collect();
                if text.len() < s.len() {
                    text.push_str("...");
                }
                format!("{text:?}")
            }
            Cell::Nested(what) => (*what).into(),
        }
    }
}

/// A number spelled by `text` (integers first, then floats); a finite-looking text that
/// overflows f64 is an error.
pub(crate) fn parse_number(text: &str) -> Result<Cell<'static>, String> {
    let text = text.trim();
    if let Ok(v) = text.parse::<i128>() {
        return Ok(Cell::Int(v));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_infinite() && !convert::spells_infinity(text) => {
            Err(format!("{text:?} is beyond the range of Float64"))
        }
        Ok(v) => Ok(Cell::Float(v)),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// The cell as a number: numbers as they are, strings parsed.
fn number(cell: &Cell, to: &DataType) -> Result<Option<Cell<'static>>, String> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Int(v) => Ok(Some(Cell::Int(*v))),
        Cell::Float(v) => Ok(Some(Cell::Float(*v))),
        Cell::Str(text) => parse_number(text).map(Some),
        other => Err(format!("{} where the column holds {to}", other.describe())),
    }
}

fn integer(cell: &Cell, to: &DataType) -> Result<Option<i128>, String> {
    match number(cell, to)? {
        None => Ok(None),
        Some(Cell::Int(v)) => Ok(Some(v)),
        Some(Cell::Float(v)) => convert::f64_to_int(v)
            .map(Some)
            .ok_or_else(|| format!("{} does not fit {to} exactly", cell.describe())),
        Some(_) => unreachable!("number gives numbers"),
    }
}

fn primitive_int<T>(cells: &[Cell], to: &DataType) -> Result<ArrayRef, Inexact>
where
    T: ArrowPrimitiveType,
    T::Native: TryFrom<i128>,
{
    let mut builder = PrimitiveBuilder::<T>::with_capacity(cells.len());
    for (index, cell) in cells.iter().enumerate() {
        let value = integer(cell, to).map_err(|reason| Inexact { index, reason })?;
        match value {
            None => builder.append_null(),
            Some(v) => builder.append_value(T::Native::try_from(v).map_err(|_| Inexact {
                index,
                reason: format!("{} is out of the range of {to}", cell.describe()),
            })?),
        }
    }
    Ok(Arc::new(builder.finish().with_data_type(to.clone())))
}

fn float64(cell: &Cell, to: &DataType) -> Result<Option<f64>, String> {
    match number(cell, to)? {
        None => Ok(None),
        Some(Cell::Int(v)) => convert::int_to_f64(v)
            .map(Some)
            .ok_or_else(|| format!("{} does not fit {to} exactly", cell.describe())),
        Some(Cell::Float(v)) => Ok(Some(v)),
        Some(_) => unreachable!("number gives numbers"),
    }
}

fn float32(cell: &Cell, to: &DataType) -> Result<Option<f32>, String> {
    let beyond = || format!("{} is beyond the range of {to}", cell.describe());
    match cell {
        // Parsed straight as f32, so it is rounded once.
        Cell::Str(text) => {
            let text = text.trim();
            if let Ok(v) = text.parse::<i128>() {
                return convert::int_to_f32(v)
                    .map(Some)
                    .ok_or_else(|| format!("{} does not fit {to} exactly", cell.describe()));
            }
            match text.parse::<f32>() {
                Ok(v) if v.is_infinite() && !convert::spells_infinity(text) => Err(beyond()),
                Ok(v) => Ok(Some(v)),
                Err(_) => Err(format!("{} is not a number", cell.describe())),
            }
        }
        _ => match number(cell, to)? {
            None => Ok(None),
            Some(Cell::Int(v)) => convert::int_to_f32(v)
                .map(Some)
                .ok_or_else(|| format!("{} does not fit {to} exactly", cell.describe())),
            Some(Cell::Float(v)) => convert::f64_to_f32(v).map(Some).ok_or_else(beyond),
            Some(_) => unreachable!("number gives numbers"),
        },
    }
}

/// Nanoseconds since the epoch of a date or date-time text (RFC 3339 and the forms arrow
/// reads; no zone means `zone`, or UTC).
fn text_nanos(text: &str, zone: Option<&str>) -> Result<i128, String> {
    let tz = Tz::from_str(zone.unwrap_or("+00:00"))
        .map_err(|e| format!("the column's time zone {zone:?} is not known: {e}"))?;
    let time = arrow_cast::parse::string_to_datetime(&tz, text.trim())
        .map_err(|_| format!("{text:?} is not a date or time"))?;
    Ok(i128::from(time.timestamp()) * 1_000_000_000 + i128::from(time.timestamp_subsec_nanos()))
}

fn timestamp<T: ArrowPrimitiveType<Native = i64>>(
    cells: &[Cell],
    unit: TimeUnit,
    zone: Option<&str>,
    to: &DataType,
) -> Result<ArrayRef, Inexact> {
    let per_unit: i128 = match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    let mut builder = PrimitiveBuilder::<T>::with_capacity(cells.len());
    for (index, cell) in cells.iter().enumerate() {
        let fail = |reason: String| Inexact { index, reason };
        let value = match cell {
            Cell::Null => None,
            Cell::Str(text) if parse_number(text).is_err() => {
                let nanos = text_nanos(text, zone).map_err(fail)?;
                if nanos % per_unit != 0 {
                    return Err(fail(format!(
                        "{} is more precise than {to}",
                        cell.describe()
                    )));
                }
                Some(nanos / per_unit)
            }
            // A number counts the column's unit.
            other => integer(other, to).map_err(fail)?,
        };
        match value {
            None => builder.append_null(),
            Some(v) => {
                builder.append_value(i64::try_from(v).map_err(|_| {
                    fail(format!("{} is out of the range of {to}", cell.describe()))
                })?)
            }
        }
    }
    Ok(Arc::new(builder.finish().with_data_type(to.clone())))
}

/// A column of `cells` as an array of `to`: every non-null cell must fit exactly.
pub(crate) fn leaf_array(cells: &[Cell], to: &DataType) -> Result<ArrayRef, Inexact> {
    macro_rules! floats {
        ($type:ty, $convert:ident) => {{
            let mut builder = PrimitiveBuilder::<$type>::with_capacity(cells.len());
            for (index, cell) in cells.iter().enumerate() {
                match $convert(cell, to).map_err(|reason| Inexact { index, reason })? {
                    None => builder.append_null(),
                    Some(v) => builder.append_value(v),
                }
            }
            Ok(Arc::new(builder.finish()) as ArrayRef)
        }};
    }
    match to {
        DataType::Null => match cells.iter().position(|c| !matches!(c, Cell::Null)) {
            Some(index) => Err(Inexact {
                index,
                reason: format!(
                    "{} where the column has type Null (it held no values when the table was \
                     created, so it can hold none)",
                    cells[index].describe()
                ),
            }),
            None => Ok(arrow_array::new_null_array(to, cells.len())),
        },
        DataType::Boolean => {
            let mut builder = BooleanBuilder::with_capacity(cells.len());
            for (index, cell) in cells.iter().enumerate() {
                match cell {
                    Cell::Null => builder.append_null(),
                    Cell::Bool(b) => builder.append_value(*b),
                    Cell::Str(s) if s.trim().eq_ignore_ascii_case("true") => {
                        builder.append_value(true)
                    }
                    Cell::Str(s) if s.trim().eq_ignore_ascii_case("false") => {
                        builder.append_value(false)
                    }
                    other => {
                        return Err(Inexact {
                            index,
                            reason: format!("{} is not a boolean", other.describe()),
                        })
                    }
                }
            }
            Ok(Arc::new(builder.finish()))
        }
        DataType::Int8 => primitive_int::<Int8Type>(cells, to),
        DataType::Int16 => primitive_int::<Int16Type>(cells, to),
        DataType::Int32 => primitive_int::<Int32Type>(cells, to),
        DataType::Int64 => primitive_int::<Int64Type>(cells, to),
        DataType::UInt8 => primitive_int::<UInt8Type>(cells, to),
        DataType::UInt16 => primitive_int::<UInt16Type>(cells, to),
        DataType::UInt32 => primitive_int::<UInt32Type>(cells, to),
        DataType::UInt64 => primitive_int::<UInt64Type>(cells, to),
        DataType::Float64 => floats!(Float64Type, float64),
        DataType::Float32 => floats!(Float32Type, float32),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let mut builder = StringBuilder::with_capacity(cells.len(), 0);
            for (index, cell) in cells.iter().enumerate() {
                match cell {
                    Cell::Null => builder.append_null(),
                    Cell::Str(s) => builder.append_value(s),
                    other => {
                        return Err(Inexact {
                            index,
                            reason: format!("{} where the column holds strings", other.describe()),
                        })
                    }
                }
            }
            let strings: ArrayRef = Arc::new(builder.finish());
            convert::cast_exact(&strings, to)
        }
        DataType::Timestamp(unit, zone) => {
            let zone = zone.as_deref();
            match unit {
                TimeUnit::Second => timestamp::<TimestampSecondType>(cells, *unit, zone, to),
                TimeUnit::Millisecond => {
                    timestamp::<TimestampMillisecondType>(cells, *unit, zone, to)
                }
                TimeUnit::Microsecond => {
                    timestamp::<TimestampMicrosecondType>(cells, *unit, zone, to)
                }
                TimeUnit::Nanosecond => {
                    timestamp::<TimestampNanosecondType>(cells, *unit, zone, to)
                }
            }
        }
        DataType::Date32 => {
            let mut builder = PrimitiveBuilder::<Date32Type>::with_capacity(cells.len());
            for (index, cell) in cells.iter().enumerate() {
                let fail = |reason: String| Inexact { index, reason };
                let value = match cell {
                    Cell::Null => None,
                    Cell::Str(text) if parse_number(text).is_err() => {
                        let nanos = text_nanos(text, None).map_err(fail)?;
                        const DAY: i128 = 86_400 * 1_000_000_000;
                        if nanos % DAY != 0 {
                            return Err(fail(format!("{} is not a whole day", cell.describe())));
                        }
                        Some(nanos / DAY)
                    }
                    other => integer(other, to).map_err(fail)?,
                };
                match value {
                    None => builder.append_null(),
                    Some(v) => builder.append_value(i32::try_from(v).map_err(|_| {
                        fail(format!("{} is out of the range of {to}", cell.describe()))
                    })?),
                }
            }
            Ok(Arc::new(builder.finish()))
        }
        _ => generic(cells, to),
    }
}

/// Other types: the cells as the plain Arrow array they form (strings, integers, floats or
/// booleans), converted exactly.
fn generic(cells: &[Cell], to: &DataType) -> Result<ArrayRef, Inexact> {
    let first = cells.iter().position(|c| !matches!(c, Cell::Null));
    let Some(first) = first else {
        return Ok(arrow_array::new_null_array(to, cells.len()));
    };
    let mismatch = |index: usize| Inexact {
        index,
        reason: format!(
            "{} where the column's earlier values are of another kind ({to})",
            cells[index].describe()
        ),
    };
    let plain: ArrayRef = match cells[first] {
        Cell::Str(_) => {
            let mut values = Vec::with_capacity(cells.len());
            for (index, cell) in cells.iter().enumerate() {
                values.push(match cell {
                    Cell::Null => None,
                    Cell::Str(s) => Some(*s),
                    _ => return Err(mismatch(index)),
                });
            }
            if matches!(to, DataType::LargeUtf8) {
                Arc::new(LargeStringArray::from(values))
            } else {
                Arc::new(StringArray::from(values))
            }
        }
        Cell::Bool(_) => {
            let mut values = Vec::with_capacity(cells.len());
            for (index, cell) in cells.iter().enumerate() {
                values.push(match cell {
                    Cell::Null => None,
                    Cell::Bool(b) => Some(*b),
                    _ => return Err(mismatch(index)),
                });
            }
            Arc::new(BooleanArray::from(values))
        }
        Cell::Int(_) | Cell::Float(_) => {
            let all_int = cells.iter().all(|c| matches!(c, Cell::Null | Cell::Int(_)));
            if all_int {
                let mut values = Vec::with_capacity(cells.len());
                for (index, cell) in cells.iter().enumerate() {
                    values.push(match cell {
                        Cell::Null => None,
                        Cell::Int(v) => Some(i64::try_from(*v).map_err(|_| Inexact {
                            index,
                            reason: format!("{v} is out of the range of {to}"),
                        })?),
                        _ => return Err(mismatch(index)),
                    });
                }
                Arc::new(Int64Array::from(values))
            } else {
                let mut values = Vec::with_capacity(cells.len());
                for (index, cell) in cells.iter().enumerate() {
                    values.push(match cell {
                        Cell::Null => None,
                        Cell::Float(v) => Some(*v),
                        Cell::Int(v) => Some(convert::int_to_f64(*v).ok_or_else(|| Inexact {
                            index,
                            reason: format!("{v} does not fit {to} exactly"),
                        })?),
                        _ => return Err(mismatch(index)),
                    });
                }
                Arc::new(Float64Array::from(values))
            }
        }
        Cell::Nested(_) | Cell::Null => return Err(mismatch(first)),
    };
    convert::cast_exact(&plain, to)
}
