//! `runstore delete`: delete a run with everything it holds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::open::open_for_writing;

/// Delete a run with its parameters, outputs, tables and blobs (space comes back with
/// `vacuum`).
///
/// Example: runstore delete exp.runs mnist/runs/baseline
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// `<project>/runs/<run>`.
    run_url: String,
}

/// Runs `delete`.
pub fn run(args: Args, wait: Duration) -> Result<ExitCode> {
    let Args { path, run_url } = args;
    let store = open_for_writing(&path, false, wait)?;
    store.delete_run(&run_url)?;
    Ok(ExitCode::SUCCESS)
}
