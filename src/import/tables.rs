//! The tables every importer writes from a metric history (`metrics`: every value logged;
//! `steps_0000`: one row per step, the layout `Run::history` and the viewer read), each key's
//! latest value, and the small helpers the source modules share.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};

use super::ImportedRun;
use crate::names::escape_name;
use crate::value::Value;

/// One logged metric value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MetricPoint {
    pub(crate) key: String,
    pub(crate) step: i64,
    /// Milliseconds since the epoch.
    pub(crate) timestamp: i64,
    pub(crate) value: f64,
}

/// Most cells (keys x steps) a step table is built with.
pub(crate) const STEP_TABLE_CELLS_MAX: usize = 50_000_000;

/// Whether a step table of `keys` columns and `rows` steps stays within
/// [`STEP_TABLE_CELLS_MAX`]; when not, says so in `notes`, naming the long table that keeps
/// every value.
pub(crate) fn step_table_fits(
    keys: usize,
    rows: usize,
    long: &str,
    notes: &mut Vec<String>,
) -> bool {
    let cells = keys.saturating_mul(rows);
    if cells <= STEP_TABLE_CELLS_MAX {
        return true;
    }
    notes.push(format!(
        "steps_0000 is not written: {keys} keys at {rows} different steps would be {cells} \
         cells (more than {STEP_TABLE_CELLS_MAX}); every value is in the table `{long}`"
    ));
    false
}

/// Each key's latest value: the greatest (step, timestamp, value), as MLflow keeps it.
pub(crate) fn latest_values(metrics: &[MetricPoint]) -> BTreeMap<String, f64> {
    let mut best: HashMap<&str, &MetricPoint> = HashMap::new();
    for point in metrics {
        let replace = match best.get(point.key.as_str()) {
            None => true,
            Some(b) => {
                (point.step, point.timestamp) > (b.step, b.timestamp)
                    || ((point.step, point.timestamp) == (b.step, b.timestamp)
                        && point.value.total_cmp(&b.value).is_gt())
            }
        };
        if replace {
            best.insert(point.key.as_str(), point);
        }
    }
    best.into_iter()
        .map(|(k, p)| (k.to_string(), p.value))
        .collect()
}

/// Every value logged: `key`, `step`, `timestamp` (ms), `value`.
pub(crate) fn long_table(metrics: &[MetricPoint]) -> RecordBatch {
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "key",
            Arc::new(StringArray::from_iter_values(
                metrics.iter().map(|p| p.key.as_str()),
            )),
        ),
        (
            "step",
            Arc::new(Int64Array::from_iter_values(metrics.iter().map(|p| p.step))),
        ),
        (
            "timestamp",
            Arc::new(Int64Array::from_iter_values(
                metrics.iter().map(|p| p.timestamp),
            )),
        ),
        (
            "value",
            Arc::new(Float64Array::from_iter_values(
                metrics.iter().map(|p| p.value),
            )),
        ),
    ];
    batch(columns)
}

/// The step table: `step`, `<time_column>` (the latest timestamp at the step, as Float64
/// milliseconds), one Float64 column per key (first-logged order) holding the value logged
/// last (greatest timestamp, then store order) at each step, null where none was.
///
/// `None`, with a note, when keys x steps is more than [`STEP_TABLE_CELLS_MAX`] (a wide table
/// is dense: a thousand keys logged at a million different steps would be a billion cells);
/// every value is in the long table then.
pub(crate) fn step_table(
    metrics: &[MetricPoint],
    time_column: &str,
    notes: &mut Vec<String>,
) -> Option<RecordBatch> {
    let mut keys: Vec<&str> = Vec::new();
    let mut key_index: HashMap<&str, usize> = HashMap::new();
    let mut steps: BTreeMap<i64, usize> = BTreeMap::new();
    for point in metrics {
        if !key_index.contains_key(point.key.as_str()) {
            key_index.insert(point.key.as_str(), keys.len());
            keys.push(point.key.as_str());
        }
        steps.insert(point.step, 0);
    }
    for (row, slot) in steps.values_mut().enumerate() {
        *slot = row;
    }
    let rows = steps.len();
    if !step_table_fits(keys.len(), rows, "metrics", notes) {
        return None;
    }
    let mut time = vec![i64::MIN; rows];
    let mut cells: Vec<Vec<Option<(i64, f64)>>> = vec![vec![None; rows]; keys.len()];
    for point in metrics {
        let row = steps[&point.step];
        time[row] = time[row].max(point.timestamp);
        let cell = &mut cells[key_index[point.key.as_str()]][row];
        if cell.is_none_or(|(t, _)| point.timestamp >= t) {
            *cell = Some((point.timestamp, point.value));
        }
    }
    let mut columns: Vec<(String, ArrayRef)> = vec![
        (
            "step".into(),
            Arc::new(Int64Array::from_iter_values(steps.keys().copied())),
        ),
        (
            time_column.into(),
            Arc::new(Float64Array::from_iter_values(
                time.iter().map(|&t| t as f64),
            )),
        ),
    ];
    for (key, column) in keys.iter().zip(cells) {
        let mut name = key.to_string();
        if name == "step"
            || name == time_column
            || crate::names::validate_column_name(&name).is_err()
        {
            let renamed = format!("metric:{}", escape_name(key));
            notes.push(format!(
                "the metric {key:?} is the column {renamed:?} of steps_0000"
            ));
            name = renamed;
        }
        columns.push((
            name,
            Arc::new(Float64Array::from_iter(
                column.into_iter().map(|c| c.map(|(_, v)| v)),
            )),
        ));
    }
    let refs: Vec<(&str, ArrayRef)> = columns
        .iter()
        .map(|(n, a)| (n.as_str(), a.clone()))
        .collect();
    Some(batch(refs))
}

