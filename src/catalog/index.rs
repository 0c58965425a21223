//! The key index: per run, the aggregates of every output key path (so that a run query
//! never walks a run's output history), the runs in order of each output key's latest value,
//! and the registries of parameter and output key paths.
//!
//! - [`PARAM_KEYS`] lists every parameter key path runs have held (catalog version 4): the
//!   values themselves are read from each run's `params` row, which holds them once. (Catalog
//!   versions 2 and 3 also kept every value by path in `param_index`: a second copy of every
//!   parameter, 20 scattered B-tree inserts per run of 20 parameters and 40% of a store of
//!   small runs; a parameter column now reads the `params` rows in run order instead.)
//! - [`OUTPUT_STATS`] maps a run to the [`OutputStats`] of each of its output key paths: what
//!   the filter language's output aggregates (`first`, `last`, `count`, `min`, `max`, `mean`)
//!   give for that key, kept up to date as outputs are appended, so no query walks a run's
//!   output history; [`OUTPUT_KEYS`] registers the output paths (catalog version 4; versions
//!   2 and 3 kept one entry per `(path, run)` in `output_index`).
//! - [`OUTPUT_ORDER`] holds `(path, sort rank, sort bits, run)` for every output key's latest
//!   value that sorts before null ([`SortKey`]): the runs in `ORDER BY outputs.<key>` order,
//!   so a query with a limit walks it from either end and stops early.
//!
//! A path is every chain of map keys that reaches a value that is not null, through maps only
//! (a list is a leaf). Map values and large values are not copied into the index: their entry
//! says [`Slot::Deferred`], and a query that meets one reads that run's row in `params` or
//! `outputs` instead. Paths longer than [`INDEX_PATH_BYTES_MAX`] are not indexed at all; a
//! query naming one does not use the index.
//!
//! This module owns the index's layout and its maintenance. The catalog functions that write
//! parameters and outputs call it in the same transaction, so the index never disagrees with
//! the rows it summarises; `check` recomputes it and reports any difference; `vacuum` copies
//! it; a writable open of a store written before the current layout builds it once.
//!
//! Invariant (checked by `runstore::check`, in `catalog/check.rs`): run `id`'s
//! [`OUTPUT_STATS`] record holds exactly the stats [`run_entries`] computes from its `outputs`
//! rows (no record for a run without outputs), its order entries are the
//! [`OutputStats::last_sort`] of those stats, and every parameter and output path it holds is
//! registered in [`PARAM_KEYS`] / [`OUTPUT_KEYS`].

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};

use super::seal::{self, Sealed};
use super::{Reader, OUTPUTS, PARAMS};
use crate::error::{DbResultExt, Error, Location, Result};
use crate::value::Value;

/// Encoded parameter key path to a sealed empty payload: every path some run's parameters
/// have held (catalog version 4). Runs' parameter values are read from their `params` rows;
/// this registry answers "does any run have this key" (a typo check) and lists the keys. A
/// path stays when the runs holding it are deleted or changed (a query naming it then finds
/// no run, as for any key runs lack); vacuum and upgrades rebuild it exact.
pub const PARAM_KEYS: TableDefinition<&[u8], Sealed> = TableDefinition::new("param_keys");
/// The parameter half of the key index of catalog versions 2 and 3: `(encoded key path, run
/// id)` to the parameter's value there. Version 4 reads parameters from `params` instead; an
/// upgrade deletes this table.
pub const PARAM_INDEX_V3: TableDefinition<(&[u8], u64), Sealed> =
    TableDefinition::new("param_index");
/// Run id to the [`OutputStats`] of every output key path of the run, in one record
/// ([`encode_run_stats`]; catalog version 4): appending outputs rewrites one record at the
/// run's place in id order instead of one entry per key scattered by path, and a query reads
/// a key's column in one pass over the records.
pub const OUTPUT_STATS: TableDefinition<u64, Sealed> = TableDefinition::new("output_stats");
/// Encoded output key path to a sealed empty payload: every output key path some run has
/// held, as [`PARAM_KEYS`] is for parameters.
pub const OUTPUT_KEYS: TableDefinition<&[u8], Sealed> = TableDefinition::new("output_keys");
/// The output half of the key index of catalog versions 2 and 3: `(encoded key path, run id)`
/// to the encoded [`OutputStats`]. Version 4 keeps them per run ([`OUTPUT_STATS`]); an
/// upgrade deletes this table.
pub const OUTPUT_INDEX_V3: TableDefinition<(&[u8], u64), Sealed> =
    TableDefinition::new("output_index");

/// `(encoded key path, sort rank, sort bits, run id)` to a sealed empty payload: one entry per
/// output index entry whose latest value has a [`SortKey`] (is neither null nor NaN). In key
/// order, the runs are in `ORDER BY outputs.<path>` ascending order, up to ties within one
/// `(rank, bits)` (see [`SortKey`]).
pub const OUTPUT_ORDER: TableDefinition<(&[u8], u8, u64, u64), Sealed> =
    TableDefinition::new("output_order");

