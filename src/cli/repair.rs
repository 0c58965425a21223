//! `runstore repair`: recover a store a crashed writer left open.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use runstore::Store;

use super::open::retry_while_open;

/// Recover a store left open by a crashed writer (a writer open does the recovery).
///
/// Example: runstore repair exp.runs
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
}

/// Runs `repair`.
pub fn run(args: Args, wait: Duration, out: &mut impl Write) -> Result<ExitCode> {
    let Args { path } = args;
    // Store::repair closes explicitly: a failed write of the clean shutdown (a full
    // disk) is an error here, not a success message over a file still unrepaired.
    let recovered = retry_while_open(wait, || Store::repair(&path))
        .with_context(|| format!("repairing {}", path.display()))?;
    let what = if recovered { "recovered: it " } else { "" };
    writeln!(
        out,
        "{} {what}is consistent and can be opened read-only",
        path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
