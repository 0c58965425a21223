//! The `run_writers` table: for each run in an active status, the process that made it so
//! (`liveness` decides from it whether that process still lives).
//!
//! This module owns the record's layout and every read and write of the table; telling the
//! current process and whether a recorded one lives is left to `liveness`. Stores written
//! before writers were recorded have no such table: that reads as "no writer".

use redb::WriteTransaction;
use rkyv::{Archive, Deserialize, Serialize};

use super::{records, seal, Reader, RUN_WRITERS};
use crate::error::{DbResultExt, Error, Result};

/// The process that last moved a run into an active status.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WriterRecord {
    /// Host name, as the kernel reports it.
    pub host: String,
    /// `/proc/sys/kernel/random/boot_id`, empty where unknown.
    pub boot_id: String,
    /// Process id.
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22);
    /// 0 where unknown.
    pub start_ticks: u64,
}

/// Records `writer` as the writer of run `id` (called when the run enters an active status,
/// inside that write transaction).
pub(crate) fn put(txn: &WriteTransaction, id: u64, writer: &WriterRecord) -> Result<()> {
    let mut table = txn.open_table(RUN_WRITERS).db("record run writer")?;
    seal::put(&mut table, id, records::encode(writer).as_slice())?;
    Ok(())
}

/// Forgets run `id`'s writer (the run was deleted).
pub(crate) fn remove(txn: &WriteTransaction, id: u64) -> Result<()> {
    txn.open_table(RUN_WRITERS)
        .db("forget run writer")?
        .remove(id)
        .db("forget run writer")?;
    Ok(())
}

/// The recorded writer of run `id`, if any. Stores written before writers were recorded have
/// no such table; that reads as no writer.
pub(crate) fn get(txn: &impl Reader, id: u64) -> Result<Option<WriterRecord>> {
    let table = match txn.table(RUN_WRITERS) {
        Ok(table) => table,
        Err(Error::Database { source, .. })
            if matches!(source.redb(), redb::Error::TableDoesNotExist(_)) =>
        {
            return Ok(None)
        }
        Err(error) => return Err(error),
    };
    let Some(bytes) = seal::get(&table, id)? else {
        return Ok(None);
    };
    Ok(Some(records::decode(&bytes, "run writer record")?))
}
