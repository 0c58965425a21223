//! The catalog layout of version 1 (before sealed values and the key index), kept only to
//! upgrade such stores: the same table names with their old, unsealed value types.
//!
//! An upgrade reads each old table whole, deletes it, and writes every entry again sealed
//! under the current definition, all in one write transaction: a crash leaves version 1.

use redb::{Key, ReadableTable, TableDefinition, TableError, WriteTransaction};

use super::seal::{self, Sealed};
use super::Reader;
use crate::error::{DbResultExt, Error, Result};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const PROJECTS: TableDefinition<&str, i64> = TableDefinition::new("projects");
const RUN_NAMES: TableDefinition<(&str, &str), u64> = TableDefinition::new("run_names");
const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("runs");
const PARAMS: TableDefinition<u64, &[u8]> = TableDefinition::new("params");
const INPUTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("inputs");
const OUTPUTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("outputs");
const BLOBS: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("blobs");
const TABLES: TableDefinition<u64, &[u8]> = TableDefinition::new("tables");
const TABLE_URLS: TableDefinition<&str, u64> = TableDefinition::new("table_urls");
const TAIL: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("tail");
const RUN_WRITERS: TableDefinition<u64, &[u8]> = TableDefinition::new("run_writers");

/// The catalog version a version-1 store's unsealed `meta` table records (`None` if `meta`
/// is not the old layout), in a read or a write transaction.
pub fn version(txn: &impl Reader) -> Result<Option<u64>> {
    match txn.table(META) {
        Ok(meta) => Ok(meta
            .get(super::META_CATALOG_VERSION)
            .db("read meta")?
            .map(|v| v.value())),
        Err(Error::Database { source, .. })
            if matches!(source.redb(), redb::Error::TableTypeMismatch { .. }) =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// Rewrites one version-1 table sealed, under its current definition (the `upgrade_v1` of
/// its entry in `defs::TABLES`).
pub(super) type Upgrade = fn(&WriteTransaction) -> Result<()>;

pub(super) const META_V1: Upgrade = |txn| migrate(txn, META, super::META, number);
pub(super) const PROJECTS_V1: Upgrade = |txn| {
    migrate(txn, PROJECTS, super::PROJECTS, |v: i64| {
        v.to_le_bytes().to_vec()
    })
};
pub(super) const RUN_NAMES_V1: Upgrade = |txn| migrate(txn, RUN_NAMES, super::RUN_NAMES, number);
pub(super) const RUNS_V1: Upgrade = |txn| migrate(txn, RUNS, super::RUNS, bytes);
pub(super) const PARAMS_V1: Upgrade = |txn| migrate(txn, PARAMS, super::PARAMS, bytes);
pub(super) const INPUTS_V1: Upgrade = |txn| migrate(txn, INPUTS, super::INPUTS, bytes);
pub(super) const OUTPUTS_V1: Upgrade = |txn| migrate(txn, OUTPUTS, super::OUTPUTS, bytes);
pub(super) const BLOBS_V1: Upgrade = |txn| migrate(txn, BLOBS, super::BLOBS, bytes);
pub(super) const TABLES_V1: Upgrade = |txn| migrate(txn, TABLES, super::TABLES, bytes);
pub(super) const TABLE_URLS_V1: Upgrade = |txn| migrate(txn, TABLE_URLS, super::TABLE_URLS, number);
pub(super) const TAIL_V1: Upgrade = |txn| migrate(txn, TAIL, super::TAIL, bytes);
pub(super) const RUN_WRITERS_V1: Upgrade =
    |txn| migrate(txn, RUN_WRITERS, super::RUN_WRITERS, bytes);

fn number(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn bytes(v: &[u8]) -> Vec<u8> {
    v.to_vec()
}

fn migrate<K: Key + 'static, V: redb::Value + 'static>(
    txn: &WriteTransaction,
    old: TableDefinition<K, V>,
    new: TableDefinition<K, Sealed>,
    payload: impl for<'a> Fn(V::SelfType<'a>) -> Vec<u8>,
) -> Result<()> {
    let op = "upgrade catalog";
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    match txn.open_table(old) {
        Ok(table) => {
            for entry in table.iter().db(op)? {
                let (key, value) = entry.db(op)?;
                entries.push((seal::key_bytes::<K>(&key.value()), payload(value.value())));
            }
        }
        // Tables added after version 1 was first written (run_writers) may be absent.
        Err(TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(Error::db(op, e)),
    }
    txn.delete_table(old).db(op)?;
    let mut table = txn.open_table(new).db(op)?;
    for (key, value) in &entries {
        seal::put(&mut table, K::from_bytes(key), value)?;
    }
    Ok(())
}
