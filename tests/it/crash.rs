//! Kill-the-child crash tests: a child process commits as fast as it can and says what each
//! commit made durable; the parent kills it with SIGKILL at a random moment and then checks
//! that nothing acknowledged was lost.
//!
//! The child is this test binary run again (`std::env::current_exe()`) with only
//! [`crash_child`] selected and `RUNSTORE_CRASH_CHILD=<store path>` in its environment; without
//! that variable `crash_child` returns at once, so a normal test run skips it. The child commits
//! a random mix (new runs, outputs, parameters, blobs of up to 300 KiB so column extents and
//! redb both grow, copies, deletes, status changes, and now and then a vacuum, which closes the
//! store, rewrites it into a new file renamed over the old one and reopens it). It prints
//! one line per commit, `begin <n> <op>` before the call and `ack <n> <op>` after it returned
//! `Ok`, each flushed at once. `<op>` describes the commit completely (for example
//! `output crash/runs/r3-7 outputs=12` or `put crash/runs/r3-7 ckpt len=201733 crc=9c1e04aa`),
//! so the parent can keep the expected state of the store from the acks alone.
//!
//! About a third of the child's operations are on metrics tables, every one of the schema
//! [`table_schema`] (`row` i64, `value` nullable f64, `tag` nullable utf8, `emb`
//! `FixedSizeList<f32, 8>`) with a content fixed by the table's name inside its run (which a
//! copy keeps) and the row index, see [`row_content`]:
//! - `table <run> <name> rows=N`: `Run::add_metrics_data` of 1 to 200,000 rows (one chunk);
//! - `append <table> add=K rows=N`: `Store::append_to_table` of 1 to 5,000 rows, or now and
//!   then a batch large enough to go straight to a chunk (the tail is sealed first);
//! - `writer <run> <name> immediate|group`: `Run::metrics_writer`, a new empty table;
//! - `wrow`/`wbatch <table> add=K rows=N`: `append_row` / `append` of 1 to 5,000 rows through a
//!   writer with `WriteDurability::Immediate` (durable when acknowledged);
//! - `grow`/`gbatch <table> add=K rows=N`: the same through a writer with
//!   `WriteDurability::Group { window: 20 ms }`. Acknowledged into memory only: the parent
//!   takes `rows` as an upper bound, not as durable;
//! - `flush <table> rows=N` and `close <table> rows=N`: a writer's flush (commits everything
//!   pending, seals the tail) or close; all `N` rows are durable once acknowledged.
//!
//! A writer append to a table without an open writer first opens one with `MetricsWriter::open`
//! (no commit). Runs with open writers are not deleted and the store is not vacuumed while a
//! writer is open: the child closes the writer first.
//!
//! After each kill the parent asserts, in this order: `Store::open_read_only` works (a crashed
//! writer leaves the file needing recovery, which a read-only open does in memory) and reads
//! what the writable open reads below, without changing the file's length or mtime, and neither
//! does `runstore::check`, which reports no problem (redb's integrity check, every record and blob CRC,
//! and for tables every segment CRC and a rebuild of every array); the store opens read-write;
//! the runs in it are exactly the acknowledged state, or that state plus the one commit in
//! flight (begun, not acknowledged) at the kill; and once a writer has opened it, a read-only
//! open works. Temporary files of a killed vacuum are counted and removed. For tables "exactly"
//! means: the acknowledged tables of each run and no others (a copied run has copies of its
//! tables, a deleted run's tables are gone, and each run's metrics list names exactly its
//! tables), each with a row count from its last durable acknowledgement up to the rows
//! appended (the in-flight append's rows included only as the in-flight commit), and every
//! row, read by a full scan, equal to [`row_content`]: so the rows present are a prefix of
//! what was appended.
//!
//! `RUNSTORE_CRASH_KILLS=N` changes the number of kills of `crash_kill_loop` (default 50);
//! `RUNSTORE_CRASH_SEED=S` repeats its operation choices and delays (kill timing still varies
//! with the machine). `cargo run --release --example crash_soak` is the long version.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use runstore::{
    ColumnRole, Error, MetricsOptions, MetricsWriter, Run, RunStatus, Store, Value,
    WriteDurability, WriterOptions,
};

use crate::util::{seed_from_env, temp_store, Rng};

const CHILD_ENV: &str = "RUNSTORE_CRASH_CHILD";
const CHILD_SEED_ENV: &str = "RUNSTORE_CRASH_CHILD_SEED";
const CHILD_INCARNATION_ENV: &str = "RUNSTORE_CRASH_CHILD_INCARNATION";
/// The project every crash-test run lives in.
const PROJECT: &str = "crash";
/// Largest blob the child writes: several blobs fill a 1 MiB column extent, so both new column
/// extents and writes into existing ones happen.
const BLOB_BYTES_MAX: u64 = 300 * 1024;
const BLOB_NAMES: [&str; 3] = ["ckpt", "embeddings", "image"];
const PARAMETER_KEYS: [&str; 4] = ["lr", "epochs", "batch", "seed"];
/// The child keeps roughly this many runs: it creates runs below it and deletes above it.
const RUNS_TARGET: usize = 12;
/// Longest the parent waits for the child to open the store (it may be repairing it).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Percentage of the child's operations that are on metrics tables.
const TABLE_OP_PERCENT: u64 = 35;
/// Most rows of one `add_metrics_data` (one in eight is 65,536 or more, the rest spread from 1
/// to 20,000 over the powers of two).
const METRICS_ROWS_MAX: u64 = 200_000;
/// Most rows of one small append (`Store::append_to_table` or a writer's `append`).
const APPEND_ROWS_MAX: u64 = 5_000;
/// Once the tables of the store (copies counted) hold this many rows, the child deletes runs
/// instead of adding rows, so the parent's full scans stay short (shorter in a debug build,
/// where checksums and scans are some ten times slower).
const TABLE_ROWS_MAX: u64 = if cfg!(debug_assertions) {
    40_000
} else {
    800_000
};
/// Most writers the child keeps open at once.
const WRITERS_MAX: usize = 3;
/// The group-commit window of the child's group writers.
const GROUP_WINDOW: Duration = Duration::from_millis(20);
/// The stream of every crash-test metrics table.
const STREAM: &str = "crash";
/// Width of the `emb` column.
const EMB_WIDTH: usize = 8;
/// The non-null values of the `tag` column (of several lengths, the empty string first).
const TAGS: [&str; 6] = [
    "",
    "train",
    "val",
    "holdout",
    "e",
    "a-longer-tag-for-the-offsets",
];
include!("crash_protocol.rs");

// ---------------------------------------------------------------------------------------------
// The child

/// The child's side: does nothing unless started by a crash test with `RUNSTORE_CRASH_CHILD`.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let number = |name: &str| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("crash child: {name} is not set to a number"))
    };
    let config = ChildConfig {
        seed: number(CHILD_SEED_ENV),
        incarnation: number(CHILD_INCARNATION_ENV),
    };
    child_main(Path::new(&path), config);
}

/// What one child does.
#[derive(Clone, Copy, Debug)]
struct ChildConfig {
    /// Seed of its operation choices.
    seed: u64,
    /// Which child this is on the store, so the run names it makes are new.
    incarnation: u64,
}

