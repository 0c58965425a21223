//! MLflow: an `mlruns/` file store (a folder per experiment, a folder per run with
//! `meta.yaml`, `params/`, `metrics/`, `tags/`, `artifacts/`) or an `mlflow.db` SQLite
//! database (tables `experiments`, `runs`, `params`, `tags`, `metrics`, `latest_metrics`,
//! MLflow's default backend since 3.x). SRC is either, or a folder holding `mlruns/` or
//! `mlflow.db`.
//!
//! What a run becomes: experiments are projects; the run's name (`mlflow.runName`, else its
//! id) its name; its status one of the seven (FINISHED completed, FAILED and KILLED
//! cancelled, RUNNING running, SCHEDULED empty; the MLflow status is kept in the input value);
//! its start time the creation time; the tag `mlflow.note.content` its description. Params
//! become parameters, typed: MLflow keeps every param as a string, and one that reads as a
//! number or JSON becomes that ([`super::typed_from_text`]). Tags, with the run's MLflow id,
//! experiment, user, times and artifact uri, are one input value (`{"mlflow": {...}}`). The
//! metric history is two tables: `metrics` (`key`, `step`, `timestamp`, `value`: every value
//! logged, in the store's order) and the step table `steps_0000` (`step`, `timestamp`, one
//! Float64 column per key: at each step, the last value logged there). Each key's latest value
//! (MLflow's rule: the greatest step, then timestamp, then value) is one output value. Local
//! artifacts become the run's blobs, named by their path under the artifact root; artifacts
//! elsewhere (`s3://`, ...) are listed in the notes. Runs MLflow marks deleted are skipped, and
//! said so.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::tables::{add_metric_history, latest_values, sorted_entries, MetricPoint};
use super::{typed_from_text, ImportedRun, NotImported, Plan, Planned, Reader};
use crate::error::{Error, Result};
use crate::names::escape_name;
use crate::status::RunStatus;
use crate::value::Value;

