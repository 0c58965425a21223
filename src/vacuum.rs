//! Vacuum: copying the live contents of one store into a fresh one.
//!
//! Catalog rows are copied verbatim; segments (blob chunks and table column buffers) are
//! re-appended to the new file, each CRC checked on the way, and a segment shared by several
//! runs or tables (after `copy`) is copied once. The caller (`Store::vacuum`) owns the
//! temporary file and the rename.

use std::collections::HashMap;

use redb::{ReadableTable, TableDefinition, TableHandle};

use crate::catalog::records::{self, SegmentRef};
use crate::catalog::seal::{self, Sealed};
use crate::catalog::{self, Reader};
use crate::error::{Error, Result};
use crate::store::Store;

/// Re-appends segments from one store to another, once each (also used by `transfer`).
pub(crate) struct SegmentMover<'a> {
    source: &'a Store,
    target: &'a Store,
    col_hwm: u64,
    /// (source offset, length) to new offset. Keyed by both: an empty segment shares its
    /// offset with the segment after it.
    moved: HashMap<(u64, u64), u64>,
    buf: Vec<u8>,
}

impl<'a> SegmentMover<'a> {
    /// A mover that appends to `target` from its committed high-water mark `col_hwm`.
    pub(crate) fn new(source: &'a Store, target: &'a Store, col_hwm: u64) -> SegmentMover<'a> {
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
            offset: segment.offset,
            reason: format!("{what}: segment length overflows"),
        })?;
        self.buf.resize(len, 0);
        self.source
            .file()
            .read_column(segment.offset, &mut self.buf)?;
        let crc = crc32fast::hash(&self.buf);
        if crc != segment.crc32 {
            return Err(Error::Corrupted {
                offset: segment.offset,
                reason: format!("{what}: segment fails its checksum"),
            });
        }
        let new_offset = self.target.file().append_column(self.col_hwm, &self.buf)?;
        self.col_hwm = new_offset + segment.len;
        self.moved.insert((segment.offset, segment.len), new_offset);
        segment.offset = new_offset;
        Ok(())
    }
}

/// Copies everything live from `source` into the empty store `target` in one commit; returns
/// the number of runs copied.
pub fn copy_all(source: &Store, target: &Store) -> Result<u64> {
    source.read(|from| {
        target.write("vacuum", |to| {
            copy_table(from, to, catalog::PROJECTS)?;
            copy_table(from, to, catalog::RUN_NAMES)?;
            copy_table(from, to, catalog::RUNS)?;
            copy_table(from, to, catalog::PARAMS)?;
            copy_table(from, to, catalog::INPUTS)?;
            copy_table(from, to, catalog::OUTPUTS)?;
            copy_table(from, to, catalog::TABLE_URLS)?;
            copy_table(from, to, catalog::TAIL)?;
            // Absent in stores written before writers were recorded.
            if from
                .list_tables()
                .map_err(|e| Error::db("vacuum", e))?
                .any(|t| t.name() == catalog::RUN_WRITERS.name())
            {
                copy_table(from, to, catalog::RUN_WRITERS)?;
            }
            // The key index: copied as it is, or built for a store written before it existed.
            if catalog::has_index(from)? {
                copy_table(from, to, catalog::index::PARAM_INDEX)?;
                copy_table(from, to, catalog::index::OUTPUT_INDEX)?;
                copy_table(from, to, catalog::index::OUTPUT_ORDER)?;
            } else {
                catalog::index::rebuild(to)?;
            }
            for key in [catalog::META_NEXT_RUN_ID, catalog::META_NEXT_TABLE_ID] {
                catalog::meta_set(to, key, catalog::meta_get(from, key)?)?;
            }
            let mut mover = SegmentMover::new(
                source,
                target,
                catalog::meta_get(to, catalog::META_COL_HWM)?,
            );

            let blobs = from.table(catalog::BLOBS)?;
            let mut target_blobs = to
                .open_table(catalog::BLOBS)
                .map_err(|e| Error::db("vacuum", e))?;
            for entry in blobs.iter().map_err(|e| Error::db("vacuum", e))? {
                let (key, bytes) = entry.map_err(|e| Error::db("vacuum", e))?;
                let payload = seal::open_entry(catalog::BLOBS.name(), &key, &bytes)?;
                let (run, name) = key.value();
                let mut record: records::BlobRecord = records::decode(payload, "blob record")?;
                let what = format!("blob {name} of run #{run}");
                for chunk in &mut record.chunks {
                    mover.relocate(chunk, &what)?;
                }
                seal::put(
                    &mut target_blobs,
                    (run, name),
                    records::encode(&record).as_slice(),
                )?;
            }
            drop(target_blobs);

            let tables = from.table(catalog::TABLES)?;
            let mut target_tables = to
                .open_table(catalog::TABLES)
                .map_err(|e| Error::db("vacuum", e))?;
            for entry in tables.iter().map_err(|e| Error::db("vacuum", e))? {
                let (id, bytes) = entry.map_err(|e| Error::db("vacuum", e))?;
                let payload = seal::open_entry(catalog::TABLES.name(), &id, &bytes)?;
                let mut record: records::TableRecord = records::decode(payload, "table record")?;
                let what = format!("table {}", record.url);
                for chunk in &mut record.chunks {
                    for node in &mut chunk.nodes {
                        for segment in node.validity.iter_mut().chain(&mut node.buffers) {
                            mover.relocate(segment, &what)?;
                        }
                    }
                }
                seal::put(
                    &mut target_tables,
                    id.value(),
                    records::encode(&record).as_slice(),
                )?;
            }
            drop(target_tables);
            catalog::meta_set(to, catalog::META_COL_HWM, mover.col_hwm)?;
            catalog::count_rows(from, catalog::RUNS)
        })
    })
}

fn copy_table<K>(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    definition: TableDefinition<K, Sealed>,
) -> Result<()>
where
    K: redb::Key + 'static,
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
{
    let source = from.table(definition)?;
    let mut target = to
        .open_table(definition)
        .map_err(|e| Error::db("vacuum", e))?;
    for entry in source.iter().map_err(|e| Error::db("vacuum", e))? {
        let (key, value) = entry.map_err(|e| Error::db("vacuum", e))?;
        // Same table, same key: the sealed bytes are copied as they are, once checked.
        seal::open_entry(definition.name(), &key, &value)?;
        target
            .insert(key.value(), value.value())
            .map_err(|e| Error::db("vacuum", e))?;
    }
    Ok(())
}
