//! The cross-run table: for the runs a [`RunQuery`] selects, the values of chosen keys as one
//! Arrow record batch (final accuracy per run, a parameter next to it, ...).
//!
//! This module owns the column keys (their parse, names and limit) and how a column of
//! [`Value`]s becomes an Arrow array. It leaves selecting and loading runs to
//! `RunQuery::select`, which reads the runs and the values from one snapshot. The invariant it
//! keeps: row `i` of the table is run `i` of the query, in query order, and every column
//! holds exactly one entry per run (a null where the run has no value).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions, StringArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::filter::{self, Operand};
use super::RunQuery;
use crate::error::{Error, Result};
use crate::run::Run;
use crate::value::Value;

/// Most value columns one cross-run table may ask for.
///
/// Each column is one more key loaded and evaluated for every run the query selects, and one
/// more Arrow array held in memory at once; a thousand is far wider than a table a person reads
/// or a notebook plots, while still bounding the work of a query with a runaway column list.
pub const VALUE_COLUMNS_MAX: usize = 1_000;

/// The columns every cross-run table starts with, before the requested ones.
const FIXED_COLUMNS: [&str; 3] = ["project", "name", "url"];

/// Arrow's canonical extension type for UTF-8 text holding JSON, set on a column whose values
/// are maps, lists or of mixed kinds, so that a reader can tell JSON text from plain strings.
const JSON_EXTENSION_NAME: &str = "arrow.json";

/// The Arrow field metadata key naming an extension type.
const EXTENSION_NAME_KEY: &str = "ARROW:extension:name";

/// One requested column: its name as written (trimmed) and what it reads.
struct ColumnKey {
    name: String,
    operand: Operand,
}

/// The kind a column's non-null values share, which decides its Arrow type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// No non-null value yet.
    Empty,
    Bool,
    Int,
    /// Floats, or integers mixed with floats.
    Float,
    Str,
    /// Maps, lists or values of kinds that do not mix: JSON text.
    Json,
}

impl Kind {
    fn of(value: &Value) -> Kind {
        match value {
            Value::Null => Kind::Empty,
            Value::Bool(_) => Kind::Bool,
            Value::Int(_) => Kind::Int,
            Value::Float(_) => Kind::Float,
            Value::Str(_) => Kind::Str,
            Value::List(_) | Value::Map(_) => Kind::Json,
        }
    }

    fn join(self, other: Kind) -> Kind {
        match (self, other) {
            (Kind::Empty, kind) | (kind, Kind::Empty) => kind,
            (a, b) if a == b => a,
            (Kind::Int | Kind::Float, Kind::Int | Kind::Float) => Kind::Float,
            _ => Kind::Json,
        }
    }
}

impl RunQuery {
    /// Runs the query on one snapshot and returns the cross-run table: one row per selected
    /// run, in query order, with the columns `project`, `name` and `url` (Utf8, never null),
    /// then one column per key in `columns`, named as written (trimmed).
    ///
    /// A key is one identifier of the filter language (see `filter`): `params.lr`,
    /// `params.opt.name`, `outputs.acc`, `outputs.loss.min`, `status`, `attributes.created`.
    /// A run without a value has a null. A column's Arrow type comes from its non-null values:
    /// all booleans give Boolean, all integers Int64, integers and floats Float64 (integers
    /// converted, so those beyond 2^53 lose precision; NaN and infinities kept), all strings Utf8; `created` and `last_modified` are
    /// Timestamp(Microsecond, "UTC"). Anything else (maps, lists, values of kinds that do not
    /// mix) is Utf8 holding each value's compact JSON text (non-finite floats inside as
    /// `null`), its field marked with Arrow's `arrow.json` extension name. A column with no
    /// non-null value at all is Utf8, all null.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQuery`] when a key does not parse as a single identifier (a sort
    /// direction, a comparison, several keys or a blank key), when two keys are written the
    /// same or one is `project`, `name` or `url` (always present), or when there are more than
    /// [`VALUE_COLUMNS_MAX`] keys; its `column` points into the key and its message names it.
    /// [`Error::UnknownKey`] when a key names a parameter or output no run holds (with a
    /// suggestion). Otherwise the errors of [`RunQuery::run`].
    pub fn values(&self, columns: &[&str]) -> Result<RecordBatch> {
        Ok(self.run_with_values(columns)?.1)
    }

