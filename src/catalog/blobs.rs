//! The blob catalog: `blobs`, `(run id, blob name)` to a `BlobRecord` naming the blob's
//! column segments.
//!
//! This module owns every read and write of the table; the blob bytes are `file`'s, the API
//! over them is `run`'s. Invariant it keeps: a run's blobs are one key range `(id, "")..`,
//! removed with the run.

use redb::{ReadableTable, TableHandle, WriteTransaction};

use super::records::{self, BlobRecord};
use super::{seal, Reader, BLOBS};
use crate::error::{DbResultExt, Result};

/// Reads a blob record.
pub fn blob_record(txn: &impl Reader, id: u64, name: &str) -> Result<Option<BlobRecord>> {
    let blobs = txn.table(BLOBS)?;
    seal::get(&blobs, (id, name))?
        .map(|bytes| records::decode(&bytes, "blob record"))
        .transpose()
}

/// The blobs of run `id`: each name with its raw (archived) record, by name.
pub fn run_blobs(txn: &impl Reader, id: u64) -> Result<Vec<(String, Vec<u8>)>> {
    let op = "list blobs";
    let blobs = txn.table(BLOBS)?;
    let mut out = Vec::new();
    for entry in blobs.range((id, "")..).db(op)? {
        let (key, value) = entry.db(op)?;
        let (run, name) = key.value();
        if run != id {
            break;
        }
        let payload = value
            .value()
            .open(BLOBS.name(), &seal::key_bytes::<(u64, &str)>(&(run, name)))?;
        out.push((name.to_string(), payload.to_vec()));
    }
    Ok(out)
}

/// Writes the blob record of `name` in run `id`.
pub(crate) fn put_blob(
    txn: &WriteTransaction,
    id: u64,
    name: &str,
    record: &BlobRecord,
) -> Result<()> {
    put_raw(
        txn,
        id,
        name,
        records::encode(record).as_slice(),
        "put bulk data",
    )
}

/// Writes `bytes` (an archived `BlobRecord`) as the record of `name` in run `id`; `op` names
/// the call in errors.
pub(crate) fn put_raw(
    txn: &WriteTransaction,
    id: u64,
    name: &str,
    bytes: &[u8],
    op: &'static str,
) -> Result<()> {
    let mut blobs = txn.open_table(BLOBS).db(op)?;
    seal::put(&mut blobs, (id, name), bytes)?;
    Ok(())
}

/// Removes the blob `name` of run `id`; returns whether there was one.
pub(crate) fn remove_blob(txn: &WriteTransaction, id: u64, name: &str) -> Result<bool> {
    let removed = txn
        .open_table(BLOBS)
        .db("delete bulk data")?
        .remove((id, name))
        .db("delete bulk data")?
        .is_some();
    Ok(removed)
}

/// Removes every blob record of run `id` (the run is deleted).
pub(crate) fn remove_run(txn: &WriteTransaction, id: u64) -> Result<()> {
    let op = "delete run";
    // List first: the listing opens the table, and redb allows one open handle per table.
    let names = run_blobs(txn, id)?;
    let mut blobs = txn.open_table(BLOBS).db(op)?;
    for (name, _) in names {
        blobs.remove((id, name.as_str())).db(op)?;
    }
    Ok(())
}

/// Copies every blob record of `from` into `to` (another store, in vacuum), each passed
/// through `rewrite` (run id, name, the decoded record) first.
pub(crate) fn copy_all_with(
    from: &impl Reader,
    to: &WriteTransaction,
    mut rewrite: impl FnMut(u64, &str, &mut BlobRecord) -> Result<()>,
) -> Result<()> {
    let blobs = from.table(BLOBS)?;
    let mut target_blobs = to.open_table(BLOBS).db("vacuum")?;
    for entry in blobs.iter().db("vacuum")? {
        let (key, bytes) = entry.db("vacuum")?;
        let payload = seal::open_entry(BLOBS.name(), &key, &bytes)?;
        let (run, name) = key.value();
        let mut record: BlobRecord = records::decode(payload, "blob record")?;
        rewrite(run, name, &mut record)?;
        seal::put(
            &mut target_blobs,
            (run, name),
            records::encode(&record).as_slice(),
        )?;
    }
    Ok(())
}
