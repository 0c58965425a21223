//! The run catalog: `projects`, `run_names`, `runs`, `params`, `inputs` and `outputs`, the
//! rows that say what a run is and what it holds.
//!
//! This module owns every read and write of those tables; the key index they feed is
//! `index`'s, and what a run record means (statuses, the API over it) is `run`'s. Every function
//! takes an open transaction, so a caller composes several into one commit.
//! Invariants it keeps (with `delete_run_rows`): `run_names[(project, name)] = id` exactly
//! when `runs[id]` has that project and name; `outputs` holds keys `(id, 0..output_count)` and
//! `inputs` keys `(id, 0..input_count)`; every `params` and `outputs` write updates the index
//! in the same transaction.

use redb::{ReadableTable, TableHandle, WriteTransaction};

use super::records::{self, RunRecord};
use super::{blobs, decode_value, index, seal, Reader};
use super::{INPUTS, OUTPUTS, PARAMS, PROJECTS, RUNS, RUN_NAMES};
use crate::error::{DbResultExt, Error, Result};
use crate::value::Value;

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
    if super::CHECK_INVARIANTS {
        // The catalog invariants this write keeps (`check` verifies them at rest): the run's
        // project exists, and its name is free or already this run's.
        invariant!(
            project_exists(txn, &record.project)?,
            "run #{id}: project {} is not listed",
            record.project
        );
        let named = run_id(txn, &record.project, &record.name)?;
        invariant!(
            named.is_none_or(|named| named == id),
            "run #{id}: its name belongs to run #{named:?}"
        );
    }
    let mut runs = txn.open_table(RUNS).db("write run")?;
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

/// Writes a run's parameters (the whole map) and registers their key paths.
pub fn put_params(txn: &WriteTransaction, id: u64, parameters: &Value) -> Result<()> {
    let mut table = txn.open_table(PARAMS).db("write parameters")?;
    seal::put(&mut table, id, parameters.encode().as_slice())?;
    drop(table);
    index::register_params(txn, parameters)
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
    let mut outputs = txn.open_table(OUTPUTS).db(op)?;
    for value in values {
        let old = seal::put(
            &mut outputs,
            (id, record.output_count),
            value.encode().as_slice(),
        )?;
        // Outputs are numbered 0..output_count: the next number was free.
        invariant!(
            old.is_none(),
            "run #{id}: output {} existed",
            record.output_count
        );
        record.output_count += 1;
    }
    drop(outputs);
    index::add_outputs(txn, id, values)
}

/// Creates `project` if it does not exist yet.
pub fn ensure_project(txn: &WriteTransaction, project: &str, now_us: i64) -> Result<()> {
    let mut projects = txn.open_table(PROJECTS).db("create project")?;
    let exists = projects.get(project).db("create project")?.is_some();
    if !exists {
        seal::put(&mut projects, project, &now_us.to_le_bytes())?;
    }
    Ok(())
}

/// Points `(project, name)` at run `id` in the name index; `op` names the call in errors.
pub(crate) fn put_run_name(
    txn: &WriteTransaction,
    project: &str,
    name: &str,
    id: u64,
    op: &'static str,
) -> Result<()> {
    if super::CHECK_INVARIANTS {
        // The name index points at a run with exactly this project and name (written first).
        let record = run_record(txn, id)?;
        invariant_eq!(
            (record.project.as_str(), record.name.as_str()),
            (project, name),
            "run #{id}: the name index and the run record disagree"
        );
    }
    let mut names = txn.open_table(RUN_NAMES).db(op)?;
    seal::put(&mut names, (project, name), &id.to_le_bytes())?;
    Ok(())
}

/// The runs of `project` (or of every project) from the name index: project, name and id,
/// ordered by project then name.
pub(crate) fn run_names(
    txn: &impl Reader,
    project: Option<&str>,
) -> Result<Vec<(String, String, u64)>> {
    let names = txn.table(RUN_NAMES)?;
    let iter = match project {
        Some(project) => names.range((project, "")..),
        None => names.iter(),
    }
    .db("list runs")?;
    let mut out = Vec::new();
    for entry in iter {
        let (key, id) = entry.db("list runs")?;
        let (run_project, run_name) = key.value();
        if project.is_some_and(|p| p != run_project) {
            break;
        }
        let id = seal::open_u64_entry(RUN_NAMES.name(), &key, &id)?;
        out.push((run_project.to_string(), run_name.to_string(), id));
    }
    Ok(out)
}

/// Every run id, in order (keys only); `op` names the call in errors.
pub(crate) fn run_ids(txn: &impl Reader, op: &'static str) -> Result<Vec<u64>> {
    let runs = txn.table(RUNS)?;
    let mut ids = Vec::new();
    for entry in runs.iter().db(op)? {
        let (id, _) = entry.db(op)?;
        ids.push(id.value());
    }
    Ok(ids)
}

/// Every project with its creation time (the bits of an `i64` of microseconds), by name;
/// `op` and `what` name the call and the value in errors.
pub(crate) fn projects(
    txn: &impl Reader,
    op: &'static str,
    what: &str,
) -> Result<Vec<(String, u64)>> {
    let projects = txn.table(PROJECTS)?;
    let mut out = Vec::new();
    for entry in projects.iter().db(op)? {
        let (name, created) = entry.db(op)?;
        let created = seal::open_entry(PROJECTS.name(), &name, &created)
            .and_then(|bytes| seal::u64_payload(bytes, what))?;
        out.push((name.value().to_string(), created));
    }
    Ok(out)
}

