//! The catalog: the redb tables that hold projects, runs, parameters, inputs, outputs and
//! blobs, and the functions that read and change them inside a transaction.
//!
//! This module owns the table definitions and key layout and every read and write of a
//! catalog table (`runs`, `blobs`, `tables`, `writers`, `index`; `defs` lists the tables); it
//! leaves transactions (begin, commit, abort) to `Store`, and column bytes to `file`. Every
//! function here takes an open transaction, so a caller can compose several into one atomic
//! commit. Nothing here imports a module above it (`store`, `run`, `table`).
//!
//! Invariants (asserted where they are written, with [`invariant!`], in debug builds and
//! whenever the `invariants` feature is on, which the test suite turns on so that
//! `cargo test --release` runs them; verified at rest by `check` through `check.rs`):
//! - `run_names[(project, name)] = id` exactly when `runs[id]` has that project and name.
//! - A project exists in `projects` for every run's project.
//! - `outputs` holds keys `(id, 0..output_count)` and `inputs` keys `(id, 0..input_count)`.
//! - Every value of every table is sealed (`seal`): a CRC bound to the table and the key.
//! - `index::OUTPUT_INDEX` / `index::OUTPUT_ORDER` hold exactly the entries
//!   `index::run_entries` computes from each run's `outputs` rows, and `index::PARAM_KEYS`
//!   holds every parameter key path of each run's `params` row.

/// Whether the write sites assert the invariants they keep: in debug builds, and in any build
/// with the `invariants` feature (the test suite's). Release builds of applications skip the
/// extra reads.
pub(crate) const CHECK_INVARIANTS: bool = cfg!(any(debug_assertions, feature = "invariants"));

/// Asserts a catalog invariant where it is written (`assert!`'s arguments), when
/// [`CHECK_INVARIANTS`] holds. A failure panics inside the write transaction, which the store
/// contains, aborts and reports as an error, so nothing violating it is committed.
macro_rules! invariant {
    ($($arg:tt)*) => {
        if $crate::catalog::CHECK_INVARIANTS {
            assert!($($arg)*);
        }
    };
}

/// [`invariant!`] for `assert_eq!`'s arguments.
macro_rules! invariant_eq {
    ($($arg:tt)*) => {
        if $crate::catalog::CHECK_INVARIANTS {
            assert_eq!($($arg)*);
        }
    };
}

pub(crate) mod blobs;
pub(crate) mod check;
pub(crate) mod defs;
pub mod index;
mod legacy;
pub(crate) mod lookup;
pub mod records;
pub(crate) mod runs;
pub mod seal;
pub(crate) mod tables;
pub(crate) mod writers;

pub use blobs::blob_record;
pub use runs::{
    append_outputs, ensure_project, params, put_params, put_run_record, run_id, run_record,
};

use redb::{
    ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableError, TableHandle, WriteTransaction,
};

use crate::error::{DbResultExt, Error, Location, Result};
use crate::value::Value;
use records::RunRecord;
use seal::Sealed;

/// Store-wide counters: `next_run_id`, `next_table_id`, `col_hwm`, `catalog_version`.
pub const META: TableDefinition<&str, Sealed> = TableDefinition::new("meta");
/// Project name to creation time (microseconds, UTC).
pub const PROJECTS: TableDefinition<&str, Sealed> = TableDefinition::new("projects");
/// `(project, run name)` to run id.
pub const RUN_NAMES: TableDefinition<(&str, &str), Sealed> = TableDefinition::new("run_names");
/// Run id to its archived [`RunRecord`].
pub const RUNS: TableDefinition<u64, Sealed> = TableDefinition::new("runs");
/// Run id to its parameters, an encoded `Value::Map`.
pub const PARAMS: TableDefinition<u64, Sealed> = TableDefinition::new("params");
/// `(run id, sequence)` to an encoded input value.
pub const INPUTS: TableDefinition<(u64, u64), Sealed> = TableDefinition::new("inputs");
/// `(run id, sequence)` to an encoded output value. Appending is one insert: its cost does
/// not depend on how many outputs the run already has.
pub const OUTPUTS: TableDefinition<(u64, u64), Sealed> = TableDefinition::new("outputs");
/// `(run id, blob name)` to an archived [`records::BlobRecord`].
pub const BLOBS: TableDefinition<(u64, &str), Sealed> = TableDefinition::new("blobs");

