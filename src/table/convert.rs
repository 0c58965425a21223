//! Exact conversion of user values to a column's type: the one place the append paths
//! (`runstore append`, `ingest`, overrides of `add_metrics_data`, `MetricsWriter::append_row`)
//! turn a number, string or array into another type.
//!
//! arrow-cast's `cast` truncates (1.9 to 1), saturates (1e300 to inf in a Float32) or, with
//! safe options, turns what does not convert into null. Here a value converts only when it
//! fits; otherwise the caller gets the index of the first value that does not, with a reason.
//!
//! The rule ("fits"):
//! - an integer fits an integer type whose range holds it, and a float type that represents it
//!   exactly (2^53 + 1 does not fit Float64, 2^24 + 1 not Float32);
//! - a float fits an integer type only when it is finite, has no fraction and is in range;
//! - a float fits a narrower float type (Float64 into Float32 or Float16) when it does not
//!   overflow: it is rounded to the nearest value of the narrower type (0.1 becomes the f32
//!   nearest 0.1, a tiny value may round to 0), but a finite value beyond the type's largest
//!   (1e39 into Float32) is an error; NaN and the infinities stay what they are;
//! - a string fits a number type when it spells a value that fits by the rules above ("2.7"
//!   does not fit Int64; "1e400" does not fit Float64, "inf" and "NaN" do);
//! - nothing but null fits the Null type;
//! - any other conversion must survive the round trip: converting the result back gives the
//!   value it started from (a nanosecond timestamp into a microsecond column must be a whole
//!   microsecond).

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{new_null_array, Array, ArrayRef};
use arrow_schema::DataType;

/// The first value of an array that does not convert exactly, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inexact {
    /// Index (from 0) of the value in the array converted.
    pub index: usize,
    /// What does not fit, e.g. "1.9 does not fit Int32 exactly".
    pub reason: String,
}