/// Opens SRC as whichever MLflow store it is.
pub(crate) fn open(src: &Path) -> Result<Box<dyn Reader>> {
    let meta = std::fs::metadata(src).map_err(|source| Error::Io {
        op: "read the MLflow store",
        path: src.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        return Ok(Box::new(SqliteStore::open(src)?));
    }
    if src.join("mlflow.db").is_file() && !src.join("mlruns").is_dir() {
        return Ok(Box::new(SqliteStore::open(&src.join("mlflow.db"))?));
    }
    if src.join("mlruns").is_dir() {
        return Ok(Box::new(FileStore::new(&src.join("mlruns"))));
    }
    Ok(Box::new(FileStore::new(src)))
}

/// A run as MLflow describes it, before its metrics are read.
#[derive(Clone, Debug, Default)]
struct RunMeta {
    run_id: String,
    experiment_id: String,
    experiment: String,
    name: String,
    /// MLflow's status name (`FINISHED`, ...).
    status: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    lifecycle_stage: String,
    artifact_uri: String,
    user_id: String,
    /// The file store's run folder (the SQLite store has none).
    folder: Option<PathBuf>,
}

fn status_of(mlflow: &str) -> Option<RunStatus> {
    match mlflow {
        "FINISHED" => Some(RunStatus::Completed),
        "FAILED" | "KILLED" => Some(RunStatus::Cancelled),
        "RUNNING" => Some(RunStatus::Running),
        "SCHEDULED" => Some(RunStatus::Empty),
        _ => None,
    }
}

/// The file store's status numbers (`mlflow.entities.RunStatus`).
fn status_name(code: &str) -> String {
    match code.trim() {
        "1" => "RUNNING",
        "2" => "SCHEDULED",
        "3" => "FINISHED",
        "4" => "FAILED",
        "5" => "KILLED",
        other => other,
    }
    .to_string()
}

/// Plans `metas` (sorted by experiment, start time, id, so names are told apart the same way
/// on every import), skipping deleted runs.
fn plan_runs(metas: &[RunMeta], plan: &mut Plan) {
    for (key, meta) in metas.iter().enumerate() {
        let source = format!("run {} of experiment {:?}", meta.run_id, meta.experiment);
        if meta.lifecycle_stage == "deleted" {
            plan.skipped.push(NotImported {
                source,
                reason: "MLflow marks it deleted".into(),
            });
            continue;
        }
        let name = if meta.name.is_empty() {
            meta.run_id.clone()
        } else {
            meta.name.clone()
        };
        plan.runs.push(Planned {
            source,
            project: escape_name(&meta.experiment),
            name: escape_name(&name),
            unique: meta.run_id.chars().take(8).collect(),
            key,
        });
    }
}

/// Builds the run from what either store read.
fn build_run(
    meta: &RunMeta,
    params: Vec<(String, String)>,
    tags: Vec<(String, String)>,
    metrics: Vec<MetricPoint>,
    latest: Option<BTreeMap<String, f64>>,
    artifact_root: Option<PathBuf>,
    mut notes: Vec<String>,
) -> ImportedRun {
    let mut run = ImportedRun {
        status: status_of(&meta.status),
        created_us: meta.start_time.map(|ms| ms.saturating_mul(1000)),
        notes: Vec::new(),
        ..ImportedRun::default()
    };
    if run.status.is_none() {
        notes.push(format!(
            "the MLflow status {:?} has no counterpart; the run is EMPTY",
            meta.status
        ));
    }
    for (key, value) in params {
        run.parameters.insert(key, typed_from_text(&value));
    }
    let mut tag_map = BTreeMap::new();
    for (key, value) in tags {
        if key == "mlflow.note.content" {
            run.description = value.clone();
        }
        tag_map.insert(key, Value::Str(value));
    }
    let optional_ms = |t: Option<i64>| t.map_or(Value::Null, Value::Int);
    run.input_values.push(Value::map([(
        "mlflow",
        Value::map([
            ("run_id", Value::from(meta.run_id.as_str())),
            ("experiment_id", Value::from(meta.experiment_id.as_str())),
            ("experiment", Value::from(meta.experiment.as_str())),
            ("run_name", Value::from(meta.name.as_str())),
            ("status", Value::from(meta.status.as_str())),
            ("start_time", optional_ms(meta.start_time)),
            ("end_time", optional_ms(meta.end_time)),
            (
                "lifecycle_stage",
                Value::from(meta.lifecycle_stage.as_str()),
            ),
            ("artifact_uri", Value::from(meta.artifact_uri.as_str())),
            ("user_id", Value::from(meta.user_id.as_str())),
            ("tags", Value::Map(tag_map)),
        ]),
    )]));
    let latest = latest.unwrap_or_else(|| latest_values(&metrics));
    add_metric_history(&mut run, &metrics, latest);
    if let Some(root) = artifact_root {
        collect_artifacts(&root, &root, &mut run.blobs, &mut notes);
    } else if is_remote(&meta.artifact_uri) {
        notes.push(format!(
            "artifacts at {} are not imported: not a local folder",
            meta.artifact_uri
        ));
    } else if !meta.artifact_uri.is_empty() {
        notes.push(format!(
            "no artifacts at {} (none were logged, or they are not on this machine)",
            meta.artifact_uri
        ));
    }
    notes.append(&mut run.notes);
    run.notes = notes;
    run
}

/// Whether an artifact uri names another machine (`s3://`, `mlflow-artifacts://`, ...).
fn is_remote(uri: &str) -> bool {
    uri.contains("://") && !uri.starts_with("file://")
}

/// Every file under `dir` as a blob named by its path under `root`.
fn collect_artifacts(
    root: &Path,
    dir: &Path,
    blobs: &mut Vec<(String, PathBuf)>,
    notes: &mut Vec<String>,
) {
    for entry in sorted_entries(dir) {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            collect_artifacts(root, &path, blobs, notes);
        } else if meta.is_file() {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            match crate::names::validate_blob_name(&rel) {
                Ok(()) => blobs.push((rel, path)),
                Err(reason) => notes.push(format!(
                    "the artifact {rel:?} is not imported: as a blob name, {reason}"
                )),
            }
        } else {
            notes.push(format!(
                "the artifact {} is not imported: not a regular file",
                path.display()
            ));
        }
    }
}