/// Table id to its archived `TableRecord`.
pub const TABLES: TableDefinition<u64, Sealed> = TableDefinition::new("tables");
/// Table url to table id.
pub const TABLE_URLS: TableDefinition<&str, Sealed> = TableDefinition::new("table_urls");
/// `(table id, sequence)` to an archived `TailRecord`: rows appended since the last seal.
pub const TAIL: TableDefinition<(u64, u64), Sealed> = TableDefinition::new("tail");
/// Run id → the process that last moved the run into an active status
/// (`writers::WriterRecord`), for telling stale runs. Absent in stores written before it.
pub const RUN_WRITERS: TableDefinition<u64, Sealed> = TableDefinition::new("run_writers");

/// Key in [`META`]: the id the next table gets.
pub const META_NEXT_TABLE_ID: &str = "next_table_id";
/// Key in [`META`]: the id the next run gets.
pub const META_NEXT_RUN_ID: &str = "next_run_id";
/// Key in [`META`]: the committed column high-water mark (physical offset).
pub const META_COL_HWM: &str = "col_hwm";
/// Key in [`META`]: the version of the catalog's table layout.
pub const META_CATALOG_VERSION: &str = "catalog_version";
/// The catalog layout this build writes: 2 sealed every value (`seal`) and added the key
/// index (`index`); 3 added the output order index (`index::OUTPUT_ORDER`) and the latest
/// value's sort key to each output index entry; 4 dropped the parameter index (a second copy
/// of every parameter, by path) for a registry of parameter key paths (`index::PARAM_KEYS`),
/// parameters being read from their `params` rows. A writable open upgrades an older store in
/// one commit; a read-only open of one is refused with `Error::NeedsUpgrade`.
pub const CATALOG_VERSION: u64 = 4;
/// The oldest catalog layout this build opens.
pub const CATALOG_VERSION_MIN: u64 = 1;
/// The first catalog layout with the key index as this build reads it (the order index, the
/// parameter key registry).
pub const CATALOG_VERSION_INDEX: u64 = 4;

/// Creates every table of a new store and its counters.
pub fn initialize(txn: &WriteTransaction) -> Result<()> {
    let mut meta = txn.open_table(META).db("create tables")?;
    for (key, value) in [
        (META_NEXT_RUN_ID, 1),
        (META_NEXT_TABLE_ID, 1),
        (META_COL_HWM, 0),
        (META_CATALOG_VERSION, CATALOG_VERSION),
    ] {
        seal::put(&mut meta, key, &u64::to_le_bytes(value))?;
    }
    drop(meta);
    defs::create_all(txn)
}

/// Upgrades an older catalog to the current layout in `txn`: seals a version-1 catalog's
/// values, then builds the key index (version 1) or rebuilds it with the order index
/// (version 2) from the `params` and `outputs` rows. Returns whether anything changed.
pub fn upgrade(txn: &WriteTransaction) -> Result<bool> {
    let version = match legacy::version(txn)? {
        Some(version) => {
            defs::upgrade_all_v1(txn)?;
            version
        }
        None => meta_get(txn, META_CATALOG_VERSION)?,
    };
    if version >= CATALOG_VERSION {
        return Ok(false);
    }
    index::rebuild(txn)?;
    meta_set(txn, META_CATALOG_VERSION, CATALOG_VERSION)?;
    Ok(true)
}

/// The catalog version of the store read through `txn`, whatever its layout (version 1's
/// `meta` table is not sealed).
pub fn stored_version(txn: &ReadTransaction) -> Result<u64> {
    match legacy::version(txn)? {
        Some(version) => Ok(version),
        None => meta_get(txn, META_CATALOG_VERSION),
    }
}

/// Whether the store read through `txn` has the key index with the order index (catalog
/// version 3 or later).
pub fn has_index(txn: &impl Reader) -> Result<bool> {
    Ok(meta_get(txn, META_CATALOG_VERSION)? >= CATALOG_VERSION_INDEX)
}

/// A transaction tables can be read from: read and write transactions alike, so each lookup
/// below is written once.
pub trait Reader {
    /// The table type the transaction opens.
    type Table<'a, K: redb::Key + 'static, V: redb::Value + 'static>: ReadableTable<K, V>
        + redb::TableHandle
    where
        Self: 'a;

    /// Opens a table for reading.
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> Result<Self::Table<'_, K, V>>;
}

impl Reader for WriteTransaction {
    type Table<'a, K: redb::Key + 'static, V: redb::Value + 'static> = redb::Table<'a, K, V>;

    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> Result<Self::Table<'_, K, V>> {
        self.open_table(definition).db("open table")
    }
}

impl Reader for ReadTransaction {
    type Table<'a, K: redb::Key + 'static, V: redb::Value + 'static> = redb::ReadOnlyTable<K, V>;

    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> Result<Self::Table<'_, K, V>> {
        self.open_table(definition).db("open table")
    }
}

