//! Importing the history users already have: TensorBoard log folders, MLflow stores (an
//! `mlruns/` file store or an `mlflow.db` SQLite database) and trackio databases
//! ([`import`]; the command line's `runstore import`). Behind the `import` feature, so the
//! protobuf decoder and SQLite stay out of the library other tools embed.
//!
//! Each source module reads its tool's files into `ImportedRun`s, one per run, and lists what
//! it could not map as the run's notes; this module writes them. A run is staged in a scratch
//! store (a temporary file) through the ordinary `Run` calls, so every check of those calls
//! holds for imported data, and is then copied into the destination with [`Run::copy_to`]: one
//! commit per imported run. A killed import leaves whole runs in the destination, and the same
//! import again with [`ImportIfExists::Skip`] completes it.
//!
//! Names: a project or run name from another tool becomes a runstore name with
//! [`crate::names::escape_name`] (`sweep/lr=0.1` is `sweep%2Flr=0.1`). Two source runs that
//! would get the same name in one import (MLflow does not keep run names unique) are told
//! apart by a suffix of the second's own id, the same on every import of the same source.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;

use crate::catalog;
use crate::error::{Error, Result};
use crate::run::{CopyIfExists, CopyOptions, InitOptions, Run};
use crate::status::RunStatus;
use crate::store::Store;
use crate::value::Value;

mod mlflow;
pub mod proto;
mod tables;
pub mod tensorboard;
pub mod tfrecord;
mod trackio;

/// The tool an import reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportSource {
    /// A TensorBoard log folder: every folder holding event files is a run.
    Tensorboard,
    /// An MLflow `mlruns/` file store, or an `mlflow.db` SQLite database.
    Mlflow,
    /// A trackio SQLite database (one per project).
    Trackio,
}

impl ImportSource {
    /// The name the command line uses (`tensorboard`, `mlflow`, `trackio`).
    pub fn name(self) -> &'static str {
        match self {
            ImportSource::Tensorboard => "tensorboard",
            ImportSource::Mlflow => "mlflow",
            ImportSource::Trackio => "trackio",
        }
    }
}

/// What an import does with a run whose name the destination already has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImportIfExists {
    /// The run fails (listed as failed; the import goes on with the next run).
    #[default]
    Raise,
    /// The run is imported under the first free `<name>_NNNN`.
    Rename,
    /// The existing run is replaced, in the same commit.
    Overwrite,
    /// The run is skipped (listed as skipped): what completes an interrupted import.
    Skip,
}

/// How [`import`] names and places runs.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Put every run in this project (default: the source's own grouping: the log folder's
    /// name for TensorBoard, the experiment for MLflow, the project for trackio).
    pub project: Option<String>,
    /// What to do with a run whose name is taken.
    pub if_exists: ImportIfExists,
}

/// One run that was imported.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedRunReport {
    /// Where it came from (a folder, an MLflow run id, a trackio run).
    pub source: String,
    /// Its url in the destination.
    pub url: String,
    /// Metrics tables written, with their row counts.
    pub tables: Vec<(String, u64)>,
    /// Blobs written (MLflow artifacts), with their sizes in bytes.
    pub blobs: Vec<(String, u64)>,
    /// What could not be mapped or read, each a sentence (never dropped silently).
    pub notes: Vec<String>,
}

/// One run that was not imported, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotImported {
    /// Where it came from.
    pub source: String,
    /// Why, as a sentence.
    pub reason: String,
}

/// What [`import`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportReport {
    /// Runs imported, in the order they were.
    pub imported: Vec<ImportedRunReport>,
    /// Runs skipped on purpose (`--if-exists skip`, a run the source marks deleted).
    pub skipped: Vec<NotImported>,
    /// Runs that failed (unreadable, or refused by the destination).
    pub failed: Vec<NotImported>,
    /// What the source held beside its runs that was not imported.
    pub notes: Vec<String>,
}

impl ImportReport {
    /// Whether any run failed.
    pub fn has_failures(&self) -> bool {
        !self.failed.is_empty()
    }
}

/// Progress of an [`import`]: called once with the number of runs found (`done` 0), then after
/// each run with the number done.
pub type ImportProgressFn<'a> = dyn FnMut(usize, usize) + 'a;

/// A run read from another tool, ready to write.
#[derive(Debug, Default)]
pub(crate) struct ImportedRun {
    pub(crate) description: String,
    pub(crate) status: Option<RunStatus>,
    /// Creation time in the source, microseconds since the epoch.
    pub(crate) created_us: Option<i64>,
    /// A map.
    pub(crate) parameters: BTreeMap<String, Value>,
    pub(crate) input_values: Vec<Value>,
    pub(crate) output_values: Vec<Value>,
    /// Metrics tables by name (a name under the run: `steps_0000`, `scalars`, ...).
    pub(crate) tables: Vec<(String, RecordBatch)>,
    /// Files to store as the run's blobs: blob name, local path.
    pub(crate) blobs: Vec<(String, PathBuf)>,
    /// What could not be mapped or read.
    pub(crate) notes: Vec<String>,
}

