//! The kill-the-child crash harness, shared by the `crash` tests (`tests/it/crash.rs`) and the
//! soak command (`examples/crash_soak.rs`): the child that commits a random mix and says what
//! each commit made durable ([`child_main`]), the parent that starts it, kills it with SIGKILL
//! as a [`KillPlan`] says ([`run_child_and_kill`]), and the [`Journal`] that keeps the
//! acknowledged state across kills and checks the store against it after each one. How the
//! child is started (a test binary selecting one test, the example with `--child`) is the
//! caller's: it hands [`run_child_and_kill`] the command.
//!
//! The child commits a random mix (new runs, outputs, parameters, blobs of up to 300 KiB so
//! column extents and redb both grow, copies, deletes, status changes, and now and then a
//! vacuum, which closes the store, rewrites it into a new file renamed over the old one and
//! reopens it). It prints one line per commit, `begin <n> <op>` before the call and
//! `ack <n> <op>` after it returned `Ok`, each flushed at once. `<op>` describes the commit
//! completely (for example `output crash/runs/r3-7 outputs=12` or
//! `put crash/runs/r3-7 ckpt len=201733 crc=9c1e04aa`), so the parent can keep the expected
//! state of the store from the acks alone; [`protocol`] is that language and the expected state.
//!
//! About a third of the child's operations are on metrics tables, every one of the schema
//! [`protocol::table_schema`] (`row` i64, `value` nullable f64, `tag` nullable utf8, `emb`
//! `FixedSizeList<f32, 8>`) with a content fixed by the table's name inside its run (which a
//! copy keeps) and the row index, see [`protocol::row_content`]:
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
//! After each kill [`Journal::verify`] checks, in this order: `Store::open_read_only` works (a
//! crashed writer leaves the file needing recovery, which a read-only open does in memory) and
//! reads what the writable open reads below, without changing the file's length or mtime, and
//! neither does `runstore::check`, which reports no problem (redb's integrity check, every
//! record and blob CRC, and for tables every segment CRC and a rebuild of every array); the
//! store opens read-write; the runs in it are exactly the acknowledged state, or that state plus
//! the one commit in flight (begun, not acknowledged) at the kill; and once a writer has opened
//! it, a read-only open works. Temporary files of a killed vacuum are counted and removed. For
//! tables "exactly" means: the acknowledged tables of each run and no others (a copied run has
//! copies of its tables, a deleted run's tables are gone, and each run's metrics list names
//! exactly its tables), each with a row count from its last durable acknowledgement up to the
//! rows appended (the in-flight append's rows included only as the in-flight commit), and every
//! row, read by a full scan, equal to [`protocol::row_content`]: so the rows present are a
//! prefix of what was appended.
//!
//! Users include it as a module beside `rng.rs` (`super::rng`): the test binary through
//! `tests/harness/mod.rs`, an example with `#[path]`.

pub mod protocol;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use runstore::{
    Error, MetricsOptions, MetricsWriter, Run, RunStatus, Store, Value, WriteDurability,
    WriterOptions,
};

pub use self::protocol::*;
use super::rng::Rng;