/// Commits random operations until killed. Every failure is a panic: the parent sees the child
/// exit on its own instead of by SIGKILL, and prints its stderr.
fn child_main(path: &Path, config: ChildConfig) -> ! {
    let ChildConfig { seed, incarnation } = config;
    let mut store = Store::open_or_create(path).expect("crash child: open the store");
    // The runs of the project and their output counts, as the store has them now (this
    // includes a commit of an earlier child that landed without its ack).
    let mut runs = list_runs(&store);
    let mut tables = ChildTables::list(&store);
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        writeln!(out, "{line}").expect("crash child: write to stdout");
        out.flush().expect("crash child: flush stdout");
    };
    // libtest has printed "test crash::crash_child ... " without a newline: end that line so
    // "ready" is a line of its own.
    say("\nready".into());
    let mut rng = Rng::new(seed);
    for n in 0u64.. {
        let urls: Vec<&String> = runs.keys().collect();
        let pick = |rng: &mut Rng| urls[rng.below(urls.len() as u64) as usize].clone();
        let grow = runs.len() < 2 * RUNS_TARGET;
        let roll = rng.below(100);
        let mut blob_bytes = Vec::new();
        let op = if runs.len() >= 2 && rng.below(100) < TABLE_OP_PERCENT {
            tables.choose(&mut rng, n, incarnation, &urls)
        } else if roll == 99 && rng.below(2) == 0 {
            // One commit in 200 or so: it also bounds the file, which otherwise only grows.
            // Vacuum closes the store, so the writers are closed first.
            match tables.writers.keys().next() {
                Some(url) => tables.close_op(url),
                None => CrashOp::Vacuum {
                    runs: runs.len() as u64,
                },
            }
        } else if runs.len() < 2 || (grow && roll < 8) {
            CrashOp::Init {
                url: runstore::run_url(PROJECT, &format!("r{incarnation}-{n}")),
            }
        } else if roll < 40 {
            let url = pick(&mut rng);
            let outputs = runs[&url].1 + 1;
            CrashOp::Output { url, outputs }
        } else if roll < 52 {
            CrashOp::Params {
                url: pick(&mut rng),
                key: PARAMETER_KEYS[rng.below(PARAMETER_KEYS.len() as u64) as usize].into(),
                value: rng.below(1000) as i64,
            }
        } else if roll < 66 {
            // Half small, half anywhere up to the maximum.
            let len = if rng.below(2) == 0 {
                rng.below(4096)
            } else {
                rng.range(0, BLOB_BYTES_MAX)
            };
            blob_bytes = rng.bytes(len as usize);
            CrashOp::Put {
                url: pick(&mut rng),
                blob: BLOB_NAMES[rng.below(BLOB_NAMES.len() as u64) as usize].into(),
                len,
                crc: crc32fast::hash(&blob_bytes),
            }
        } else if roll < 72 && grow {
            CrashOp::Copy {
                from: pick(&mut rng),
                to: runstore::run_url(PROJECT, &format!("c{incarnation}-{n}")),
            }
        } else if roll < 82 && (runs.len() > RUNS_TARGET || roll < 74) {
            tables.delete_op(pick(&mut rng))
        } else {
            CrashOp::Status {
                url: pick(&mut rng),
                status: RunStatus::ALL[rng.below(RunStatus::ALL.len() as u64) as usize],
            }
        };
        say(format!("begin {n} {op}"));
        let failed = |e: Error| -> ! { panic!("crash child: {op} failed: {e}") };
        match &op {
            CrashOp::Init { url } => {
                let (_, name) = runstore::parse_run_url(url).expect("crash child: url");
                let run = store
                    .init(PROJECT, Some(&name))
                    .unwrap_or_else(|e| failed(e));
                assert_eq!(run.url(), *url, "crash child: init renamed the run");
                runs.insert(url.clone(), (run, 0));
            }
            CrashOp::Output { url, outputs } => {
                let entry = runs.get_mut(url).expect("crash child: known run");
                entry
                    .0
                    .add_output_value(&output_value(outputs - 1))
                    .unwrap_or_else(|e| failed(e));
                entry.1 = *outputs;
            }
            CrashOp::Params { url, key, value } => runs[url]
                .0
                .set_parameters(&Value::map([(key.as_str(), Value::from(*value))]))
                .unwrap_or_else(|e| failed(e)),
            CrashOp::Put { url, blob, len, .. } => {
                let written = runs[url]
                    .0
                    .put_bulk(blob, &blob_bytes)
                    .unwrap_or_else(|e| failed(e));
                assert_eq!(written, *len, "crash child: put_bulk length");
            }
            CrashOp::Copy { from, to } => {
                let (_, name) = runstore::parse_run_url(to).expect("crash child: url");
                let options = runstore::CopyOptions {
                    run_name: Some(name),
                    ..Default::default()
                };
                let copy = runs[from].0.copy(&options).unwrap_or_else(|e| failed(e));
                assert_eq!(copy.url(), *to, "crash child: copy renamed the run");
                let outputs = runs[from].1;
                runs.insert(to.clone(), (copy, outputs));
                // The copy's tables hold what was committed (a group writer's rows may not
                // all be), so their counts come from the store.
                let prefix = format!("{to}/");
                for info in store.tables(Some(PROJECT)).unwrap_or_else(|e| failed(e)) {
                    if info.url.starts_with(&prefix) {
                        tables.rows.insert(info.url, info.row_count);
                    }
                }
            }
            CrashOp::Delete { url } => {
                let (run, _) = runs.remove(url).expect("crash child: known run");
                run.delete().unwrap_or_else(|e| failed(e));
                let prefix = format!("{url}/");
                assert!(
                    !tables.writers.keys().any(|t| t.starts_with(&prefix)),
                    "crash child: deleted a run with an open writer"
                );
                tables.rows.retain(|t, _| !t.starts_with(&prefix));
            }
            CrashOp::Status { url, status } => runs[url]
                .0
                .set_status(*status)
                .unwrap_or_else(|e| failed(e)),
            CrashOp::Vacuum { .. } => {
                // Every handle holds the store open, and vacuum wants it closed.
                assert!(
                    tables.writers.is_empty(),
                    "crash child: vacuum with open writers"
                );
                runs.clear();
                drop(store);
                Store::vacuum(path).unwrap_or_else(|e| failed(e));
                store = Store::open(path).unwrap_or_else(|e| failed(e));
                runs = list_runs(&store);
                tables = ChildTables::list(&store);
            }
            CrashOp::Table { url, table, rows } => {
                let options = MetricsOptions {
                    table_writer_base_name: table
                        .strip_suffix("_0000")
                        .expect("crash child: table names end in _0000")
                        .into(),
                    stream_name: STREAM.into(),
                    ..MetricsOptions::default()
                };
                let batch = table_batch(table_seed(table), 0, *rows);
                let infos = runs[url]
                    .0
                    .add_metrics_data(&batch, &options)
                    .unwrap_or_else(|e| failed(e));
                let table_url = format!("{url}/{table}");
                assert!(
                    infos.len() == 1 && infos[0].url == table_url && infos[0].row_count == *rows,
                    "crash child: add_metrics_data returned {infos:?}"
                );
                tables.rows.insert(table_url, *rows);
            }
            CrashOp::Writer { url, table, group } => {
                let base = table
                    .strip_suffix("_0000")
                    .expect("crash child: table names end in _0000");
                let writer = runs[url]
                    .0
                    .metrics_writer(table_schema(), base, STREAM, &writer_options(*group))
                    .unwrap_or_else(|e| failed(e));
                let table_url = format!("{url}/{table}");
                assert_eq!(writer.url(), table_url, "crash child: metrics_writer's url");
                tables.rows.insert(table_url.clone(), 0);
                tables.writers.insert(table_url, (writer, *group));
            }
            CrashOp::Append {
                kind,
                url,
                add,
                rows,
            } => {
                let seed = table_seed(split_table_url(url).expect("crash child: table url").1);
                let start = rows - add;
                assert_eq!(tables.rows[url], start, "crash child: {op}: row count");
                if *kind == AppendKind::Store {
                    store
                        .append_to_table(url, &table_batch(seed, start, *add))
                        .unwrap_or_else(|e| failed(e));
                } else {
                    let (writer, group) = match tables.writers.entry(url.clone()) {
                        std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                        std::collections::btree_map::Entry::Vacant(entry) => {
                            let writer =
                                MetricsWriter::open(&store, url, &writer_options(kind.group()))
                                    .unwrap_or_else(|e| failed(e));
                            entry.insert((writer, kind.group()))
                        }
                    };
                    assert_eq!(*group, kind.group(), "crash child: {op}: writer durability");
                    if kind.single_row() {
                        writer
                            .append_row(&row_values(seed, start))
                            .unwrap_or_else(|e| failed(e));
                    } else {
                        writer
                            .append(&table_batch(seed, start, *add))
                            .unwrap_or_else(|e| failed(e));
                    }
                }
                tables.rows.insert(url.clone(), *rows);
            }
            CrashOp::Flush { url, rows } => {
                let (writer, _) = tables
                    .writers
                    .get_mut(url)
                    .expect("crash child: flush without a writer");
                writer.flush().unwrap_or_else(|e| failed(e));
                let stored = store
                    .table(url)
                    .and_then(|table| table.row_count())
                    .unwrap_or_else(|e| failed(e));
                assert_eq!(stored, *rows, "crash child: {op}: rows after the flush");
            }
            CrashOp::Close { url, rows } => {
                let (writer, _) = tables
                    .writers
                    .remove(url)
                    .expect("crash child: close without a writer");
                let info = writer.close().unwrap_or_else(|e| failed(e));
                assert_eq!(
                    info.row_count, *rows,
                    "crash child: {op}: rows after the close"
                );
            }
        }
        say(format!("ack {n} {op}"));
    }
    unreachable!("the child loops until it is killed")
}