/// Longest encoded key path that is indexed. Real keys are a few words; a path longer than
/// this is left to the unindexed query path rather than bloat the index's B-tree keys.
pub const INDEX_PATH_BYTES_MAX: usize = 1024;
/// Largest encoded value copied into the index; larger ones are [`Slot::Deferred`]. Queries
/// compare numbers, short strings and flags: a 1 MB parameter is not worth a second copy.
pub const INDEX_VALUE_BYTES_MAX: usize = 1024;

const STATS_VERSION: u8 = 2;
const SLOT_DEFERRED: u8 = 0;
const SLOT_VALUE: u8 = 1;
const SLOT_NONE: u8 = 2;

/// Encodes a key path: each key as its length (u32, little-endian) and bytes, so that no key
/// (whatever characters it holds) can be confused with a separator.
pub fn encode_path<S: AsRef<str>>(path: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for key in path {
        let key = key.as_ref().as_bytes();
        // Keys longer than u32::MAX bytes cannot exist: values are far smaller.
        let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(key);
    }
    out
}

/// Decodes a path written by `encode_path`, or `None` if the bytes are not one.
pub fn decode_path(mut bytes: &[u8]) -> Option<Vec<String>> {
    let mut path = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (key, rest) = rest.split_at(len);
        path.push(std::str::from_utf8(key).ok()?.to_string());
        bytes = rest;
    }
    Some(path)
}

/// Whether a query naming `path` can be answered from the index.
pub fn is_indexable<S: AsRef<str>>(path: &[S]) -> bool {
    !path.is_empty() && encode_path(path).len() <= INDEX_PATH_BYTES_MAX
}

/// A value as the index holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The value itself.
    Value(Value),
    /// A map or a large value: read it from the run's own row.
    Deferred,
}

impl Slot {
    pub(crate) fn of(value: &Value, encoded_len: usize) -> Slot {
        if matches!(value, Value::Map(_)) || encoded_len > INDEX_VALUE_BYTES_MAX {
            Slot::Deferred
        } else {
            Slot::Value(value.clone())
        }
    }
}

/// Where a value falls in the run query's sort order (`OrderKey::compare_values`), coarsened
/// to fit a fixed-size key: `a < b` in that order implies `key(a) <= key(b)`, so a walk in key
/// order meets values in sort order except within one key, whose runs the query sorts itself.
///
/// `rank` is the sort's type rank: 0 numbers, 1 strings, 2 flags, 3 lists, 4 maps. `bits`
/// orders within the rank: a number's `f64` value (an integer rounded to the nearest float,
/// which keeps the order; -0 as 0) with the sign flipped so that unsigned order is numeric
/// order; a string's first eight bytes, big-endian, zero-padded; a flag as 0 or 1; 0 for lists
/// and maps, which the sort holds equal. Null and NaN, which sort after everything in both
/// directions, have no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SortKey {
    /// The type rank.
    pub rank: u8,
    /// The order within the rank.
    pub bits: u64,
}

impl SortKey {
    /// The key of `value`, or `None` for null and NaN.
    pub fn of(value: &Value) -> Option<SortKey> {
        let (rank, bits) = match value {
            Value::Null => return None,
            Value::Int(_) | Value::Float(_) => {
                let float = value.as_f64().filter(|f| !f.is_nan())?;
                // -0 and 0 compare equal: give them one key.
                let float = if float == 0.0 { 0.0 } else { float };
                let raw = float.to_bits();
                let bits = if raw >> 63 == 1 {
                    !raw
                } else {
                    raw | (1 << 63)
                };
                (0, bits)
            }
            Value::Str(text) => {
                let mut prefix = [0u8; 8];
                let bytes = text.as_bytes();
                let n = bytes.len().min(8);
                prefix[..n].copy_from_slice(&bytes[..n]);
                (1, u64::from_be_bytes(prefix))
            }
            Value::Bool(flag) => (2, u64::from(*flag)),
            Value::List(_) => (3, 0),
            Value::Map(_) => (4, 0),
        };
        Some(SortKey { rank, bits })
    }
}

/// Calls `f` with every indexed path of `value` (a map) and the value there, outermost first:
/// every chain of map keys that reaches a non-null value, up to [`INDEX_PATH_BYTES_MAX`].
fn walk(value: &Value, f: &mut impl FnMut(&[u8], &Value)) {
    fn go(value: &Value, prefix: &mut Vec<u8>, f: &mut impl FnMut(&[u8], &Value)) {
        let Value::Map(entries) = value else { return };
        for (key, child) in entries {
            if matches!(child, Value::Null) {
                continue;
            }
            let mark = prefix.len();
            prefix.extend_from_slice(&encode_path(&[key]));
            if prefix.len() <= INDEX_PATH_BYTES_MAX {
                f(prefix, child);
                go(child, prefix, f);
            }
            prefix.truncate(mark);
        }
    }
    go(value, &mut Vec::new(), f);
}

