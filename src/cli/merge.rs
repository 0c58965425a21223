//! `runstore merge`: every run of several source stores into one destination store
//! (`Store::merge_from`), one commit per source, each source checked (`runstore::check`) before
//! it is read. A source that fails its check or its merge is reported and left out; the others
//! are merged, and the exit code says whether any was left out.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use runstore::{MergeIfExists, MergeOptions, MergeProgress, MergeReport, Store};

use super::open::retry_while_open;
use super::text::human_bytes;

/// Merge whole stores into one: every project, run, input table, metrics table and blob of
/// each source, one commit of DEST per source (DEST is created if missing).
///
/// Each source is checked first (as `runstore check`) and its column bytes are checked
/// again as they are copied; a source that fails, or whose run urls clash under `raise`,
/// is reported on stderr and changes nothing, and the others are still merged (exit 1).
/// Input tables equal in content are stored once; references are rewritten. Merging again
/// with `--if-exists skip` completes an interrupted merge and adds nothing twice.
///
/// Example: runstore merge all.runs job-*.runs --if-exists skip
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store to merge into.
    dest: PathBuf,
    /// The stores to merge, in order.
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// What to do when a source run's url is taken in DEST (`raise` leaves that source
    /// out; an input table of another content at the same url is then refused too, and
    /// placed under `<name>_NNNN` by the other modes).
    #[arg(long, value_enum, default_value = "raise")]
    if_exists: IfExists,
}

/// Runs `merge`.
pub fn run(args: Args, wait: Duration, out: &mut impl Write) -> Result<ExitCode> {
    let Args {
        dest,
        sources,
        if_exists,
    } = args;
    merge(&dest, &sources, if_exists, wait, out)
}

/// What `merge` does when a source run's url is taken in the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IfExists {
    /// Leave that whole source out and change nothing for it.
    Raise,
    /// Copy the run to the first free `<name>_NNNN`.
    Rename,
    /// Replace the destination run.
    Overwrite,
    /// Keep the destination run and leave the source's out.
    Skip,
}

impl From<IfExists> for MergeIfExists {
    fn from(value: IfExists) -> MergeIfExists {
        match value {
            IfExists::Raise => MergeIfExists::Raise,
            IfExists::Rename => MergeIfExists::Rename,
            IfExists::Overwrite => MergeIfExists::Overwrite,
            IfExists::Skip => MergeIfExists::Skip,
        }
    }
}

/// Merges each of `sources` into `dest` (created if missing), printing one line per source
/// and a total. Returns exit code 1 when a source was refused, 0 otherwise.
pub fn merge(
    dest: &Path,
    sources: &[PathBuf],
    if_exists: IfExists,
    wait: Duration,
    out: &mut impl Write,
) -> Result<ExitCode> {
    let mut store = retry_while_open(wait, || Store::open_or_create(dest))
        .with_context(|| format!("opening {}", dest.display()))?;
    let mut total = MergeReport::default();
    let mut refused = 0usize;
    let started = Instant::now();
    for source in sources {
        match merge_one(&store, dest, source, if_exists) {
            Ok(report) => {
                writeln!(out, "merged {}: {}", source.display(), describe(&report))?;
                total.add(&report);
            }
            Err(error) => {
                refused += 1;
                eprintln!(
                    "refused {}: {}",
                    super::text::printable(&source.display().to_string()),
                    super::text::error_text(&error)
                );
                // A damaged source can leave this handle refusing writes (as after any
                // corruption a write meets); the file itself is unchanged, so open it again.
                drop(store);
                store = Store::open_waiting(dest, wait)
                    .with_context(|| format!("opening {}", dest.display()))?;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    writeln!(
        out,
        "total into {}: {} ({:.1} MB/s); {} of {} sources refused",
        dest.display(),
        describe(&total),
        total.bytes as f64 / 1e6 / seconds,
        refused,
        sources.len()
    )?;
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Checks `source`, then merges it into `store` with a progress bar on a terminal.
fn merge_one(
    store: &Store,
    dest: &Path,
    source: &Path,
    if_exists: IfExists,
) -> Result<MergeReport> {
    // By device and inode: a symbolic or hard link to DEST is DEST.
    if super::files::same_file(source, dest) {
        anyhow::bail!("it is the destination");
    }
    // The catalog is checked whole first; column segments are not read here because the
    // merge verifies each one's CRC as it copies it (a bad one fails the source's commit).
    let check = runstore::check_with(source, &runstore::CheckOptions { column_data: false })
        .context("checking it")?;
    if let Some(problem) = check.problems.first() {
        anyhow::bail!(
            "it fails `runstore check` ({} problems), first: {problem}",
            check.problems.len()
        );
    }
    let source_store = Store::open_read_only(source).context("opening it")?;
    let bar = progress_bar(source);
    let options = MergeOptions {
        if_exists: if_exists.into(),
        progress: bar.clone().map(|(bar, started)| {
            Arc::new(move |progress: &MergeProgress| show(&bar, started, progress)) as _
        }),
    };
    let result = store.merge_from(&source_store, &options);
    if let Some((bar, _)) = bar {
        bar.finish_and_clear();
    }
    Ok(result?)
}

/// A progress bar over a source's runs, on stderr when it is a terminal.
fn progress_bar(source: &Path) -> Option<(ProgressBar, Instant)> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} runs, {msg}") {
        bar.set_style(style);
    }
    bar.set_prefix(source.display().to_string());
    Some((bar, Instant::now()))
}

/// Draws `progress` with rows and bytes per second since `started`.
fn show(bar: &ProgressBar, started: Instant, progress: &MergeProgress) {
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    bar.set_length(progress.runs_total);
    bar.set_position(progress.runs_done);
    bar.set_message(format!(
        "{:.0} rows/s, {}/s",
        progress.rows as f64 / seconds,
        human_bytes((progress.bytes as f64 / seconds) as u64)
    ));
}

/// One line of counts.
fn describe(report: &MergeReport) -> String {
    format!(
        "{} runs copied ({} renamed, {} overwritten), {} skipped; {} tables copied, {} reused; \
         {} rows; {} blobs; {}",
        report.runs_copied,
        report.runs_renamed,
        report.runs_overwritten,
        report.runs_skipped,
        report.tables_copied,
        report.tables_reused,
        report.rows,
        report.blobs,
        human_bytes(report.bytes)
    )
}
