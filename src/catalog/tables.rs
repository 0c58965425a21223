//! The table catalog: `tables` (table id to its `TableRecord`), `table_urls` (url to id) and
//! `tail` (`(table id, sequence)` to a `TailRecord`: rows appended since the last seal).
//!
//! This module owns every read and write of those three tables; what a record means (schemas,
//! sealing, scans) is left to `table`, which calls in here with an open transaction.
//! Invariant it keeps: `table_urls[record.url] = id` exactly when `tables[id]` holds `record`,
//! and a table's tail entries are removed with it.

use redb::{ReadableTable, TableHandle, WriteTransaction};

use super::records::{self, TableRecord};
use super::{meta_get, meta_set, run_record, seal, Reader};
use super::{META_NEXT_TABLE_ID, TABLES, TABLE_URLS, TAIL};
use crate::error::{DbResultExt, Error, Result};

/// Looks up a table id by url.
pub(crate) fn table_id(txn: &impl Reader, url: &str) -> Result<Option<u64>> {
    let urls = txn.table(TABLE_URLS)?;
    seal::get(&urls, url)?
        .map(|id| seal::u64_payload(&id, "table url index"))
        .transpose()
}

/// Reads a table record.
pub(crate) fn table_record(txn: &impl Reader, id: u64, url: &str) -> Result<TableRecord> {
    let tables = txn.table(TABLES)?;
    match seal::get(&tables, id)? {
        Some(bytes) => records::decode(&bytes, "table record"),
        None => Err(Error::not_found(format!("table {url}"))),
    }
}

/// Writes a table record.
pub(crate) fn put_table_record(
    txn: &WriteTransaction,
    id: u64,
    record: &TableRecord,
) -> Result<()> {
    // `sealed_rows` is the sum of the chunks' rows (`table`'s invariant; `check` verifies it).
    invariant_eq!(
        record.chunks.iter().map(|chunk| chunk.rows).sum::<u64>(),
        record.sealed_rows,
        "table {}: chunks and sealed_rows disagree",
        record.url
    );
    let mut tables = txn.open_table(TABLES).db("write table")?;
    seal::put(&mut tables, id, records::encode(record).as_slice())?;
    Ok(())
}

/// Bytes a table occupies: its segments plus its tail entries.
pub(crate) fn table_bytes(record: &TableRecord) -> u64 {
    let segments: u64 = record
        .chunks
        .iter()
        .flat_map(|chunk| &chunk.nodes)
        .flat_map(|node| node.validity.iter().chain(&node.buffers))
        .map(|segment| segment.len)
        .sum();
    segments + record.tail_bytes
}

/// Takes the next table id from the `meta` counter.
pub(crate) fn next_table_id(txn: &WriteTransaction) -> Result<u64> {
    let id = meta_get(txn, META_NEXT_TABLE_ID)?;
    meta_set(txn, META_NEXT_TABLE_ID, id + 1)?;
    Ok(id)
}

/// Points `url` at table `id` in the url index; `op` names the call in errors.
pub(crate) fn put_url(txn: &WriteTransaction, url: &str, id: u64, op: &'static str) -> Result<()> {
    if super::CHECK_INVARIANTS {
        // The url index points at a table record of this url (written first).
        let record = table_record(txn, id, url)?;
        invariant_eq!(
            record.url,
            url,
            "table #{id}: the url index and the record disagree"
        );
    }
    let mut urls = txn.open_table(TABLE_URLS).db(op)?;
    seal::put(&mut urls, url, &id.to_le_bytes())?;
    Ok(())
}

/// Stores `entry` (an encoded `TailRecord`) as tail entry `seq` of table `id`.
pub(crate) fn put_tail_entry(
    txn: &WriteTransaction,
    id: u64,
    seq: u64,
    entry: &[u8],
) -> Result<()> {
    let mut tail = txn.open_table(TAIL).db("append to tail")?;
    let old = seal::put(&mut tail, (id, seq), entry)?;
    // Tail entries are numbered by `tail_next`: the next number was free.
    invariant!(old.is_none(), "table #{id}: tail entry {seq} existed");
    Ok(())
}

/// Removes every tail entry of table `id` (its rows were sealed into a chunk).
pub(crate) fn clear_tail(txn: &WriteTransaction, id: u64) -> Result<()> {
    txn.open_table(TAIL)
        .db("seal")?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
        .db("seal")?;
    Ok(())
}

/// Calls `f` with each tail entry of table `id` in order: its sequence number and its
/// checked payload (an encoded `TailRecord`). `op` names the call in errors.
pub(crate) fn for_each_tail_entry(
    txn: &impl Reader,
    id: u64,
    op: &'static str,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let tail = txn.table(TAIL)?;
    for entry in tail.range((id, 0)..=(id, u64::MAX)).db(op)? {
        let (key, bytes) = entry.db(op)?;
        let payload = seal::open_entry(TAIL.name(), &key, &bytes)?;
        f(key.value().1, payload)?;
    }
    Ok(())
}

