//! `runstore set-status`: set a run's status by name or 3LC code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use runstore::RunStatus;

use super::open::open_for_writing;

/// Set a run's status (a name such as `completed` or a 3LC code 1-7).
///
/// Example: runstore set-status exp.runs mnist/runs/baseline completed
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// `<project>/runs/<run>`.
    run_url: String,
    #[arg(help = format!(
        "{}, or 1-7",
        RunStatus::ALL.map(RunStatus::name).join(", ")
    ))]
    status: String,
    /// Write alongside other processes that opened the store shared (a sweep's trials:
    /// `--shared` here, `Store::open_shared` in Rust) instead of as its one writer.
    #[arg(long)]
    shared: bool,
}

/// Runs `set-status`.
pub fn run(args: Args, wait: Duration) -> Result<ExitCode> {
    let Args {
        path,
        run_url,
        status,
        shared,
    } = args;
    let status = RunStatus::parse(&status)?;
    let store = open_for_writing(&path, shared, wait)?;
    super::find::run(&store, &path, &run_url)?.set_status(status)?;
    Ok(ExitCode::SUCCESS)
}