/// The parameter index entries of a parameter map: path to encoded slot.
pub fn param_entries(params: &Value) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut entries = BTreeMap::new();
    walk(params, &mut |path, value| {
        let encoded = if matches!(value, Value::Map(_)) {
            Vec::new()
        } else {
            let encoded = value.encode();
            if encoded.len() > INDEX_VALUE_BYTES_MAX {
                Vec::new()
            } else {
                encoded
            }
        };
        entries.insert(path.to_vec(), encoded);
    });
    entries
}

/// Decodes a parameter index value.
pub fn decode_param(bytes: &[u8]) -> Result<Slot> {
    if bytes.is_empty() {
        return Ok(Slot::Deferred);
    }
    Value::decode(bytes)
        .map(Slot::Value)
        .map_err(|error| Error::Corrupted {
            at: Location::Catalog,
            reason: format!("parameter index: {error}"),
        })
}

/// What the output aggregates of one key give over one run's output values, kept as the
/// values are appended. Mirrors the filter language's definitions exactly: only values that
/// are not null count; `min`/`max`/`mean` see the numbers that are not NaN; ties keep the
/// first minimum and the last maximum, as `Iterator::min_by`/`max_by` do.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputStats {
    /// Output values holding the key.
    pub count: u64,
    /// Of those, values that are numbers and not NaN.
    pub numbers: u64,
    /// Sum of those numbers, added in logged order.
    pub sum: f64,
    /// The first value logged.
    pub first: Slot,
    /// The latest value logged.
    pub last: Slot,
    /// The smallest number.
    pub min: Option<Value>,
    /// The largest number.
    pub max: Option<Value>,
    /// The `SortKey` of the latest value (kept even when `last` is deferred), which names
    /// the run's entry in `OUTPUT_ORDER`.
    pub last_sort: Option<SortKey>,
}

impl OutputStats {
    /// Stats over one value (not null).
    fn new(value: &Value) -> OutputStats {
        let mut stats = OutputStats {
            count: 0,
            numbers: 0,
            sum: 0.0,
            first: Slot::Deferred,
            last: Slot::Deferred,
            min: None,
            max: None,
            last_sort: None,
        };
        stats.add(value);
        stats.first = stats.last.clone();
        stats
    }

    /// Adds the next logged value (not null).
    fn add(&mut self, value: &Value) {
        self.count += 1;
        let encoded_len = match value {
            Value::Map(_) => 0,
            Value::Str(s) => s.len() + 5,
            Value::List(_) => value.encode().len(),
            _ => 9,
        };
        self.last = Slot::of(value, encoded_len);
        self.last_sort = SortKey::of(value);
        if let Some(number) = value.as_f64().filter(|f| !f.is_nan()) {
            self.numbers += 1;
            self.sum += number;
            if self
                .min
                .as_ref()
                .is_none_or(|min| numeric_cmp(value, min) == std::cmp::Ordering::Less)
            {
                self.min = Some(value.clone());
            }
            if self
                .max
                .as_ref()
                .is_none_or(|max| numeric_cmp(value, max) != std::cmp::Ordering::Less)
            {
                self.max = Some(value.clone());
            }
        }
    }

