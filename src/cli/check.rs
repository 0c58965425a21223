//! `runstore check`: verify a whole store; exit code 3 when a problem is found.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::open::retry_while_open;
use super::text::printable;

/// Verify the superblocks, redb's page checksums, every catalog record and every blob
/// checksum; exit 3 when a problem is found.
///
/// Example: runstore check exp.runs && echo healthy
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
}

/// Runs `check`.
pub fn run(args: Args, wait: Duration, out: &mut impl Write) -> Result<ExitCode> {
    let Args { path } = args;
    let report = retry_while_open(wait, || runstore::check(&path))?;
    for problem in &report.problems {
        writeln!(out, "problem: {}", printable(problem))?;
    }
    if report.redb_repaired {
        writeln!(
            out,
            "note: {} was not closed cleanly (its writer stopped, or still has it \
             open); checked its last commit, recovered in memory, file unchanged",
            path.display()
        )?;
    }
    writeln!(
        out,
        "checked {}: {} runs, {} blobs, {} bytes of segments; {} problems",
        path.display(),
        report.runs,
        report.blobs,
        report.segment_bytes,
        report.problems.len()
    )?;
    if !report.problems.is_empty() {
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}
