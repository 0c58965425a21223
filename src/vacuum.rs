//! Vacuum: copying the live contents of one store into a fresh one.
//!
//! Catalog rows are copied verbatim; blob segments are re-appended to the new file, each CRC
//! checked on the way, and a segment shared by several runs (after `copy`) is copied once.
//! The caller (`Store::vacuum`) owns the temporary file and the rename.

use std::collections::HashMap;

use redb::{ReadableTable, TableDefinition};

use crate::catalog::{self, records, Reader};
use crate::error::{Error, Result};
use crate::store::Store;

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
            let next_run_id = catalog::meta_get(from, catalog::META_NEXT_RUN_ID)?;
            catalog::meta_set(to, catalog::META_NEXT_RUN_ID, next_run_id)?;

            let mut col_hwm = catalog::meta_get(to, catalog::META_COL_HWM)?;
            let mut moved: HashMap<u64, u64> = HashMap::new();
            let blobs = from.table(catalog::BLOBS)?;
            let mut target_blobs = to
                .open_table(catalog::BLOBS)
                .map_err(|e| Error::db("vacuum", e))?;
            let mut buf = Vec::new();
            for entry in blobs.iter().map_err(|e| Error::db("vacuum", e))? {
                let (key, bytes) = entry.map_err(|e| Error::db("vacuum", e))?;
                let (run, name) = key.value();
                let mut record: records::BlobRecord =
                    records::decode(bytes.value(), "blob record")?;
                for chunk in &mut record.chunks {
                    if let Some(new_offset) = moved.get(&chunk.offset) {
                        chunk.offset = *new_offset;
                        continue;
                    }
                    let len = usize::try_from(chunk.len).map_err(|_| Error::Corrupted {
                        offset: chunk.offset,
                        reason: "blob chunk length overflows".into(),
                    })?;
                    buf.resize(len, 0);
                    source.file().read_column(chunk.offset, &mut buf)?;
                    let crc = crc32fast::hash(&buf);
                    if crc != chunk.crc32 {
                        return Err(Error::Corrupted {
                            offset: chunk.offset,
                            reason: format!("blob {name} of run #{run}: chunk fails its checksum"),
                        });
                    }
                    let new_offset = target.file().append_column(col_hwm, &buf)?;
                    col_hwm = new_offset + chunk.len;
                    moved.insert(chunk.offset, new_offset);
                    chunk.offset = new_offset;
                }
                target_blobs
                    .insert((run, name), records::encode(&record).as_slice())
                    .map_err(|e| Error::db("vacuum", e))?;
            }
            drop(target_blobs);
            catalog::meta_set(to, catalog::META_COL_HWM, col_hwm)?;
            catalog::count_rows(from, catalog::RUNS)
        })
    })
}

fn copy_table<K, V>(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    definition: TableDefinition<K, V>,
) -> Result<()>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
    for<'a> V::SelfType<'a>: std::borrow::Borrow<V::SelfType<'a>>,
{
    let source = from.table(definition)?;
    let mut target = to
        .open_table(definition)
        .map_err(|e| Error::db("vacuum", e))?;
    for entry in source.iter().map_err(|e| Error::db("vacuum", e))? {
        let (key, value) = entry.map_err(|e| Error::db("vacuum", e))?;
        target
            .insert(key.value(), value.value())
            .map_err(|e| Error::db("vacuum", e))?;
    }
    Ok(())
}