    /// The encoding of one key's stats inside an [`OUTPUT_STATS`] record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![STATS_VERSION];
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.numbers.to_le_bytes());
        out.extend_from_slice(&self.sum.to_bits().to_le_bytes());
        for slot in [&self.first, &self.last] {
            match slot {
                Slot::Deferred => out.push(SLOT_DEFERRED),
                Slot::Value(value) => push_value(&mut out, value),
            }
        }
        for bound in [&self.min, &self.max] {
            match bound {
                None => out.push(SLOT_NONE),
                Some(value) => push_value(&mut out, value),
            }
        }
        match self.last_sort {
            None => out.push(SLOT_NONE),
            Some(key) => {
                out.push(SLOT_VALUE);
                out.push(key.rank);
                out.extend_from_slice(&key.bits.to_le_bytes());
            }
        }
        out
    }

    /// Decodes [`OutputStats::encode`]'s bytes.
    ///
    /// # Errors
    ///
    /// `Error::Corrupted` if the bytes are not such an encoding.
    pub fn decode(bytes: &[u8]) -> Result<OutputStats> {
        OutputStats::decode_parts(bytes, Parts::ALL)
    }

    /// Decodes [`OutputStats::encode`]'s bytes, building only the values `parts` asks for:
    /// the others are checked for bounds and skipped, and read as [`Slot::Deferred`] (first,
    /// last) or `None` (min, max). A query decodes a whole column of these, so it asks only
    /// for what its aggregates read.
    ///
    /// # Errors
    ///
    /// `Error::Corrupted` if the bytes are not such an encoding.
    pub fn decode_parts(bytes: &[u8], parts: Parts) -> Result<OutputStats> {
        let corrupted = |reason: &str| Error::Corrupted {
            at: Location::Catalog,
            reason: format!("output index: {reason}"),
        };
        let mut reader = StatsReader { bytes };
        if reader.take(1).ok_or_else(|| corrupted("empty entry"))? != [STATS_VERSION] {
            return Err(corrupted("unknown entry version"));
        }
        let mut u64_field = |what: &str| -> Result<u64> {
            let bytes = reader.take(8).ok_or_else(|| corrupted(what))?;
            let mut array = [0; 8];
            array.copy_from_slice(bytes);
            Ok(u64::from_le_bytes(array))
        };
        let count = u64_field("truncated count")?;
        let numbers = u64_field("truncated count")?;
        let sum = f64::from_bits(u64_field("truncated sum")?);
        let mut slots = [Slot::Deferred, Slot::Deferred];
        for (slot, wanted) in slots.iter_mut().zip([parts.first, parts.last]) {
            *slot = match reader.value(wanted, corrupted)? {
                (SLOT_DEFERRED, None) => Slot::Deferred,
                (SLOT_VALUE, Some(value)) => Slot::Value(value),
                (SLOT_VALUE, None) if !wanted => Slot::Deferred,
                _ => return Err(corrupted("bad first/last slot")),
            };
        }
        let mut bounds = [None, None];
        for (bound, wanted) in bounds.iter_mut().zip([parts.min, parts.max]) {
            *bound = match reader.value(wanted, corrupted)? {
                (SLOT_NONE, None) => None,
                (SLOT_VALUE, Some(value)) if value.as_f64().is_some() => Some(value),
                (SLOT_VALUE, None) if !wanted => None,
                _ => return Err(corrupted("bad min/max")),
            };
        }
        let last_sort = match reader.take(1) {
            Some([SLOT_NONE]) => None,
            Some([SLOT_VALUE]) => {
                let key = reader
                    .take(9)
                    .ok_or_else(|| corrupted("truncated sort key"))?;
                let mut bits = [0; 8];
                bits.copy_from_slice(&key[1..]);
                if key[0] > 4 {
                    return Err(corrupted("bad sort rank"));
                }
                Some(SortKey {
                    rank: key[0],
                    bits: u64::from_le_bytes(bits),
                })
            }
            _ => return Err(corrupted("bad sort key")),
        };
        if !reader.bytes.is_empty() {
            return Err(corrupted("trailing bytes"));
        }
        if count == 0 || numbers > count {
            return Err(corrupted("impossible counts"));
        }
        let [first, last] = slots;
        let [min, max] = bounds;
        Ok(OutputStats {
            count,
            numbers,
            sum,
            first,
            last,
            min,
            max,
            last_sort,
        })
    }
}

/// Which values of an [`OutputStats`] to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parts {
    /// The first value.
    pub first: bool,
    /// The latest value.
    pub last: bool,
    /// The smallest number.
    pub min: bool,
    /// The largest number.
    pub max: bool,
}

impl Parts {
    /// Every value.
    pub const ALL: Parts = Parts {
        first: true,
        last: true,
        min: true,
        max: true,
    };
}

fn push_value(out: &mut Vec<u8>, value: &Value) {
    out.push(SLOT_VALUE);
    let encoded = value.encode();
    let len = u32::try_from(encoded.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&encoded);
}

struct StatsReader<'a> {
    bytes: &'a [u8],
}

impl<'a> StatsReader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    /// One slot: its tag, and its value when it has one and `wanted` (else skipped).
    fn value(
        &mut self,
        wanted: bool,
        corrupted: impl Fn(&str) -> Error,
    ) -> Result<(u8, Option<Value>)> {
        let [tag] = self.take(1).ok_or_else(|| corrupted("truncated slot"))? else {
            return Err(corrupted("truncated slot"));
        };
        let tag = *tag;
        if tag != SLOT_VALUE {
            return Ok((tag, None));
        }
        let len = self.take(4).ok_or_else(|| corrupted("truncated slot"))?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        let len = usize::try_from(len).map_err(|_| corrupted("slot too long"))?;
        let bytes = self.take(len).ok_or_else(|| corrupted("truncated slot"))?;
        if !wanted {
            return Ok((tag, None));
        }
        let value = Value::decode(bytes).map_err(|error| corrupted(&error.to_string()))?;
        Ok((tag, Some(value)))
    }
}

/// Compares two numbers exactly, as the filter language does.
fn numeric_cmp(left: &Value, right: &Value) -> std::cmp::Ordering {
    crate::value::numeric_cmp(left, right).unwrap_or(std::cmp::Ordering::Equal)
}

/// The output index entries of a run's output values (in logged order): path to stats.
#[cfg(test)]
pub fn output_entries<'a>(
    outputs: impl IntoIterator<Item = &'a Value>,
) -> BTreeMap<Vec<u8>, OutputStats> {
    let mut entries: BTreeMap<Vec<u8>, OutputStats> = BTreeMap::new();
    for output in outputs {
        add_output(&mut entries, output);
    }
    entries
}