pub(crate) fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("columns of equal length")
}

/// Adds a metric history to `run`: each key's `latest` value as one output value, and the
/// tables `metrics` (every value) and `steps_0000` (notes, if any, to the run's notes).
pub(crate) fn add_metric_history(
    run: &mut ImportedRun,
    metrics: &[MetricPoint],
    latest: BTreeMap<String, f64>,
) {
    if !latest.is_empty() {
        run.output_values.push(Value::Map(
            latest
                .into_iter()
                .map(|(k, v)| (k, Value::Float(v)))
                .collect(),
        ));
    }
    if !metrics.is_empty() {
        run.tables.push(("metrics".into(), long_table(metrics)));
        if let Some(table) = step_table(metrics, "timestamp", &mut run.notes) {
            run.tables.push(("steps_0000".into(), table));
        }
    }
}

/// The entries of `dir` sorted by name (none when it cannot be listed: the caller's source
/// has nothing there).
pub(crate) fn sorted_entries(dir: &Path) -> Vec<std::fs::DirEntry> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    #[test]
    fn a_step_table_too_wide_to_build_is_a_note_not_an_allocation() {
        let mut notes = Vec::new();
        assert!(step_table_fits(1000, 50_000, "metrics", &mut notes));
        assert!(!step_table_fits(1000, 1_000_000, "metrics", &mut notes));
        assert!(!step_table_fits(usize::MAX, 2, "scalars", &mut notes));
        assert_eq!(notes.len(), 2);
        assert!(
            notes[0].contains("every value is in the table `metrics`"),
            "{notes:?}"
        );
    }

    fn point(key: &str, step: i64, timestamp: i64, value: f64) -> MetricPoint {
        MetricPoint {
            key: key.into(),
            step,
            timestamp,
            value,
        }
    }

    #[test]
    fn latest_is_the_greatest_step_then_timestamp_then_value() {
        let points = [
            point("loss", 0, 10, 1.0),
            point("loss", 2, 5, 0.5),
            point("loss", 2, 5, 0.7),
            point("loss", 1, 99, 0.1),
            point("acc", 0, 1, 0.3),
        ];
        let latest = latest_values(&points);
        assert_eq!(latest["loss"], 0.7);
        assert_eq!(latest["acc"], 0.3);
    }

    #[test]
    fn the_step_table_keeps_the_last_value_at_each_step() {
        let points = [
            point("loss", 0, 10, 1.0),
            point("acc", 1, 12, 0.5),
            point("loss", 0, 11, 0.9),
            point("loss", 1, 13, 0.8),
        ];
        let mut notes = Vec::new();
        let table = step_table(&points, "timestamp", &mut notes).unwrap();
        let schema = table.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["step", "timestamp", "loss", "acc"]);
        let loss = table
            .column(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!((loss.value(0), loss.value(1)), (0.9, 0.8));
        let acc = table
            .column(3)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert!(acc.is_null(0));
        let time = table
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!((time.value(0), time.value(1)), (11.0, 13.0));
        assert!(notes.is_empty());
    }
}