/// Reads a counter from [`META`].
pub fn meta_get(txn: &impl Reader, key: &str) -> Result<u64> {
    let meta = txn.table(META)?;
    match seal::get(&meta, key)? {
        Some(bytes) => seal::u64_payload(&bytes, "meta"),
        None => Err(Error::Corrupted {
            at: Location::Record {
                table: META.name().to_string(),
                key: key.to_string(),
            },
            reason: format!("meta key {key} is missing"),
        }),
    }
}

/// Sets a counter in [`META`].
pub fn meta_set(txn: &WriteTransaction, key: &str, value: u64) -> Result<()> {
    let mut meta = txn.open_table(META).db("write meta")?;
    seal::put(&mut meta, key, &value.to_le_bytes())?;
    Ok(())
}

/// Decodes a stored value; `what` names it in the error.
pub fn decode_value(bytes: &[u8], what: &str) -> Result<Value> {
    Value::decode(bytes).map_err(|error| Error::Corrupted {
        at: Location::Catalog,
        reason: format!("{what}: {error}"),
    })
}

/// Removes every row of a run from every table, its metrics tables included (the run's column
/// segments stay until vacuum).
pub fn delete_run_rows(txn: &WriteTransaction, id: u64, record: &RunRecord) -> Result<()> {
    defs::delete_run(txn, id, record)
}

/// Counts the rows of a table in a read transaction, treating a missing table as empty.
pub fn count_rows<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64> {
    match txn.open_table(table) {
        Ok(table) => table.len().db("count rows"),
        Err(TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(Error::db("count rows", e)),
    }
}

/// Opens a database-level read transaction (shared by read-write and read-only handles).
pub fn begin_read(db: &impl ReadableDatabase) -> Result<ReadTransaction> {
    db.begin_read().db("begin read")
}

#[cfg(test)]
mod invariant_tests {
    use super::records::RunRecord;

    /// The test suite turns on the `invariants` feature (the crate's dev-dependency on
    /// itself), so even `cargo test --release` asserts the invariants at the write sites.
    #[test]
    fn the_test_suite_asserts_invariants_in_every_profile() {
        const { assert!(super::CHECK_INVARIANTS) };
    }

    /// A write that would break an invariant is stopped where it is written, before it can
    /// be committed: a run record whose project is not listed.
    #[test]
    #[should_panic(expected = "run #7: project ghost is not listed")]
    fn a_run_of_an_unlisted_project_is_stopped_where_it_is_written() {
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .unwrap();
        let txn = db.begin_write().unwrap();
        super::initialize(&txn).unwrap();
        let record = RunRecord {
            project: "ghost".into(),
            name: "r".into(),
            description: String::new(),
            created_us: 0,
            last_modified_us: 0,
            status: 1,
            input_tables: Vec::new(),
            input_count: 0,
            output_count: 0,
            metrics: Vec::new(),
        };
        let _ = super::runs::put_run_record(&txn, 7, &record);
    }
}

/// Storage figures of one catalog table, as redb's page walk reports them
/// ([`crate::Store::catalog_stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogTableStats {
    /// The table's name (`runs`, `param_index`, ...).
    pub name: String,
    /// Entries (keys) in the table.
    pub entries: u64,
    /// Leaf pages holding its keys and values.
    pub leaf_pages: u64,
    /// Branch pages of its B-tree.
    pub branch_pages: u64,
    /// Bytes of the keys and values themselves (sealed values include their 4-byte CRC).
    pub stored_bytes: u64,
    /// Bytes of keys in branch pages and other per-page metadata.
    pub metadata_bytes: u64,
    /// Bytes of its pages that hold nothing (partly filled pages).
    pub fragmented_bytes: u64,
}

/// Storage figures of every catalog table in `txn`'s snapshot, in name order.
pub(crate) fn table_stats(txn: &ReadTransaction) -> Result<Vec<CatalogTableStats>> {
    use redb::{ReadableTableMetadata, TableHandle};
    let mut out = Vec::new();
    for handle in txn.list_tables().db("list tables")? {
        let name = handle.name().to_string();
        let table = txn.open_untyped_table(handle).db("open table")?;
        let stats = table.stats().db("table stats")?;
        out.push(CatalogTableStats {
            name,
            entries: table.len().db("count rows")?,
            leaf_pages: stats.leaf_pages(),
            branch_pages: stats.branch_pages(),
            stored_bytes: stats.stored_bytes(),
            metadata_bytes: stats.metadata_bytes(),
            fragmented_bytes: stats.fragmented_bytes(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
