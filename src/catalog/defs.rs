//! The one list of catalog tables, [`TABLES`]: for each table its name, how its rows belong
//! to a run, and how a copy treats it. Creating a store, upgrading a version-1 store, copying
//! a store (vacuum), checking every seal and deleting a run all walk this list, so adding a
//! table is one entry here (and its definition in `catalog`).
//!
//! This module owns the list and the per-table operations it drives; the definitions
//! themselves (names, key and value types) stay beside the functions that read them. The
//! invariant it keeps: every table `initialize` creates is in the list (a test opens a new
//! store and compares), so none is missed by a copy, a check or a delete.

use redb::{
    Key, ReadTransaction, ReadableTable, TableDefinition, TableError, TableHandle, WriteTransaction,
};

use super::records::RunRecord;
use super::seal::{self, Sealed};
use super::{blobs, index, legacy, tables, writers, Reader};
use super::{BLOBS, INPUTS, META, OUTPUTS, PARAMS, PROJECTS, RUNS, RUN_NAMES, RUN_WRITERS};
use super::{TABLES as TABLE_RECORDS, TABLE_URLS, TAIL};
use crate::error::{DbResultExt, Error, Result};

/// How a table's rows belong to a run: what deleting a run removes from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunRows {
    /// Store-wide rows (counters, projects): none belongs to one run.
    None,
    /// Keyed by the run id.
    Id,
    /// Keyed by `(run id, ...)`: a run's rows are one key range.
    IdPrefix,
    /// Keyed by the run's `(project, name)`.
    Name,
    /// Rows of the run's metrics tables, found through its url in `table_urls`: removed before
    /// the run's own rows, since finding them needs the run record.
    Tables,
    /// Key index entries, derived from the run's `params` and `outputs` rows: removed before
    /// those rows, since they say which entries the run has.
    Index,
}

impl RunRows {
    /// Whether the run's rows are found through other rows, so are removed first.
    fn is_derived(self) -> bool {
        matches!(self, RunRows::Tables | RunRows::Index)
    }
}

/// How a copy of the whole store (vacuum) treats a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Copy {
    /// Counters: the next ids copied, `col_hwm` set once the segments moved.
    Counters,
    /// Sealed bytes copied as they are, once checked.
    Verbatim,
    /// As `Verbatim` when the source has the table; absent in stores written before it.
    IfPresent,
    /// Records rewritten to the segments' new places, by the copier (blobs, tables).
    Segments,
    /// The key index: copied as it is, or built for a store written before it existed.
    Index,
}

/// Removes run `id` (whose record is given) from one table.
type DeleteRun = fn(&WriteTransaction, u64, &RunRecord) -> Result<()>;

/// One catalog table: its name, how its rows belong to a run, and the operations the list
/// drives.
pub(crate) struct TableDef {
    /// The redb table name.
    pub(crate) name: &'static str,
    /// How its rows belong to a run.
    pub(crate) run_rows: RunRows,
    /// How a whole-store copy treats it.
    pub(crate) copy: Copy,
    /// Creates the table (opening a table in a write transaction creates it).
    create: fn(&WriteTransaction) -> Result<()>,
    /// Copies every entry, sealed bytes as they are, into another store's transaction.
    copy_rows: fn(&ReadTransaction, &WriteTransaction) -> Result<()>,
    /// Pushes a problem for each entry whose seal is broken (a missing table has none).
    check_seals: fn(&ReadTransaction, &mut Vec<String>) -> Result<()>,
    /// Removes run `id`'s rows; `None` when they go with another table's (a metrics table's
    /// url and tail go with its record, the index's three tables with `index::remove_run`).
    delete_run: Option<DeleteRun>,
    /// Rewrites the version-1 table sealed (`legacy`); `None` for tables added since.
    upgrade_v1: Option<fn(&WriteTransaction) -> Result<()>>,
}

/// One [`TableDef`] for `definition`, whose redb name is `name`.
macro_rules! table_def {
    ($definition:expr, $name:literal, $run_rows:expr, $copy:expr, $delete_run:expr, $upgrade_v1:expr) => {
        TableDef {
            name: $name,
            run_rows: $run_rows,
            copy: $copy,
            create: |txn| create(txn, $definition),
            copy_rows: |from, to| copy_verbatim(from, to, $definition),
            check_seals: |txn, problems| check_seals_of(txn, $definition, problems),
            delete_run: $delete_run,
            upgrade_v1: $upgrade_v1,
        }
    };
}