/// The project's runs with their output counts.
fn list_runs(store: &Store) -> BTreeMap<String, (Run, u64)> {
    let mut runs = BTreeMap::new();
    for run in store.runs(Some(PROJECT)).expect("crash child: list runs") {
        let outputs = run.output_count().expect("crash child: output count");
        runs.insert(run.url(), (run, outputs));
    }
    runs
}

fn writer_options(group: bool) -> WriterOptions {
    WriterOptions {
        durability: if group {
            WriteDurability::Group {
                window: GROUP_WINDOW,
            }
        } else {
            WriteDurability::Immediate
        },
    }
}

/// The child's view of the project's metrics tables.
struct ChildTables {
    /// Table url to its rows: committed, or for a table with an open writer, appended.
    rows: BTreeMap<String, u64>,
    /// The open writers by table url, each with whether it group-commits.
    writers: BTreeMap<String, (MetricsWriter, bool)>,
}

impl ChildTables {
    /// The tables as the store has them now.
    fn list(store: &Store) -> ChildTables {
        let rows = store
            .tables(Some(PROJECT))
            .expect("crash child: list tables")
            .into_iter()
            .map(|info| (info.url, info.row_count))
            .collect();
        ChildTables {
            rows,
            writers: BTreeMap::new(),
        }
    }

    /// The close of the writer of `url`.
    fn close_op(&self, url: &str) -> CrashOp {
        CrashOp::Close {
            url: url.to_string(),
            rows: self.rows[url],
        }
    }

    /// The delete of run `url`, or while one of its tables has a writer, that writer's close.
    fn delete_op(&self, url: String) -> CrashOp {
        let prefix = format!("{url}/");
        match self.writers.keys().find(|t| t.starts_with(&prefix)) {
            Some(table) => self.close_op(table),
            None => CrashOp::Delete { url },
        }
    }

    /// A table operation on one of the runs `runs` (at least one).
    fn choose(&self, rng: &mut Rng, n: u64, incarnation: u64, runs: &[&String]) -> CrashOp {
        let pick_run = |rng: &mut Rng| runs[rng.below(runs.len() as u64) as usize].clone();
        let total: u64 = self.rows.values().sum();
        if total > TABLE_ROWS_MAX {
            // Enough rows to scan after the kill: the run with the most goes.
            let mut per_run: BTreeMap<&str, u64> = BTreeMap::new();
            for (url, rows) in &self.rows {
                let run = split_table_url(url).expect("crash child: table url").0;
                *per_run.entry(run).or_default() += rows;
            }
            let (run, _) = per_run
                .into_iter()
                .max_by_key(|(_, rows)| *rows)
                .expect("crash child: rows without tables");
            return self.delete_op(run.to_string());
        }
        // Tables without an open writer, for `append_to_table` and new writers.
        let free: Vec<&String> = self
            .rows
            .keys()
            .filter(|url| !self.writers.contains_key(*url))
            .collect();
        let pick_free = |rng: &mut Rng| free[rng.below(free.len() as u64) as usize].clone();
        let roll = rng.below(100);
        if roll < 15 || self.rows.is_empty() {
            let rows = if rng.below(8) == 0 {
                rng.range(runstore::table::SEAL_ROWS, METRICS_ROWS_MAX)
            } else {
                spread_rows(rng, 20_000)
            };
            CrashOp::Table {
                url: pick_run(rng),
                table: format!("t{incarnation}x{n}_0000"),
                rows,
            }
        } else if roll < 30 && !free.is_empty() {
            let url = pick_free(rng);
            // Now and then a batch that goes straight to a chunk, after sealing the tail.
            let add = if rng.below(16) == 0 {
                rng.range(runstore::table::SEAL_ROWS, 100_000)
            } else {
                spread_rows(rng, APPEND_ROWS_MAX)
            };
            CrashOp::Append {
                kind: AppendKind::Store,
                rows: self.rows[&url] + add,
                url,
                add,
            }
        } else if self.writers.len() < WRITERS_MAX && (roll < 40 || self.writers.is_empty()) {
            let group = rng.below(2) == 0;
            if rng.below(3) == 0 && !free.is_empty() {
                // A writer on an existing table, opened by its first append.
                let url = pick_free(rng);
                self.writer_append(rng, url, group)
            } else {
                CrashOp::Writer {
                    url: pick_run(rng),
                    table: format!("w{incarnation}x{n}_0000"),
                    group,
                }
            }
        } else {
            let writers: Vec<(&String, bool)> = self
                .writers
                .iter()
                .map(|(url, (_, group))| (url, *group))
                .collect();
            let (url, group) = writers[rng.below(writers.len() as u64) as usize];
            if roll < 88 {
                self.writer_append(rng, url.clone(), group)
            } else if roll < 96 {
                CrashOp::Flush {
                    url: url.clone(),
                    rows: self.rows[url],
                }
            } else {
                self.close_op(url)
            }
        }
    }