fn add_output(entries: &mut BTreeMap<Vec<u8>, OutputStats>, output: &Value) {
    walk(output, &mut |path, value| match entries.get_mut(path) {
        Some(stats) => stats.add(value),
        None => {
            entries.insert(path.to_vec(), OutputStats::new(value));
        }
    });
}

/// Registers the key paths of a run's new parameters `params` that [`PARAM_KEYS`] lacks (its
/// old ones need nothing: a registered path stays).
pub fn register_params(txn: &WriteTransaction, params: &Value) -> Result<()> {
    let paths = param_paths(params);
    register(txn, PARAM_KEYS, paths.iter().map(Vec::as_slice))
}

/// The parameter key paths of a parameter map, as [`PARAM_KEYS`] holds them.
pub fn param_paths(params: &Value) -> Vec<Vec<u8>> {
    let mut paths = Vec::new();
    walk(params, &mut |path, _| paths.push(path.to_vec()));
    paths
}

/// Adds output values just appended to run `id` to its [`OUTPUT_STATS`] record, moves its
/// [`OUTPUT_ORDER`] entries whose latest value changed, and registers new paths.
pub fn add_outputs(txn: &WriteTransaction, id: u64, values: &[Value]) -> Result<()> {
    let op = "index outputs";
    let mut table = txn.open_table(OUTPUT_STATS).db(op)?;
    let mut stats = match seal::get(&table, id)? {
        Some(bytes) => decode_run_stats(&bytes)?,
        None => BTreeMap::new(),
    };
    let old_sort: BTreeMap<Vec<u8>, Option<SortKey>> = stats
        .iter()
        .map(|(path, stats)| (path.clone(), stats.last_sort))
        .collect();
    for value in values {
        add_output(&mut stats, value);
    }
    seal::put(&mut table, id, encode_run_stats(&stats).as_slice())?;
    drop(table);
    let mut order = txn.open_table(OUTPUT_ORDER).db(op)?;
    for (path, stats) in &stats {
        let old = old_sort.get(path).copied().flatten();
        if old == stats.last_sort {
            continue;
        }
        if let Some(old) = old {
            order
                .remove((path.as_slice(), old.rank, old.bits, id))
                .db(op)?;
        }
        if let Some(new) = stats.last_sort {
            seal::put(&mut order, (path.as_slice(), new.rank, new.bits, id), &[])?;
        }
    }
    drop(order);
    let new_paths: Vec<&[u8]> = stats
        .keys()
        .filter(|path| !old_sort.contains_key(*path))
        .map(Vec::as_slice)
        .collect();
    register(txn, OUTPUT_KEYS, new_paths)
}

/// Adds the `paths` a key registry ([`PARAM_KEYS`], [`OUTPUT_KEYS`]) lacks.
fn register<'p>(
    txn: &WriteTransaction,
    registry: TableDefinition<&[u8], Sealed>,
    paths: impl IntoIterator<Item = &'p [u8]>,
) -> Result<()> {
    let op = "register keys";
    let mut paths = paths.into_iter().peekable();
    if paths.peek().is_none() {
        return Ok(());
    }
    let mut keys = txn.open_table(registry).db(op)?;
    for path in paths {
        if keys.get(path).db(op)?.is_none() {
            seal::put(&mut keys, path, &[])?;
        }
    }
    Ok(())
}

/// Encodes a run's [`OUTPUT_STATS`] record: per key path, in path order, the path's length
/// (`u32` LE) and bytes, then the length (`u32` LE) and bytes of [`OutputStats::encode`].
pub fn encode_run_stats(stats: &BTreeMap<Vec<u8>, OutputStats>) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, stats) in stats {
        let encoded = stats.encode();
        // Paths are at most INDEX_PATH_BYTES_MAX and stats far below 4 GiB.
        out.extend_from_slice(&u32::try_from(path.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(path);
        out.extend_from_slice(
            &u32::try_from(encoded.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&encoded);
    }
    out
}

/// The `(path, encoded stats)` pairs of an [`OUTPUT_STATS`] record, checked for bounds and
/// for paths in strictly ascending order.
pub fn run_stats_entries(bytes: &[u8]) -> impl Iterator<Item = Result<(&[u8], &[u8])>> + '_ {
    let corrupted = |reason: &str| Error::Corrupted {
        at: Location::Catalog,
        reason: format!("output stats record: {reason}"),
    };
    let mut rest = bytes;
    let mut previous: Option<&[u8]> = None;
    let mut failed = false;
    std::iter::from_fn(move || {
        if rest.is_empty() || failed {
            return None;
        }
        let mut take = |what: &str| -> Result<&[u8]> {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| corrupted(what))?;
            let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| corrupted(what))?;
            if tail.len() < len {
                return Err(corrupted(what));
            }
            let (field, tail) = tail.split_at(len);
            rest = tail;
            Ok(field)
        };
        let entry = take("truncated path").and_then(|path| {
            let stats = take("truncated stats")?;
            if previous.is_some_and(|previous| previous >= path) {
                return Err(corrupted("paths out of order"));
            }
            previous = Some(path);
            Ok((path, stats))
        });
        failed = entry.is_err();
        Some(entry)
    })
}

