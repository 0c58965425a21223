//! Vacuum: copying the live contents of one store into a fresh one.
//!
//! Catalog rows are copied verbatim (`catalog::defs` says which tables); segments (blob chunks
//! and table column buffers) are re-appended to the new file, each CRC checked on the way, and
//! a segment shared by several runs or tables (after `copy`) is copied once. The caller
//! (`Store::vacuum`, backup) owns the transactions, the temporary file and the rename.

use std::collections::HashMap;

use redb::{ReadTransaction, WriteTransaction};

use crate::catalog;
use crate::catalog::records::SegmentRef;
use crate::error::{Error, Location, Result};
use crate::file::PhysicalFile;

/// Re-appends segments from one store to another, once each (also used by `transfer`).
pub(crate) struct SegmentMover<'a> {
    source: &'a PhysicalFile,
    target: &'a PhysicalFile,
    col_hwm: u64,
    /// (source offset, length) to new offset. Keyed by both: an empty segment shares its
    /// offset with the segment after it.
    moved: HashMap<(u64, u64), u64>,
    buf: Vec<u8>,
}

impl<'a> SegmentMover<'a> {
    /// A mover that appends to `target` from its committed high-water mark `col_hwm`.
    pub(crate) fn new(
        source: &'a PhysicalFile,
        target: &'a PhysicalFile,
        col_hwm: u64,
    ) -> SegmentMover<'a> {
        SegmentMover {
            source,
            target,
            col_hwm,
            moved: HashMap::new(),
            buf: Vec::new(),
        }
    }

    /// The target's high-water mark after the segments moved so far.
    pub(crate) fn col_hwm(&self) -> u64 {
        self.col_hwm
    }

    /// Copies `segment`'s bytes to the target (checking their CRC on the way) unless they were
    /// copied before, and points `segment` at the copy. `what` names the owner in errors.
    pub(crate) fn relocate(&mut self, segment: &mut SegmentRef, what: &str) -> Result<()> {
        if segment.len == 0 {
            // Nothing to copy, and no place to claim.
            segment.offset = 0;
            return Ok(());
        }
        if let Some(new_offset) = self.moved.get(&(segment.offset, segment.len)) {
            segment.offset = *new_offset;
            return Ok(());
        }
        let len = usize::try_from(segment.len).map_err(|_| Error::Corrupted {
            at: Location::Offset(segment.offset),
            reason: format!("{what}: segment length overflows"),
        })?;
        self.buf.resize(len, 0);
        self.source.read_column(segment.offset, &mut self.buf)?;
        let crc = crc32fast::hash(&self.buf);
        if crc != segment.crc32 {
            return Err(Error::Corrupted {
                at: Location::Offset(segment.offset),
                reason: format!("{what}: segment fails its checksum"),
            });
        }
        let new_offset = self.target.append_column(self.col_hwm, &self.buf)?;
        self.col_hwm = new_offset + segment.len;
        self.moved.insert((segment.offset, segment.len), new_offset);
        segment.offset = new_offset;
        Ok(())
    }
}

/// Copies everything live from the snapshot `from` of the store in `source` into the empty
/// store of `to`, whose file is `target`, in that one transaction; returns the number of runs
/// copied.
pub fn copy_all(
    from: &ReadTransaction,
    to: &WriteTransaction,
    source: &PhysicalFile,
    target: &PhysicalFile,
) -> Result<u64> {
    catalog::defs::copy_verbatim_tables(from, to)?;
    let mut mover = SegmentMover::new(
        source,
        target,
        catalog::meta_get(to, catalog::META_COL_HWM)?,
    );
    catalog::blobs::copy_all_with(from, to, |run, name, record| {
        let what = format!("blob {name} of run #{run}");
        for chunk in &mut record.chunks {
            mover.relocate(chunk, &what)?;
        }
        Ok(())
    })?;
    catalog::tables::copy_all_with(from, to, |record| {
        let what = format!("table {}", record.url);
        for chunk in &mut record.chunks {
            for node in &mut chunk.nodes {
                for segment in node.validity.iter_mut().chain(&mut node.buffers) {
                    mover.relocate(segment, &what)?;
                }
            }
        }
        Ok(())
    })?;
    catalog::meta_set(to, catalog::META_COL_HWM, mover.col_hwm)?;
    catalog::count_rows(from, catalog::RUNS)
}