/// The local folder an artifact uri names, if it is one and exists: `file:` uris and plain
/// paths (relative ones under `base`); then `fallback` (where the file store keeps a run's
/// artifacts); then, for a store moved from the machine that wrote it (the recorded absolute
/// path is gone), the longest tail of the recorded path that exists under `base` and still
/// names the run (`.../artifacts/cifar/<run id>/artifacts` found beside the database). A
/// found folder other than the recorded one is said in `notes`.
fn local_artifacts(
    uri: &str,
    fallback: Option<PathBuf>,
    base: &Path,
    run_id: &str,
    notes: &mut Vec<String>,
) -> Option<PathBuf> {
    let path = if let Some(rest) = uri.strip_prefix("file://") {
        Some(PathBuf::from(percent_decode(rest)))
    } else if let Some(rest) = uri.strip_prefix("file:") {
        Some(PathBuf::from(percent_decode(rest)))
    } else if !uri.contains("://") && !uri.is_empty() {
        let p = PathBuf::from(uri);
        Some(if p.is_absolute() { p } else { base.join(p) })
    } else {
        None
    };
    if let Some(found) = path.as_ref().filter(|p| p.is_dir()) {
        return Some(found.clone());
    }
    if let Some(found) = fallback.filter(|p| p.is_dir()) {
        return Some(found);
    }
    let recorded = path?;
    let parts: Vec<&std::ffi::OsStr> = recorded
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect();
    let run_at = parts
        .iter()
        .position(|p| *p == std::ffi::OsStr::new(run_id))?;
    for start in 0..=run_at {
        let candidate: PathBuf = parts[start..]
            .iter()
            .fold(base.to_path_buf(), |acc, p| acc.join(p));
        if candidate.is_dir() {
            notes.push(format!(
                "artifacts read from {} (the recorded {} is not on this machine)",
                candidate.display(),
                recorded.display()
            ));
            return Some(candidate);
        }
    }
    None
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---- the file store ----

struct FileStore {
    root: PathBuf,
    runs: Vec<RunMeta>,
}

impl FileStore {
    fn new(root: &Path) -> FileStore {
        FileStore {
            root: root.to_path_buf(),
            runs: Vec::new(),
        }
    }
}

/// A flat YAML mapping as MLflow's file store writes it (`key: value` lines; values plain or
/// quoted; nested lines ignored).
fn read_meta_yaml(path: &Path) -> std::result::Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut map = HashMap::new();
    for line in text.lines() {
        if line.starts_with(' ') || line.starts_with('-') || line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!(
                "{}: the line {line:?} is not `key: value`",
                path.display()
            ));
        };
        let value = value.trim();
        for quote in ['\'', '"'] {
            if value.starts_with(quote) && (value.len() < 2 || !value.ends_with(quote)) {
                return Err(format!(
                    "{}: the value of {:?} is an unterminated quoted string (a cut file?)",
                    path.display(),
                    key.trim()
                ));
            }
        }
        let value = if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))
        {
            inner.replace("''", "'")
        } else if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            inner.replace("\\\"", "\"").replace("\\\\", "\\")
        } else if value == "null" || value == "~" {
            String::new()
        } else {
            value.to_string()
        };
        map.insert(key.trim().to_string(), value);
    }
    Ok(map)
}

fn parse_ms(text: Option<&String>) -> Option<i64> {
    text.and_then(|t| t.trim().parse::<i64>().ok())
}

/// `dir`'s files as (key, content) with keys the paths under `dir` (`a/b` for nested keys).
fn read_key_files(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, String)>,
    notes: &mut Vec<String>,
) {
    for entry in sorted_entries(dir) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        // Never through a symbolic link to a folder (a link back up would never end).
        let real_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if real_dir {
            read_key_files(&path, &key, out, notes);
        } else if path.is_dir() {
            notes.push(format!(
                "{} is not imported: a symbolic link to a folder",
                path.display()
            ));
        } else {
            match std::fs::read_to_string(&path) {
                Ok(text) => out.push((key, text)),
                Err(e) => notes.push(format!("{} is not imported: {e}", path.display())),
            }
        }
    }
}

