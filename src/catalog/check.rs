//! The catalog's half of `check`: every catalog record decoded, every invariant listed in
//! `catalog` verified (the name index, projects, the numbering of inputs and outputs, table
//! urls and owners, run writers, the key index recomputed, every seal), each problem reported
//! with where it is instead of stopping at the first.
//!
//! This module owns the walk over the catalog and [`CheckReport`]; what needs the file's
//! column bytes (blob and table segments) is left to `check`, through the callbacks of
//! [`check_catalog`].

use std::collections::HashSet;

use redb::{ReadableTable, ReadableTableMetadata, TableHandle};

use super::records::{self, RunRecord, TableRecord};
use super::{seal, Reader};
use crate::error::{DbResultExt, Error, Location, Result};
use crate::status::RunStatus;
use crate::value::Value;

/// What `check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Each problem, with where it is.
    pub problems: Vec<String>,
    /// Whether redb had to recover the file (its writer stopped without closing it, or still
    /// has it open) or repair its allocator state. Done in memory only: `check` never writes.
    pub redb_repaired: bool,
    /// Runs checked.
    pub runs: u64,
    /// Blobs checked.
    pub blobs: u64,
    /// Tables checked.
    pub tables: u64,
    /// Bytes of column segments whose checksum was verified.
    pub segment_bytes: u64,
}

impl CheckReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every catalog record and the invariants of `catalog` in the snapshot `txn`, pushing
/// each problem to `report`; `per_run` (run id, where, `col_hwm`) checks each run's blobs and
/// `per_table` (table id, record, where, `col_hwm`) each table's columns, which need the file.
pub(crate) fn check_catalog(
    txn: &redb::ReadTransaction,
    report: &mut CheckReport,
    mut per_run: impl FnMut(u64, &str, u64, &mut CheckReport) -> Result<()>,
    mut per_table: impl FnMut(u64, &TableRecord, &str, u64, &mut CheckReport) -> Result<()>,
) -> Result<()> {
    let op = "check";
    let next_run_id = super::meta_get(txn, super::META_NEXT_RUN_ID)?;
    let col_hwm = super::meta_get(txn, super::META_COL_HWM)?;
    let projects = txn.table(super::PROJECTS)?;
    let names = txn.table(super::RUN_NAMES)?;
    let runs = txn.table(super::RUNS)?;
    let params = txn.table(super::PARAMS)?;
    let inputs = txn.table(super::INPUTS)?;
    let outputs = txn.table(super::OUTPUTS)?;

    let mut seen_names = 0u64;
    for entry in runs.iter().db(op)? {
        let (id_guard, bytes) = entry.db(op)?;
        let id = id_guard.value();
        report.runs += 1;
        let at = format!("run #{id}");
        if id >= next_run_id {
            report
                .problems
                .push(format!("{at}: id is not below next_run_id {next_run_id}"));
        }
        let decoded = seal::open_entry(super::RUNS.name(), &id_guard, &bytes)
            .and_then(|payload| records::decode(payload, "run record"));
        let record: RunRecord = match decoded {
            Ok(record) => record,
            Err(error) => {
                report.problems.push(format!("{at}: {error}"));
                continue;
            }
        };
        let at = format!("run {}/runs/{} (#{id})", record.project, record.name);
        if RunStatus::from_code(f64::from(record.status)).is_err() {
            report
                .problems
                .push(format!("{at}: status code {}", record.status));
        }
        let indexed =
            seal::get(&names, (record.project.as_str(), record.name.as_str())).and_then(|id| {
                id.map(|id| seal::u64_payload(&id, "run name index"))
                    .transpose()
            });
        match indexed {
            Ok(Some(indexed)) if indexed == id => seen_names += 1,
            Ok(_) => report
                .problems
                .push(format!("{at}: missing from the name index")),
            Err(e) => report.problems.push(format!("{at}: name index: {e}")),
        }
        match projects.get(record.project.as_str()) {
            Ok(Some(_)) => {}
            _ => report
                .problems
                .push(format!("{at}: project {} is not listed", record.project)),
        }
        match seal::get(&params, id) {
            Ok(Some(bytes)) => {
                if let Err(error) = Value::decode(&bytes) {
                    report.problems.push(format!("{at}: parameters: {error}"));
                }
            }
            Ok(None) => report.problems.push(format!("{at}: no parameters row")),
            Err(e) => report.problems.push(format!("{at}: parameters: {e}")),
        }
        for (table, expected, what) in [
            (&inputs, record.input_count, "input"),
            (&outputs, record.output_count, "output"),
        ] {
            let mut count = 0u64;
            for entry in table.range((id, 0)..=(id, u64::MAX)).db(op)? {
                let (key, bytes) = entry.db(op)?;
                let seq = key.value().1;
                if seq != count {
                    report
                        .problems
                        .push(format!("{at}: {what} {count} is missing (found {seq})"));
                }
                let decoded = seal::open_entry(table.name(), &key, &bytes).and_then(|payload| {
                    Value::decode(payload).map_err(|error| Error::Corrupted {
                        at: Location::Catalog,
                        reason: error.to_string(),
                    })
                });
                if let Err(error) = decoded {
                    report.problems.push(format!("{at}: {what} {seq}: {error}"));
                }
                count += 1;
            }
            if count != expected {
                report.problems.push(format!(
                    "{at}: {count} {what} values stored, record says {expected}"
                ));
            }
        }
        per_run(id, &at, col_hwm, report)?;
    }
    check_tables(txn, col_hwm, report, &mut per_table)?;
    check_writers(txn, report)?;
    check_index(txn, report)?;
    check_seals(txn, report)?;
    let indexed = names.len().db(op)?;
    if indexed != seen_names {
        report.problems.push(format!(
            "name index has {indexed} entries but {seen_names} runs point at it"
        ));
    }
    Ok(())
}

