//! `runstore close-stale`: close the runs whose writing process is gone.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use runstore::Store;

use super::open::open_read;

/// Close stale runs: runs left RUNNING, COLLECTING or POST_PROCESSING by a process that is
/// gone (same machine; runs from other hosts are never called stale). Prints each url.
///
/// Example: runstore close-stale exp.runs --status cancelled
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// Only runs of this project.
    #[arg(long)]
    project: Option<String>,
    /// The status to close them with.
    #[arg(long, default_value = "cancelled")]
    status: String,
    /// Only list them.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `close-stale`.
pub fn run(args: Args, wait: Duration, out: &mut impl Write) -> Result<ExitCode> {
    let Args {
        path,
        project,
        status,
        dry_run,
    } = args;
    let status = runstore::RunStatus::parse(&status)?;
    let store = if dry_run {
        open_read(&path)?
    } else {
        Store::open_waiting(&path, wait).with_context(|| format!("opening {}", path.display()))?
    };
    for run in store.stale_runs(project.as_deref())? {
        if !dry_run {
            run.set_status(status)?;
        }
        writeln!(out, "{}", run.url())?;
    }
    Ok(ExitCode::SUCCESS)
}
