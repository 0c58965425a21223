//! The catalog: the redb tables that hold projects, runs, parameters, inputs, outputs and
//! blobs, and the functions that read and change them inside a transaction.
//!
//! This module owns the table definitions and key layout; it leaves transactions (begin,
//! commit, abort) to `Store`, and column bytes to `file`. Every function here takes an open
//! transaction, so a caller can compose several into one atomic commit.
//!
//! Invariants (checked by `Store::check`):
//! - `run_names[(project, name)] = id` exactly when `runs[id]` has that project and name.
//! - A project exists in `projects` for every run's project.
//! - `outputs` holds keys `(id, 0..output_count)` and `inputs` keys `(id, 0..input_count)`.
//! - Every value of every table is sealed (`seal`): a CRC bound to the table and the key.
//! - `index::PARAM_INDEX` / `index::OUTPUT_INDEX` / `index::OUTPUT_ORDER` hold exactly the
//!   entries `index::run_entries` computes from each run's `params` and `outputs` rows.

pub mod index;
mod legacy;
pub mod records;
pub mod seal;
pub(crate) mod tables;
pub(crate) mod writers;

use redb::{
    ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableError, TableHandle, WriteTransaction,
};

use crate::error::{Error, Result};
use crate::value::Value;
use records::{BlobRecord, RunRecord};
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
/// `(run id, blob name)` to an archived [`BlobRecord`].
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
/// value's sort key to each output index entry. A writable open upgrades an older store in
/// one commit; a read-only open of one is refused with `Error::NeedsUpgrade`.
pub const CATALOG_VERSION: u64 = 3;
/// The oldest catalog layout this build opens.
pub const CATALOG_VERSION_MIN: u64 = 1;
/// The first catalog layout with the key index as this build reads it (with the order index).
pub const CATALOG_VERSION_INDEX: u64 = 3;

/// Creates every table of a new store and its counters.
pub fn initialize(txn: &WriteTransaction) -> Result<()> {
    let mut meta = txn
        .open_table(META)
        .map_err(|e| Error::db("create tables", e))?;
    for (key, value) in [
        (META_NEXT_RUN_ID, 1),
        (META_NEXT_TABLE_ID, 1),
        (META_COL_HWM, 0),
        (META_CATALOG_VERSION, CATALOG_VERSION),
    ] {
        seal::put(&mut meta, key, &u64::to_le_bytes(value))?;
    }
    drop(meta);
    // Opening a table in a write transaction creates it.
    let create = |e| Error::db("create tables", e);
    txn.open_table(PROJECTS).map_err(create)?;
    txn.open_table(RUN_NAMES).map_err(create)?;
    txn.open_table(RUNS).map_err(create)?;
    txn.open_table(PARAMS).map_err(create)?;
    txn.open_table(INPUTS).map_err(create)?;
    txn.open_table(OUTPUTS).map_err(create)?;
    txn.open_table(BLOBS).map_err(create)?;
    txn.open_table(TABLES).map_err(create)?;
    txn.open_table(TABLE_URLS).map_err(create)?;
    txn.open_table(TAIL).map_err(create)?;
    txn.open_table(RUN_WRITERS).map_err(create)?;
    txn.open_table(index::PARAM_INDEX).map_err(create)?;
    txn.open_table(index::OUTPUT_INDEX).map_err(create)?;
    txn.open_table(index::OUTPUT_ORDER).map_err(create)?;
    Ok(())
}

/// Upgrades an older catalog to the current layout in `txn`: seals a version-1 catalog's
/// values, then builds the key index (version 1) or rebuilds it with the order index
/// (version 2) from the `params` and `outputs` rows. Returns whether anything changed.
pub fn upgrade(txn: &WriteTransaction) -> Result<bool> {
    let version = match legacy::version(txn)? {
        Some(version) => {
            legacy::seal_all(txn)?;
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
        self.open_table(definition)
            .map_err(|e| Error::db("open table", e))
    }
}

impl Reader for ReadTransaction {
    type Table<'a, K: redb::Key + 'static, V: redb::Value + 'static> = redb::ReadOnlyTable<K, V>;

    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> Result<Self::Table<'_, K, V>> {
        self.open_table(definition)
            .map_err(|e| Error::db("open table", e))
    }
}

/// Reads a counter from [`META`].
pub fn meta_get(txn: &impl Reader, key: &str) -> Result<u64> {
    let meta = txn.table(META)?;
    match seal::get(&meta, key)? {
        Some(bytes) => seal::u64_payload(&bytes, "meta"),
        None => Err(Error::Corrupted {
            offset: 0,
            reason: format!("meta key {key} is missing"),
        }),
    }
}

/// Sets a counter in [`META`].
pub fn meta_set(txn: &WriteTransaction, key: &str, value: u64) -> Result<()> {
    let mut meta = txn
        .open_table(META)
        .map_err(|e| Error::db("write meta", e))?;
    seal::put(&mut meta, key, &value.to_le_bytes())?;
    Ok(())
}

/// Looks up a run id by project and name.
pub fn run_id(txn: &impl Reader, project: &str, name: &str) -> Result<Option<u64>> {
    let names = txn.table(RUN_NAMES)?;
    seal::get(&names, (project, name))?
        .map(|bytes| seal::u64_payload(&bytes, "run name index"))
        .transpose()
}

/// Reads a run record.
pub fn run_record(txn: &impl Reader, id: u64) -> Result<RunRecord> {
    let runs = txn.table(RUNS)?;
    match seal::get(&runs, id)? {
        Some(bytes) => records::decode(&bytes, "run record"),
        None => Err(Error::not_found(format!("run #{id}"))),
    }
}

