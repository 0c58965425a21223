//! `runstore vacuum`: rewrite a store into a new file without the space of deleted runs.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use runstore::Store;

use super::open::retry_while_open;
use super::text::human_bytes;

/// Rewrite the store into a new file, reclaiming space of deleted runs.
///
/// Example: runstore vacuum exp.runs
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
}

/// Runs `vacuum`.
pub fn run(args: Args, wait: Duration, out: &mut impl Write) -> Result<ExitCode> {
    let Args { path } = args;
    let report = retry_while_open(wait, || Store::vacuum(&path))
        .with_context(|| format!("vacuuming {}", path.display()))?;
    writeln!(
        out,
        "vacuumed {}: {} runs, {} -> {}",
        path.display(),
        report.runs,
        human_bytes(report.bytes_before),
        human_bytes(report.bytes_after)
    )?;
    Ok(ExitCode::SUCCESS)
}