    /// An append through a writer (open or to be opened) of `url`: single rows (mostly, for
    /// a group writer, as a training loop logs), batches of 1 to 5,000 rows, and now and then a
    /// batch large enough to go straight to a chunk.
    fn writer_append(&self, rng: &mut Rng, url: String, group: bool) -> CrashOp {
        let single = if group {
            rng.below(10) < 6
        } else {
            rng.below(2) == 0
        };
        let kind = match (group, single) {
            (false, true) => AppendKind::Row,
            (false, false) => AppendKind::Batch,
            (true, true) => AppendKind::GroupRow,
            (true, false) => AppendKind::GroupBatch,
        };
        let add = if single {
            1
        } else if rng.below(32) == 0 {
            rng.range(runstore::table::SEAL_ROWS, 80_000)
        } else {
            spread_rows(rng, APPEND_ROWS_MAX)
        };
        CrashOp::Append {
            kind,
            rows: self.rows[&url] + add,
            url,
            add,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The parent

/// Kills and reaps the child if a test fails while it runs.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// When the parent kills the child.
#[derive(Clone, Copy, Debug)]
struct KillPlan {
    /// Delay before SIGKILL.
    delay: Duration,
    /// Count the delay from the child's `ready` line (after its open, so commits happen), or
    /// from the spawn (so some kills land while it opens or repairs the store).
    after_ready: bool,
    /// Also wait for this many acks before the delay starts.
    min_acks: usize,
}

impl KillPlan {
    /// Seven times in eight 5 to 150 ms after `ready`, while the child commits. Otherwise 0 to
    /// 4 ms after the spawn: the child starts and opens (and repairs) the store in some 2 to
    /// 3 ms, so about half of these kills land in the open or its repair.
    fn random(rng: &mut Rng) -> KillPlan {
        let after_ready = rng.below(8) != 0;
        let delay = if after_ready {
            Duration::from_millis(rng.range(5, 150))
        } else {
            Duration::from_micros(rng.range(0, 4_000))
        };
        KillPlan {
            delay,
            after_ready,
            min_acks: 0,
        }
    }
}

/// Runs one child on `path` and kills it as planned; returns its complete stdout lines.
fn run_child_and_kill(
    path: &Path,
    config: ChildConfig,
    plan: KillPlan,
) -> Result<Vec<String>, String> {
    let stderr_path = PathBuf::from(format!("{}.child-stderr", path.display()));
    let stderr = File::create(&stderr_path).map_err(|e| format!("create child stderr: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let mut child = ChildGuard(Some(
        Command::new(exe)
            .args([
                "crash::crash_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, path)
            .env(CHILD_SEED_ENV, config.seed.to_string())
            .env(CHILD_INCARNATION_ENV, config.incarnation.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("spawn child: {e}"))?,
    ));
    let spawned = Instant::now();
    let stdout = child
        .0
        .as_mut()
        .expect("child")
        .stdout
        .take()
        .expect("piped");
    let (sender, receiver) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match stdout.read_line(&mut line) {
                // A line cut short by the kill has no newline: it was never said.
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    line.pop();
                    if sender.send(line).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    let mut lines = Vec::new();
    let mut ready = !plan.after_ready;
    let mut acks = 0usize;
    while !ready || acks < plan.min_acks {
        let line = receiver
            .recv_timeout(READY_TIMEOUT.saturating_sub(spawned.elapsed()))
            .map_err(|_| {
                format!(
                    "the child was not ready with {} acks in {READY_TIMEOUT:?}",
                    plan.min_acks
                )
            })?;
        ready |= line == "ready";
        acks += usize::from(line.starts_with("ack "));
        lines.push(line);
    }
    let start = if plan.after_ready {
        Instant::now()
    } else {
        spawned
    };
    std::thread::sleep(plan.delay.saturating_sub(start.elapsed()));
    // Killed and reaped through the guard's slot, so an error on the way still reaps it.
    let running = child.0.as_mut().expect("the child is running");
    running.kill().map_err(|e| format!("kill child: {e}"))?;
    let status = running.wait().map_err(|e| format!("wait for child: {e}"))?;
    child.0 = None;
    reader.join().map_err(|_| "the stdout reader panicked")?;
    lines.extend(receiver.try_iter());
    if status.signal() != Some(libc::SIGKILL) {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        return Err(format!(
            "the child ended by itself ({status}) instead of by SIGKILL; its stderr:\n{stderr}"
        ));
    }
    let _ = std::fs::remove_file(&stderr_path);
    Ok(lines)
}

/// The parent's record of the store across kills.
#[derive(Debug, Default)]
struct Journal {
    /// The acknowledged state (after each verification: the state found in the store).
    state: State,
    kills: u64,
    acks: u64,
    /// Runs whose state matched neither the acknowledged state nor it plus the commit in
    /// flight, and runs found that were never acknowledged.
    losses: u64,
    /// Kills after which an unacknowledged commit had landed.
    in_flight_landed: u64,
    /// Kills that landed before the child had opened the store.
    killed_before_ready: u64,
    /// Read-only opens right after a kill, and those of them that recovered the store in memory
    /// (its writer had it open when killed).
    read_only_ok: u64,
    read_only_recovered: u64,
    /// Temporary files a killed vacuum left beside the store (removed after being counted).
    temp_files_left: u64,
    /// Tables and rows whose content was checked by a full scan (summed over the kills).
    tables_checked: u64,
    table_rows_checked: u64,
    /// Rows of group writers that were acknowledged but not flushed at a kill: found in the
    /// store, and not found (allowed: they were not durable yet).
    group_rows_kept: u64,
    group_rows_lost: u64,
    /// Acknowledged commits by operation (the first word of the op), and the operations in
    /// flight at the kills.
    acks_by_op: BTreeMap<&'static str, u64>,
    in_flight_by_op: BTreeMap<&'static str, u64>,
    problems: Vec<String>,
}

impl Journal {
    /// Applies the acks of one child's lines and returns the commit in flight at the kill.
    fn take_lines(&mut self, lines: &[String]) -> Result<Option<CrashOp>, String> {
        if !lines.iter().any(|line| line == "ready") {
            self.killed_before_ready += 1;
        }
        let mut in_flight: Option<(u64, CrashOp)> = None;
        for line in lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (kind, n, op) = match words.as_slice() {
                [kind @ ("begin" | "ack"), n, rest @ ..] => {
                    let n: u64 = n.parse().map_err(|_| format!("bad line {line:?}"))?;
                    let op = CrashOp::parse(rest).ok_or_else(|| format!("bad line {line:?}"))?;
                    (*kind, n, op)
                }
                // The test harness's own lines and "ready".
                _ => continue,
            };
            if kind == "begin" {
                if let Some((pending, _)) = &in_flight {
                    return Err(format!("begin {n} while {pending} was not acknowledged"));
                }
                in_flight = Some((n, op));
            } else {
                match in_flight.take() {
                    Some((pending, begun)) if pending == n && begun == op => {}
                    other => return Err(format!("{line:?} does not match the begin {other:?}")),
                }
                apply(&mut self.state, &op)?;
                self.acks += 1;
                *self.acks_by_op.entry(op.word()).or_default() += 1;
            }
        }
        if let Some((_, op)) = &in_flight {
            *self.in_flight_by_op.entry(op.word()).or_default() += 1;
        }
        Ok(in_flight.map(|(_, op)| op))
    }

    /// Everything asserted after a kill (see the module docs), on the store at `path`.
    fn verify(&mut self, path: &Path, in_flight: Option<&CrashOp>) -> Result<(), String> {
        let untouched = length_and_mtime(path)?;
        let read_only = Store::open_read_only(path)
            .map_err(|e| format!("read-only open after a kill: {e:?}"))?;
        self.read_only_ok += 1;
        if read_only.needs_recovery() {
            self.read_only_recovered += 1;
        }
        let (seen, _) = read_state(&read_only)
            .map_err(|e| format!("read the store through the read-only open: {e:?}"))?;
        drop(read_only);
        let report = runstore::check(path).map_err(|e| format!("check: {e:?}"))?;
        for problem in &report.problems {
            self.problems
                .push(format!("kill {}: check: {problem}", self.kills));
        }
        if length_and_mtime(path)? != untouched {
            self.problems.push(format!(
                "kill {}: a read-only open or check changed the file",
                self.kills
            ));
        }
        let store =
            Store::open(path).map_err(|e| format!("read-write open after a kill: {e:?}"))?;
        let (found, problems) = read_state(&store).map_err(|e| format!("read the store: {e:?}"))?;
        drop(store);
        if seen != found {
            self.problems.push(format!(
                "kill {}: the read-only open read {seen:?} but the writer then found {found:?}",
                self.kills
            ));
        }
        for problem in problems {
            self.problems
                .push(format!("kill {}: {problem}", self.kills));
        }
        for run in found.values() {
            self.tables_checked += run.tables.len() as u64;
            self.table_rows_checked += run.tables.values().map(|rows| rows.max).sum::<u64>();
        }
        self.compare(found, in_flight)?;
        Store::open_read_only(path)
            .map_err(|e| format!("read-only open after a writer opened the store: {e:?}"))?;
        self.temp_files_left += remove_temp_files(path);
        Ok(())
    }

    /// Compares the store's state with the acknowledged one (or it plus the commit in flight)
    /// and adopts what was found.
    fn compare(&mut self, found: State, in_flight: Option<&CrashOp>) -> Result<(), String> {
        for (url, run) in &self.state {
            for (name, rows) in run.tables.iter().filter(|(_, rows)| rows.min < rows.max) {
                if let Some(kept) = found.get(url).and_then(|run| run.tables.get(name)) {
                    let kept = kept.min.clamp(rows.min, rows.max);
                    self.group_rows_kept += kept - rows.min;
                    self.group_rows_lost += rows.max - kept;
                }
            }
        }
        if admits(&self.state, &found) {
            self.state = found;
            return Ok(());
        }
        let mut landed = None;
        if let Some(op) = in_flight {
            let mut state = self.state.clone();
            apply(&mut state, op)?;
            if admits(&state, &found) {
                self.in_flight_landed += 1;
                self.state = found;
                return Ok(());
            }
            landed = Some(state);
        }
        // A loss: name each run that neither state allows.
        let urls: std::collections::BTreeSet<&String> =
            self.state.keys().chain(found.keys()).collect();
        for url in urls {
            let (expected, actual) = (self.state.get(url), found.get(url));
            let allows = |state: Option<&State>| match (state.and_then(|s| s.get(url)), actual) {
                (Some(expected), Some(actual)) => expected.admits(actual),
                (None, None) => state.is_some(),
                _ => false,
            };
            if !allows(Some(&self.state)) && !allows(landed.as_ref()) {
                self.losses += 1;
                self.problems.push(format!(
                    "kill {}: {url}: acknowledged {expected:?}, found {actual:?} (in flight: {})",
                    self.kills,
                    in_flight.map_or("nothing".to_string(), |op| op.to_string())
                ));
            }
        }
        self.state = found;
        Ok(())
    }

    fn summary(&self) -> String {
        format!(
            "kills={} acknowledged={} losses={} in_flight_landed={} killed_before_ready={} \
             read_only_after_kill: ok={} recovered_in_memory={} temp_files_left={} \
             tables_checked={} table_rows_checked={} group_unflushed_rows: kept={} lost={} \
             problems={}",
            self.kills,
            self.acks,
            self.losses,
            self.in_flight_landed,
            self.killed_before_ready,
            self.read_only_ok,
            self.read_only_recovered,
            self.temp_files_left,
            self.tables_checked,
            self.table_rows_checked,
            self.group_rows_kept,
            self.group_rows_lost,
            self.problems.len(),
        )
    }

    /// The acknowledged commits and the commits in flight at the kills, by operation.
    fn op_summary(&self) -> String {
        format!(
            "acknowledged by op: {}; in flight at the kills: {}",
            count_list(&self.acks_by_op),
            count_list(&self.in_flight_by_op)
        )
    }
}

/// `a=1 b=2`.
fn count_list(counts: &BTreeMap<&'static str, u64>) -> String {
    let words: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    words.join(" ")
}

/// Removes the temporary files (`.<name>.<purpose>-...`) a killed vacuum leaves beside the
/// store at `path` and returns how many there were.
fn remove_temp_files(path: &Path) -> u64 {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return 0;
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
            removed += 1;
        }
    }
    removed
}

/// The file's length and mtime, which a read-only open or `check` must leave as they were.
fn length_and_mtime(path: &Path) -> Result<(u64, std::time::SystemTime), String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("stat the store: {e}"))?;
    let mtime = metadata
        .modified()
        .map_err(|e| format!("mtime of the store: {e}"))?;
    Ok((metadata.len(), mtime))
}

/// Reads the project's runs as a `State`, with any output, table row or metrics list entry that
/// is not what the child wrote reported as a problem.
fn read_state(store: &Store) -> runstore::Result<(State, Vec<String>)> {
    let mut state = State::new();
    let mut problems = Vec::new();
    // Each run's metrics list, to hold against the tables found under its url.
    let mut listed: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for run in store.runs(Some(PROJECT))? {
        listed.insert(
            run.url(),
            run.metrics_tables()?
                .into_iter()
                .map(|info| info.url)
                .collect(),
        );
        let url = run.url();
        let info = run.info()?;
        let outputs = run.output_values()?;
        if outputs.len() as u64 != info.output_count {
            problems.push(format!(
                "{url}: {} outputs read, output count {}",
                outputs.len(),
                info.output_count
            ));
        }
        for (step, value) in outputs.iter().enumerate() {
            if value.encode() != output_value(step as u64).encode() {
                problems.push(format!("{url}: output {step} is {value:?}"));
            }
        }
        let mut parameters = BTreeMap::new();
        for (key, value) in info.parameters.as_map().into_iter().flatten() {
            match value.as_i64() {
                Some(value) => {
                    parameters.insert(key.clone(), value);
                }
                None => problems.push(format!("{url}: parameter {key} is {value:?}")),
            }
        }
        let mut blobs = BTreeMap::new();
        for blob in run.bulk_list()? {
            let bytes = run.bulk_bytes(&blob.name)?;
            if bytes.len() as u64 != blob.len {
                problems.push(format!(
                    "{url}: blob {} lists {} bytes, reads {}",
                    blob.name,
                    blob.len,
                    bytes.len()
                ));
            }
            blobs.insert(blob.name, (bytes.len() as u64, crc32fast::hash(&bytes)));
        }
        state.insert(
            url,
            RunState {
                outputs: info.output_count,
                parameters,
                status: info.status,
                blobs,
                tables: BTreeMap::new(),
            },
        );
    }
    for info in store.tables(Some(PROJECT))? {
        let Some((run_url, name)) = split_table_url(&info.url) else {
            problems.push(format!("table {}: not a run's table", info.url));
            continue;
        };
        let batches = store.table(&info.url)?.scan()?;
        match check_table_rows(name, &batches) {
            Ok(rows) if rows == info.row_count => {}
            Ok(rows) => problems.push(format!(
                "table {}: a scan returned {rows} rows, its info says {}",
                info.url, info.row_count
            )),
            Err(problem) => problems.push(format!("table {}: {problem}", info.url)),
        }
        match state.get_mut(run_url) {
            Some(run) => {
                run.tables
                    .insert(name.to_string(), Rows::exact(info.row_count));
            }
            None => problems.push(format!(
                "table {}: its run {run_url} does not exist",
                info.url
            )),
        }
        if !listed
            .get_mut(run_url)
            .is_some_and(|urls| urls.remove(&info.url))
        {
            problems.push(format!("table {}: not in its run's metrics list", info.url));
        }
    }
    for (run_url, urls) in listed {
        for url in urls {
            problems.push(format!(
                "{run_url}: its metrics list names {url}, which is not a table"
            ));
        }
    }
    Ok((state, problems))
}

/// One kill of the loop: spawn, kill, verify.
fn kill_once(
    journal: &mut Journal,
    path: &Path,
    rng: &mut Rng,
    plan: KillPlan,
) -> Result<(), String> {
    let config = ChildConfig {
        seed: rng.next_u64(),
        incarnation: journal.kills,
    };
    let lines = run_child_and_kill(path, config, plan)?;
    journal.kills += 1;
    let in_flight = journal.take_lines(&lines)?;
    journal.verify(path, in_flight.as_ref())
}

/// Kills a writer `RUNSTORE_CRASH_KILLS` (default 50) times at random moments on one store, so
/// damage accumulates, and checks after each kill that the store is intact and holds every
/// acknowledged commit.
#[test]
fn crash_kill_loop() {
    let kills: u64 = std::env::var("RUNSTORE_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let seed = seed_from_env("RUNSTORE_CRASH_SEED");
    let (_dir, path) = temp_store();
    drop(Store::create(&path).expect("create store"));
    let mut rng = Rng::new(seed);
    let mut journal = Journal::default();
    let started = Instant::now();
    for _ in 0..kills {
        let plan = KillPlan::random(&mut rng);
        if let Err(error) = kill_once(&mut journal, &path, &mut rng, plan) {
            panic!("kill {} (seed {seed}, {plan:?}): {error}", journal.kills);
        }
    }
    let file_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "crash_kill_loop: {} seed={seed} file_bytes={file_bytes} in {:.1?}\ncrash_kill_loop: {}",
        journal.summary(),
        started.elapsed(),
        journal.op_summary()
    );
    assert!(journal.acks > 0, "no commit was acknowledged");
    assert!(
        journal.problems.is_empty(),
        "seed {seed}: {}",
        journal.problems.join("\n")
    );
    assert_eq!(journal.losses, 0);
}

/// A store copied with `std::fs::copy` after its writer was killed (a cold copy) opens
/// read-write, which repairs it, passes `check`, and holds every acknowledged commit.
#[test]
fn crash_cold_copy_after_kill_opens_and_checks() {
    let seed = seed_from_env("RUNSTORE_CRASH_SEED");
    let (dir, path) = temp_store();
    drop(Store::create(&path).expect("create store"));
    let mut rng = Rng::new(seed);
    let mut journal = Journal::default();
    for round in 0..3 {
        let config = ChildConfig {
            seed: rng.next_u64(),
            incarnation: round,
        };
        let plan = KillPlan {
            delay: Duration::from_millis(rng.range(5, 60)),
            after_ready: true,
            min_acks: 5,
        };
        let lines =
            run_child_and_kill(&path, config, plan).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        journal.kills += 1;
        let in_flight = journal
            .take_lines(&lines)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let copy = dir.path().join(format!("copy-{round}.runs"));
        std::fs::copy(&path, &copy).expect("copy the store");
        // The copy gets the checks; the original stays as the killed writer left it, for the
        // next round's child to repair.
        let mut copy_journal = Journal {
            state: journal.state.clone(),
            ..Journal::default()
        };
        copy_journal
            .verify(&copy, in_flight.as_ref())
            .unwrap_or_else(|e| panic!("seed {seed}, round {round}: {e}"));
        assert!(
            copy_journal.problems.is_empty(),
            "seed {seed}, round {round}: {}",
            copy_journal.problems.join("\n")
        );
        journal.state = copy_journal.state;
    }
    assert!(journal.acks >= 15, "{}", journal.summary());
}

/// Right after a writer is killed, a read-only open works (it recovers the store in memory)
/// and sees what a writer then finds; once a writer has opened the store (and while it has it
/// open), a read-only open works and sees every acknowledged commit.
#[test]
fn crash_read_only_open_after_kill() {
    let seed = seed_from_env("RUNSTORE_CRASH_SEED");
    let (_dir, path) = temp_store();
    drop(Store::create(&path).expect("create store"));
    let mut rng = Rng::new(seed);
    let mut journal = Journal::default();
    let config = ChildConfig {
        seed: rng.next_u64(),
        incarnation: 0,
    };
    let plan = KillPlan {
        delay: Duration::from_millis(rng.range(5, 40)),
        after_ready: true,
        min_acks: 3,
    };
    let lines =
        run_child_and_kill(&path, config, plan).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let in_flight = journal
        .take_lines(&lines)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let read_only = Store::open_read_only(&path).expect("read-only open after a kill");
    let (seen, problems) = read_state(&read_only).expect("read through the crashed store");
    assert!(problems.is_empty(), "{problems:?}");
    drop(read_only);
    let writer = Store::open(&path).expect("a writer opens (and repairs) the store");
    let reader = Store::open_read_only(&path).expect("read-only open beside the writer");
    let (found, problems) = read_state(&reader).expect("read through the reader");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        seen, found,
        "the crashed store read-only, then after recovery"
    );
    journal
        .compare(found, in_flight.as_ref())
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert!(
        journal.problems.is_empty(),
        "{}",
        journal.problems.join("\n")
    );
    drop(reader);
    drop(writer);
    let reader = Store::open_read_only(&path).expect("read-only open after the writer closed");
    let (found, _) = read_state(&reader).expect("read through the reader");
    assert_eq!(found, journal.state);
}