impl Reader for FileStore {
    fn plan(&mut self) -> Result<Plan> {
        let mut plan = Plan::default();
        let entries = std::fs::read_dir(&self.root).map_err(|source| Error::Io {
            op: "list the MLflow file store",
            path: self.root.clone(),
            source,
        })?;
        let mut experiments = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if name == ".trash" {
                let deleted = std::fs::read_dir(&path).map(|d| d.count()).unwrap_or(0);
                if deleted > 0 {
                    plan.notes.push(format!(
                        "{deleted} deleted experiment(s) in .trash are not imported"
                    ));
                }
                continue;
            }
            if path.join("meta.yaml").is_file() {
                experiments.push((name, path));
            } else if name != "models" {
                plan.notes.push(format!(
                    "{} is not imported: no meta.yaml (not an experiment)",
                    path.display()
                ));
            }
        }
        if experiments.is_empty() {
            return Err(Error::InvalidInput {
                reason: format!(
                    "{} is not an MLflow store: no experiment folder with a meta.yaml, and no \
                     mlflow.db",
                    self.root.display()
                ),
            });
        }
        experiments.sort();
        let mut metas = Vec::new();
        for (id, path) in experiments {
            let exp = match read_meta_yaml(&path.join("meta.yaml")) {
                Ok(exp) => exp,
                Err(reason) => {
                    plan.skipped.push(NotImported {
                        source: format!("experiment folder {}", path.display()),
                        reason: format!("its meta.yaml does not read: {reason}"),
                    });
                    continue;
                }
            };
            let exp_name = exp.get("name").cloned().unwrap_or_else(|| id.clone());
            if exp.get("lifecycle_stage").map(String::as_str) == Some("deleted") {
                plan.notes.push(format!(
                    "the deleted experiment {exp_name:?} is not imported"
                ));
                continue;
            }
            let Ok(runs) = std::fs::read_dir(&path) else {
                continue;
            };
            for run in runs.flatten() {
                let run_path = run.path();
                if !run_path.is_dir() {
                    continue;
                }
                let run_id = run.file_name().to_string_lossy().into_owned();
                if run_id == "tags" || run_id == "datasets" || run_id == "traces" {
                    continue;
                }
                match read_meta_yaml(&run_path.join("meta.yaml")) {
                    Ok(m) => metas.push(RunMeta {
                        run_id: m.get("run_id").cloned().unwrap_or(run_id),
                        experiment_id: m.get("experiment_id").cloned().unwrap_or(id.clone()),
                        experiment: exp_name.clone(),
                        name: m.get("run_name").cloned().unwrap_or_default(),
                        status: status_name(m.get("status").map_or("", String::as_str)),
                        start_time: parse_ms(m.get("start_time")),
                        end_time: parse_ms(m.get("end_time")),
                        lifecycle_stage: m.get("lifecycle_stage").cloned().unwrap_or_default(),
                        artifact_uri: m.get("artifact_uri").cloned().unwrap_or_default(),
                        user_id: m.get("user_id").cloned().unwrap_or_default(),
                        folder: Some(run_path),
                    }),
                    Err(reason) => plan.skipped.push(NotImported {
                        source: format!("run folder {}", run_path.display()),
                        reason: format!("its meta.yaml does not read: {reason}"),
                    }),
                }
            }
        }
        metas.sort_by(|a, b| {
            (&a.experiment_id, a.start_time, &a.run_id).cmp(&(
                &b.experiment_id,
                b.start_time,
                &b.run_id,
            ))
        });
        plan_runs(&metas, &mut plan);
        self.runs = metas;
        Ok(plan)
    }

    fn load(&mut self, planned: &Planned) -> Result<ImportedRun> {
        let meta = self.runs[planned.key].clone();
        let folder = meta.folder.clone().unwrap_or_default();
        let mut notes = Vec::new();
        let mut params = Vec::new();
        read_key_files(&folder.join("params"), "", &mut params, &mut notes);
        let mut tags = Vec::new();
        read_key_files(&folder.join("tags"), "", &mut tags, &mut notes);
        if meta.name.is_empty() {
            // Older stores keep the name only as a tag.
        }
        let mut metric_files = Vec::new();
        read_key_files(&folder.join("metrics"), "", &mut metric_files, &mut notes);
        let mut metrics = Vec::new();
        let mut dataset_fields = 0u64;
        for (key, text) in metric_files {
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                // MLflow writes `timestamp value step`, older stores `timestamp value`, and
                // MLflow 3 may add a dataset name and digest (5 fields), which stay in the
                // file: the metric is the first three.
                let fields: Vec<&str> = line.split_whitespace().collect();
                let parsed = (|| {
                    if !matches!(fields.len(), 2 | 3 | 5) {
                        return None;
                    }
                    let timestamp = fields[0].parse::<i64>().ok()?;
                    let value = fields[1].parse::<f64>().ok()?;
                    let step = match fields.get(2) {
                        Some(step) => step.parse::<i64>().ok()?,
                        None => 0,
                    };
                    Some((timestamp, value, step))
                })();
                if fields.len() == 5 {
                    dataset_fields += 1;
                }
                match parsed {
                    Some((timestamp, value, step)) => metrics.push(MetricPoint {
                        key: key.clone(),
                        step,
                        timestamp,
                        value,
                    }),
                    None => notes.push(format!(
                        "line {} of the metric {key:?} is not `timestamp value step`: {:?}; \
                         skipped (MLflow's own reader refuses the whole metric)",
                        n + 1,
                        line.chars().take(80).collect::<String>()
                    )),
                }
            }
        }
        if dataset_fields > 0 {
            notes.push(format!(
                "not imported: the dataset name and digest of {dataset_fields} metric values"
            ));
        }
        let artifacts = local_artifacts(
            &meta.artifact_uri,
            Some(folder.join("artifacts")),
            &self.root,
            &meta.run_id,
            &mut notes,
        );
        Ok(build_run(
            &meta, params, tags, metrics, None, artifacts, notes,
        ))
    }
}