/// The number of runs `project` has in the name index.
pub(crate) fn project_run_count(txn: &impl Reader, project: &str) -> Result<u64> {
    let names = txn.table(RUN_NAMES)?;
    let count = names
        .range((project, "")..)
        .db("count runs")?
        .take_while(|entry| {
            entry
                .as_ref()
                .map_or(true, |(key, _)| key.value().0 == project)
        })
        .count() as u64;
    Ok(count)
}

/// Whether `project` exists.
pub(crate) fn project_exists(txn: &impl Reader, project: &str) -> Result<bool> {
    Ok(seal::get(&txn.table(PROJECTS)?, project)?.is_some())
}

/// `project`'s creation time (the bits of an `i64` of microseconds), if it exists.
pub(crate) fn project_created(txn: &impl Reader, project: &str) -> Result<Option<u64>> {
    seal::get(&txn.table(PROJECTS)?, project)?
        .map(|created| seal::u64_payload(&created, "project"))
        .transpose()
}

/// Calls `f` with each input value row of run `id` in key order: its sequence number and
/// its checked payload (an encoded `Value`).
pub(crate) fn for_each_input(
    txn: &impl Reader,
    id: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let inputs = txn.table(INPUTS)?;
    let range = inputs.range((id, 0)..=(id, u64::MAX)).db("read inputs")?;
    for entry in range {
        let (key, bytes) = entry.db("read inputs")?;
        let payload = seal::open_entry(INPUTS.name(), &key, &bytes)?;
        f(key.value().1, payload)?;
    }
    Ok(())
}

/// Calls `f` with each output value row of run `id` numbered in `start..end`, in key order:
/// its sequence number and its checked payload (an encoded `Value`).
pub(crate) fn for_each_output(
    txn: &impl Reader,
    id: u64,
    start: u64,
    end: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let outputs = txn.table(OUTPUTS)?;
    let range = outputs.range((id, start)..(id, end)).db("read outputs")?;
    for entry in range {
        let (key, bytes) = entry.db("read outputs")?;
        let payload = seal::open_entry(OUTPUTS.name(), &key, &bytes)?;
        f(key.value().1, payload)?;
    }
    Ok(())
}

/// Adds the encoded input value `encoded` to run `id` as number `record.input_count`, which
/// it advances, unless an identical value is there already; returns whether it was added.
pub(crate) fn add_input(
    txn: &WriteTransaction,
    id: u64,
    record: &mut RunRecord,
    encoded: &[u8],
) -> Result<bool> {
    let mut inputs = txn.open_table(INPUTS).db("add input value")?;
    for entry in inputs
        .range((id, 0)..=(id, u64::MAX))
        .db("add input value")?
    {
        let (key, bytes) = entry.db("add input value")?;
        if seal::open_entry(INPUTS.name(), &key, &bytes)? == encoded {
            return Ok(false);
        }
    }
    let old = seal::put(&mut inputs, (id, record.input_count), encoded)?;
    // Inputs are numbered 0..input_count: the next number was free.
    invariant!(
        old.is_none(),
        "run #{id}: input {} existed",
        record.input_count
    );
    record.input_count += 1;
    Ok(true)
}

/// Copies the parameter, input, output and blob rows of run `from` to run `to` (same store).
pub(crate) fn copy_rows(txn: &WriteTransaction, from: u64, to: u64) -> Result<()> {
    let op = "copy run";
    let mut params = txn.open_table(PARAMS).db(op)?;
    if let Some(value) = seal::get(&params, from)? {
        seal::put(&mut params, to, value.as_slice())?;
    }
    drop(params);
    for table in [INPUTS, OUTPUTS] {
        let mut rows = txn.open_table(table).db(op)?;
        let mut entries: Vec<(u64, Vec<u8>)> = Vec::new();
        for entry in rows.range((from, 0)..=(from, u64::MAX)).db(op)? {
            let (key, bytes) = entry.db(op)?;
            let payload = seal::open_entry(rows.name(), &key, &bytes)?;
            entries.push((key.value().1, payload.to_vec()));
        }
        for (seq, bytes) in entries {
            seal::put(&mut rows, (to, seq), bytes.as_slice())?;
        }
    }
    let entries = blobs::run_blobs(txn, from)?;
    for (name, bytes) in entries {
        blobs::put_raw(txn, to, &name, &bytes, op)?;
    }
    Ok(())
}

/// Copies the parameter, input and output rows of run `from_id` in `from` to run `to_id` in
/// `to` (another store), as bytes; `op` names the call in errors.
pub(crate) fn copy_rows_across(
    from: &impl Reader,
    to: &WriteTransaction,
    from_id: u64,
    to_id: u64,
    op: &'static str,
) -> Result<()> {
    if let Some(params) = seal::get(&from.table(PARAMS)?, from_id)? {
        let mut target = to.open_table(PARAMS).db(op)?;
        seal::put(&mut target, to_id, params.as_slice())?;
    }
    for definition in [INPUTS, OUTPUTS] {
        let rows = from.table(definition)?;
        let mut target = to.open_table(definition).db(op)?;
        for entry in rows.range((from_id, 0)..=(from_id, u64::MAX)).db(op)? {
            let (key, value) = entry.db(op)?;
            let payload = seal::open_entry(rows.name(), &key, &value)?;
            seal::put(&mut target, (to_id, key.value().1), payload)?;
        }
    }
    Ok(())
}