/// A run a source found, before it is read.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    /// Where it comes from, for the summary.
    pub(crate) source: String,
    /// Project and run name in the destination (escaped already).
    pub(crate) project: String,
    pub(crate) name: String,
    /// Told apart by this when another run of the import has the same names.
    pub(crate) unique: String,
    /// The source module's own handle on the run (an index into its own list).
    pub(crate) key: usize,
}

/// What a source found.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) runs: Vec<Planned>,
    pub(crate) skipped: Vec<NotImported>,
    pub(crate) notes: Vec<String>,
}

/// One tool's reader.
pub(crate) trait Reader {
    /// Finds the runs (cheap: no metric is read yet).
    fn plan(&mut self) -> Result<Plan>;
    /// Reads one planned run whole.
    fn load(&mut self, planned: &Planned) -> Result<ImportedRun>;
}

/// Imports every run of `src` (a tool's folder or database, see [`ImportSource`]) into
/// `dest`, one commit per run, and says what was imported, skipped and failed. A run that
/// fails is listed in the report and the import goes on; an error is returned only when
/// `src` cannot be read at all (missing, not the tool's format) or the destination fails.
///
/// `progress` is called with (runs done, runs found).
pub fn import(
    source: ImportSource,
    src: &Path,
    dest: &Store,
    options: &ImportOptions,
    progress: &mut ImportProgressFn<'_>,
) -> Result<ImportReport> {
    if let Some(project) = &options.project {
        crate::names::validate_name(project).map_err(|reason| Error::InvalidName {
            name: project.clone(),
            reason,
        })?;
    }
    let mut reader: Box<dyn Reader> = match source {
        ImportSource::Tensorboard => Box::new(tensorboard::TensorboardReader::open(src)?),
        ImportSource::Mlflow => mlflow::open(src)?,
        ImportSource::Trackio => Box::new(trackio::TrackioReader::open(src)?),
    };
    let plan = reader.plan()?;
    let mut report = ImportReport {
        skipped: plan.skipped,
        notes: plan.notes,
        ..ImportReport::default()
    };
    let total = plan.runs.len();
    progress(0, total);

    let scratch_dir = tempfile::Builder::new()
        .prefix("runstore-import-")
        .tempdir()
        .map_err(|source| Error::Io {
            op: "create the import's scratch folder",
            path: std::env::temp_dir(),
            source,
        })?;
    let scratch = Store::open_or_create(scratch_dir.path().join("scratch.runs"))?;

    let mut taken: HashSet<(String, String)> = HashSet::new();
    for (done, planned) in plan.runs.iter().enumerate() {
        let project = options
            .project
            .clone()
            .unwrap_or_else(|| planned.project.clone());
        let mut name = planned.name.clone();
        if !taken.insert((project.clone(), name.clone())) {
            name = crate::names::escape_name(&format!("{name}-{}", planned.unique));
            taken.insert((project.clone(), name.clone()));
        }
        let outcome = import_one(
            reader.as_mut(),
            planned,
            &scratch,
            dest,
            &project,
            &name,
            options.if_exists,
        );
        match outcome {
            Ok(Outcome::Imported(run)) => report.imported.push(run),
            Ok(Outcome::Skipped(reason)) => report.skipped.push(NotImported {
                source: planned.source.clone(),
                reason,
            }),
            Ok(Outcome::Unreadable(error)) => report.failed.push(NotImported {
                source: planned.source.clone(),
                reason: format!("it could not be read: {}", error_chain(&error)),
            }),
            Err(error) => {
                // The destination itself failing (its file, not this run's data) ends the import.
                if destination_failed(&error) {
                    return Err(error);
                }
                report.failed.push(NotImported {
                    source: planned.source.clone(),
                    reason: error_chain(&error),
                });
            }
        }
        progress(done + 1, total);
    }
    drop(scratch);
    drop(scratch_dir);
    Ok(report)
}

enum Outcome {
    Imported(ImportedRunReport),
    Skipped(String),
    /// The source's run could not be read (a file gone or unreadable, a database row that
    /// does not decode): that run fails, whatever the error's kind, and the import goes on.
    Unreadable(Error),
}