// ---- the SQLite store ----

struct SqliteStore {
    path: PathBuf,
    db: Connection,
    runs: Vec<RunMeta>,
}

fn sql_error(path: &Path, error: rusqlite::Error) -> Error {
    Error::InvalidInput {
        reason: format!(
            "{} cannot be read as an MLflow database: {error}",
            path.display()
        ),
    }
}

/// Opens a SQLite file read-only (another tool's file: never written).
pub(crate) fn open_sqlite(path: &Path, what: &str) -> Result<Connection> {
    let mut header = [0u8; 16];
    let read = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .map_err(|source| Error::Io {
            op: "read the database",
            path: path.to_path_buf(),
            source,
        });
    if read.is_err() || &header != b"SQLite format 3\0" {
        return Err(Error::InvalidInput {
            reason: format!("{} is not a SQLite database ({what})", path.display()),
        });
    }
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::InvalidInput {
        reason: format!("{} cannot be opened ({what}): {e}", path.display()),
    })
}

impl SqliteStore {
    fn open(path: &Path) -> Result<SqliteStore> {
        let db = open_sqlite(path, "an MLflow mlflow.db")?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            db,
            runs: Vec::new(),
        })
    }

    fn pairs(&self, sql: &str, run_id: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self.db.prepare(sql).map_err(|e| sql_error(&self.path, e))?;
        let rows = stmt
            .query_map([run_id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
            })
            .map_err(|e| sql_error(&self.path, e))?;
        let mut out = Vec::new();
        for row in rows {
            let (k, v) = row.map_err(|e| sql_error(&self.path, e))?;
            out.push((k, v.unwrap_or_default()));
        }
        Ok(out)
    }
}

