//! The reads a run query makes (`query::runs`), each over tables opened once per query: the
//! name index walked in (project, name) order, a key-index path's whole column or one run's
//! entry in it, whether any run holds a path and the distinct paths (a "did you mean"'s
//! candidates), the output order index walked from either end, and a run's own rows (its
//! record, its parameters, its outputs in sequence order).
//!
//! What a query does with them (planning, evaluation, ordering) is `query`'s; this module only
//! reads, checks each entry's seal before handing out its payload, and names the call in redb
//! errors with the `op` it is given. A query touches each run for a few hundred nanoseconds,
//! so the tables are opened once (by the `open` functions) and read many times.

use redb::{AccessGuard, ReadOnlyTable, ReadTransaction, ReadableTable, TableHandle};

use super::index::{
    self, OutputStats, Parts, Slot, OUTPUT_KEYS, OUTPUT_ORDER, OUTPUT_STATS, PARAM_KEYS,
};
use super::records::{self, RunRecord};
use super::seal::{self, Sealed};
use super::{Reader, OUTPUTS, PARAMS, RUNS, RUN_NAMES};
use crate::error::{DbResultExt, Error, Location, Result};

/// The name index (`run_names`), opened for walks in (project, name) order.
pub(crate) struct RunNameIndex {
    table: ReadOnlyTable<(&'static str, &'static str), Sealed>,
}

impl RunNameIndex {
    /// Opens the name index in `txn`.
    pub(crate) fn open(txn: &ReadTransaction) -> Result<RunNameIndex> {
        Ok(RunNameIndex {
            table: txn.table(RUN_NAMES)?,
        })
    }

    /// The runs of `project` (or of every project) in (project, name) order; `op` names the
    /// call in errors.
    pub(crate) fn runs<'a>(
        &'a self,
        project: Option<&'a str>,
        op: &'static str,
    ) -> Result<RunNames<'a>> {
        let range = match project {
            Some(project) => self.table.range((project, "")..),
            None => self.table.iter(),
        }
        .db(op)?;
        Ok(RunNames {
            range,
            project,
            op,
            done: false,
        })
    }
}

/// A walk of the name index: see [`RunNameIndex::runs`].
pub(crate) struct RunNames<'a> {
    range: redb::Range<'a, (&'static str, &'static str), Sealed>,
    project: Option<&'a str>,
    op: &'static str,
    done: bool,
}

impl<'a> Iterator for RunNames<'a> {
    type Item = Result<RunName<'a>>;

    fn next(&mut self) -> Option<Result<RunName<'a>>> {
        if self.done {
            return None;
        }
        let (key, id) = match self.range.next()? {
            Ok(entry) => entry,
            Err(e) => return Some(Err(Error::db(self.op, e))),
        };
        let past_project = self.project.is_some_and(|p| p != key.value().0);
        if past_project {
            self.done = true;
            return None;
        }
        Some(seal::open_u64_entry(RUN_NAMES.name(), &key, &id).map(|id| RunName { key, id }))
    }
}

/// One entry of the name index: a run's project, name and id.
pub(crate) struct RunName<'a> {
    key: AccessGuard<'a, (&'static str, &'static str)>,
    id: u64,
}

impl RunName<'_> {
    /// The run's project and name.
    pub(crate) fn names(&self) -> (&str, &str) {
        self.key.value()
    }

    /// The run's id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

/// Parameters by key path: each run's value read from its own `params` row (catalog version
/// 4 keeps parameters once), and the registry of paths (`param_keys`) for "does any run have
/// it" and the list of keys.
pub(crate) struct ParamIndex {
    params: ReadOnlyTable<u64, Sealed>,
    keys: ReadOnlyTable<&'static [u8], Sealed>,
}

impl ParamIndex {
    /// Opens the parameters and the key registry in `txn`.
    pub(crate) fn open(txn: &ReadTransaction) -> Result<ParamIndex> {
        Ok(ParamIndex {
            params: txn.table(PARAMS)?,
            keys: txn.table(PARAM_KEYS)?,
        })
    }

