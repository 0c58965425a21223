//! Merging whole stores: [`Store::merge_from`] copies every project, run, input table, metrics
//! table and blob of one source store into this store, in one write transaction of this store.
//!
//! This module owns the walk over a source (projects, then input tables, then runs in id
//! order), the run-name clash policy ([`MergeIfExists`], which adds `Skip` to the copy modes)
//! and the report. The copying itself (segments moved with their CRCs checked, references
//! rewritten, input tables matched by content) is `transfer::Transfer`'s, shared with
//! `Run::copy_to`.
//!
//! Invariant: one source is one commit of the destination or nothing. A merge that fails (a
//! clash under `Raise`, a segment failing its CRC, a damaged catalog value) aborts that
//! transaction, so a crash or an error leaves the destination at a commit boundary, and
//! running the merge again with `Skip` completes it. A merge that would change nothing (every
//! run skipped, every input table found equal) commits nothing, so repeating a merge leaves
//! the file as it was.

use std::fmt;
use std::sync::Arc;

use redb::{ReadTransaction, WriteTransaction};

use crate::catalog;
use crate::error::{Error, Result};
use crate::run::CopyIfExists;
use crate::store::Store;
use crate::transfer::Transfer;

/// What [`Store::merge_from`] does with a source run whose url is taken in the destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MergeIfExists {
    /// Fail the whole source with [`Error::AlreadyExists`]; the destination is unchanged.
    #[default]
    Raise,
    /// Copy the run to the first free `<name>_NNNN`.
    Rename,
    /// Replace the destination run (deleted in the same commit).
    Overwrite,
    /// Leave the destination run as it is and do not copy the source's.
    Skip,
}

/// How far a merge has come, passed to [`MergeOptions::progress`] after each input table and
/// each run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeProgress {
    /// Runs of the source handled so far (copied or skipped).
    pub runs_done: u64,
    /// Runs in the source.
    pub runs_total: u64,
    /// Table rows copied so far.
    pub rows: u64,
    /// Bytes copied so far (column segments and table tail entries).
    pub bytes: u64,
}

/// Called with the merge's progress; see [`MergeOptions::progress`].
pub type MergeProgressFn = Arc<dyn Fn(&MergeProgress) + Send + Sync>;

/// Options of [`Store::merge_from`].
#[derive(Clone, Default)]
pub struct MergeOptions {
    /// What to do when a source run's url is taken in the destination (default raise).
    ///
    /// An input table whose url holds a table with other content in the destination fails
    /// the source under `Raise`; under the other modes it is placed at the first free
    /// `<name>_NNNN` and the source's runs refer to it there (replacing or dropping a table
    /// the destination's own runs may use would change their inputs).
    pub if_exists: MergeIfExists,
    /// Called after each input table and run (for a progress bar); `None` for silence.
    pub progress: Option<MergeProgressFn>,
}

impl fmt::Debug for MergeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MergeOptions")
            .field("if_exists", &self.if_exists)
            .field("progress", &self.progress.as_ref().map(|_| "Fn"))
            .finish()
    }
}

/// What [`Store::merge_from`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Projects that did not exist in the destination before.
    pub projects_created: u64,
    /// Runs written to the destination (the renamed and overwritten ones included).
    pub runs_copied: u64,
    /// Runs left out because their url was taken (`Skip`).
    pub runs_skipped: u64,
    /// Runs written under a `<name>_NNNN` because their url was taken (`Rename`).
    pub runs_renamed: u64,
    /// Runs that replaced a destination run of the same url (`Overwrite`).
    pub runs_overwritten: u64,
    /// Tables copied: input tables and metrics tables.
    pub tables_copied: u64,
    /// Input tables found with equal content in the destination and not copied again.
    pub tables_reused: u64,
    /// Rows of the copied tables.
    pub rows: u64,
    /// Blobs copied.
    pub blobs: u64,
    /// Bytes copied: column segments appended to the destination (table buffers and blob
    /// chunks) and table tail entries.
    pub bytes: u64,
}

impl MergeReport {
    /// Adds `other`'s counts to these (for a total over several sources).
    pub fn add(&mut self, other: &MergeReport) {
        self.projects_created += other.projects_created;
        self.runs_copied += other.runs_copied;
        self.runs_skipped += other.runs_skipped;
        self.runs_renamed += other.runs_renamed;
        self.runs_overwritten += other.runs_overwritten;
        self.tables_copied += other.tables_copied;
        self.tables_reused += other.tables_reused;
        self.rows += other.rows;
        self.blobs += other.blobs;
        self.bytes += other.bytes;
    }

    /// Whether the merge wrote anything.
    pub fn changed(&self) -> bool {
        self.projects_created > 0
            || self.runs_copied > 0
            || self.tables_copied > 0
            || self.blobs > 0
            || self.bytes > 0
    }
}