/// The project every crash-test run lives in.
pub const PROJECT: &str = "crash";
/// Largest blob the child writes: several blobs fill a 1 MiB column extent, so both new column
/// extents and writes into existing ones happen.
pub const BLOB_BYTES_MAX: u64 = 300 * 1024;
pub const BLOB_NAMES: [&str; 3] = ["ckpt", "embeddings", "image"];
pub const PARAMETER_KEYS: [&str; 4] = ["lr", "epochs", "batch", "seed"];
/// The child keeps roughly this many runs: it creates runs below it and deletes above it.
pub const RUNS_TARGET: usize = 12;
/// Longest the parent waits for the child to open the store (it may be repairing it).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Percentage of the child's operations that are on metrics tables.
pub const TABLE_OP_PERCENT: u64 = 35;
/// Most rows of one `add_metrics_data` (one in eight is 65,536 or more, the rest spread from 1
/// to 20,000 over the powers of two).
pub const METRICS_ROWS_MAX: u64 = 200_000;
/// Most rows of one small append (`Store::append_to_table` or a writer's `append`).
pub const APPEND_ROWS_MAX: u64 = 5_000;
/// Once the tables of the store (copies counted) hold this many rows, the child deletes runs
/// instead of adding rows, so the parent's full scans stay short (shorter in a debug build,
/// where checksums and scans are some ten times slower).
pub const TABLE_ROWS_MAX: u64 = if cfg!(debug_assertions) {
    40_000
} else {
    800_000
};
/// Most writers the child keeps open at once.
pub const WRITERS_MAX: usize = 3;
/// The group-commit window of the child's group writers.
pub const GROUP_WINDOW: Duration = Duration::from_millis(20);
/// The stream of every crash-test metrics table.
pub const STREAM: &str = "crash";
/// Width of the `emb` column.
pub const EMB_WIDTH: usize = 8;
/// The non-null values of the `tag` column (of several lengths, the empty string first).
pub const TAGS: [&str; 6] = [
    "",
    "train",
    "val",
    "holdout",
    "e",
    "a-longer-tag-for-the-offsets",
];

// ---------------------------------------------------------------------------------------------
// The child

/// What one child does.
#[derive(Clone, Copy, Debug)]
pub struct ChildConfig {
    /// Seed of its operation choices.
    pub seed: u64,
    /// Which child this is on the store, so the run names it makes are new.
    pub incarnation: u64,
}