/// Decodes a whole [`OUTPUT_STATS`] record.
pub fn decode_run_stats(bytes: &[u8]) -> Result<BTreeMap<Vec<u8>, OutputStats>> {
    run_stats_entries(bytes)
        .map(|entry| {
            entry.and_then(|(path, stats)| Ok((path.to_vec(), OutputStats::decode(stats)?)))
        })
        .collect()
}

/// The encoded stats of `path` in an [`OUTPUT_STATS`] record, if the run holds it.
pub fn find_run_stats<'a>(bytes: &'a [u8], path: &[u8]) -> Result<Option<&'a [u8]>> {
    for entry in run_stats_entries(bytes) {
        let (found, stats) = entry?;
        match found.cmp(path) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => return Ok(Some(stats)),
            std::cmp::Ordering::Greater => return Ok(None),
        }
    }
    Ok(None)
}

/// A run's index entries: parameter paths to encoded slots, output paths to stats.
pub type RunEntries = (BTreeMap<Vec<u8>, Vec<u8>>, BTreeMap<Vec<u8>, OutputStats>);

/// The index entries run `id` should have, computed from its `params` and `outputs` rows.
pub fn run_entries(txn: &impl Reader, id: u64) -> Result<RunEntries> {
    let op = "read run for index";
    let params = match seal::get(&txn.table(PARAMS)?, id)? {
        Some(bytes) => param_entries(&super::decode_value(&bytes, "parameters")?),
        None => BTreeMap::new(),
    };
    let outputs_table = txn.table(OUTPUTS)?;
    let mut outputs = BTreeMap::new();
    for entry in outputs_table.range((id, 0)..=(id, u64::MAX)).db(op)? {
        let (key, bytes) = entry.db(op)?;
        let payload = seal::open_entry(OUTPUTS.name(), &key, &bytes)?;
        add_output(&mut outputs, &super::decode_value(payload, "output value")?);
    }
    Ok((params, outputs))
}

/// Removes run `id`'s [`OUTPUT_STATS`] record and [`OUTPUT_ORDER`] entries (the key registries
/// keep its paths).
pub fn remove_run(txn: &WriteTransaction, id: u64) -> Result<()> {
    let op = "unindex run";
    let mut table = txn.open_table(OUTPUT_STATS).db(op)?;
    let Some(bytes) = seal::get(&table, id)? else {
        return Ok(());
    };
    let stats = decode_run_stats(&bytes)?;
    table.remove(id).db(op)?;
    drop(table);
    let mut order = txn.open_table(OUTPUT_ORDER).db(op)?;
    for (path, stats) in &stats {
        if let Some(key) = stats.last_sort {
            order
                .remove((path.as_slice(), key.rank, key.bits, id))
                .db(op)?;
        }
    }
    Ok(())
}

/// Writes the index entries of run `id` from its `params` and `outputs` rows (a run whose rows
/// were copied in wholesale and that has no entries yet).
pub fn add_run(txn: &WriteTransaction, id: u64) -> Result<()> {
    let op = "index run";
    let (params, outputs) = run_entries(txn, id)?;
    register(txn, PARAM_KEYS, params.keys().map(Vec::as_slice))?;
    if outputs.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(OUTPUT_STATS).db(op)?;
    seal::put(&mut table, id, encode_run_stats(&outputs).as_slice())?;
    drop(table);
    let mut order = txn.open_table(OUTPUT_ORDER).db(op)?;
    for (path, stats) in &outputs {
        if let Some(key) = stats.last_sort {
            seal::put(&mut order, (path.as_slice(), key.rank, key.bits, id), &[])?;
        }
    }
    drop(order);
    register(txn, OUTPUT_KEYS, outputs.keys().map(Vec::as_slice))
}

