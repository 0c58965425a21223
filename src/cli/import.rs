//! `runstore import tensorboard|mlflow|trackio SRC DEST`: the history users have in other
//! tools, brought into a store (`runstore::import`), one commit per run, with a summary of
//! what was imported, skipped and failed.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use runstore::import::{import, ImportIfExists, ImportOptions, ImportReport, ImportSource};
use runstore::Store;

use super::open::retry_while_open;
use super::text::printable;

/// Import runs from TensorBoard, MLflow or trackio into DEST (created if missing).
///
/// One commit per imported run: a killed import leaves whole runs, and the same import
/// again with `--if-exists skip` completes it. Prints what was imported and, with reasons,
/// what was skipped or failed and what could not be mapped; exit 1 if any run failed.
///
/// tensorboard: SRC is a log dir; each folder holding event files is a run named by its path
/// under SRC (`sweep/lr=0.1` becomes `sweep%2Flr=0.1`), in the project named by SRC's folder.
/// Scalars become the tables `scalars` (every event) and `steps_0000` (step, wall_time, a
/// column per tag: one table, a tag not logged at a step is null there), hparams the
/// parameters, text summaries output values, histograms the table `histograms`, projector
/// embeddings a table `projector_<tensor>`.
///
/// mlflow: SRC is an `mlruns/` file store, an `mlflow.db` SQLite database, or a folder holding
/// either. Experiments become projects; params typed parameters (a string that reads as a
/// number or JSON becomes one); tags and MLflow's ids an input value; the metric history the
/// tables `metrics` (every value) and `steps_0000`; each key's latest value an output; local
/// artifacts blobs.
///
/// trackio: SRC is a trackio project database (`<project>.db`) or a folder of them. Configs
/// become parameters, logged numbers the tables `metrics` and `steps_0000`.
///
/// Example: runstore import mlflow mlruns/ history.runs --if-exists skip
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The tool whose files SRC holds.
    #[arg(value_enum)]
    tool: Tool,
    /// The tool's folder or database.
    src: PathBuf,
    /// The store to import into (created if missing).
    dest: PathBuf,
    /// Put every run in this project (default: the log dir's name, the MLflow experiment,
    /// the trackio project).
    #[arg(long)]
    project: Option<String>,
    /// What to do with a run whose name DEST has already: `raise` fails that run (and the
    /// import's exit code), `rename` imports it as `<name>_NNNN`, `overwrite` replaces it,
    /// `skip` leaves it (rerun an interrupted import with `skip`).
    #[arg(long, value_enum, default_value = "raise")]
    if_exists: IfExists,
}

/// The tools `import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    /// A TensorBoard log dir (event files).
    Tensorboard,
    /// An MLflow file store (`mlruns/`) or SQLite database (`mlflow.db`).
    Mlflow,
    /// A trackio project database.
    Trackio,
}

/// What `import` does with a run whose name is taken in DEST.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IfExists {
    /// Fail that run (exit 1); the others are imported.
    Raise,
    /// Import it as the first free `<name>_NNNN`.
    Rename,
    /// Replace the run in DEST.
    Overwrite,
    /// Keep the run in DEST and skip the source's.
    Skip,
}

/// Runs `import`.
pub fn run(args: Args, wait: Duration, out: &mut impl Write) -> Result<ExitCode> {
    let source = match args.tool {
        Tool::Tensorboard => ImportSource::Tensorboard,
        Tool::Mlflow => ImportSource::Mlflow,
        Tool::Trackio => ImportSource::Trackio,
    };
    let options = ImportOptions {
        project: args.project,
        if_exists: match args.if_exists {
            IfExists::Raise => ImportIfExists::Raise,
            IfExists::Rename => ImportIfExists::Rename,
            IfExists::Overwrite => ImportIfExists::Overwrite,
            IfExists::Skip => ImportIfExists::Skip,
        },
    };
    if super::files::same_file(&args.src, &args.dest) {
        anyhow::bail!("SRC and DEST are the same file");
    }
    // DEST is created if missing, and so is the folder it goes in.
    if let Some(parent) = args.dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the folder {}", parent.display()))?;
    }
    let store = retry_while_open(wait, || Store::open_or_create(&args.dest))
        .with_context(|| format!("opening {}", args.dest.display()))?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} runs {elapsed}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(format!("importing {}", source.name()));
        bar
    });
    let started = Instant::now();
    let report = import(source, &args.src, &store, &options, &mut |done, total| {
        if let Some(bar) = &bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    })
    .with_context(|| format!("importing {} from {}", source.name(), args.src.display()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print_report(&report, source, &args.dest, started.elapsed(), out)?;
    Ok(if report.has_failures() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The summary: a line per imported run (its tables, then its notes indented), the skipped
/// and failed runs with their reasons, the source's own notes, and a total.
fn print_report(
    report: &ImportReport,
    source: ImportSource,
    dest: &std::path::Path,
    elapsed: Duration,
    out: &mut impl Write,
) -> Result<()> {
    for run in &report.imported {
        let tables: Vec<String> = run
            .tables
            .iter()
            .map(|(name, rows)| format!("{name} ({rows} rows)"))
            .collect();
        let mut tables = if tables.is_empty() {
            "no tables".to_string()
        } else {
            tables.join(", ")
        };
        if !run.blobs.is_empty() {
            let bytes: u64 = run.blobs.iter().map(|(_, size)| size).sum();
            tables.push_str(&format!("; {} blobs ({bytes} bytes)", run.blobs.len()));
        }
        writeln!(
            out,
            "imported {} <- {}: {tables}",
            printable(&run.url),
            printable(&run.source)
        )?;
        for note in &run.notes {
            writeln!(out, "  note: {}", printable(note))?;
        }
    }
    for skipped in &report.skipped {
        writeln!(
            out,
            "skipped {}: {}",
            printable(&skipped.source),
            printable(&skipped.reason)
        )?;
    }
    for failed in &report.failed {
        writeln!(
            out,
            "FAILED {}: {}",
            printable(&failed.source),
            printable(&failed.reason)
        )?;
    }
    if report
        .failed
        .iter()
        .any(|f| f.reason.contains("already exists"))
    {
        writeln!(
            out,
            "hint: --if-exists rename, overwrite or skip imports a run whose name DEST has"
        )?;
    }
    for note in &report.notes {
        writeln!(out, "note: {}", printable(note))?;
    }
    let notes: usize = report.imported.iter().map(|r| r.notes.len()).sum();
    writeln!(
        out,
        "{} into {}: {} runs imported, {} skipped, {} failed; {} notes on what was not mapped \
         ({:.1} s)",
        source.name(),
        dest.display(),
        report.imported.len(),
        report.skipped.len(),
        report.failed.len(),
        notes + report.notes.len(),
        elapsed.as_secs_f64()
    )?;
    Ok(())
}