    /// Every run holding the encoded parameter path `path` (a value that is not null), in
    /// run id order, with its value; `op` names the call in errors. One pass over the
    /// `params` rows, each checked against its seal and searched for the path without
    /// decoding the rest of it.
    pub(crate) fn column(&self, path: &[u8], op: &'static str) -> Result<Vec<(u64, Slot)>> {
        let Some(keys) = index::decode_path(path) else {
            return Ok(Vec::new());
        };
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut column = Vec::new();
        for entry in self.params.iter().db(op)? {
            let (key, value) = entry.db(op)?;
            let id = key.value();
            let payload = seal::open_entry(PARAMS.name(), &key, &value)?;
            if let Some(slot) = slot_at(payload, &keys)? {
                column.push((id, slot));
            }
        }
        Ok(column)
    }

    /// Run `id`'s value of the parameter path `keys`, if it holds one that is not null.
    pub(crate) fn get(&self, keys: &[&str], id: u64) -> Result<Option<Slot>> {
        Ok(seal::read(&self.params, id, |payload| slot_at(payload, keys))?.flatten())
    }

    /// Whether any run holds (or held) the encoded parameter path `path`.
    pub(crate) fn holds(&self, path: &[u8], op: &'static str) -> Result<bool> {
        Ok(self.keys.get(path).db(op)?.is_some())
    }

    /// The distinct parameter paths runs hold (at most [`KEY_PATHS_LISTED_MAX`]).
    pub(crate) fn paths(&self, op: &'static str) -> Result<Vec<Vec<String>>> {
        registered_paths(&self.keys, op)
    }
}

/// The value at `keys` in an encoded parameter map, as the index gives it: `None` when absent
/// or null, [`Slot::Deferred`] for a map or a large value (the caller reads the run's row).
fn slot_at(payload: &[u8], keys: &[&str]) -> Result<Option<Slot>> {
    let value =
        crate::value::Value::decode_path(payload, keys).map_err(|error| Error::Corrupted {
            at: Location::Catalog,
            reason: format!("parameters: {error}"),
        })?;
    Ok(match value {
        None | Some(crate::value::Value::Null) => None,
        Some(value) => {
            let encoded_len = match &value {
                crate::value::Value::Str(text) => text.len() + 5,
                crate::value::Value::List(_) => value.encode().len(),
                _ => 9,
            };
            Some(Slot::of(&value, encoded_len))
        }
    })
}

/// Output aggregates by key path: each run's [`OutputStats`] read from its `output_stats`
/// record, and the registry of output paths (`output_keys`).
pub(crate) struct OutputIndex {
    stats: ReadOnlyTable<u64, Sealed>,
    keys: ReadOnlyTable<&'static [u8], Sealed>,
}

impl OutputIndex {
    /// Opens the output stats and the key registry in `txn`.
    pub(crate) fn open(txn: &ReadTransaction) -> Result<OutputIndex> {
        Ok(OutputIndex {
            stats: txn.table(OUTPUT_STATS)?,
            keys: txn.table(OUTPUT_KEYS)?,
        })
    }

    /// Every run holding the encoded output path `path`, in run id order, with the `parts` of
    /// its aggregates; `op` names the call in errors. One pass over the runs' records.
    pub(crate) fn column(
        &self,
        path: &[u8],
        parts: Parts,
        op: &'static str,
    ) -> Result<Vec<(u64, OutputStats)>> {
        let mut column = Vec::new();
        for entry in self.stats.iter().db(op)? {
            let (key, value) = entry.db(op)?;
            let payload = seal::open_entry(OUTPUT_STATS.name(), &key, &value)?;
            if let Some(stats) = index::find_run_stats(payload, path)? {
                column.push((key.value(), OutputStats::decode_parts(stats, parts)?));
            }
        }
        Ok(column)
    }

