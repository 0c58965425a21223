//! `check`: verify a store from the superblock down to every blob checksum, and report each
//! problem with its location instead of stopping at the first.
//!
//! Order: superblock slots (via open), redb's own integrity check (every page checksum of the
//! committed trees), then every catalog record, the invariants listed in `catalog`, and every
//! column segment's bounds and CRC.

use std::collections::HashMap;
use std::path::Path;

use crate::catalog;
use crate::catalog::records::{self, TableRecord};
use crate::error::{Error, Result};
use crate::store::Store;

pub use crate::catalog::check::CheckReport;

/// What [`check_with`] verifies beyond the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// Read every column segment (table chunks and blobs) and verify its CRC, and rebuild
    /// every table's arrays. Without it segments are bounds-checked only (tables still get
    /// every check that needs no column bytes: schema, chunk layouts, tail entries): for a caller that
    /// verifies each segment's CRC as it reads it anyway (`runstore merge` copies segments
    /// with their CRCs checked), which saves reading the column data twice.
    pub column_data: bool,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions { column_data: true }
    }
}

/// Checks the store at `path` without writing to it: the file may be read-only, a crashed
/// writer may have left it needing recovery (recovered in memory, as
/// [`Store::open_read_only`] does), and a writer may have it open (each part of the check
/// then covers the newest commit when it starts). Errors that stop the check early (the file
/// is not a store, cannot be read) are returned; everything else is a problem in the report.
pub fn check(path: impl AsRef<Path>) -> Result<CheckReport> {
    check_with(path, &CheckOptions::default())
}

/// [`check`], choosing what to verify.
pub fn check_with(path: impl AsRef<Path>, options: &CheckOptions) -> Result<CheckReport> {
    let path = path.as_ref();
    let mut report = CheckReport::default();
    Store::probe(path)?;
    match Store::check_database(path) {
        Ok(repaired) => report.redb_repaired = repaired,
        Err(error @ (Error::NotFound { .. } | Error::AlreadyOpen { .. } | Error::Io { .. })) => {
            return Err(error)
        }
        Err(error) => {
            report.problems.push(format!("redb integrity: {error}"));
            return Ok(report);
        }
    }
    let store = match Store::open_read_only(path) {
        Ok(store) => store,
        Err(error) => {
            report.problems.push(format!("open: {error}"));
            return Ok(report);
        }
    };
    store.read(|txn| {
        catalog::check::check_catalog(
            txn,
            &mut report,
            |id, at, col_hwm, report| check_blobs(&store, txn, id, at, col_hwm, options, report),
            |id, record, at, col_hwm, report| {
                check_table_columns(&store, txn, options, id, record, at, col_hwm, report)
            },
        )
    })?;
    Ok(report)
}

/// The column side of one table (`catalog::check` checked its record): every segment within
/// the column extents, and either its structure or a full scan (every CRC).
#[allow(clippy::too_many_arguments)]
fn check_table_columns(
    store: &Store,
    txn: &redb::ReadTransaction,
    options: &CheckOptions,
    id: u64,
    record: &TableRecord,
    at: &str,
    col_hwm: u64,
    report: &mut CheckReport,
) -> Result<()> {
    let mut bad_segment = false;
    for segment in crate::table::segments(record) {
        if segment
            .offset
            .checked_add(segment.len)
            .is_none_or(|end| end > col_hwm)
        {
            report.problems.push(format!(
                "{at}: segment at byte {} ends past the column high-water mark {col_hwm}",
                segment.offset
            ));
            bad_segment = true;
        }
    }
    if bad_segment {
        return Ok(());
    }
    if !options.column_data {
        // Everything a reader needs but the segments' bytes: the schema, each chunk's
        // layout against it, every tail entry (a merge checks segment CRCs as it copies).
        if let Err(error) = crate::table::check_structure(txn, id, record) {
            report.problems.push(format!("{at}: {error}"));
        }
        return Ok(());
    }
    // A full scan rebuilds every array: bounds, alignment, CRC and Arrow validation.
    match crate::table::scan_record(store, txn, id, record, &Default::default()) {
        Ok(batches) => {
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            if rows != record.sealed_rows + record.tail_rows {
                report.problems.push(format!(
                    "{at}: scan returned {rows} rows, record says {}",
                    record.sealed_rows + record.tail_rows
                ));
            }
            report.segment_bytes += crate::table::table_bytes(record);
        }
        Err(error) => report.problems.push(format!("{at}: {error}")),
    }
    Ok(())
}

fn check_blobs(
    store: &Store,
    txn: &redb::ReadTransaction,
    id: u64,
    at: &str,
    col_hwm: u64,
    options: &CheckOptions,
    report: &mut CheckReport,
) -> Result<()> {
    let mut verified: HashMap<u64, u32> = HashMap::new();
    let mut buf = Vec::new();
    for (name, bytes) in catalog::blobs::run_blobs(txn, id)? {
        report.blobs += 1;
        let record: records::BlobRecord = match records::decode(&bytes, "blob record") {
            Ok(record) => record,
            Err(error) => {
                report.problems.push(format!("{at}: blob {name}: {error}"));
                continue;
            }
        };
        let total: u64 = record.chunks.iter().map(|c| c.len).sum();
        if total != record.len {
            report.problems.push(format!(
                "{at}: blob {name}: chunks hold {total} bytes, record says {}",
                record.len
            ));
        }
        for chunk in &record.chunks {
            if verified.get(&chunk.offset) == Some(&chunk.crc32) {
                continue;
            }
            let end = chunk.offset.checked_add(chunk.len);
            if end.is_none_or(|end| end > col_hwm) {
                report.problems.push(format!(
                    "{at}: blob {name}: segment at byte {} ends past the column high-water mark {col_hwm}",
                    chunk.offset
                ));
                continue;
            }
            let Ok(len) = usize::try_from(chunk.len) else {
                report
                    .problems
                    .push(format!("{at}: blob {name}: segment length {}", chunk.len));
                continue;
            };
            if len > crate::store::BLOB_CHUNK_BYTES {
                report
                    .problems
                    .push(format!("{at}: blob {name}: segment length {}", chunk.len));
                continue;
            }
            if !options.column_data {
                continue;
            }
            buf.resize(len, 0);
            if let Err(error) = store.file().read_column(chunk.offset, &mut buf) {
                report.problems.push(format!("{at}: blob {name}: {error}"));
                continue;
            }
            let crc = crc32fast::hash(&buf);
            if crc != chunk.crc32 {
                report.problems.push(format!(
                    "{at}: blob {name}: segment at byte {} fails its checksum",
                    chunk.offset
                ));
                continue;
            }
            report.segment_bytes += chunk.len;
            verified.insert(chunk.offset, chunk.crc32);
        }
    }
    Ok(())
}