impl Store {
    /// Copies every project, run, input table, metrics table and blob of `source` into this
    /// store in one commit, and returns what was copied.
    ///
    /// Runs keep their project and name; a name taken here follows `options.if_exists`.
    /// Input tables are copied once, or matched with an equal table (same url, same schema and
    /// rows) already here, and every reference to them is rewritten. Column bytes are copied
    /// segment by segment with their CRCs checked on the way and every catalog value's seal is
    /// checked as it is read, so a damaged source fails with [`Error::Corrupted`] and this
    /// store is unchanged. When column bytes of the source fail their CRC this handle goes on
    /// writing; any other `Corrupted` error (a damaged catalog value, of either store) makes it
    /// refuse writes until reopened, as after any write that meets one, so check a source with
    /// [`crate::check`] first to keep the two apart. On any error this store is unchanged. A
    /// merge that would change nothing commits nothing, so merging the same source twice with
    /// [`MergeIfExists::Skip`] leaves this store as it was.
    pub fn merge_from(&self, source: &Store, options: &MergeOptions) -> Result<MergeReport> {
        if self.same_store(source) || same_file(self, source) {
            return Err(Error::InvalidInput {
                reason: format!("cannot merge {} into itself", self.path().display()),
            });
        }
        // Outcomes carried past `write` in these rather than as its result: an empty merge
        // aborts instead of committing, and a damaged source must not make `write` mark this
        // handle as having found its own catalog damaged.
        let mut unchanged = None;
        let mut source_error = None;
        let result = source.read(|from| {
            self.write("merge store", |to| {
                let mut transfer = Transfer::new(source, self, to)?;
                let report = match merge_snapshot(&mut transfer, from, to, options) {
                    Ok(report) => report,
                    Err(error @ Error::Corrupted { .. }) if transfer.source_damaged() => {
                        source_error = Some(error);
                        return Err(Error::InvalidInput {
                            reason: "the source is damaged".into(),
                        });
                    }
                    Err(error) => return Err(error),
                };
                if report.changed() {
                    transfer.finish(to)?;
                    Ok(report)
                } else {
                    unchanged = Some(report);
                    Err(Error::InvalidInput {
                        reason: "merge changed nothing".into(),
                    })
                }
            })
        });
        match (result, unchanged, source_error) {
            (Err(_), _, Some(error)) => Err(error),
            (Err(_), Some(report), None) => Ok(report),
            (result, _, _) => result,
        }
    }
}

/// Whether both stores are one file (through links and relative paths alike).
fn same_file(a: &Store, b: &Store) -> bool {
    match (
        std::fs::canonicalize(a.path()),
        std::fs::canonicalize(b.path()),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The merge of the source snapshot `from` into the transaction `to`, through `transfer`
/// (whose `finish` is the caller's).
fn merge_snapshot(
    transfer: &mut Transfer<'_>,
    from: &ReadTransaction,
    to: &WriteTransaction,
    options: &MergeOptions,
) -> Result<MergeReport> {
    let op = "merge store";
    let mut report = MergeReport::default();
    if options.if_exists == MergeIfExists::Raise {
        transfer.refuse_different_input_tables();
    }

    // Projects first, with their creation times, so that a project without runs arrives too.
    let projects = catalog::runs::projects(from, op, "projects")?;
    for (name, created) in &projects {
        if !catalog::runs::project_exists(to, name)? {
            // Stored as the bits of the i64 microsecond time (as `Transfer::copy_run` reads it).
            catalog::ensure_project(to, name, *created as i64)?;
            report.projects_created += 1;
        }
    }

    let run_ids = catalog::runs::run_ids(from, op)?;
    let mut progress = MergeProgress {
        runs_total: run_ids.len() as u64,
        ..MergeProgress::default()
    };
    let notify = |transfer: &Transfer<'_>, progress: &mut MergeProgress| {
        progress.rows = transfer.counts().rows;
        progress.bytes = transfer.bytes();
        if let Some(callback) = &options.progress {
            callback(progress);
        }
    };

    // Input tables next: every one, whether a run refers to it or not.
    let mut input_urls = catalog::tables::url_keys(from, op)?;
    input_urls.retain(|url| is_input_table_url(url));
    for url in &input_urls {
        transfer.place_input_table(from, to, url)?;
        notify(transfer, &mut progress);
    }

    for source_id in run_ids {
        let record = catalog::run_record(from, source_id)?;
        let existing = catalog::run_id(to, &record.project, &record.name)?;
        let if_exists = match (existing.is_some(), options.if_exists) {
            (true, MergeIfExists::Skip) => {
                report.runs_skipped += 1;
                progress.runs_done += 1;
                notify(transfer, &mut progress);
                continue;
            }
            (_, MergeIfExists::Raise | MergeIfExists::Skip) => CopyIfExists::Raise,
            (_, MergeIfExists::Rename) => CopyIfExists::Rename,
            (_, MergeIfExists::Overwrite) => CopyIfExists::Overwrite,
        };
        let (_, name) = transfer.copy_run(
            from,
            to,
            source_id,
            &record.project,
            &record.name,
            if_exists,
        )?;
        report.runs_copied += 1;
        if existing.is_some() {
            if name == record.name {
                report.runs_overwritten += 1;
            } else {
                report.runs_renamed += 1;
            }
        }
        progress.runs_done += 1;
        notify(transfer, &mut progress);
    }

    let counts = transfer.counts();
    report.tables_copied = counts.tables;
    report.tables_reused = counts.tables_reused;
    report.rows = counts.rows;
    report.blobs = counts.blobs;
    report.bytes = transfer.bytes();
    Ok(report)
}

/// Whether `url` names an input table (`<project>/tables/<name>`) rather than a run's table.
fn is_input_table_url(url: &str) -> bool {
    let mut parts = url.split('/');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(_), Some("tables"), Some(_), None)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: bool) {
        assert_eq!(is_input_table_url(url), expected, "{url}");
    }

    #[test]
    fn input_table_urls() {
        check("mnist/tables/train", true);
        check("mnist/runs/a/metrics_0000", false);
        check("mnist/tables", false);
        check("mnist/tables/train/extra", false);
    }

    #[test]
    fn report_changed() {
        assert!(!MergeReport::default().changed());
        let skipped = MergeReport {
            runs_skipped: 3,
            tables_reused: 1,
            ..MergeReport::default()
        };
        assert!(!skipped.changed());
        let mut total = skipped;
        total.add(&MergeReport {
            runs_copied: 1,
            ..MergeReport::default()
        });
        assert!(total.changed());
        assert_eq!(total.runs_skipped, 3);
    }
}