/// Every value of every catalog table matches its seal (`catalog::seal`). The walks above
/// check the values they read; this one covers every entry, of every table, once.
fn check_seals(txn: &redb::ReadTransaction, report: &mut CheckReport) -> Result<()> {
    super::defs::check_all_seals(txn, &mut report.problems)
}

/// The key index holds exactly the entries each run's parameters and outputs call for
/// (`super::index`): each run's `output_stats` record and order entries are recomputed from
/// its `outputs` rows and compared, its parameter and output paths looked up in the key
/// registries; records of runs that do not exist and order entries no record calls for are
/// reported. Registered paths no run holds any more are allowed (deleted runs leave theirs).
fn check_index(txn: &redb::ReadTransaction, report: &mut CheckReport) -> Result<()> {
    use super::index;
    let op = "check key index";
    if !super::has_index(txn)? {
        return Ok(());
    }
    let runs = txn.table(super::RUNS)?;
    let param_keys = txn.table(index::PARAM_KEYS)?;
    let output_keys = txn.table(index::OUTPUT_KEYS)?;
    let output_stats = txn.table(index::OUTPUT_STATS)?;
    let output_order = txn.table(index::OUTPUT_ORDER)?;
    let mut order_expected: HashSet<(Vec<u8>, u8, u64, u64)> = HashSet::new();
    let mut order_missing = 0u64;
    let shown = |path: &[u8]| {
        index::decode_path(path).map_or_else(|| format!("{path:?}"), |keys| keys.join("."))
    };
    let mut run_ids: HashSet<u64> = HashSet::new();
    for entry in runs.iter().db(op)? {
        let (id, _) = entry.db(op)?;
        let id = id.value();
        run_ids.insert(id);
        let (params, outputs) = match index::run_entries(txn, id) {
            Ok(entries) => entries,
            // The damaged row itself is reported by the run checks above.
            Err(_) => continue,
        };
        for (registry, what, paths) in [
            (&param_keys, "parameter", params.keys().collect::<Vec<_>>()),
            (&output_keys, "output", outputs.keys().collect::<Vec<_>>()),
        ] {
            for path in paths {
                match seal::get(registry, path.as_slice()) {
                    Ok(Some(_)) => {}
                    Ok(None) => report.problems.push(format!(
                        "key index: {what} key {} of run #{id} is not registered",
                        shown(path)
                    )),
                    Err(e) => report.problems.push(format!("key index: {e}")),
                }
            }
        }
        match seal::get(&output_stats, id) {
            Ok(Some(found)) => match index::decode_run_stats(&found) {
                Ok(found) => {
                    for (path, stats) in &outputs {
                        match found.get(path) {
                            Some(found) if found.encode() == stats.encode() => {}
                            Some(_) => report.problems.push(format!(
                                "key index: output {} of run #{id} is stale",
                                shown(path)
                            )),
                            None => report.problems.push(format!(
                                "key index: output {} of run #{id} is missing",
                                shown(path)
                            )),
                        }
                    }
                    for path in found.keys().filter(|path| !outputs.contains_key(*path)) {
                        report.problems.push(format!(
                            "key index: output {} of run #{id} does not exist",
                            shown(path)
                        ));
                    }
                }
                Err(error) => report
                    .problems
                    .push(format!("key index: output stats of run #{id}: {error}")),
            },
            Ok(None) if outputs.is_empty() => {}
            Ok(None) => report
                .problems
                .push(format!("key index: output stats of run #{id} are missing")),
            Err(e) => report.problems.push(format!("key index: {e}")),
        }
        for (path, stats) in &outputs {
            let Some(key) = stats.last_sort else { continue };
            let entry = (path.as_slice(), key.rank, key.bits, id);
            match seal::get(&output_order, entry) {
                Ok(Some(payload)) if payload.is_empty() => {}
                Ok(Some(_)) => report.problems.push(format!(
                    "key index: order entry of output {} of run #{id} has a payload",
                    shown(path)
                )),
                Ok(None) => {
                    order_missing += 1;
                    report.problems.push(format!(
                        "key index: order entry of output {} of run #{id} is missing",
                        shown(path)
                    ));
                }
                Err(e) => report.problems.push(format!("key index: {e}")),
            }
            order_expected.insert((path.clone(), key.rank, key.bits, id));
        }
    }
    for entry in output_stats.iter().db(op)? {
        let (id, _) = entry.db(op)?;
        if !run_ids.contains(&id.value()) {
            report.problems.push(format!(
                "key index: output stats of run #{} that does not exist",
                id.value()
            ));
        }
    }
    for registry in [&param_keys, &output_keys] {
        for entry in registry.iter().db(op)? {
            let (key, _) = entry.db(op)?;
            if index::decode_path(key.value()).is_none() {
                report.problems.push(format!(
                    "key index: registered key {:?} in {} does not decode",
                    key.value(),
                    registry.name()
                ));
            }
        }
    }
    // Every expected order entry that is present was counted: any more are extra (a run
    // without that output, or an entry left behind when the latest value changed).
    let found = output_order.len().db(op)?;
    if found != order_expected.len() as u64 - order_missing {
        for entry in output_order.iter().db(op)? {
            let (key, _) = entry.db(op)?;
            let (path, rank, bits, id) = key.value();
            if !order_expected.contains(&(path.to_vec(), rank, bits, id)) {
                report.problems.push(format!(
                    "key index: order entry of output {} of run #{id} does not match its latest value",
                    shown(path)
                ));
            }
        }
    }
    Ok(())
}