/// Commits random operations until killed. Every failure is a panic: the parent sees the child
/// exit on its own instead of by SIGKILL, and prints its stderr.
pub fn child_main(path: &Path, config: ChildConfig) -> ! {
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
    // Under a test binary libtest has printed "test crash::crash_child ... " without a newline:
    // end that line so "ready" is a line of its own (the parent skips the empty line).
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
pub fn list_runs(store: &Store) -> BTreeMap<String, (Run, u64)> {
    let mut runs = BTreeMap::new();
    for run in store.runs(Some(PROJECT)).expect("crash child: list runs") {
        let outputs = run.output_count().expect("crash child: output count");
        runs.insert(run.url(), (run, outputs));
    }
    runs
}

pub fn writer_options(group: bool) -> WriterOptions {
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
pub struct ChildTables {
    /// Table url to its rows: committed, or for a table with an open writer, appended.
    pub rows: BTreeMap<String, u64>,
    /// The open writers by table url, each with whether it group-commits.
    pub writers: BTreeMap<String, (MetricsWriter, bool)>,
}

impl ChildTables {
    /// The tables as the store has them now.
    pub fn list(store: &Store) -> ChildTables {
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
    pub fn close_op(&self, url: &str) -> CrashOp {
        CrashOp::Close {
            url: url.to_string(),
            rows: self.rows[url],
        }
    }

    /// The delete of run `url`, or while one of its tables has a writer, that writer's close.
    pub fn delete_op(&self, url: String) -> CrashOp {
        let prefix = format!("{url}/");
        match self.writers.keys().find(|t| t.starts_with(&prefix)) {
            Some(table) => self.close_op(table),
            None => CrashOp::Delete { url },
        }
    }

    /// A table operation on one of the runs `runs` (at least one).
    pub fn choose(&self, rng: &mut Rng, n: u64, incarnation: u64, runs: &[&String]) -> CrashOp {
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
    pub fn writer_append(&self, rng: &mut Rng, url: String, group: bool) -> CrashOp {
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

/// Kills and reaps the child if the parent stops early (a test fails, the soak stops).
pub struct ChildGuard(Option<Child>);

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
pub struct KillPlan {
    /// Delay before SIGKILL.
    pub delay: Duration,
    /// Count the delay from the child's `ready` line (after its open, so commits happen), or
    /// from the spawn (so some kills land while it opens or repairs the store).
    pub after_ready: bool,
    /// Also wait for this many acks before the delay starts.
    pub min_acks: usize,
}

impl KillPlan {
    /// Seven times in eight 5 to 150 ms after `ready`, while the child commits. Otherwise 0 to
    /// 4 ms after the spawn: the child starts and opens (and repairs) the store in some 2 to
    /// 3 ms, so about half of these kills land in the open or its repair.
    pub fn random(rng: &mut Rng) -> KillPlan {
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

/// Runs `child` (the caller's command that starts a child on `path`) and kills it as planned;
/// returns its complete stdout lines.
pub fn run_child_and_kill(
    mut child: Command,
    path: &Path,
    plan: KillPlan,
) -> Result<Vec<String>, String> {
    let stderr_path = PathBuf::from(format!("{}.child-stderr", path.display()));
    let stderr = File::create(&stderr_path).map_err(|e| format!("create child stderr: {e}"))?;
    let mut child = ChildGuard(Some(
        child
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
        .and_then(|child| child.stdout.take())
        .expect("the child's stdout is piped");
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
pub struct Journal {
    /// The acknowledged state (after each verification: the state found in the store).
    pub state: State,
    pub kills: u64,
    pub acks: u64,
    /// Runs whose state matched neither the acknowledged state nor it plus the commit in
    /// flight, and runs found that were never acknowledged.
    pub losses: u64,
    /// Kills after which an unacknowledged commit had landed.
    pub in_flight_landed: u64,
    /// Kills that landed before the child had opened the store.
    pub killed_before_ready: u64,
    /// Read-only opens right after a kill, and those of them that recovered the store in memory
    /// (its writer had it open when killed).
    pub read_only_ok: u64,
    pub read_only_recovered: u64,
    /// Temporary files a killed vacuum left beside the store (removed after being counted).
    pub temp_files_left: u64,
    /// Tables and rows whose content was checked by a full scan (summed over the kills).
    pub tables_checked: u64,
    pub table_rows_checked: u64,
    /// Rows of group writers that were acknowledged but not flushed at a kill: found in the
    /// store, and not found (allowed: they were not durable yet).
    pub group_rows_kept: u64,
    pub group_rows_lost: u64,
    /// Acknowledged commits by operation (the first word of the op), and the operations in
    /// flight at the kills.
    pub acks_by_op: BTreeMap<&'static str, u64>,
    pub in_flight_by_op: BTreeMap<&'static str, u64>,
    pub problems: Vec<String>,
}

impl Journal {
    /// Applies the acks of one child's lines and returns the commit in flight at the kill.
    pub fn take_lines(&mut self, lines: &[String]) -> Result<Option<CrashOp>, String> {
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
    pub fn verify(&mut self, path: &Path, in_flight: Option<&CrashOp>) -> Result<(), String> {
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
    pub fn compare(&mut self, found: State, in_flight: Option<&CrashOp>) -> Result<(), String> {
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
        let urls: BTreeSet<&String> = self.state.keys().chain(found.keys()).collect();
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

    pub fn summary(&self) -> String {
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
    pub fn op_summary(&self) -> String {
        format!(
            "acknowledged by op: {}; in flight at the kills: {}",
            count_list(&self.acks_by_op),
            count_list(&self.in_flight_by_op)
        )
    }
}

/// `a=1 b=2`.
pub fn count_list(counts: &BTreeMap<&'static str, u64>) -> String {
    let words: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    words.join(" ")
}

/// Removes the temporary files (`.<name>.<purpose>-...`) a killed vacuum leaves beside the
/// store at `path` and returns how many there were.
pub fn remove_temp_files(path: &Path) -> u64 {
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
pub fn length_and_mtime(path: &Path) -> Result<(u64, std::time::SystemTime), String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("stat the store: {e}"))?;
    let mtime = metadata
        .modified()
        .map_err(|e| format!("mtime of the store: {e}"))?;
    Ok((metadata.len(), mtime))
}

/// Reads the project's runs as a `State`, with any output, table row or metrics list entry that
/// is not what the child wrote reported as a problem.
pub fn read_state(store: &Store) -> runstore::Result<(State, Vec<String>)> {
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