/// Copies the tail entries of table `id` in `from` to table `new_id` in `to` (another store),
/// showing each checked payload to `inspect` first, which may refuse it.
pub(crate) fn copy_tail_across(
    from: &impl Reader,
    to: &WriteTransaction,
    id: u64,
    new_id: u64,
    mut inspect: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let op = "copy table to store";
    let tail = from.table(TAIL)?;
    let mut target = to.open_table(TAIL).db(op)?;
    for entry in tail.range((id, 0)..=(id, u64::MAX)).db(op)? {
        let (key, bytes) = entry.db(op)?;
        let payload = seal::open_entry(TAIL.name(), &key, &bytes)?;
        inspect(payload)?;
        seal::put(&mut target, (new_id, key.value().1), payload)?;
    }
    Ok(())
}

/// Removes table `id` with its tail.
pub(crate) fn delete_table(txn: &WriteTransaction, id: u64, record: &TableRecord) -> Result<()> {
    let op = "delete table";
    txn.open_table(TABLES).db(op)?.remove(id).db(op)?;
    txn.open_table(TABLE_URLS)
        .db(op)?
        .remove(record.url.as_str())
        .db(op)?;
    txn.open_table(TAIL)
        .db(op)?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
        .db(op)?;
    Ok(())
}

/// The tables owned by run `run_id` (its metrics tables), by url. A run's tables are named
/// under its url, so this is a range of the url index, not a scan of every table.
pub(crate) fn run_tables(txn: &impl Reader, run_id: u64) -> Result<Vec<(u64, TableRecord)>> {
    let op = "list run tables";
    let run = run_record(txn, run_id)?;
    let prefix = format!("{}/", crate::names::run_url(&run.project, &run.name));
    let urls = txn.table(TABLE_URLS)?;
    let mut out = Vec::new();
    for entry in urls.range(prefix.as_str()..).db(op)? {
        let (url, id) = entry.db(op)?;
        if !url.value().starts_with(&prefix) {
            break;
        }
        let id = seal::open_u64_entry(TABLE_URLS.name(), &url, &id)?;
        let record = table_record(txn, id, url.value())?;
        if record.run_id == run_id {
            out.push((id, record));
        }
    }
    Ok(out)
}

/// Every table of the store by url: its url and id (seal checked).
pub(crate) fn urls(txn: &impl Reader) -> Result<Vec<(String, u64)>> {
    let op = "list tables";
    let urls = txn.table(TABLE_URLS)?;
    let mut out = Vec::new();
    for entry in urls.iter().db(op)? {
        let (url, id) = entry.db(op)?;
        let id = seal::open_u64_entry(TABLE_URLS.name(), &url, &id)?;
        out.push((url.value().to_string(), id));
    }
    Ok(out)
}

/// Every table url of the store, in order, keys only (no value read); `op` names the call in
/// errors.
pub(crate) fn url_keys(txn: &impl Reader, op: &'static str) -> Result<Vec<String>> {
    let urls = txn.table(TABLE_URLS)?;
    let mut out = Vec::new();
    for entry in urls.iter().db(op)? {
        let (url, _) = entry.db(op)?;
        out.push(url.value().to_string());
    }
    Ok(out)
}

/// Copies table `id` of a run to `new_url` owned by `new_run_id`, sharing its segments and
/// copying its tail entries.
pub(crate) fn copy_table(
    txn: &WriteTransaction,
    id: u64,
    record: &TableRecord,
    new_url: &str,
    new_run_id: u64,
) -> Result<u64> {
    if table_id(txn, new_url)?.is_some() {
        return Err(Error::AlreadyExists {
            what: format!("table {new_url}"),
        });
    }
    let new_id = next_table_id(txn)?;
    let mut copy = record.clone();
    copy.url = new_url.to_string();
    copy.run_id = new_run_id;
    put_table_record(txn, new_id, &copy)?;
    put_url(txn, new_url, new_id, "copy table")?;
    let mut tail = txn.open_table(TAIL).db("copy table")?;
    let mut entries: Vec<(u64, Vec<u8>)> = Vec::new();
    for entry in tail.range((id, 0)..=(id, u64::MAX)).db("copy table")? {
        let (key, bytes) = entry.db("copy table")?;
        let payload = seal::open_entry(TAIL.name(), &key, &bytes)?;
        entries.push((key.value().1, payload.to_vec()));
    }
    for (seq, bytes) in entries {
        seal::put(&mut tail, (new_id, seq), bytes.as_slice())?;
    }
    Ok(new_id)
}

/// Copies every table record of `from` into `to` (another store, in vacuum), each passed
/// through `rewrite` first.
pub(crate) fn copy_all_with(
    from: &impl Reader,
    to: &WriteTransaction,
    mut rewrite: impl FnMut(&mut TableRecord) -> Result<()>,
) -> Result<()> {
    let tables = from.table(TABLES)?;
    let mut target_tables = to.open_table(TABLES).db("vacuum")?;
    for entry in tables.iter().db("vacuum")? {
        let (id, bytes) = entry.db("vacuum")?;
        let payload = seal::open_entry(TABLES.name(), &id, &bytes)?;
        let mut record: TableRecord = records::decode(payload, "table record")?;
        rewrite(&mut record)?;
        seal::put(
            &mut target_tables,
            id.value(),
            records::encode(&record).as_slice(),
        )?;
    }
    Ok(())
}