/// Every catalog table, in the order a new store creates them.
pub(crate) const TABLES: &[TableDef] = &[
    table_def!(
        META,
        "meta",
        RunRows::None,
        Copy::Counters,
        None,
        Some(legacy::META_V1)
    ),
    table_def!(
        PROJECTS,
        "projects",
        RunRows::None,
        Copy::Verbatim,
        None,
        Some(legacy::PROJECTS_V1)
    ),
    table_def!(
        RUN_NAMES,
        "run_names",
        RunRows::Name,
        Copy::Verbatim,
        Some(|txn, _, record| {
            let key = (record.project.as_str(), record.name.as_str());
            remove(txn, RUN_NAMES, key)
        }),
        Some(legacy::RUN_NAMES_V1)
    ),
    table_def!(
        RUNS,
        "runs",
        RunRows::Id,
        Copy::Verbatim,
        Some(|txn, id, _| remove(txn, RUNS, id)),
        Some(legacy::RUNS_V1)
    ),
    table_def!(
        PARAMS,
        "params",
        RunRows::Id,
        Copy::Verbatim,
        Some(|txn, id, _| remove(txn, PARAMS, id)),
        Some(legacy::PARAMS_V1)
    ),
    table_def!(
        INPUTS,
        "inputs",
        RunRows::IdPrefix,
        Copy::Verbatim,
        Some(|txn, id, _| remove_run_range(txn, INPUTS, id)),
        Some(legacy::INPUTS_V1)
    ),
    table_def!(
        OUTPUTS,
        "outputs",
        RunRows::IdPrefix,
        Copy::Verbatim,
        Some(|txn, id, _| remove_run_range(txn, OUTPUTS, id)),
        Some(legacy::OUTPUTS_V1)
    ),
    table_def!(
        BLOBS,
        "blobs",
        RunRows::IdPrefix,
        Copy::Segments,
        Some(|txn, id, _| blobs::remove_run(txn, id)),
        Some(legacy::BLOBS_V1)
    ),
    table_def!(
        TABLE_RECORDS,
        "tables",
        RunRows::Tables,
        Copy::Segments,
        Some(|txn, id, _| {
            for (table_id, table) in tables::run_tables(txn, id)? {
                tables::delete_table(txn, table_id, &table)?;
            }
            Ok(())
        }),
        Some(legacy::TABLES_V1)
    ),
    table_def!(
        TABLE_URLS,
        "table_urls",
        RunRows::Tables,
        Copy::Verbatim,
        None,
        Some(legacy::TABLE_URLS_V1)
    ),
    table_def!(
        TAIL,
        "tail",
        RunRows::Tables,
        Copy::Verbatim,
        None,
        Some(legacy::TAIL_V1)
    ),
    table_def!(
        RUN_WRITERS,
        "run_writers",
        RunRows::Id,
        Copy::IfPresent,
        Some(|txn, id, _| writers::remove(txn, id)),
        Some(legacy::RUN_WRITERS_V1)
    ),
    table_def!(
        index::PARAM_KEYS,
        "param_keys",
        RunRows::Index,
        Copy::Index,
        None,
        None
    ),
    table_def!(
        index::OUTPUT_STATS,
        "output_stats",
        RunRows::Index,
        Copy::Index,
        Some(|txn, id, _| index::remove_run(txn, id)),
        None
    ),
    table_def!(
        index::OUTPUT_KEYS,
        "output_keys",
        RunRows::Index,
        Copy::Index,
        None,
        None
    ),
    table_def!(
        index::OUTPUT_ORDER,
        "output_order",
        RunRows::Index,
        Copy::Index,
        None,
        None
    ),
];

/// Creates every table of [`TABLES`] in a new store.
pub(crate) fn create_all(txn: &WriteTransaction) -> Result<()> {
    for def in TABLES {
        (def.create)(txn)?;
    }
    Ok(())
}

/// Rewrites every version-1 table sealed, under the current definitions.
pub(crate) fn upgrade_all_v1(txn: &WriteTransaction) -> Result<()> {
    for upgrade in TABLES.iter().filter_map(|def| def.upgrade_v1) {
        upgrade(txn)?;
    }
    Ok(())
}

/// Removes every row of run `id` from every table: first the rows found through other rows
/// (its metrics tables, its index entries), then its own.
pub(crate) fn delete_run(txn: &WriteTransaction, id: u64, record: &RunRecord) -> Result<()> {
    let derived = TABLES.iter().filter(|def| def.run_rows.is_derived());
    let own = TABLES.iter().filter(|def| !def.run_rows.is_derived());
    for delete in derived.chain(own).filter_map(|def| def.delete_run) {
        delete(txn, id, record)?;
    }
    Ok(())
}