/// Every recorded run writer decodes and belongs to a run. The table is absent in stores
/// written before writers were recorded.
fn check_writers(txn: &redb::ReadTransaction, report: &mut CheckReport) -> Result<()> {
    let op = "check run writers";
    let writers = match txn.table(super::RUN_WRITERS) {
        Ok(table) => table,
        Err(Error::Database { source, .. })
            if matches!(source.redb(), redb::Error::TableDoesNotExist(_)) =>
        {
            return Ok(())
        }
        Err(error) => return Err(error),
    };
    let runs = txn.table(super::RUNS)?;
    for entry in writers.iter().db(op)? {
        let (id_guard, bytes) = entry.db(op)?;
        let id = id_guard.value();
        if let Err(error) =
            seal::open_entry(super::RUN_WRITERS.name(), &id_guard, &bytes).and_then(|payload| {
                records::decode::<super::writers::WriterRecord>(payload, "run writer record")
            })
        {
            report
                .problems
                .push(format!("writer of run #{id}: {error}"));
        }
        if !matches!(runs.get(id), Ok(Some(_))) {
            report
                .problems
                .push(format!("writer of run #{id}: no such run"));
        }
    }
    Ok(())
}

fn check_tables(
    txn: &redb::ReadTransaction,
    col_hwm: u64,
    report: &mut CheckReport,
    per_table: &mut impl FnMut(u64, &TableRecord, &str, u64, &mut CheckReport) -> Result<()>,
) -> Result<()> {
    let op = "check tables";
    let tables = txn.table(super::TABLES)?;
    let urls = txn.table(super::TABLE_URLS)?;
    let runs = txn.table(super::RUNS)?;
    for entry in tables.iter().db(op)? {
        let (id_guard, bytes) = entry.db(op)?;
        let id = id_guard.value();
        report.tables += 1;
        let decoded = seal::open_entry(super::TABLES.name(), &id_guard, &bytes)
            .and_then(|payload| records::decode(payload, "table record"));
        let record: TableRecord = match decoded {
            Ok(record) => record,
            Err(error) => {
                report.problems.push(format!("table #{id}: {error}"));
                continue;
            }
        };
        let at = format!("table {} (#{id})", record.url);
        let indexed = seal::get(&urls, record.url.as_str()).and_then(|id| {
            id.map(|id| seal::u64_payload(&id, "table url index"))
                .transpose()
        });
        match indexed {
            Ok(Some(indexed)) if indexed == id => {}
            _ => report
                .problems
                .push(format!("{at}: missing from the url index")),
        }
        if record.run_id != 0 && !matches!(runs.get(record.run_id), Ok(Some(_))) {
            report.problems.push(format!(
                "{at}: owned by run #{} which does not exist",
                record.run_id
            ));
        }
        let chunk_rows: u64 = record.chunks.iter().map(|c| c.rows).sum();
        if chunk_rows != record.sealed_rows {
            report.problems.push(format!(
                "{at}: chunks hold {chunk_rows} rows, record says {}",
                record.sealed_rows
            ));
        }
        per_table(id, &record, &at, col_hwm, report)?;
    }
    Ok(())
}