    /// The `parts` of run `id`'s aggregates of the encoded output path `path`, if it holds
    /// one.
    pub(crate) fn get(&self, path: &[u8], id: u64, parts: Parts) -> Result<Option<OutputStats>> {
        Ok(seal::read(&self.stats, id, |record| {
            index::find_run_stats(record, path)?
                .map(|stats| OutputStats::decode_parts(stats, parts))
                .transpose()
        })?
        .flatten())
    }

    /// Whether any run holds (or held) the encoded output path `path`.
    pub(crate) fn holds(&self, path: &[u8], op: &'static str) -> Result<bool> {
        Ok(self.keys.get(path).db(op)?.is_some())
    }

    /// The distinct output paths runs hold (at most [`KEY_PATHS_LISTED_MAX`]).
    pub(crate) fn paths(&self, op: &'static str) -> Result<Vec<Vec<String>>> {
        registered_paths(&self.keys, op)
    }
}

/// The paths of a key registry (`param_keys`, `output_keys`), in path order, at most
/// [`KEY_PATHS_LISTED_MAX`].
fn registered_paths(
    keys: &ReadOnlyTable<&'static [u8], Sealed>,
    op: &'static str,
) -> Result<Vec<Vec<String>>> {
    let mut paths = Vec::new();
    for entry in keys.iter().db(op)?.take(KEY_PATHS_LISTED_MAX) {
        let (key, _) = entry.db(op)?;
        let path = index::decode_path(key.value()).ok_or_else(|| Error::Corrupted {
            at: Location::Catalog,
            reason: format!("{}: a key path that does not decode", keys.name()),
        })?;
        paths.push(path);
    }
    Ok(paths)
}

/// The key of an `output_order` entry: (encoded path, rank, bits, run id).
type OrderKey = (&'static [u8], u8, u64, u64);

/// One entry of a redb range over a table keyed `K`, as redb hands it out.
type Entry<'a, K> = redb::Result<(AccessGuard<'a, K>, AccessGuard<'a, Sealed>)>;

/// Most distinct key paths [`key_paths`] lists: the candidates of a "did you mean" when a query
/// names a key no run has. Each is one B-tree seek; a store with more keys than this still
/// gets its error, with a suggestion drawn from the first ones in path order.
pub(crate) const KEY_PATHS_LISTED_MAX: usize = 10_000;

/// The output order index (`output_order`), opened for walks along one path.
pub(crate) struct OutputOrder {
    table: ReadOnlyTable<OrderKey, Sealed>,
}

impl OutputOrder {
    /// Opens the output order index in `txn`.
    pub(crate) fn open(txn: &ReadTransaction) -> Result<OutputOrder> {
        Ok(OutputOrder {
            table: txn.table(OUTPUT_ORDER)?,
        })
    }

    /// The entries of the encoded output path `path`, from the smallest sort key up, or from
    /// the largest down when `descending`; `op` names the call in errors.
    pub(crate) fn walk<'a>(
        &'a self,
        path: &'a [u8],
        descending: bool,
        op: &'static str,
    ) -> Result<OrderWalk<'a>> {
        let range = self
            .table
            .range((path, 0, 0, 0)..=(path, u8::MAX, u64::MAX, u64::MAX))
            .db(op)?;
        let entries: Box<dyn Iterator<Item = _>> = if descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        Ok(OrderWalk { entries, op })
    }
}

/// A walk of one path of the output order index: see [`OutputOrder::walk`]. Yields each
/// entry's (rank, bits, run id).
pub(crate) struct OrderWalk<'a> {
    entries: Box<dyn Iterator<Item = Entry<'a, OrderKey>> + 'a>,
    op: &'static str,
}

impl Iterator for OrderWalk<'_> {
    type Item = Result<(u8, u64, u64)>;

    fn next(&mut self) -> Option<Result<(u8, u64, u64)>> {
        let entry = self.entries.next()?;
        Some((|| {
            let (entry_key, value) = entry.db(self.op)?;
            if !seal::open_entry(OUTPUT_ORDER.name(), &entry_key, &value)?.is_empty() {
                return Err(Error::Corrupted {
                    at: Location::Catalog,
                    reason: "output order index: an entry has a payload".to_string(),
                });
            }
            let (_, rank, bits, id) = entry_key.value();
            Ok((rank, bits, id))
        })())
    }
}

