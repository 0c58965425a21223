//! `runstore copy`: one run into another store (`Run::copy_to`), or within its own store when
//! both paths name the same file (`Run::copy`): the same path, a symbolic link or a hard link
//! to it (compared by device and inode), so a store is never opened twice as two stores.

use std::path::Path;

use anyhow::{Context, Result};
use runstore::{CopyIfExists, CopyOptions, Run, Store};

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
/// the copy.
pub fn copy(
    source: &Path,
    run_url: &str,
    dest: &Path,
    as_name: Option<&str>,
    if_exists: IfExists,
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
        let store = super::retry_open(|| Store::open(source))
            .with_context(|| format!("opening {}", source.display()))?;
        return Ok(store.run(run_url)?.copy(&options)?);
    }
    let source_store =
        Store::open_read_only(source).with_context(|| format!("opening {}", source.display()))?;
    let dest_store = super::retry_open(|| Store::open_or_create(dest))
        .with_context(|| format!("opening {}", dest.display()))?;
    let run = source_store.run(run_url)?;
    Ok(run.copy_to(&dest_store, &options)?)
}
