//! `runstore upgrade`: bring an older store to this version's catalog layout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use runstore::Store;

/// Upgrade a store written by an older runstore to this version's catalog layout, in one
/// commit (any writing open does the same; a read-only open of an old store is refused).
///
/// Example: runstore upgrade old.runs
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
}

/// Runs `upgrade`.
pub fn run(args: Args, wait: Duration, out: &mut impl Write) -> Result<ExitCode> {
    let Args { path } = args;
    // A read-only open tells the version unless the store needs repair first (the
    // writable open below repairs it too).
    let before = match Store::open_read_only(&path) {
        Ok(store) => Some(store.info()?.catalog_version),
        Err(runstore::Error::NeedsUpgrade { found, .. }) => Some(found),
        Err(_) => None,
    };
    let store = Store::open_waiting(&path, wait)
        .with_context(|| format!("upgrading {}", path.display()))?;
    let after = store.info()?.catalog_version;
    drop(store);
    if before.is_none_or(|before| before == after) {
        writeln!(out, "{} is at catalog version {after}", path.display())?;
    } else {
        writeln!(
            out,
            "upgraded {} from catalog version {} to {after}",
            path.display(),
            before.unwrap_or(after)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