/// `array` converted to `to`, only when every value fits (see the module docs).
pub fn cast_exact(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, Inexact> {
    if array.data_type() == to {
        return Ok(array.clone());
    }
    if to == &DataType::Null {
        return match (0..array.len()).find(|&i| array.is_valid(i)) {
            Some(index) => Err(Inexact {
                index,
                reason: format!(
                    "{} where the column has type Null (it held no values when the table was \
                     created, so it can hold none)",
                    display(array.as_ref(), index)
                ),
            }),
            None => Ok(new_null_array(to, array.len())),
        };
    }
    if array.null_count() == array.len() {
        return Ok(new_null_array(to, array.len()));
    }
    let options = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    let cast = arrow_cast::cast_with_options(array, to, &options).map_err(|e| {
        let index = first_failing(array, to, &options).unwrap_or(0);
        Inexact {
            index,
            reason: format!(
                "{} does not convert to {to}: {e}",
                display(array.as_ref(), index)
            ),
        }
    })?;
    check_exact(array.as_ref(), cast.as_ref())?;
    Ok(cast)
}

/// The index of the first value that fails to cast on its own.
fn first_failing(
    array: &ArrayRef,
    to: &DataType,
    options: &arrow_cast::CastOptions,
) -> Option<usize> {
    (0..array.len())
        .find(|&i| arrow_cast::cast_with_options(&array.slice(i, 1), to, options).is_err())
}

/// Checks that `to` (a cast of `from`) holds the same values, by the module's rule.
fn check_exact(from: &dyn Array, to: &dyn Array) -> Result<(), Inexact> {
    if from.data_type() == to.data_type() {
        return Ok(());
    }
    if let (Some(from_rows), Some(to_values)) = (list_rows(from), list_values(to)) {
        let from_values = list_values(from).expect("list_rows implies list_values");
        return check_exact(from_values.as_ref(), to_values.as_ref()).map_err(|inner| {
            let index = from_rows
                .iter()
                .position(|range| range.contains(&inner.index))
                .unwrap_or(0);
            Inexact {
                index,
                reason: inner.reason,
            }
        });
    }
    if let (DataType::Struct(_), DataType::Struct(to_fields)) = (from.data_type(), to.data_type()) {
        let from = from.as_struct();
        let to = to.as_struct();
        for (field, to_column) in to_fields.iter().zip(to.columns()) {
            let Some(from_column) = from.column_by_name(field.name()) else {
                continue;
            };
            check_exact(from_column.as_ref(), to_column.as_ref()).map_err(|inner| Inexact {
                index: inner.index,
                reason: format!("field {}: {}", field.name(), inner.reason),
            })?;
        }
        return Ok(());
    }
    check_leaf(from, to)
}

/// For a list-like array, the range of child values each row holds.
fn list_rows(array: &dyn Array) -> Option<Vec<std::ops::Range<usize>>> {
    match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            Some(
                list.offsets()
                    .windows(2)
                    .map(|w| w[0] as usize..w[1] as usize)
                    .collect(),
            )
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            Some(
                list.offsets()
                    .windows(2)
                    .map(|w| w[0] as usize..w[1] as usize)
                    .collect(),
            )
        }
        DataType::FixedSizeList(_, _) => {
            let list = array.as_fixed_size_list();
            let size = list.value_length() as usize;
            Some(
                (0..list.len())
                    .map(|i| {
                        let start = list.value_offset_at(i);
                        start..start + size
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

fn list_values(array: &dyn Array) -> Option<ArrayRef> {
    match array.data_type() {
        DataType::List(_) => Some(array.as_list::<i32>().values().clone()),
        DataType::LargeList(_) => Some(array.as_list::<i64>().values().clone()),
        DataType::FixedSizeList(_, _) => Some(array.as_fixed_size_list().values().clone()),
        _ => None,
    }
}

fn is_float(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Float16 | DataType::Float32 | DataType::Float64
    )
}

fn is_string(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// `array` as Float64 (it is a float or a number that casts to one).
fn as_f64(array: &dyn Array) -> Option<arrow_array::Float64Array> {
    let array = arrow_array::make_array(array.to_data());
    let cast = arrow_cast::cast(&array, &DataType::Float64).ok()?;
    Some(cast.as_primitive::<Float64Type>().clone())
}

fn check_leaf(from: &dyn Array, to: &dyn Array) -> Result<(), Inexact> {
    let (from_type, to_type) = (from.data_type(), to.data_type());
    if is_float(to_type) && (is_float(from_type) || is_string(from_type)) {
        // Rounding to the nearest is allowed, overflow to an infinity is not.
        let to_f64 = as_f64(to).ok_or_else(|| cannot_check(from, to_type))?;
        for index in 0..to.len() {
            if to.is_null(index) || !to_f64.value(index).is_infinite() {
                continue;
            }
            let finite_source = if is_string(from_type) {
                !spells_infinity(&string_at(from, index))
            } else {
                as_f64(from).is_some_and(|f| f.value(index).is_finite())
            };
            if finite_source {
                return Err(Inexact {
                    index,
                    reason: format!("{} is beyond the range of {to_type}", display(from, index)),
                });
            }
        }
        return Ok(());
    }
    if is_string(from_type) {
        if let DataType::Decimal32(_, scale)
        | DataType::Decimal64(_, scale)
        | DataType::Decimal128(_, scale)
        | DataType::Decimal256(_, scale) = to_type
        {
            for index in 0..from.len() {
                if from.is_valid(index) && fraction_digits(&string_at(from, index)) > *scale as i64
                {
                    return Err(Inexact {
                        index,
                        reason: format!(
                            "{} has more decimals than {to_type} holds",
                            display(from, index)
                        ),
                    });
                }
            }
        }
        // Parsing a string either gives the value it spells or fails (an error above).
        return Ok(());
    }
    let options = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    let to_ref = arrow_array::make_array(to.to_data());
    let back = arrow_cast::cast_with_options(&to_ref, from_type, &options)
        .map_err(|_| cannot_check(from, to_type))?;
    let differs = |index: usize| -> bool { from.is_valid(index) != back.is_valid(index) };
    if is_float(from_type) {
        let (a, b) = (
            as_f64(from).ok_or_else(|| cannot_check(from, to_type))?,
            as_f64(back.as_ref()).ok_or_else(|| cannot_check(from, to_type))?,
        );
        for index in 0..from.len() {
            let same_value = a.is_null(index)
                || a.value(index) == b.value(index)
                || (a.value(index).is_nan() && b.value(index).is_nan());
            if differs(index) || !same_value {
                return Err(not_exact(from, index, to_type));
            }
        }
        return Ok(());
    }
    let from_ref = arrow_array::make_array(from.to_data());
    let distinct =
        arrow_ord::cmp::distinct(&from_ref, &back).map_err(|_| cannot_check(from, to_type))?;
    match distinct.iter().position(|d| d == Some(true)) {
        Some(index) => Err(not_exact(from, index, to_type)),
        None => Ok(()),
    }
}

fn not_exact(from: &dyn Array, index: usize, to_type: &DataType) -> Inexact {
    Inexact {
        index,
        reason: format!("{} does not fit {to_type} exactly", display(from, index)),
    }
}

fn cannot_check(from: &dyn Array, to_type: &DataType) -> Inexact {
    Inexact {
        index: 0,
        reason: format!(
            "{} cannot be converted to {to_type} without a way to check it is exact",
            from.data_type()
        ),
    }
}

fn string_at(array: &dyn Array, index: usize) -> String {
    display(array, index)
}

/// Whether `text` spells an infinity ("inf", "-Infinity", ...), as Rust's float parser reads it.
pub fn spells_infinity(text: &str) -> bool {
    let text = text.trim();
    let text = text.strip_prefix(['+', '-']).unwrap_or(text);
    text.eq_ignore_ascii_case("inf") || text.eq_ignore_ascii_case("infinity")
}

/// Significant digits after the decimal point of a plain decimal number (trailing zeros do
/// not count; an exponent shifts the point).
fn fraction_digits(text: &str) -> i64 {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i64>().unwrap_or(0)),
        None => (text, 0),
    };
    let fraction = mantissa.split_once('.').map_or("", |(_, f)| f);
    let digits = fraction.trim_end_matches('0').len() as i64;
    digits - exponent
}

/// The value at `index` as text, for an error message.
pub fn display(array: &dyn Array, index: usize) -> String {
    if array.is_null(index) {
        return "null".into();
    }
    let options = arrow_cast::display::FormatOptions::default();
    match arrow_cast::display::ArrayFormatter::try_new(array, &options) {
        Ok(formatter) => {
            let mut text = formatter.value(index).to_string();
            if text.len() > 80 {
                let mut end = 77;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                text.push_str("...");
            }
            format!("{text:?}").trim_matches('"').to_string()
        }
        Err(_) => format!("the value of type {}", array.data_type()),
    }
}

/// `v` in an f32, rounded to the nearest; `None` when a finite `v` overflows.
pub fn f64_to_f32(v: f64) -> Option<f32> {
    let narrow = v as f32;
    (narrow.is_finite() || !v.is_finite()).then_some(narrow)
}

/// `v` as an f64 when it is represented exactly.
pub fn int_to_f64(v: i128) -> Option<f64> {
    let wide = v as f64;
    // 2^127 and above do not come back as i128; `as` saturates, so compare in f64 too.
    (wide.is_finite() && wide as i128 == v && wide < 1.7e38).then_some(wide)
}

/// `v` as an f32 when it is represented exactly.
pub fn int_to_f32(v: i128) -> Option<f32> {
    let narrow = v as f32;
    (narrow.is_finite() && narrow as i128 == v && narrow < 1.7e38).then_some(narrow)
}

/// `v` as an integer when it is finite and has no fraction.
pub fn f64_to_int(v: f64) -> Option<i128> {
    (v.is_finite() && v.fract() == 0.0 && v.abs() < 1.0e38).then_some(v as i128)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float32Array, Float64Array, Int32Array, Int64Array, StringArray};

    use super::*;

    fn check(array: ArrayRef, to: DataType, expected: Result<(), usize>) {
        let result = cast_exact(&array, &to);
        match (&result, expected) {
            (Ok(cast), Ok(())) => assert_eq!(cast.data_type(), &to),
            (Err(inexact), Err(index)) => assert_eq!(inexact.index, index, "{inexact:?}"),
            _ => panic!("{array:?} to {to}: {result:?}"),
        }
    }

    #[test]
    fn cast_exact_refuses_what_arrow_cast_would_change() {
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(1.9)]));
        check(floats.clone(), DataType::Int32, Err(2));
        check(floats.slice(0, 2), DataType::Int32, Ok(()));
        let huge: ArrayRef = Arc::new(Float64Array::from(vec![
            0.1,
            f64::NAN,
            f64::INFINITY,
            1e300,
        ]));
        check(huge.clone(), DataType::Float32, Err(3));
        check(huge.slice(0, 3), DataType::Float32, Ok(()));
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1 << 53, (1 << 53) + 1]));
        check(ints.clone(), DataType::Float64, Err(1));
        check(ints.clone(), DataType::Int32, Err(0));
        check(ints.slice(0, 1), DataType::Float64, Ok(()));
        let strings: ArrayRef = Arc::new(StringArray::from(vec!["1", "2.7"]));
        check(strings.clone(), DataType::Int64, Err(1));
        check(strings, DataType::Float64, Ok(()));
        let texts: ArrayRef = Arc::new(StringArray::from(vec!["inf", "NaN", "1e400"]));
        check(texts, DataType::Float64, Err(2));
        let some: ArrayRef = Arc::new(Int32Array::from(vec![None, Some(1)]));
        check(some, DataType::Null, Err(1));
        let f32s: ArrayRef = Arc::new(Float32Array::from(vec![f32::NAN, -0.0, 1.5]));
        check(f32s, DataType::Float64, Ok(()));
        let decimals: ArrayRef = Arc::new(StringArray::from(vec!["1.20", "1.005"]));
        check(decimals, DataType::Decimal128(10, 2), Err(1));
    }

    #[test]
    fn scalar_rules() {
        assert_eq!(f64_to_f32(1e39), None);
        assert_eq!(f64_to_f32(0.1), Some(0.1f32));
        assert!(f64_to_f32(f64::NAN).unwrap().is_nan());
        assert_eq!(f64_to_f32(f64::NEG_INFINITY), Some(f32::NEG_INFINITY));
        assert_eq!(int_to_f64((1 << 53) + 1), None);
        assert_eq!(int_to_f64(i64::MAX as i128), None);
        assert_eq!(int_to_f64(u64::MAX as i128), None);
        assert_eq!(int_to_f64(1 << 63), Some(9.223_372_036_854_776e18));
        assert_eq!(int_to_f32((1 << 24) + 1), None);
        assert_eq!(f64_to_int(2.0), Some(2));
        assert_eq!(f64_to_int(2.5), None);
        assert_eq!(f64_to_int(f64::NAN), None);
    }
}