/// Copies every table a whole-store copy takes as it is (all but the counters and the
/// tables whose records name segments) from `from` into the empty store of `to`, building
/// the key index when `from` has none, and the next run and table ids.
pub(crate) fn copy_verbatim_tables(from: &ReadTransaction, to: &WriteTransaction) -> Result<()> {
    let has_index = super::has_index(from)?;
    let mut index_built = false;
    for def in TABLES {
        match def.copy {
            Copy::Verbatim => (def.copy_rows)(from, to)?,
            Copy::IfPresent => {
                if exists(from, def.name)? {
                    (def.copy_rows)(from, to)?;
                }
            }
            Copy::Index if has_index => (def.copy_rows)(from, to)?,
            Copy::Index => {
                if !index_built {
                    index::rebuild(to)?;
                    index_built = true;
                }
            }
            Copy::Counters | Copy::Segments => {}
        }
    }
    for key in [super::META_NEXT_RUN_ID, super::META_NEXT_TABLE_ID] {
        super::meta_set(to, key, super::meta_get(from, key)?)?;
    }
    Ok(())
}

/// Pushes a problem for every entry of every table whose value does not match its seal.
pub(crate) fn check_all_seals(txn: &ReadTransaction, problems: &mut Vec<String>) -> Result<()> {
    for def in TABLES {
        (def.check_seals)(txn, problems)?;
    }
    Ok(())
}

/// Whether the store read through `txn` has a table named `name`.
fn exists(txn: &ReadTransaction, name: &str) -> Result<bool> {
    Ok(txn.list_tables().db("vacuum")?.any(|t| t.name() == name))
}

fn create<K: Key + 'static>(
    txn: &WriteTransaction,
    definition: TableDefinition<K, Sealed>,
) -> Result<()> {
    txn.open_table(definition).db("create tables")?;
    Ok(())
}

fn remove<'k, K: Key + 'static>(
    txn: &WriteTransaction,
    definition: TableDefinition<K, Sealed>,
    key: impl std::borrow::Borrow<K::SelfType<'k>>,
) -> Result<()> {
    let op = "delete run";
    txn.open_table(definition).db(op)?.remove(key).db(op)?;
    Ok(())
}

fn remove_run_range(
    txn: &WriteTransaction,
    definition: TableDefinition<(u64, u64), Sealed>,
    id: u64,
) -> Result<()> {
    let op = "delete run";
    txn.open_table(definition)
        .db(op)?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
        .db(op)?;
    Ok(())
}

fn copy_verbatim<K>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    definition: TableDefinition<K, Sealed>,
) -> Result<()>
where
    K: Key + 'static,
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
{
    let source = from.table(definition)?;
    let mut target = to.open_table(definition).db("vacuum")?;
    for entry in source.iter().db("vacuum")? {
        let (key, value) = entry.db("vacuum")?;
        // Same table, same key: the sealed bytes are copied as they are, once checked.
        seal::open_entry(definition.name(), &key, &value)?;
        target.insert(key.value(), value.value()).db("vacuum")?;
    }
    Ok(())
}

fn check_seals_of<K: Key + 'static>(
    txn: &ReadTransaction,
    definition: TableDefinition<K, Sealed>,
    problems: &mut Vec<String>,
) -> Result<()> {
    let op = "check seals";
    let table = match txn.open_table(definition) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(Error::db(op, e)),
    };
    for entry in table.iter().db(op)? {
        let (key, value) = entry.db(op)?;
        if let Err(error) = seal::open_entry(definition.name(), &key, &value) {
            problems.push(error.to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    use super::*;

    fn in_memory() -> redb::Database {
        redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .unwrap()
    }

    fn table_names(db: &redb::Database) -> Vec<String> {
        let read = db.begin_read().unwrap();
        let mut names: Vec<String> = read
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_list_names_every_table_a_new_store_has() {
        let db = in_memory();
        let txn = db.begin_write().unwrap();
        super::super::initialize(&txn).unwrap();
        txn.commit().unwrap();
        let mut listed: Vec<String> = TABLES.iter().map(|def| def.name.to_string()).collect();
        listed.sort();
        assert_eq!(table_names(&db), listed);
    }

    #[test]
    fn each_entry_creates_the_table_it_names() {
        for def in TABLES {
            let db = in_memory();
            let txn = db.begin_write().unwrap();
            (def.create)(&txn).unwrap();
            txn.commit().unwrap();
            assert_eq!(table_names(&db), [def.name]);
        }
    }
}