fn import_one(
    reader: &mut dyn Reader,
    planned: &Planned,
    scratch: &Store,
    dest: &Store,
    project: &str,
    name: &str,
    if_exists: ImportIfExists,
) -> Result<Outcome> {
    let url = crate::names::run_url(project, name);
    let exists = match dest.run_by_names(name, project) {
        Ok(_) => true,
        Err(Error::NotFound { .. }) => false,
        Err(error) => return Err(error),
    };
    let copy_if_exists = match (exists, if_exists) {
        (true, ImportIfExists::Skip) => {
            return Ok(Outcome::Skipped(format!(
                "{url} is in the destination already"
            )))
        }
        (true, ImportIfExists::Raise) => {
            return Err(Error::AlreadyExists {
                what: format!("run {url} of the destination"),
            })
        }
        (_, ImportIfExists::Rename) => CopyIfExists::Rename,
        (_, ImportIfExists::Overwrite) => CopyIfExists::Overwrite,
        (_, ImportIfExists::Raise | ImportIfExists::Skip) => CopyIfExists::Raise,
    };
    let run = match reader.load(planned) {
        Ok(run) => run,
        Err(error) => return Ok(Outcome::Unreadable(error)),
    };
    let (staged, blobs) = stage(scratch, project, name, &run)?;
    let copied = staged.copy_to(
        dest,
        &CopyOptions {
            run_name: Some(name.to_string()),
            project_name: Some(project.to_string()),
            destination_url: None,
            if_exists: copy_if_exists,
        },
    );
    // The scratch copy goes whatever happened; the scratch store is thrown away at the end.
    let _ = staged.delete();
    let copied = copied?;
    Ok(Outcome::Imported(ImportedRunReport {
        source: planned.source.clone(),
        url: copied.url(),
        tables: run
            .tables
            .iter()
            .map(|(name, batch)| (name.clone(), batch.num_rows() as u64))
            .collect(),
        blobs,
        notes: run.notes,
    }))
}

/// Writes `run` into the scratch store with the ordinary calls, so their checks hold.
/// Returns the staged run and the blobs written with their sizes.
fn stage(
    scratch: &Store,
    project: &str,
    name: &str,
    run: &ImportedRun,
) -> Result<(Run, Vec<(String, u64)>)> {
    // A failed earlier run can leave its scratch copy behind; it is not this run.
    if let Ok(old) = scratch.run_by_names(name, project) {
        old.delete()?;
    }
    let staged = scratch.init_with(
        project,
        Some(name),
        &InitOptions {
            description: (!run.description.is_empty()).then(|| run.description.clone()),
            parameters: (!run.parameters.is_empty()).then(|| Value::Map(run.parameters.clone())),
            ..InitOptions::default()
        },
    )?;
    for value in &run.input_values {
        staged.add_input_value(value)?;
    }
    if !run.output_values.is_empty() {
        staged.add_output_values(&run.output_values)?;
    }
    for (table, batch) in &run.tables {
        if batch.num_rows() == 0 {
            continue;
        }
        staged.append_metrics(table, &mut std::iter::once(Ok(batch.clone())))?;
    }
    let mut blobs = Vec::new();
    for (blob, path) in &run.blobs {
        let mut file = std::fs::File::open(path).map_err(|source| Error::Io {
            op: "open an artifact to import",
            path: path.clone(),
            source,
        })?;
        let size = staged.put_bulk_from(blob, &mut file)?;
        blobs.push((blob.clone(), size));
    }
    if let Some(status) = run.status {
        staged.set_status(status)?;
    }
    if let Some(created) = run.created_us {
        let id = staged.id();
        scratch.write("import: set the creation time", |txn| {
            let mut record = catalog::run_record(txn, id)?;
            record.created_us = created;
            record.last_modified_us = record.last_modified_us.max(created);
            catalog::put_run_record(txn, id, &record)
        })?;
    }
    Ok((staged, blobs))
}

/// Whether `error`, met while writing a run, is the destination's (or the scratch store's)
/// own file failing, which ends the import, rather than one run's data being refused.
fn destination_failed(error: &Error) -> bool {
    matches!(
        error,
        Error::Corrupted { .. }
            | Error::Io { .. }
            | Error::Database { .. }
            | Error::NeedsRepair { .. }
    ) && !matches!(error, Error::Io { op, .. } if op.starts_with("open an artifact"))
}

/// An error and its causes, as one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A value from text another tool stored as a string (an MLflow parameter, a tag): a number,
/// `true`/`false`/`null`, a JSON list or map when it parses as JSON; the text otherwise. Text
/// that JSON would read differently than it reads (`007`, `1e400`) stays text.
pub(crate) fn typed_from_text(text: &str) -> Value {
    let trimmed = text.trim();
    let looks_json = trimmed
        .chars()
        .next()
        .is_some_and(|c| c == '-' || c == '[' || c == '{' || c.is_ascii_digit())
        || matches!(trimmed, "true" | "false" | "null");
    if looks_json && trimmed == text {
        if let Ok(value) = Value::parse_json(text) {
            match &value {
                Value::Float(f) if !f.is_finite() => {}
                _ => return value,
            }
        }
    }
    Value::Str(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_becomes_a_number_or_json_only_when_it_reads_as_one() {
        assert_eq!(typed_from_text("0.01"), Value::Float(0.01));
        assert_eq!(typed_from_text("32"), Value::Int(32));
        assert_eq!(typed_from_text("-3"), Value::Int(-3));
        assert_eq!(typed_from_text("true"), Value::Bool(true));
        assert_eq!(
            typed_from_text("[64, 32]"),
            Value::List(vec![Value::Int(64), Value::Int(32)])
        );
        assert_eq!(
            typed_from_text("{\"a\": 1}"),
            Value::map([("a", Value::Int(1))])
        );
        for text in [
            "adam", "007", "1e400", " 5", "5 ", "True", "", "nan", "0x10", "[1,",
        ] {
            assert_eq!(typed_from_text(text), Value::Str(text.into()), "{text:?}");
        }
    }
}