/// The oracle itself: the protocol lines round-trip, and `Journal::compare` accepts the
/// acknowledged state or it plus the commit in flight, and flags anything else as a loss.
#[test]
fn crash_journal_accepts_in_flight_and_flags_losses() {
    let url = runstore::run_url(PROJECT, "r0-0");
    let ops = [
        CrashOp::Init { url: url.clone() },
        CrashOp::Output {
            url: url.clone(),
            outputs: 1,
        },
        CrashOp::Params {
            url: url.clone(),
            key: "lr".into(),
            value: 7,
        },
        CrashOp::Put {
            url: url.clone(),
            blob: "ckpt".into(),
            len: 3,
            crc: crc32fast::hash(b"abc"),
        },
        CrashOp::Status {
            url: url.clone(),
            status: RunStatus::PostProcessing,
        },
        CrashOp::Copy {
            from: url.clone(),
            to: runstore::run_url(PROJECT, "c0-5"),
        },
        CrashOp::Vacuum { runs: 2 },
        CrashOp::Delete {
            url: runstore::run_url(PROJECT, "c0-5"),
        },
    ];
    let mut lines = vec!["test crash::crash_child ... ".to_string(), "ready".into()];
    for (n, op) in ops.iter().enumerate() {
        let words: Vec<String> = op.to_string().split(' ').map(String::from).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(CrashOp::parse(&words).as_ref(), Some(op), "{op}");
        lines.push(format!("begin {n} {op}"));
        lines.push(format!("ack {n} {op}"));
    }
    let in_flight = CrashOp::Output {
        url: url.clone(),
        outputs: 2,
    };
    lines.push(format!("begin {} {in_flight}", ops.len()));
    let mut journal = Journal::default();
    assert_eq!(journal.take_lines(&lines), Ok(Some(in_flight.clone())));
    assert_eq!(journal.acks, ops.len() as u64);
    let acknowledged = journal.state.clone();
    assert_eq!(acknowledged[&url].outputs, 1);
    assert_eq!(acknowledged[&url].status, RunStatus::PostProcessing);
    assert_eq!(acknowledged.len(), 1);

    // The acknowledged state, and it plus the commit in flight, are both fine.
    journal
        .compare(acknowledged.clone(), Some(&in_flight))
        .unwrap();
    let mut landed = acknowledged.clone();
    landed.get_mut(&url).unwrap().outputs = 2;
    journal.compare(landed, Some(&in_flight)).unwrap();
    assert_eq!((journal.losses, journal.in_flight_landed), (0, 1));

    // A lost acknowledged output, a changed blob, an invented run: each is a loss.
    let mut journal = Journal {
        state: acknowledged.clone(),
        ..Journal::default()
    };
    let mut lost = acknowledged.clone();
    lost.get_mut(&url).unwrap().outputs = 0;
    journal.compare(lost, Some(&in_flight)).unwrap();
    journal.state = acknowledged.clone();
    let mut changed = acknowledged.clone();
    changed
        .get_mut(&url)
        .unwrap()
        .blobs
        .insert("ckpt".into(), (3, 0));
    journal.compare(changed, None).unwrap();
    journal.state = acknowledged.clone();
    let mut invented = acknowledged.clone();
    invented.insert(runstore::run_url(PROJECT, "ghost"), RunState::new());
    journal.compare(invented, None).unwrap();
    assert_eq!(journal.losses, 3, "{:?}", journal.problems);

    // An ack without its begin, or a second begin before the ack, is a broken child.
    let mut journal = Journal::default();
    assert!(journal.take_lines(&[format!("ack 0 init {url}")]).is_err());
    assert!(journal
        .take_lines(&[format!("begin 0 init {url}"), format!("begin 1 init {url}")])
        .is_err());
}