/// Writes a run record.
pub fn put_run_record(txn: &WriteTransaction, id: u64, record: &RunRecord) -> Result<()> {
    let mut runs = txn
        .open_table(RUNS)
        .map_err(|e| Error::db("write run", e))?;
    seal::put(&mut runs, id, records::encode(record).as_slice())?;
    Ok(())
}

/// Reads a run's parameters (an empty map when the run has no parameters row).
pub fn params(txn: &impl Reader, id: u64) -> Result<Value> {
    let params = txn.table(PARAMS)?;
    match seal::get(&params, id)? {
        Some(bytes) => decode_value(&bytes, "parameters"),
        None => Ok(Value::Map(Default::default())),
    }
}

/// Writes a run's parameters (the whole map) and updates the key index to match.
pub fn put_params(txn: &WriteTransaction, id: u64, parameters: &Value) -> Result<()> {
    let mut table = txn
        .open_table(PARAMS)
        .map_err(|e| Error::db("write parameters", e))?;
    let old = seal::put(&mut table, id, parameters.encode().as_slice())?
        .map(|bytes| decode_value(&bytes, "parameters"))
        .transpose()?;
    drop(table);
    index::update_params(txn, id, old.as_ref(), parameters)
}

/// Appends output values to run `id`, numbering them from `record.output_count`, which it
/// advances; the caller writes the record back.
pub fn append_outputs(
    txn: &WriteTransaction,
    id: u64,
    record: &mut RunRecord,
    values: &[Value],
) -> Result<()> {
    let op = "add output value";
    let mut outputs = txn.open_table(OUTPUTS).map_err(|e| Error::db(op, e))?;
    for value in values {
        seal::put(
            &mut outputs,
            (id, record.output_count),
            value.encode().as_slice(),
        )?;
        record.output_count += 1;
    }
    drop(outputs);
    index::add_outputs(txn, id, values)
}

/// Decodes a stored value; `what` names it in the error.
pub fn decode_value(bytes: &[u8], what: &str) -> Result<Value> {
    Value::decode(bytes).map_err(|error| Error::Corrupted {
        offset: 0,
        reason: format!("{what}: {error}"),
    })
}

/// Creates `project` if it does not exist yet.
pub fn ensure_project(txn: &WriteTransaction, project: &str, now_us: i64) -> Result<()> {
    let mut projects = txn
        .open_table(PROJECTS)
        .map_err(|e| Error::db("create project", e))?;
    let exists = projects
        .get(project)
        .map_err(|e| Error::db("create project", e))?
        .is_some();
    if !exists {
        seal::put(&mut projects, project, &now_us.to_le_bytes())?;
    }
    Ok(())
}

/// Reads a blob record.
pub fn blob_record(txn: &impl Reader, id: u64, name: &str) -> Result<Option<BlobRecord>> {
    let blobs = txn.table(BLOBS)?;
    seal::get(&blobs, (id, name))?
        .map(|bytes| records::decode(&bytes, "blob record"))
        .transpose()
}

/// Removes every row of a run from every table, its metrics tables included (the run's column
/// segments stay until vacuum).
pub fn delete_run_rows(txn: &WriteTransaction, id: u64, record: &RunRecord) -> Result<()> {
    let op = "delete run";
    // Tables first: they are found through the run's url, which needs its record.
    for (table_id, table) in tables::run_tables(txn, id)? {
        tables::delete_table(txn, table_id, &table)?;
    }
    // The index first: the run's parameters and outputs say which entries it has.
    index::remove_run(txn, id)?;
    txn.open_table(RUNS)
        .map_err(|e| Error::db(op, e))?
        .remove(id)
        .map_err(|e| Error::db(op, e))?;
    txn.open_table(RUN_NAMES)
        .map_err(|e| Error::db(op, e))?
        .remove((record.project.as_str(), record.name.as_str()))
        .map_err(|e| Error::db(op, e))?;
    txn.open_table(PARAMS)
        .map_err(|e| Error::db(op, e))?
        .remove(id)
        .map_err(|e| Error::db(op, e))?;
    writers::remove(txn, id)?;
    txn.open_table(INPUTS)
        .map_err(|e| Error::db(op, e))?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
        .map_err(|e| Error::db(op, e))?;
    txn.open_table(OUTPUTS)
        .map_err(|e| Error::db(op, e))?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
        .map_err(|e| Error::db(op, e))?;
    // List first: the listing opens the table, and redb allows one open handle per table.
    let names = run_blobs(txn, id)?;
    let mut blobs = txn.open_table(BLOBS).map_err(|e| Error::db(op, e))?;
    for (name, _) in names {
        blobs
            .remove((id, name.as_str()))
            .map_err(|e| Error::db(op, e))?;
    }
    Ok(())
}

/// The blobs of run `id`: each name with its raw (archived) record, by name.
pub fn run_blobs(txn: &impl Reader, id: u64) -> Result<Vec<(String, Vec<u8>)>> {
    let op = "list blobs";
    let blobs = txn.table(BLOBS)?;
    let mut out = Vec::new();
    for entry in blobs.range((id, "")..).map_err(|e| Error::db(op, e))? {
        let (key, value) = entry.map_err(|e| Error::db(op, e))?;
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

/// Counts the rows of a table in a read transaction, treating a missing table as empty.
pub fn count_rows<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64> {
    match txn.open_table(table) {
        Ok(table) => table.len().map_err(|e| Error::db("count rows", e)),
        Err(TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(Error::db("count rows", e)),
    }
}

/// Opens a database-level read transaction (shared by read-write and read-only handles).
pub fn begin_read(db: &impl ReadableDatabase) -> Result<ReadTransaction> {
    db.begin_read().map_err(|e| Error::db("begin read", e))
}