/// Builds the whole index from scratch (its tables emptied first, the parameter index of
/// catalog versions 2 and 3 deleted); returns the runs indexed.
pub fn rebuild(txn: &WriteTransaction) -> Result<u64> {
    let op = "build key index";
    // Catalog versions 2 and 3 kept every parameter value a second time, and output stats
    // per key, by path.
    txn.delete_table(PARAM_INDEX_V3).db(op)?;
    txn.delete_table(OUTPUT_INDEX_V3).db(op)?;
    for registry in [PARAM_KEYS, OUTPUT_KEYS] {
        txn.open_table(registry)
            .db(op)?
            .retain(|_, _| false)
            .db(op)?;
    }
    txn.open_table(OUTPUT_STATS)
        .db(op)?
        .retain(|_, _| false)
        .db(op)?;
    txn.open_table(OUTPUT_ORDER)
        .db(op)?
        .retain(|_, _| false)
        .db(op)?;
    let ids: Vec<u64> = txn
        .open_table(super::RUNS)
        .db(op)?
        .iter()
        .db(op)?
        .map(|entry| entry.map(|(id, _)| id.value()))
        .collect::<std::result::Result<_, _>>()
        .db(op)?;
    for &id in &ids {
        add_run(txn, id)?;
    }
    Ok(ids.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_whatever_the_keys_hold() {
        for path in [
            vec!["lr"],
            vec!["opt", "name"],
            vec!["a.b", "", "\u{0}x"],
            vec!["\u{4}\u{0}\u{0}\u{0}"],
        ] {
            let encoded = encode_path(&path);
            assert_eq!(
                decode_path(&encoded),
                Some(path.iter().map(|s| s.to_string()).collect())
            );
        }
        assert_eq!(decode_path(&[1, 0, 0]), None);
        assert_eq!(decode_path(&[5, 0, 0, 0, b'a']), None);
        assert!(!is_indexable::<&str>(&[]));
        assert!(!is_indexable(&["x".repeat(INDEX_PATH_BYTES_MAX)]));
    }

    #[test]
    fn param_entries_cover_nested_maps_and_defer_maps_and_large_values() {
        let params = Value::map([
            ("lr", Value::Float(0.01)),
            ("none", Value::Null),
            ("opt", Value::map([("name", Value::Str("adam".into()))])),
            ("big", Value::Str("x".repeat(INDEX_VALUE_BYTES_MAX))),
            ("tags", Value::List(vec![Value::Int(1)])),
        ]);
        let entries = param_entries(&params);
        let get = |path: &[&str]| entries.get(&encode_path(path)).cloned();
        assert_eq!(get(&["lr"]), Some(Value::Float(0.01).encode()));
        assert_eq!(get(&["none"]), None);
        assert_eq!(get(&["opt"]), Some(Vec::new()));
        assert_eq!(
            get(&["opt", "name"]),
            Some(Value::Str("adam".into()).encode())
        );
        assert_eq!(get(&["big"]), Some(Vec::new()));
        assert_eq!(
            get(&["tags"]),
            Some(Value::List(vec![Value::Int(1)]).encode())
        );
        assert_eq!(entries.len(), 5);
        assert_eq!(decode_param(&[]).unwrap(), Slot::Deferred);
    }

    #[test]
    fn output_stats_follow_the_aggregate_definitions() {
        let outputs = [
            Value::map([("loss", Value::Int(3))]),
            Value::map([("loss", Value::Float(f64::NAN))]),
            Value::map([("loss", Value::Null)]),
            Value::map([("loss", Value::Float(1.0))]),
            Value::map([("loss", Value::Int(1))]),
            Value::map([("loss", Value::Float(3.0))]),
            Value::map([("loss", Value::Str("n/a".into()))]),
        ];
        let entries = output_entries(&outputs);
        let stats = &entries[&encode_path(&["loss"])];
        assert_eq!(stats.count, 6);
        assert_eq!(stats.numbers, 4);
        assert_eq!(stats.sum, 8.0);
        assert_eq!(stats.first, Slot::Value(Value::Int(3)));
        assert_eq!(stats.last, Slot::Value(Value::Str("n/a".into())));
        // The first of the equal minima, the last of the equal maxima.
        assert_eq!(stats.min, Some(Value::Float(1.0)));
        assert_eq!(stats.max, Some(Value::Float(3.0)));
        let decoded = OutputStats::decode(&stats.encode()).unwrap();
        assert_eq!(decoded.encode(), stats.encode());
    }

    #[test]
    fn output_stats_decoding_rejects_damage() {
        let stats = output_entries(&[Value::map([("a", Value::Int(1))])])
            .into_values()
            .next()
            .unwrap();
        let bytes = stats.encode();
        for cut in 0..bytes.len() {
            assert!(OutputStats::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(OutputStats::decode(&trailing).is_err());
        let mut version = bytes.clone();
        version[0] = 9;
        assert!(OutputStats::decode(&version).is_err());
        let mut zero_count = bytes;
        zero_count[1..9].fill(0);
        assert!(OutputStats::decode(&zero_count).is_err());
    }

    #[test]
    fn check_reports_missing_stale_and_extra_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.runs");
        let store = crate::Store::create(&path).unwrap();
        let run = store.init("p", Some("a")).unwrap();
        run.set_parameters(&Value::map([
            ("lr", Value::Float(0.1)),
            ("bs", Value::Int(8)),
        ]))
        .unwrap();
        run.add_output_value(&Value::map([("acc", Value::Float(0.5))]))
            .unwrap();
        let id = run.id();
        store
            .write("tamper", |txn| {
                let mut keys = txn.open_table(PARAM_KEYS).unwrap();
                keys.remove(encode_path(&["lr"]).as_slice()).unwrap();
                // An extra registered key is allowed: deleted runs leave theirs.
                seal::put(&mut keys, encode_path(&["ghost"]).as_slice(), &[])?;
                drop(keys);
                let mut stats = output_entries(&[Value::map([("acc", Value::Float(0.7))])]);
                let mut ghost = stats[&encode_path(&["acc"])].clone();
                ghost.count = 9;
                stats.insert(encode_path(&["ghost"]), ghost);
                let mut outputs = txn.open_table(OUTPUT_STATS).unwrap();
                seal::put(&mut outputs, id, encode_run_stats(&stats).as_slice())?;
                Ok(())
            })
            .unwrap();
        drop((run, store));
        let report = crate::check(&path).unwrap();
        let problems = report.problems.join("\n");
        assert!(
            problems.contains("parameter key lr of run #1 is not registered"),
            "{problems}"
        );
        assert!(
            problems.contains("output acc of run #1 is stale"),
            "{problems}"
        );
        assert!(
            problems.contains("output ghost of run #1 does not exist"),
            "{problems}"
        );
        assert_eq!(report.problems.len(), 3, "{problems}");
    }

    #[test]
    fn sort_keys_never_reverse_the_query_order() {
        use crate::query::filter::{Operand, OrderKey, OutputReduction as Aggregate};
        let values = [
            Value::Int(i64::MIN),
            Value::Float(f64::NEG_INFINITY),
            Value::Float(-1.5),
            Value::Int(-1),
            Value::Float(-0.0),
            Value::Int(0),
            Value::Float(0.25),
            Value::Int(9_007_199_254_740_992),
            Value::Int(9_007_199_254_740_993),
            Value::Float(9_007_199_254_740_992.0),
            Value::Float(f64::INFINITY),
            Value::Str(String::new()),
            Value::Str("a".into()),
            Value::Str("a\u{0}".into()),
            Value::Str("abcdefgh".into()),
            Value::Str("abcdefgh2".into()),
            Value::Str("b".into()),
            Value::Bool(false),
            Value::Bool(true),
            Value::List(vec![Value::Int(2)]),
            Value::map([("x", Value::Int(1))]),
        ];
        let order = OrderKey {
            operand: Operand::Output {
                key: vec!["acc".into()],
                aggregate: Aggregate::Last,
            },
            descending: false,
        };
        for a in &values {
            for b in &values {
                let (ka, kb) = (SortKey::of(a).unwrap(), SortKey::of(b).unwrap());
                if order.compare_values(a, b) == std::cmp::Ordering::Less {
                    assert!(ka <= kb, "{a:?} < {b:?} but {ka:?} > {kb:?}");
                }
                if order.compare_values(a, b) == std::cmp::Ordering::Equal {
                    assert_eq!(ka, kb, "{a:?} = {b:?}");
                }
            }
        }
        assert_eq!(SortKey::of(&Value::Null), None);
        assert_eq!(SortKey::of(&Value::Float(f64::NAN)), None);
    }

    #[test]
    fn check_reports_missing_and_extra_order_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.runs");
        let store = crate::Store::create(&path).unwrap();
        let run = store.init("p", Some("a")).unwrap();
        run.add_output_value(&Value::map([
            ("acc", Value::Float(0.5)),
            ("loss", Value::Int(2)),
        ]))
        .unwrap();
        let id = run.id();
        store
            .write("tamper", |txn| {
                let mut order = txn.open_table(OUTPUT_ORDER).unwrap();
                let acc = SortKey::of(&Value::Float(0.5)).unwrap();
                order
                    .remove((encode_path(&["acc"]).as_slice(), acc.rank, acc.bits, id))
                    .unwrap();
                // A stale entry: the value before the latest.
                let old = SortKey::of(&Value::Int(3)).unwrap();
                seal::put(
                    &mut order,
                    (encode_path(&["loss"]).as_slice(), old.rank, old.bits, id),
                    &[],
                )?;
                Ok(())
            })
            .unwrap();
        drop((run, store));
        let report = crate::check(&path).unwrap();
        let problems = report.problems.join("\n");
        assert!(
            problems.contains("order entry of output acc of run #1 is missing"),
            "{problems}"
        );
        assert!(
            problems.contains("order entry of output loss of run #1 does not match"),
            "{problems}"
        );
        assert_eq!(report.problems.len(), 2, "{problems}");
    }

    #[test]
    fn a_newer_catalog_version_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.runs");
        let store = crate::Store::create(&path).unwrap();
        store
            .write("pretend newer", |txn| {
                super::super::meta_set(
                    txn,
                    super::super::META_CATALOG_VERSION,
                    super::super::CATALOG_VERSION + 1,
                )
            })
            .unwrap();
        drop(store);
        for result in [
            crate::Store::open(&path),
            crate::Store::open_read_only(&path),
        ] {
            match result {
                Err(crate::Error::UnsupportedCatalogVersion {
                    found, supported, ..
                }) if found == super::super::CATALOG_VERSION + 1
                    && supported == super::super::CATALOG_VERSION => {}
                other => panic!("expected UnsupportedCatalogVersion, got {other:?}"),
            }
        }
    }
}