/// The table part of the oracle: the table ops round-trip; a group writer's acknowledged rows
/// may or may not be in the store but its flushed rows must; an append in flight may land; a
/// copied run has copies of its tables, a deleted run's tables are gone; anything else is a
/// loss.
#[test]
fn crash_journal_table_rows() {
    let url = runstore::run_url(PROJECT, "r0-0");
    let copy = runstore::run_url(PROJECT, "c0-9");
    let t = |name: &str| format!("{url}/{name}");
    let ops = [
        CrashOp::Init { url: url.clone() },
        CrashOp::Table {
            url: url.clone(),
            table: "t0x1_0000".into(),
            rows: 70_000,
        },
        CrashOp::Append {
            kind: AppendKind::Store,
            url: t("t0x1_0000"),
            add: 5,
            rows: 70_005,
        },
        CrashOp::Writer {
            url: url.clone(),
            table: "w0x3_0000".into(),
            group: false,
        },
        CrashOp::Append {
            kind: AppendKind::Row,
            url: t("w0x3_0000"),
            add: 1,
            rows: 1,
        },
        CrashOp::Append {
            kind: AppendKind::Batch,
            url: t("w0x3_0000"),
            add: 9,
            rows: 10,
        },
        CrashOp::Flush {
            url: t("w0x3_0000"),
            rows: 10,
        },
        CrashOp::Close {
            url: t("w0x3_0000"),
            rows: 10,
        },
        CrashOp::Writer {
            url: url.clone(),
            table: "w0x8_0000".into(),
            group: true,
        },
        CrashOp::Append {
            kind: AppendKind::GroupBatch,
            url: t("w0x8_0000"),
            add: 100,
            rows: 100,
        },
        CrashOp::Flush {
            url: t("w0x8_0000"),
            rows: 100,
        },
        CrashOp::Append {
            kind: AppendKind::GroupRow,
            url: t("w0x8_0000"),
            add: 1,
            rows: 101,
        },
        CrashOp::Append {
            kind: AppendKind::GroupBatch,
            url: t("w0x8_0000"),
            add: 20,
            rows: 121,
        },
        CrashOp::Copy {
            from: url.clone(),
            to: copy.clone(),
        },
    ];
    let mut lines = vec!["ready".to_string()];
    for (n, op) in ops.iter().enumerate() {
        let words: Vec<String> = op.to_string().split(' ').map(String::from).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(CrashOp::parse(&words).as_ref(), Some(op), "{op}");
        lines.push(format!("begin {n} {op}"));
        lines.push(format!("ack {n} {op}"));
    }
    let in_flight = CrashOp::Append {
        kind: AppendKind::Store,
        url: t("t0x1_0000"),
        add: 3,
        rows: 70_008,
    };
    lines.push(format!("begin {} {in_flight}", ops.len()));
    let mut journal = Journal::default();
    assert_eq!(journal.take_lines(&lines), Ok(Some(in_flight.clone())));
    let acknowledged = journal.state.clone();
    let rows = |state: &State, run: &str, name: &str| state[run].tables[name];
    assert_eq!(rows(&acknowledged, &url, "t0x1_0000"), Rows::exact(70_005));
    assert_eq!(rows(&acknowledged, &url, "w0x3_0000"), Rows::exact(10));
    let group = Rows { min: 100, max: 121 };
    assert_eq!(rows(&acknowledged, &url, "w0x8_0000"), group);
    assert_eq!(rows(&acknowledged, &copy, "w0x8_0000"), group);

    // What a store may hold: the group writer's unflushed rows in part (one run) or not at
    // all (the other), the append in flight landed or not.
    let found = |t0x1: u64, w0x8: u64, copied_w0x8: u64| {
        let mut found = acknowledged.clone();
        for run in found.values_mut() {
            for rows in run.tables.values_mut() {
                *rows = Rows::exact(rows.min);
            }
        }
        let run = found.get_mut(&url).unwrap();
        run.tables.insert("t0x1_0000".into(), Rows::exact(t0x1));
        run.tables.insert("w0x8_0000".into(), Rows::exact(w0x8));
        let run = found.get_mut(&copy).unwrap();
        run.tables.insert("t0x1_0000".into(), Rows::exact(70_005));
        run.tables
            .insert("w0x8_0000".into(), Rows::exact(copied_w0x8));
        found
    };
    for (store, landed) in [
        (found(70_005, 100, 121), false),
        (found(70_005, 121, 100), false),
        (found(70_005, 110, 101), false),
        (found(70_008, 121, 121), true),
    ] {
        let mut journal = Journal {
            state: acknowledged.clone(),
            ..Journal::default()
        };
        journal.compare(store.clone(), Some(&in_flight)).unwrap();
        assert_eq!(journal.losses, 0, "{:?}", journal.problems);
        assert_eq!(journal.in_flight_landed, u64::from(landed));
        assert_eq!(journal.state, store, "the journal adopts what it found");
    }

    // Losses: flushed group rows missing, more rows than appended, an acknowledged append
    // missing, more rows than the append in flight, a lost table, a table too many.
    let mut lost_table = found(70_005, 100, 100);
    lost_table
        .get_mut(&copy)
        .unwrap()
        .tables
        .remove("w0x3_0000");
    let mut extra_table = found(70_005, 100, 100);
    extra_table
        .get_mut(&copy)
        .unwrap()
        .tables
        .insert("ghost_0000".into(), Rows::exact(1));
    for store in [
        found(70_005, 99, 100),
        found(70_005, 122, 100),
        found(70_005, 100, 122),
        found(70_004, 100, 100),
        found(70_009, 100, 100),
        lost_table,
        extra_table,
    ] {
        let mut journal = Journal {
            state: acknowledged.clone(),
            ..Journal::default()
        };
        journal.compare(store, Some(&in_flight)).unwrap();
        assert_eq!(journal.losses, 1, "{:?}", journal.problems);
    }

    // Deleting a run takes its tables; an append that disagrees with the acknowledged count
    // is a broken child.
    let mut state = acknowledged.clone();
    apply(&mut state, &CrashOp::Delete { url: copy.clone() }).unwrap();
    assert!(!state.contains_key(&copy));
    let mut state = acknowledged.clone();
    let stale = CrashOp::Append {
        kind: AppendKind::Store,
        url: t("t0x1_0000"),
        add: 1,
        rows: 70_001,
    };
    assert!(apply(&mut state, &stale).is_err());
    let beyond = CrashOp::Flush {
        url: t("w0x8_0000"),
        rows: 122,
    };
    assert!(apply(&mut state, &beyond).is_err());
}