/// The run records (`runs`), opened for point reads of runs an index named.
pub(crate) struct RunRecords {
    table: ReadOnlyTable<u64, Sealed>,
}

impl RunRecords {
    /// Opens the run records in `txn`.
    pub(crate) fn open(txn: &ReadTransaction) -> Result<RunRecords> {
        Ok(RunRecords {
            table: txn.table(RUNS)?,
        })
    }

    /// The record of run `id`, which an index named: a missing record is corruption.
    pub(crate) fn get(&self, id: u64) -> Result<RunRecord> {
        record_of(&self.table, id)
    }
}

/// A run's own rows: its record, its parameters and its outputs, opened once per query.
pub(crate) struct RunRows {
    runs: ReadOnlyTable<u64, Sealed>,
    params: ReadOnlyTable<u64, Sealed>,
    outputs: ReadOnlyTable<(u64, u64), Sealed>,
}

impl RunRows {
    /// Opens the tables of a run's rows in `txn`.
    pub(crate) fn open(txn: &ReadTransaction) -> Result<RunRows> {
        Ok(RunRows {
            runs: txn.table(RUNS)?,
            params: txn.table(PARAMS)?,
            outputs: txn.table(OUTPUTS)?,
        })
    }

    /// The record of run `id`, which an index named: a missing record is corruption.
    pub(crate) fn record(&self, id: u64) -> Result<RunRecord> {
        record_of(&self.runs, id)
    }

    /// Run `id`'s parameters (an encoded `Value::Map`), if it has a parameters row.
    pub(crate) fn params(&self, id: u64) -> Result<Option<Vec<u8>>> {
        seal::get(&self.params, id)
    }

    /// Run `id`'s output rows in sequence order (reverse it for newest first); `op` names
    /// the call in errors.
    pub(crate) fn outputs(&self, id: u64, op: &'static str) -> Result<OutputRows<'_>> {
        let range = self.outputs.range((id, 0)..=(id, u64::MAX)).db(op)?;
        Ok(OutputRows { range, op })
    }
}

/// A run's output rows: see [`RunRows::outputs`].
pub(crate) struct OutputRows<'a> {
    range: redb::Range<'a, (u64, u64), Sealed>,
    op: &'static str,
}

/// One output row, its seal not yet checked.
pub(crate) struct OutputRow<'a> {
    key: AccessGuard<'a, (u64, u64)>,
    value: AccessGuard<'a, Sealed>,
}

impl OutputRow<'_> {
    /// The row's payload (an encoded `Value`), its seal checked.
    pub(crate) fn payload(&self) -> Result<&[u8]> {
        seal::open_entry(OUTPUTS.name(), &self.key, &self.value)
    }
}

impl<'a> OutputRows<'a> {
    fn row(&self, entry: Entry<'a, (u64, u64)>) -> Result<OutputRow<'a>> {
        let (key, value) = entry.db(self.op)?;
        Ok(OutputRow { key, value })
    }
}

impl<'a> Iterator for OutputRows<'a> {
    type Item = Result<OutputRow<'a>>;

    fn next(&mut self) -> Option<Result<OutputRow<'a>>> {
        let entry = self.range.next()?;
        Some(self.row(entry))
    }
}

impl DoubleEndedIterator for OutputRows<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let entry = self.range.next_back()?;
        Some(self.row(entry))
    }
}

fn record_of(runs: &(impl ReadableTable<u64, Sealed> + TableHandle), id: u64) -> Result<RunRecord> {
    let bytes = seal::get(runs, id)?.ok_or_else(|| Error::Corrupted {
        at: Location::Catalog,
        reason: format!("run #{id} is indexed but has no record"),
    })?;
    records::decode::<RunRecord>(&bytes, "run record")
}