impl Reader for SqliteStore {
    fn plan(&mut self) -> Result<Plan> {
        let mut plan = Plan::default();
        let path = self.path.clone();
        let mut stmt = self
            .db
            .prepare(
                "SELECT r.run_uuid, r.experiment_id, e.name, r.name, r.status, r.start_time, \
                 r.end_time, r.lifecycle_stage, r.artifact_uri, r.user_id, e.lifecycle_stage \
                 FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id \
                 ORDER BY r.experiment_id, r.start_time, r.run_uuid",
            )
            .map_err(|e| sql_error(&path, e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    RunMeta {
                        run_id: row.get(0)?,
                        experiment_id: row.get::<_, i64>(1)?.to_string(),
                        experiment: row.get(2)?,
                        name: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        status: row.get::<_, Option<String>>(4)?.unwrap_or_default(),
                        start_time: row.get(5)?,
                        end_time: row.get(6)?,
                        lifecycle_stage: row.get::<_, Option<String>>(7)?.unwrap_or_default(),
                        artifact_uri: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
                        user_id: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
                        folder: None,
                    },
                    row.get::<_, Option<String>>(10)?.unwrap_or_default(),
                ))
            })
            .map_err(|e| sql_error(&path, e))?;
        let mut metas = Vec::new();
        let mut deleted_experiments = std::collections::BTreeSet::new();
        for row in rows {
            let (meta, experiment_stage) = row.map_err(|e| sql_error(&path, e))?;
            if experiment_stage == "deleted" {
                deleted_experiments.insert(meta.experiment.clone());
                continue;
            }
            metas.push(meta);
        }
        for name in deleted_experiments {
            plan.notes
                .push(format!("the deleted experiment {name:?} is not imported"));
        }
        drop(stmt);
        plan_runs(&metas, &mut plan);
        self.runs = metas;
        Ok(plan)
    }

    fn load(&mut self, planned: &Planned) -> Result<ImportedRun> {
        let meta = self.runs[planned.key].clone();
        let params = self.pairs(
            "SELECT key, value FROM params WHERE run_uuid = ?1 ORDER BY key",
            &meta.run_id,
        )?;
        let tags = self.pairs(
            "SELECT key, value FROM tags WHERE run_uuid = ?1 ORDER BY key",
            &meta.run_id,
        )?;
        let mut metrics = Vec::new();
        {
            let mut stmt = self
                .db
                .prepare(
                    "SELECT key, step, timestamp, value, is_nan FROM metrics \
                     WHERE run_uuid = ?1 ORDER BY rowid",
                )
                .map_err(|e| sql_error(&self.path, e))?;
            let rows = stmt
                .query_map([&meta.run_id], |row| {
                    let is_nan: Option<bool> = row.get(4)?;
                    let value: f64 = row.get(3)?;
                    Ok(MetricPoint {
                        key: row.get(0)?,
                        step: row.get::<_, Option<i64>>(1)?.unwrap_or(0),
                        timestamp: row.get(2)?,
                        value: if is_nan == Some(true) {
                            f64::NAN
                        } else {
                            value
                        },
                    })
                })
                .map_err(|e| sql_error(&self.path, e))?;
            for row in rows {
                metrics.push(row.map_err(|e| sql_error(&self.path, e))?);
            }
        }
        let mut latest = BTreeMap::new();
        {
            let mut stmt = self
                .db
                .prepare("SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?1")
                .map_err(|e| sql_error(&self.path, e))?;
            let rows = stmt
                .query_map([&meta.run_id], |row| {
                    let is_nan: Option<bool> = row.get(2)?;
                    let value: f64 = row.get(1)?;
                    Ok((
                        row.get::<_, String>(0)?,
                        if is_nan == Some(true) {
                            f64::NAN
                        } else {
                            value
                        },
                    ))
                })
                .map_err(|e| sql_error(&self.path, e))?;
            for row in rows {
                let (k, v) = row.map_err(|e| sql_error(&self.path, e))?;
                latest.insert(k, v);
            }
        }
        let base = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut notes = Vec::new();
        let artifacts = local_artifacts(&meta.artifact_uri, None, &base, &meta.run_id, &mut notes);
        let latest = (!latest.is_empty()).then_some(latest);
        Ok(build_run(
            &meta, params, tags, metrics, latest, artifacts, notes,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_yaml_values_unquote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.yaml");
        std::fs::write(
            &path,
            "artifact_uri: file:///x/y\nname: 'it''s'\nend_time: null\ntags: []\nstatus: 3\n",
        )
        .unwrap();
        let map = read_meta_yaml(&path).unwrap();
        assert_eq!(map["name"], "it's");
        assert_eq!(map["end_time"], "");
        assert_eq!(status_name(&map["status"]), "FINISHED");
        assert_eq!(percent_decode("/a%20b/c"), "/a b/c");
    }
}
