//! One per-step history per run, whatever the per-step logger did on disk.
//!
//! The Python `Run.log` (and any logger written the same way) writes to the metrics tables
//! `<run url>/steps_NNNN`, an Int64 `step` column then one Float64 column per key, and moves
//! to a new, wider table when a key appears for the first time (train loss per step, then
//! validation metrics per epoch). This module reads those step tables back as one:
//! [`Run::history`] joins them by step, [`Run::step_tables`] finds them. It leaves writing
//! to the loggers and every other metrics table to `table`.
//!
//! The rule it keeps: each step appears once, ascending; a key's value at a step is the last
//! non-null value logged for it there (a later table, or a later row of one table, wins; a key
//! not logged at a step is null; a logged NaN stays NaN).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use crate::error::{Error, Result};
use crate::run::Run;
use crate::table::Table;

/// The name a logger gives its tables, before the number: `steps_0000`, `steps_0001`, ...
const STEP_TABLE_PREFIX: &str = "steps_";

/// The number of a step table's url (`<run url>/steps_NNNN`), or `None` for another table.
fn step_table_number(run_url: &str, url: &str) -> Option<u64> {
    let name = url.strip_prefix(run_url)?.strip_prefix('/')?;
    let digits = name.strip_prefix(STEP_TABLE_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `schema` is a logger's: `step` (Int64) first, then only Float64 columns.
fn is_step_schema(schema: &Schema) -> bool {
    let Some((step, rest)) = schema.fields().split_first() else {
        return false;
    };
    step.name() == "step"
        && step.data_type() == &DataType::Int64
        && rest.iter().all(|f| f.data_type() == &DataType::Float64)
}

impl Run {
    /// The run's step tables (its own metrics tables named `steps_NNNN` with a logger's
    /// schema: `step` Int64, then Float64 columns), oldest (lowest number) first. A user's
    /// table that only shares the name is not one.
    pub fn step_tables(&self) -> Result<Vec<Table>> {
        let run_url = self.url();
        let mut found: Vec<(u64, Table)> = Vec::new();
        for table in self.metrics_table_handles()? {
            let Some(number) = step_table_number(&run_url, table.url()) else {
                continue;
            };
            if is_step_schema(table.schema()?.as_ref()) {
                found.push((number, table));
            }
        }
        found.sort_by_key(|(number, _)| *number);
        Ok(found.into_iter().map(|(_, table)| table).collect())
    }

    /// Everything the run's loggers wrote, as one batch: `step` (Int64, one row per step,
    /// ascending), then one Float64 column per key of `keys` (default: every key logged, in
    /// the order first logged), joined by step over [`Run::step_tables`]. A key's value at a
    /// step is the last non-null value logged for it there; null where it was not logged.
    /// With `keys` given, only steps where one of them was logged (a table holding none of
    /// them adds no steps). `step` in `keys` is ignored.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] naming a key of `keys` that no step table has, with the closest
    /// logged key.
    pub fn history(&self, keys: Option<&[&str]>) -> Result<RecordBatch> {
        let tables = self.step_tables()?;
        let mut logged: Vec<String> = Vec::new();
        let mut schemas = Vec::with_capacity(tables.len());
        for table in &tables {
            let schema = table.schema()?;
            for field in schema.fields().iter().skip(1) {
                if !logged.contains(field.name()) {
                    logged.push(field.name().clone());
                }
            }
            schemas.push(schema);
        }
        let wanted: Vec<String> = match keys {
            None => logged.clone(),
            Some(keys) => {
                let mut wanted: Vec<String> = Vec::new();
                for key in keys.iter().filter(|key| **key != "step") {
                    if !logged.iter().any(|k| k == key) {
                        return Err(unknown_key(&self.url(), key, &logged));
                    }
                    if !wanted.iter().any(|k| k == key) {
                        wanted.push((*key).to_string());
                    }
                }
                wanted
            }
        };
        let mut rows: BTreeMap<i64, Vec<Option<f64>>> = BTreeMap::new();
        for (table, schema) in tables.iter().zip(&schemas) {
            // (position in `wanted`, column name) of the keys this table holds.
            let held: Vec<(usize, &str)> = wanted
                .iter()
                .enumerate()
                .filter(|(_, key)| schema.index_of(key).is_ok())
                .map(|(at, key)| (at, key.as_str()))
                .collect();
            if keys.is_some() && held.is_empty() {
                continue;
            }
            let mut columns: Vec<&str> = vec!["step"];
            columns.extend(held.iter().map(|(_, key)| *key));
            for batch in table.query().columns(&columns).batches()? {
                let steps = batch.column(0).as_primitive::<Int64Type>();
                for row in 0..batch.num_rows() {
                    let values = rows
                        .entry(steps.value(row))
                        .or_insert_with(|| vec![None; wanted.len()]);
                    for (column, (at, _)) in held.iter().enumerate() {
                        let array = batch.column(column + 1).as_primitive::<Float64Type>();
                        if array.is_valid(row) {
                            values[*at] = Some(array.value(row));
                        }
                    }
                }
            }
        }
        let mut fields = vec![Field::new("step", DataType::Int64, false)];
        fields.extend(
            wanted
                .iter()
                .map(|key| Field::new(key, DataType::Float64, true)),
        );
        let mut arrays: Vec<ArrayRef> =
            vec![Arc::new(Int64Array::from_iter_values(rows.keys().copied()))];
        for at in 0..wanted.len() {
            arrays.push(Arc::new(Float64Array::from_iter(
                rows.values().map(|values| values[at]),
            )));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|error| {
            Error::InvalidInput {
                reason: format!("history of run {}: {error}", self.url()),
            }
        })
    }
}

/// `NotFound` for a key no step table of the run has, with the closest logged key.
fn unknown_key(run_url: &str, key: &str, logged: &[String]) -> Error {
    let hint = match crate::query::suggest(key, logged.iter().map(String::as_str)) {
        Some(close) => format!(" (did you mean '{close}'?)"),
        None if logged.is_empty() => " (it has logged nothing)".to_string(),
        None => format!(" (logged keys: {})", logged.join(", ")),
    };
    Error::NotFound {
        what: format!("logged key '{key}' of run {run_url}{hint}"),
    }
}