    /// The runs [`RunQuery::run`] returns together with [`RunQuery::values`]'s table for them,
    /// both from one snapshot: row `i` of the table is run `i`.
    ///
    /// # Errors
    ///
    /// As [`RunQuery::values`].
    pub fn run_with_values(&self, columns: &[&str]) -> Result<(Vec<Run>, RecordBatch)> {
        let keys = parse_column_keys(columns)?;
        let operands: Vec<Operand> = keys.iter().map(|key| key.operand.clone()).collect();
        let selected = self.select(&operands)?;
        let mut fields = Vec::with_capacity(FIXED_COLUMNS.len() + keys.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(fields.capacity());
        for (index, fixed) in FIXED_COLUMNS.iter().enumerate() {
            let array: StringArray = selected
                .iter()
                .map(|(run, _)| {
                    Some(match index {
                        0 => run.project().to_string(),
                        1 => run.name().to_string(),
                        _ => run.url(),
                    })
                })
                .collect();
            fields.push(Field::new(*fixed, DataType::Utf8, false));
            arrays.push(Arc::new(array));
        }
        for (index, key) in keys.iter().enumerate() {
            let values: Vec<&Value> = selected.iter().map(|(_, values)| &values[index]).collect();
            let (field, array) = build_column(key, &values);
            fields.push(field);
            arrays.push(array);
        }
        let schema = Arc::new(Schema::new(fields));
        let options = RecordBatchOptions::new().with_row_count(Some(selected.len()));
        let batch = RecordBatch::try_new_with_options(schema, arrays, &options).map_err(|e| {
            Error::InvalidInput {
                reason: format!("cross-run table: {e}"),
            }
        })?;
        debug_assert_eq!(batch.num_rows(), selected.len());
        let runs = selected.into_iter().map(|(run, _)| run).collect();
        Ok((runs, batch))
    }
}

/// Parses the requested keys, rejecting more than [`VALUE_COLUMNS_MAX`], blanks, anything but
/// one identifier, and names taken twice.
fn parse_column_keys(columns: &[&str]) -> Result<Vec<ColumnKey>> {
    if columns.len() > VALUE_COLUMNS_MAX {
        return Err(Error::InvalidQuery {
            column: 1,
            message: format!(
                "{} columns requested; at most {VALUE_COLUMNS_MAX} are allowed",
                columns.len()
            ),
        });
    }
    let mut keys: Vec<ColumnKey> = Vec::with_capacity(columns.len());
    for (index, text) in columns.iter().enumerate() {
        let name = text.trim();
        if name.is_empty() {
            return Err(Error::InvalidQuery {
                column: 1,
                message: format!("column key {} is blank", index + 1),
            });
        }
        let operand = filter::parse_operand(text).map_err(|error| Error::InvalidQuery {
            column: error.column,
            message: format!("in column key {name:?}: {}", error.message),
        })?;
        // Only the run filter language is parsed here, never a column filter's.
        debug_assert!(!matches!(operand, Operand::Column(_)));
        let first_char = text.chars().take_while(|c| c.is_whitespace()).count() + 1;
        if FIXED_COLUMNS.contains(&name) {
            return Err(Error::InvalidQuery {
                column: first_char,
                message: format!(
                    "column key {name:?} is always in the table (project, name and url are)"
                ),
            });
        }
        if keys.iter().any(|key| key.name == name) {
            return Err(Error::InvalidQuery {
                column: first_char,
                message: format!("column key {name:?} is requested twice"),
            });
        }
        keys.push(ColumnKey {
            name: name.to_string(),
            operand,
        });
    }
    Ok(keys)
}

/// One value column: its field and array, typed as [`RunQuery::values`] documents.
fn build_column(key: &ColumnKey, values: &[&Value]) -> (Field, ArrayRef) {
    let timestamp =
        matches!(&key.operand, Operand::Attribute(attribute) if attribute.is_timestamp());
    let kind = values
        .iter()
        .fold(Kind::Empty, |kind, value| kind.join(Kind::of(value)));
    let name = key.name.as_str();
    match kind {
        // Timestamp attributes are integer microseconds, never null for a run.
        Kind::Int | Kind::Empty if timestamp => {
            let mut builder =
                TimestampMicrosecondBuilder::with_capacity(values.len()).with_timezone("UTC");
            for value in values {
                builder.append_option(value.as_i64());
            }
            let array = builder.finish();
            let data_type = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
            let field = Field::new(name, data_type, true);
            (field, Arc::new(array))
        }
        Kind::Bool => {
            let mut builder = BooleanBuilder::with_capacity(values.len());
            for value in values {
                builder.append_option(value.as_bool());
            }
            (
                Field::new(name, DataType::Boolean, true),
                Arc::new(builder.finish()),
            )
        }
        Kind::Int => {
            let mut builder = Int64Builder::with_capacity(values.len());
            for value in values {
                builder.append_option(value.as_i64());
            }
            (
                Field::new(name, DataType::Int64, true),
                Arc::new(builder.finish()),
            )
        }
        Kind::Float => {
            let mut builder = Float64Builder::with_capacity(values.len());
            for value in values {
                builder.append_option(value.as_f64());
            }
            (
                Field::new(name, DataType::Float64, true),
                Arc::new(builder.finish()),
            )
        }
        Kind::Str | Kind::Empty => {
            let mut builder = StringBuilder::new();
            for value in values {
                builder.append_option(value.as_str());
            }
            (
                Field::new(name, DataType::Utf8, true),
                Arc::new(builder.finish()),
            )
        }
        Kind::Json => {
            let mut builder = StringBuilder::new();
            for value in values {
                match value {
                    Value::Null => builder.append_null(),
                    other => builder.append_value(other.to_string()),
                }
            }
            let field = Field::new(name, DataType::Utf8, true).with_metadata(HashMap::from([(
                EXTENSION_NAME_KEY.to_string(),
                JSON_EXTENSION_NAME.to_string(),
            )]));
            (field, Arc::new(builder.finish()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(values: &[Value], expected: DataType) {
        let key = ColumnKey {
            name: "params.x".to_string(),
            operand: Operand::Param(vec!["x".to_string()]),
        };
        let refs: Vec<&Value> = values.iter().collect();
        let (field, array) = build_column(&key, &refs);
        assert_eq!(field.data_type(), &expected, "{values:?}");
        assert_eq!(array.data_type(), &expected, "{values:?}");
        assert_eq!(array.len(), values.len());
        let nulls = values.iter().filter(|v| matches!(v, Value::Null)).count();
        assert_eq!(array.null_count(), nulls, "{values:?}");
    }

    #[test]
    fn build_column_infers_the_type_from_non_null_values() {
        check(&[Value::Bool(true), Value::Null], DataType::Boolean);
        check(
            &[Value::Int(1), Value::Null, Value::Int(2)],
            DataType::Int64,
        );
        check(&[Value::Int(1), Value::Float(f64::NAN)], DataType::Float64);
        check(&[Value::Float(0.5)], DataType::Float64);
        check(&[Value::from("a"), Value::Null], DataType::Utf8);
        check(&[Value::Null, Value::Null], DataType::Utf8);
        check(&[], DataType::Utf8);
        check(&[Value::from("a"), Value::Int(1)], DataType::Utf8);
        check(&[Value::List(vec![Value::Int(1)])], DataType::Utf8);
    }

    #[test]
    fn kind_join_is_commutative() {
        let kinds = [
            Kind::Empty,
            Kind::Bool,
            Kind::Int,
            Kind::Float,
            Kind::Str,
            Kind::Json,
        ];
        for a in kinds {
            for b in kinds {
                assert_eq!(a.join(b), b.join(a), "{a:?} {b:?}");
            }
        }
    }
}
