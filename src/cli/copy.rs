//! `runstore copy`: one run into another store (`Run::copy_to`), or within its own store when
//! both paths name the same file (`Run::copy`): the same path, a symbolic link or a hard link
//! to it (compared by device and inode), so a store is never opened twice as two stores.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use runstore::{CopyIfExists, CopyOptions, Run, Store};

use super::open::retry_while_open;

/// Copy a run into another store (created if missing), or within one store when both paths
/// name the same file; prints the copy's url.
///
/// Everything the run holds is copied: record, parameters, description, status, times,
/// input tables and values, outputs, blobs and metrics tables (column bytes with their
/// checksums checked). Input tables of the source store the run uses are copied too and
/// the references rewritten. One commit of the destination: on error it is unchanged.
///
/// Example: runstore copy job7.runs mnist/runs/baseline all.runs --as baseline-job7
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store the run is in.
    src_store: PathBuf,
    /// `<project>/runs/<run>`.
    run_url: String,
    /// The store to copy it into.
    dest_store: PathBuf,
    /// The copy's name, or a whole `<project>/runs/<run>` url (default: the same url; in
    /// the same store, the first free `<name>_NNNN`).
    #[arg(long = "as", value_name = "NAME")]
    as_name: Option<String>,
    /// What to do when the destination run exists.
    #[arg(long, value_enum, default_value = "raise")]
    if_exists: IfExists,
}

/// Runs `copy`.
pub fn run(args: Args, wait: Duration, out: &mut impl Write) -> Result<ExitCode> {
    let Args {
        src_store,
        run_url,
        dest_store,
        as_name,
        if_exists,
    } = args;
    let run = copy(
        &src_store,
        &run_url,
        &dest_store,
        as_name.as_deref(),
        if_exists,
        wait,
    )?;
    writeln!(out, "{}", run.url())?;
    Ok(ExitCode::SUCCESS)
}

/// What `copy` does when the destination run exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IfExists {
    /// Fail and change nothing.
    Raise,
    /// Copy to the first free `<name>_NNNN`.
    Rename,
    /// Delete the existing run first (in the same commit).
    Overwrite,
}

impl From<IfExists> for CopyIfExists {
    fn from(value: IfExists) -> CopyIfExists {
        match value {
            IfExists::Raise => CopyIfExists::Raise,
            IfExists::Rename => CopyIfExists::Rename,
            IfExists::Overwrite => CopyIfExists::Overwrite,
        }
    }
}

/// Copies the run at `run_url` of the store `source` into `dest` (created if missing), named
/// `as_name` (a run name, or a whole `<project>/runs/<run>` url) or as in the source. Returns
/// the copy. Opens for writing wait up to `wait` for another writer to close.
pub fn copy(
    source: &Path,
    run_url: &str,
    dest: &Path,
    as_name: Option<&str>,
    if_exists: IfExists,
    wait: Duration,
) -> Result<Run> {
    let mut options = CopyOptions {
        if_exists: if_exists.into(),
        ..Default::default()
    };
    match as_name {
        Some(url) if url.contains('/') => options.destination_url = Some(url.to_string()),
        Some(name) => options.run_name = Some(name.to_string()),
        None => {}
    }
    if super::files::same_file(source, dest) {
        let store = Store::open_waiting(source, wait)
            .with_context(|| format!("opening {}", source.display()))?;
        return Ok(super::find::run(&store, source, run_url)?.copy(&options)?);
    }
    let source_store =
        Store::open_read_only(source).with_context(|| format!("opening {}", source.display()))?;
    let dest_store = retry_while_open(wait, || Store::open_or_create(dest))
        .with_context(|| format!("opening {}", dest.display()))?;
    let run = super::find::run(&source_store, source, run_url)?;
    Ok(run.copy_to(&dest_store, &options)?)
}
