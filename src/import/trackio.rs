//! trackio: one SQLite database per project (`<project>.db`, in `~/.cache/huggingface/trackio`
//! or `TRACKIO_DIR`). SRC is such a database, or a folder of them (each `*.db` a project).
//!
//! Tables read: `configs` (`run_id`, `run_name`, `config`: JSON, `created_at`) and `metrics`
//! (`run_id`, `run_name`, `step`, `timestamp`: ISO 8601 text, `metrics`: a JSON map per
//! `trackio.log` call, non-finite numbers written as the strings `"NaN"`, `"Infinity"`,
//! `"-Infinity"`). A run is a `run_id` (databases from before trackio 0.24 have only names:
//! then a name is a run).
//!
//! What a run becomes: the database's file name is the project; the run's name its name; its
//! config the parameters, except trackio's own keys (`_Username`, `_Created`, `_Group`), which
//! go with the run id to the input value `{"trackio": {...}}`, `_Created` also being the
//! creation time (else the first log's). Logged numbers become the tables `metrics` (`key`,
//! `step`, `timestamp` in ms, `value`: every value) and `steps_0000` (`step`, `timestamp`, one
//! Float64 column per key, the last value at each step); each key's latest value (greatest
//! step, then time) is the output value. trackio keeps no status: runs are COMPLETED. Logged
//! values that are not numbers (images, tables, histograms), system metrics and alerts are
//! counted in the notes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::mlflow::open_sqlite;
use super::tables::{add_metric_history, latest_values, MetricPoint};
use super::{ImportedRun, Plan, Planned, Reader};
use crate::error::{Error, Result};
use crate::names::escape_name;
use crate::status::RunStatus;
use crate::value::Value;

/// One run of one database.
#[derive(Clone, Debug)]
struct TrackioRun {
    db: usize,
    /// `None` in databases without run ids (a name is a run there).
    run_id: Option<String>,
    name: String,
}

pub(crate) struct TrackioReader {
    files: Vec<PathBuf>,
    dbs: Vec<Connection>,
    runs: Vec<TrackioRun>,
}

impl TrackioReader {
    pub(crate) fn open(src: &Path) -> Result<TrackioReader> {
        let meta = std::fs::metadata(src).map_err(|source| Error::Io {
            op: "read the trackio database",
            path: src.to_path_buf(),
            source,
        })?;
        let files = if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(src)
                .map_err(|source| Error::Io {
                    op: "list the trackio folder",
                    path: src.to_path_buf(),
                    source,
                })?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "db") && p.is_file())
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::InvalidInput {
                    reason: format!("{} holds no trackio database (*.db)", src.display()),
                });
            }
            files
        } else {
            vec![src.to_path_buf()]
        };
        let mut dbs = Vec::new();
        for file in &files {
            dbs.push(open_sqlite(file, "a trackio database")?);
        }
        Ok(TrackioReader {
            files,
            dbs,
            runs: Vec::new(),
        })
    }

    fn sql_error(&self, db: usize, error: rusqlite::Error) -> Error {
        Error::InvalidInput {
            reason: format!(
                "{} cannot be read as a trackio database: {error}",
                self.files[db].display()
            ),
        }
    }

    fn has_column(&self, db: usize, table: &str, column: &str) -> Result<bool> {
        let mut stmt = self.dbs[db]
            .prepare(&format!("PRAGMA table_info({table})"))
            .map_err(|e| self.sql_error(db, e))?;
        let names = stmt
            .query_map([], |row| row.get::<_, String>(1))
            .map_err(|e| self.sql_error(db, e))?;
        for name in names {
            if name.map_err(|e| self.sql_error(db, e))? == column {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn has_table(&self, db: usize, table: &str) -> Result<bool> {
        self.dbs[db]
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.sql_error(db, e))
    }

    fn count(&self, db: usize, sql: &str, run: &TrackioRun) -> Result<i64> {
        let key = run.run_id.clone().unwrap_or_else(|| run.name.clone());
        self.dbs[db]
            .query_row(sql, [key], |row| row.get::<_, i64>(0))
            .map_err(|e| self.sql_error(db, e))
    }
}

/// A TEXT or BLOB cell as text: trackio declares its JSON columns TEXT but writes BLOBs.
fn text_cell(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(index)? {
        ValueRef::Null => None,
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
    })
}

