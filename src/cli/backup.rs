//! `runstore backup`: a consistent copy of a store, beside a running writer if need be.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use runstore::Store;

use super::open::open_read;
use super::text::human_bytes;

/// Copy the store consistently: byte for byte under the write lock, or, while another
/// process is writing, one read snapshot copied into a new compact store. The copy opens
/// and passes `check`; readers and the writer go on meanwhile.
///
/// Example: runstore backup exp.runs /backups/exp-2026-11-22.runs
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// The new file (must not exist).
    dest: PathBuf,
}

/// Runs `backup`.
pub fn run(args: Args, out: &mut impl Write) -> Result<ExitCode> {
    let Args { path, dest } = args;
    // A writer elsewhere holds the write lock for as long as it runs: then copy one
    // read snapshot instead (Store::backup_to on a read-only handle).
    let store = match Store::open(&path) {
        Err(runstore::Error::AlreadyOpen { .. }) => open_read(&path)?,
        other => other.with_context(|| format!("opening {}", path.display()))?,
    };
    let bytes = store.backup_to(&dest)?;
    writeln!(
        out,
        "backed up {} to {} ({})",
        path.display(),
        dest.display(),
        human_bytes(bytes)
    )?;
    Ok(ExitCode::SUCCESS)
}