/// The content check accepts exactly the rows `0..n` of the table's own content, in any
/// batching, and names the first row that differs.
#[test]
fn crash_table_content_check() {
    let name = "t3x17_0000";
    let seed = table_seed(name);
    let batches = [
        table_batch(seed, 0, 10),
        table_batch(seed, 10, 1),
        table_batch(seed, 11, 300),
    ];
    assert_eq!(check_table_rows(name, &batches), Ok(311));
    assert_eq!(check_table_rows(name, &[]), Ok(0));
    let single = RecordBatch::try_new(
        table_schema(),
        table_batch(seed, 11, 300)
            .slice(5, 1)
            .columns()
            .iter()
            .map(|c| arrow_select::concat::concat(&[c.as_ref()]).unwrap())
            .collect(),
    )
    .unwrap();
    assert_eq!(
        check_table_rows(name, &[table_batch(seed, 0, 16), single]),
        Ok(17)
    );
    // A row skipped, a row of another table, a batch sliced out of place.
    let skipped = check_table_rows(name, &[table_batch(seed, 0, 5), table_batch(seed, 6, 5)]);
    assert!(skipped.unwrap_err().starts_with("row 5: the row column"));
    let other = check_table_rows(name, &[table_batch(table_seed("t3x18_0000"), 0, 5)]);
    assert!(other.unwrap_err().starts_with("row 0: value"));
    let sliced = check_table_rows(name, &[table_batch(seed, 0, 20).slice(1, 5)]);
    assert!(sliced.is_err());
    // Every row value matches what append_row would write.
    for row in [0, 1, 12_345] {
        let values = row_values(seed, row);
        let content = row_content(seed, row);
        assert_eq!(values[0], Value::from(row as i64));
        assert_eq!(values[1], content.value.map_or(Value::Null, Value::from));
        assert_eq!(values[3].as_list().map(<[Value]>::len), Some(EMB_WIDTH));
    }
    let nulls = (0..1000)
        .filter(|&row| row_content(seed, row).value.is_none())
        .count();
    assert!(
        (80..220).contains(&nulls),
        "{nulls} null values in 1000 rows"
    );
    let tags = (0..1000)
        .filter(|&row| row_content(seed, row).tag.is_none_or(str::is_empty))
        .count();
    assert!(
        (150..400).contains(&tags),
        "{tags} null or empty tags in 1000 rows"
    );
}