/// A trackio JSON number (non-finite ones are strings).
fn number_of(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// trackio's config values back as values (`"NaN"`-style strings are numbers again).
fn config_value(value: serde_json::Value) -> Value {
    match value {
        serde_json::Value::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => {
            Value::Float(number_of(&serde_json::Value::String(s)).unwrap_or(f64::NAN))
        }
        serde_json::Value::Array(items) => {
            Value::List(items.into_iter().map(config_value).collect())
        }
        serde_json::Value::Object(map) => {
            Value::Map(map.into_iter().map(|(k, v)| (k, config_value(v))).collect())
        }
        other => Value::from(other),
    }
}

impl Reader for TrackioReader {
    fn plan(&mut self) -> Result<Plan> {
        let mut plan = Plan::default();
        let mut runs = Vec::new();
        for db in 0..self.dbs.len() {
            let project = self.files[db]
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "trackio".into());
            let has_metrics = self.has_table(db, "metrics")?;
            let has_configs = self.has_table(db, "configs")?;
            if !has_metrics && !has_configs {
                return Err(Error::InvalidInput {
                    reason: format!(
                        "{} is not a trackio database: it has no metrics or configs table",
                        self.files[db].display()
                    ),
                });
            }
            let with_ids = (!has_metrics || self.has_column(db, "metrics", "run_id")?)
                && (!has_configs || self.has_column(db, "configs", "run_id")?);
            let id_col = if with_ids { "run_id" } else { "run_name" };
            let mut parts = Vec::new();
            if has_metrics {
                parts.push(format!(
                    "SELECT {id_col} AS rid, run_name, min(id) AS first, 0 AS src FROM metrics \
                     GROUP BY {id_col}"
                ));
            }
            if has_configs {
                parts.push(format!(
                    "SELECT {id_col} AS rid, run_name, min(id) AS first, 1 AS src FROM configs \
                     GROUP BY {id_col}"
                ));
            }
            let sql = format!(
                "SELECT rid, run_name FROM ({}) GROUP BY rid ORDER BY min(src * 1000000000000 + first)",
                parts.join(" UNION ALL ")
            );
            let mut found = Vec::new();
            {
                let mut stmt = self.dbs[db]
                    .prepare(&sql)
                    .map_err(|e| self.sql_error(db, e))?;
                let rows = stmt
                    .query_map([], |row| {
                        Ok((
                            text_cell(row, 0)?.unwrap_or_default(),
                            text_cell(row, 1)?.unwrap_or_default(),
                        ))
                    })
                    .map_err(|e| self.sql_error(db, e))?;
                for row in rows {
                    found.push(row.map_err(|e| self.sql_error(db, e))?);
                }
            }
            for (rid, name) in found {
                let key = runs.len();
                runs.push(TrackioRun {
                    db,
                    run_id: with_ids.then(|| rid.clone()),
                    name: name.clone(),
                });
                plan.runs.push(Planned {
                    source: format!("run {name:?} of {}", self.files[db].display()),
                    project: escape_name(&project),
                    name: escape_name(&name),
                    unique: rid.chars().take(8).collect(),
                    key,
                });
            }
        }
        self.runs = runs;
        Ok(plan)
    }

    fn load(&mut self, planned: &Planned) -> Result<ImportedRun> {
        let run = self.runs[planned.key].clone();
        let db = run.db;
        let key = run.run_id.clone().unwrap_or_else(|| run.name.clone());
        let id_col = if run.run_id.is_some() {
            "run_id"
        } else {
            "run_name"
        };
        let mut out = ImportedRun {
            status: Some(RunStatus::Completed),
            ..ImportedRun::default()
        };
        let mut trackio = BTreeMap::new();
        if let Some(id) = &run.run_id {
            trackio.insert("run_id".to_string(), Value::from(id.as_str()));
        }
        trackio.insert("run_name".to_string(), Value::from(run.name.as_str()));
        if self.has_table(db, "configs")? {
            let config: Option<String> = self.dbs[db]
                .query_row(
                    &format!(
                        "SELECT config FROM configs WHERE {id_col} = ?1 ORDER BY id DESC LIMIT 1"
                    ),
                    [&key],
                    |row| text_cell(row, 0),
                )
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
                .map_err(|e| self.sql_error(db, e))?;
            if let Some(config) = config {
                match serde_json::from_str::<serde_json::Value>(&config) {
                    Ok(serde_json::Value::Object(map)) => {
                        for (k, v) in map {
                            if k.starts_with('_') {
                                if k == "_Created" {
                                    if let Some(us) =
                                        v.as_str().and_then(crate::time::parse_rfc3339_us)
                                    {
                                        out.created_us = Some(us);
                                    }
                                }
                                trackio.insert(k, config_value(v));
                            } else {
                                out.parameters.insert(k, config_value(v));
                            }
                        }
                    }
                    Ok(_) | Err(_) => out
                        .notes
                        .push("the run's config is not a JSON map; not imported".to_string()),
                }
            }
        }
        out.input_values
            .push(Value::map([("trackio", Value::Map(trackio))]));

        let mut points = Vec::new();
        let mut skipped_keys: BTreeMap<String, u64> = BTreeMap::new();
        let mut bad_rows = 0u64;
        if self.has_table(db, "metrics")? {
            let mut stmt = self.dbs[db]
                .prepare(&format!(
                    "SELECT step, timestamp, metrics FROM metrics WHERE {id_col} = ?1 ORDER BY id"
                ))
                .map_err(|e| self.sql_error(db, e))?;
            let rows = stmt
                .query_map([&key], |row| {
                    Ok((
                        row.get::<_, Option<i64>>(0)?,
                        text_cell(row, 1)?,
                        text_cell(row, 2)?.unwrap_or_default(),
                    ))
                })
                .map_err(|e| self.sql_error(db, e))?;
            for row in rows {
                let (step, timestamp, metrics) = row.map_err(|e| self.sql_error(db, e))?;
                let timestamp_ms = timestamp
                    .as_deref()
                    .and_then(crate::time::parse_rfc3339_us)
                    .map(|us| us.div_euclid(1000));
                let (Some(timestamp_ms), Ok(serde_json::Value::Object(map))) = (
                    timestamp_ms,
                    serde_json::from_str::<serde_json::Value>(&metrics),
                ) else {
                    bad_rows += 1;
                    continue;
                };
                for (k, v) in map {
                    match number_of(&v) {
                        Some(value) => points.push(MetricPoint {
                            key: k,
                            step: step.unwrap_or(0),
                            timestamp: timestamp_ms,
                            value,
                        }),
                        None => *skipped_keys.entry(k).or_default() += 1,
                    }
                }
            }
        }
        if out.created_us.is_none() {
            out.created_us = points
                .iter()
                .map(|p| p.timestamp.saturating_mul(1000))
                .min();
        }
        if bad_rows > 0 {
            out.notes.push(format!(
                "{bad_rows} metrics row(s) with an unreadable timestamp or JSON are not imported"
            ));
        }
        if !skipped_keys.is_empty() {
            let keys: Vec<String> = skipped_keys
                .iter()
                .map(|(k, n)| format!("{k} ({n})"))
                .collect();
            out.notes.push(format!(
                "not imported: logged values that are not numbers (media, tables): {}",
                keys.join(", ")
            ));
        }
        let latest = latest_values(&points);
        add_metric_history(&mut out, &points, latest);
        for (table, what) in [
            ("system_metrics", "system metric rows"),
            ("alerts", "alerts"),
        ] {
            if self.has_table(db, table)? && self.has_column(db, table, id_col)? {
                let n = self.count(
                    db,
                    &format!("SELECT count(*) FROM {table} WHERE {id_col} = ?1"),
                    &run,
                )?;
                if n > 0 {
                    out.notes.push(format!("not imported: {n} {what}"));
                }
            }
        }
        Ok(out)
    }
}