/// `Store::vacuum` keeps every table's content when a chunk has a zero-length buffer (here the
/// values of a utf8 column whose one row is null or empty), which lies at the same offset as
/// the chunk's next buffer (here the `emb` values).
#[test]
fn crash_vacuum_keeps_the_segment_after_an_empty_one() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).expect("create store");
    let run = store.init(PROJECT, Some("r")).expect("init");
    let mut written = Vec::new();
    for (i, tag) in [None, Some(""), Some("x"), None].into_iter().enumerate() {
        let mut columns = table_batch(table_seed("v"), 0, 1).columns().to_vec();
        columns[2] = Arc::new(arrow_array::StringArray::from(vec![tag]));
        let batch = RecordBatch::try_new(table_schema(), columns).expect("batch");
        let options = MetricsOptions {
            table_writer_base_name: format!("v{i}"),
            ..MetricsOptions::default()
        };
        let infos = run
            .add_metrics_data(&batch, &options)
            .expect("add_metrics_data");
        written.push((infos[0].url.clone(), batch));
    }
    drop(run);
    drop(store);
    assert!(runstore::check(&path).expect("check").is_ok());
    Store::vacuum(&path).expect("vacuum");
    let report = runstore::check(&path).expect("check");
    assert!(report.is_ok(), "after vacuum: {:#?}", report.problems);
    let store = Store::open(&path).expect("open");
    for (url, batch) in written {
        let scanned = store.table(&url).and_then(|t| t.scan()).expect("scan");
        assert_eq!(scanned.len(), 1, "{url}");
        for (found, wrote) in scanned[0].columns().iter().zip(batch.columns()) {
            assert_eq!(found.to_data(), wrote.to_data(), "{url}");
        }
    }
}
