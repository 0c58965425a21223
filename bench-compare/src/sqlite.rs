//! SQLite doing each workload as a careful engineer would: rusqlite with the bundled
//! library, WAL journal, one table per kind of record, prepared statements, indexes that
//! serve the W3 query, and the durability each job asks for (`synchronous=FULL` where a
//! commit must survive power loss).
//!
//! Schema of the run tables, MLflow-style: `runs`, `params` (one row per key, values kept
//! typed by SQLite's dynamic typing), `outputs` (one row per key and epoch) and
//! `latest_outputs` (one row per key, the last epoch's value, maintained by the writer as
//! MLflow maintains `latest_metrics`) with an index on `(key, value)`: the query walks it
//! in `acc` order and stops after ten matches. There is no index on `params(key, value)`:
//! the query does not use it (`lr < 0.01` matches two runs in three), and maintaining it
//! made writing 100,000 runs four times slower (27.7 s against 6.6 s).
//! Per-step scalars go in a wide `steps` table, per-sample rows in a `samples` table whose
//! embedding is a 256-byte little-endian `f32` BLOB.
//!
//! W1's group commit runs with `synchronous=FULL`: each 100 ms commit then syncs the WAL,
//! so a crash loses at most 100 ms of steps, as with runstore's group commit. With
//! `synchronous=NORMAL` a commit is synced only at the next checkpoint.
//!
//! Fresh-process figures re-run the bench binary as `--child sqlite-...`; the child times
//! itself from before `open` to after the answer and prints one JSON line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arrow_array::FixedSizeListArray;
use arrow_array::{Array, Float32Array, Int32Array, RecordBatch};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection};

use crate::data::{expected_top10, sum_f32, Param, RunData, Steps};
use crate::report::{thousands, Measurement};
use crate::Jobs;

const SYSTEM: &str = "sqlite";
/// The run every W1 step belongs to.
const W1_RUN_ID: i64 = 1;
/// Group commit window of W1, the same as runstore's.
const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(100);
/// Runs per transaction when writing many runs (100,000 in one transaction would hold the
/// whole write in the WAL).
const RUNS_PER_COMMIT_MAX: usize = 1_000;
/// Rows per transaction when building the big W5/W6 stores.
const BUILD_ROWS_PER_COMMIT: usize = 1_000_000;
/// Repetitions of the W3 query.
const QUERY_REPS: usize = 20;
/// Repetitions of W5's fresh-process query.
const W5_REPS: usize = 5;
/// Project every run belongs to.
const PROJECT: &str = "bench";

/// Connection settings every writer uses: WAL, the given `synchronous`, a 64 MiB page
/// cache and in-memory temp tables.
fn open(path: &Path, synchronous: &str) -> anyhow::Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("open {}", path.display()))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("journal_mode is {mode}, not wal");
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous={synchronous}; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;"
    ))?;
    Ok(conn)
}

/// What a reader sets (the journal mode is stored in the file).
const READ_PRAGMAS: &str = "PRAGMA mmap_size=17179869184;";

/// A reader opens with the defaults (WAL is stored in the file) and memory-mapped I/O.
fn open_reader(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("open {}", path.display()))?;
    // Reads go through a memory map rather than read() into the page cache (faster for
    // scans; SQLite caps it at its compile-time maximum, 2 GB by default).
    conn.execute_batch(READ_PRAGMAS)?;
    Ok(conn)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes a database and its WAL and shared-memory files.
fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(with_suffix(path, suffix));
    }
}

/// Bytes on disk: the database plus its WAL.
fn disk_bytes(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(with_suffix(path, s)).ok())
        .map(|m| m.len())
        .sum()
}

/// Closes a connection (the last close checkpoints and deletes the WAL).
fn close(conn: Connection) -> anyhow::Result<()> {
    conn.close().map_err(|(_, e)| e)?;
    Ok(())
}

fn checkpoint(conn: &Connection) -> anyhow::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// Equal within 1e-9 relative.
fn same_sum(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-9 * want.abs().max(f64::MIN_POSITIVE)
}

/// Runs `exe --child MODE PATH` and returns the JSON line it printed.
fn run_child(exe: &Path, mode: &str, path: &Path) -> anyhow::Result<serde_json::Value> {
    let output = Command::new(exe)
        .arg("--child")
        .arg(mode)
        .arg(path)
        .output()
        .with_context(|| format!("run {} --child {mode}", exe.display()))?;
    if !output.status.success() {
        bail!(
            "child {mode} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("child {mode} printed no result"))?;
    Ok(serde_json::from_str(line)?)
}

fn secs_of(value: &serde_json::Value) -> anyhow::Result<f64> {
    value["secs"].as_f64().context("child result without secs")
}

/// Logs an error of one workload and returns what it measured (nothing).
fn or_log(workload: &str, result: anyhow::Result<Vec<Measurement>>) -> Vec<Measurement> {
    result.unwrap_or_else(|e| {
        eprintln!("sqlite {workload}: {e:#}");
        Vec::new()
    })
}

// ---------------------------------------------------------------------------------------
// W1 / W2: per-step scalars.

const STEPS_SCHEMA: &str = "CREATE TABLE steps(
    run_id INTEGER NOT NULL, step INTEGER NOT NULL,
    loss REAL, acc REAL, lr REAL, grad_norm REAL,
    PRIMARY KEY(run_id, step)) WITHOUT ROWID;";
const STEPS_INSERT: &str =
    "INSERT INTO steps(run_id, step, loss, acc, lr, grad_norm) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const LOSS_SERIES: &str = "SELECT loss FROM steps WHERE run_id = ?1 ORDER BY step";

fn insert_step(stmt: &mut rusqlite::Statement<'_>, steps: &Steps, i: usize) -> anyhow::Result<()> {
    stmt.execute(params![
        W1_RUN_ID,
        i as i64,
        steps.loss[i],
        steps.acc[i],
        steps.lr[i],
        steps.grad_norm[i]
    ])?;
    Ok(())
}

/// How W1 commits.
#[derive(Clone, Copy)]
enum StepCommit {
    /// Commit when 100 ms have passed since the last commit.
    Group,
    /// One transaction per step.
    PerStep,
    /// One transaction per `usize` steps.
    Batch(usize),
}

/// Writes `n` steps into a fresh database and returns the seconds from the first insert to
/// the last commit, and the bytes after close.
fn write_steps(
    path: &Path,
    steps: &Steps,
    n: usize,
    commit: StepCommit,
) -> anyhow::Result<(f64, u64)> {
    remove_db(path);
    let conn = open(path, "FULL")?;
    conn.execute_batch(STEPS_SCHEMA)?;
    let start = Instant::now();
    {
        let mut stmt = conn.prepare_cached(STEPS_INSERT)?;
        match commit {
            StepCommit::Group => {
                conn.execute_batch("BEGIN")?;
                let mut last_commit = Instant::now();
                for i in 0..n {
                    insert_step(&mut stmt, steps, i)?;
                    if last_commit.elapsed() >= GROUP_COMMIT_WINDOW {
                        conn.execute_batch("COMMIT; BEGIN")?;
                        last_commit = Instant::now();
                    }
                }
                conn.execute_batch("COMMIT")?;
            }
            StepCommit::PerStep => {
                for i in 0..n {
                    // Autocommit: one durable transaction per INSERT.
                    insert_step(&mut stmt, steps, i)?;
                }
            }
            StepCommit::Batch(per_commit) => {
                for chunk_start in (0..n).step_by(per_commit) {
                    conn.execute_batch("BEGIN")?;
                    for i in chunk_start..(chunk_start + per_commit).min(n) {
                        insert_step(&mut stmt, steps, i)?;
                    }
                    conn.execute_batch("COMMIT")?;
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    close(conn)?;
    Ok((secs, disk_bytes(path)))
}

/// W1: writing per-step scalars ([`Jobs::Scaling`]: not the per-call durable job).
pub fn w1(
    steps: &Steps,
    dir: &Path,
    reps: usize,
    durable_calls: usize,
    jobs: Jobs,
) -> Vec<Measurement> {
    or_log("W1", w1_inner(steps, dir, reps, durable_calls, jobs))
}

fn w1_inner(
    steps: &Steps,
    dir: &Path,
    reps: usize,
    durable_calls: usize,
    jobs: Jobs,
) -> anyhow::Result<Vec<Measurement>> {
    let path = dir.join("sqlite_w1.db");
    let n = steps.len();
    let durable_calls = durable_calls.min(n);
    let kinds = [
        (
            "per-step, group commit",
            n,
            StepCommit::Group,
            "wide steps table WITHOUT ROWID, prepared INSERT per step, WAL, synchronous=FULL, COMMIT every 100 ms",
        ),
        (
            "per-step, durable per call",
            durable_calls,
            StepCommit::PerStep,
            "wide steps table WITHOUT ROWID, prepared INSERT, one transaction per step, WAL, synchronous=FULL",
        ),
        (
            "batched, 1,000 steps per call",
            n,
            StepCommit::Batch(1_000),
            "wide steps table WITHOUT ROWID, prepared INSERT, one transaction per 1,000 steps, WAL, synchronous=FULL",
        ),
    ];
    let mut out = Vec::new();
    for (job, count, commit, how) in kinds {
        if jobs == Jobs::Scaling && matches!(commit, StepCommit::PerStep) {
            continue;
        }
        let mut samples = Vec::new();
        let mut bytes = 0;
        for _ in 0..reps {
            let (secs, b) = write_steps(&path, steps, count, commit)?;
            samples.push(secs);
            bytes = b;
        }
        out.push(
            Measurement::new("W1", job, SYSTEM, how, count as u64, samples)
                .values(count as f64 * 4.0)
                .bytes(bytes),
        );
    }
    remove_db(&path);
    Ok(out)
}

/// Reads the loss series of the W1 run.
fn read_loss(conn: &Connection) -> anyhow::Result<Vec<f64>> {
    let mut stmt = conn.prepare_cached(LOSS_SERIES)?;
    let loss = stmt
        .query_map([W1_RUN_ID], |r| r.get::<_, f64>(0))?
        .collect::<Result<Vec<f64>, _>>()?;
    Ok(loss)
}

/// W2: reading the loss series back.
pub fn w2(steps: &Steps, dir: &Path, reps: usize, exe: &Path) -> Vec<Measurement> {
    or_log("W2", w2_inner(steps, dir, reps, exe))
}

fn w2_inner(
    steps: &Steps,
    dir: &Path,
    reps: usize,
    exe: &Path,
) -> anyhow::Result<Vec<Measurement>> {
    let path = dir.join("sqlite_w2.db");
    let n = steps.len();
    write_steps(&path, steps, n, StepCommit::Batch(1_000))?;
    let want: f64 = steps.loss.iter().sum();

    let mut samples = Vec::new();
    let mut correct = true;
    for _ in 0..reps {
        let result = run_child(exe, "sqlite-w2", &path)?;
        samples.push(secs_of(&result)?);
        correct &= result["rows"].as_u64() == Some(n as u64)
            && same_sum(result["sum"].as_f64().unwrap_or(f64::NAN), want);
    }
    let fresh = Measurement::new(
        "W2",
        "read loss series, fresh process",
        SYSTEM,
        "child: open (mmap_size set) + SELECT loss ... WHERE run_id=? ORDER BY step (primary key order) into Vec<f64>",
        n as u64,
        samples,
    )
    .values(n as f64)
    .bytes(disk_bytes(&path))
    .correct(correct);

    let conn = open_reader(&path)?;
    let mut samples = Vec::new();
    let mut correct = true;
    for _ in 0..reps {
        let start = Instant::now();
        let loss = read_loss(&conn)?;
        samples.push(start.elapsed().as_secs_f64());
        correct &= loss.len() == n && same_sum(loss.iter().sum(), want);
    }
    close(conn)?;
    let after_open = Measurement::new(
        "W2",
        "read loss series, after open",
        SYSTEM,
        "open connection (mmap_size set), cached prepared SELECT (prepare_cached), rows into Vec<f64>",
        n as u64,
        samples,
    )
    .values(n as f64)
    .bytes(disk_bytes(&path))
    .correct(correct);
    remove_db(&path);
    Ok(vec![fresh, after_open])
}

// ---------------------------------------------------------------------------------------
// W3 / W5 / W6: runs, parameters, outputs.

const RUNS_SCHEMA: &str = "
CREATE TABLE runs(id INTEGER PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL,
    UNIQUE(project, name));
CREATE TABLE params(run_id INTEGER NOT NULL, key TEXT NOT NULL, value,
    PRIMARY KEY(run_id, key)) WITHOUT ROWID;
CREATE TABLE outputs(run_id INTEGER NOT NULL, key TEXT NOT NULL, epoch INTEGER NOT NULL, value,
    PRIMARY KEY(run_id, key, epoch)) WITHOUT ROWID;
CREATE TABLE latest_outputs(run_id INTEGER NOT NULL, key TEXT NOT NULL, epoch INTEGER NOT NULL,
    value, PRIMARY KEY(run_id, key)) WITHOUT ROWID;
CREATE INDEX latest_outputs_key_value ON latest_outputs(key, value);
";

/// The W3 query: `params.lr < 0.01 AND outputs.acc > 0.5 ORDER BY outputs.acc DESC
/// LIMIT 10`, ties broken by name.
const QUERY_SQL: &str = "
SELECT r.name FROM latest_outputs o
JOIN params p ON p.run_id = o.run_id AND p.key = 'lr'
JOIN runs r ON r.id = o.run_id
WHERE o.key = 'acc' AND o.value > 0.5 AND p.value < 0.01
ORDER BY o.value DESC, r.name
LIMIT 10";

const SAMPLES_SCHEMA: &str = "
CREATE TABLE samples(run_id INTEGER NOT NULL, example_id INTEGER NOT NULL,
    epoch INTEGER NOT NULL, predicted INTEGER NOT NULL, loss REAL NOT NULL,
    confidence REAL NOT NULL, embedding BLOB NOT NULL);
CREATE INDEX samples_run ON samples(run_id);
";

/// A parameter as the SQLite value of its own type (INTEGER, REAL or TEXT).
fn param_value(param: &Param) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match param {
        Param::Int(v) => ValueRef::Integer(*v),
        Param::Float(v) => ValueRef::Real(*v),
        Param::Text(v) => ValueRef::Text(v.as_bytes()),
    })
}

/// Inserts one run with its parameters and outputs (in the caller's transaction).
fn insert_run(conn: &Connection, run: &RunData) -> anyhow::Result<i64> {
    conn.prepare_cached("INSERT INTO runs(project, name) VALUES (?1, ?2)")?
        .execute(params![PROJECT, run.name])?;
    let id = conn.last_insert_rowid();
    let mut param =
        conn.prepare_cached("INSERT INTO params(run_id, key, value) VALUES (?1, ?2, ?3)")?;
    for (key, value) in &run.params {
        param.execute(params![id, key, param_value(value)])?;
    }
    let mut output = conn
        .prepare_cached("INSERT INTO outputs(run_id, key, epoch, value) VALUES (?1, ?2, ?3, ?4)")?;
    for (epoch, (acc, loss)) in run.outputs.iter().enumerate() {
        output.execute(params![id, "acc", epoch as i64, acc])?;
        output.execute(params![id, "loss", epoch as i64, loss])?;
    }
    if let Some((acc, loss)) = run.outputs.last() {
        let epoch = run.outputs.len() as i64 - 1;
        let mut latest = conn.prepare_cached(
            "INSERT INTO latest_outputs(run_id, key, epoch, value) VALUES (?1, ?2, ?3, ?4)",
        )?;
        latest.execute(params![id, "acc", epoch, acc])?;
        latest.execute(params![id, "loss", epoch, loss])?;
    }
    Ok(id)
}

/// Inserts `runs`, `per_commit` runs per transaction; returns their ids.
fn insert_runs(conn: &Connection, runs: &[RunData], per_commit: usize) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(runs.len());
    for chunk in runs.chunks(per_commit.max(1)) {
        conn.execute_batch("BEGIN")?;
        for run in chunk {
            ids.push(insert_run(conn, run)?);
        }
        conn.execute_batch("COMMIT")?;
    }
    Ok(ids)
}

/// The W3 query's answer: names of the top 10.
fn query(conn: &Connection) -> anyhow::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(QUERY_SQL)?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(names)
}

/// Writes a fresh run database, `per_commit` runs per transaction; returns the seconds.
fn write_runs(path: &Path, runs: &[RunData], per_commit: usize) -> anyhow::Result<f64> {
    remove_db(path);
    let conn = open(path, "FULL")?;
    conn.execute_batch(RUNS_SCHEMA)?;
    let start = Instant::now();
    insert_runs(&conn, runs, per_commit)?;
    let secs = start.elapsed().as_secs_f64();
    // A careful engineer gives the planner statistics after a bulk load.
    conn.execute_batch("ANALYZE")?;
    close(conn)?;
    Ok(secs)
}

/// W3: writing and querying runs ([`Jobs::Scaling`]: not the commit-per-run write).
pub fn w3(runs: &[RunData], dir: &Path, reps: usize, jobs: Jobs) -> Vec<Measurement> {
    or_log("W3", w3_inner(runs, dir, reps, jobs))
}

fn w3_inner(
    runs: &[RunData],
    dir: &Path,
    reps: usize,
    jobs: Jobs,
) -> anyhow::Result<Vec<Measurement>> {
    let n = runs.len();
    let n_text = thousands(n);
    let path = dir.join(format!("sqlite_w3_{n}.db"));
    // Values per run: its parameters and its outputs (acc and loss per epoch).
    let values: f64 = runs
        .iter()
        .map(|r| (r.params.len() + 2 * r.outputs.len()) as f64)
        .sum();
    let mut out = Vec::new();

    let schema_how = "runs + params(run_id,key,value) + outputs(run_id,key,epoch,value) + latest_outputs(run_id,key,epoch,value), WITHOUT ROWID, index latest_outputs(key,value)";
    if n <= RUNS_PER_COMMIT_MAX && jobs == Jobs::All {
        let mut samples = Vec::new();
        for _ in 0..reps {
            samples.push(write_runs(&path, runs, 1)?);
        }
        out.push(
            Measurement::new(
                "W3",
                format!("write {n_text} runs, one commit per run"),
                SYSTEM,
                format!("{schema_how}; one transaction per run, WAL, synchronous=FULL"),
                n as u64,
                samples,
            )
            .values(values)
            .bytes(disk_bytes(&path)),
        );
    }
    let (per_commit, commit_how) = if n <= RUNS_PER_COMMIT_MAX {
        (n, "one transaction".to_string())
    } else {
        (
            RUNS_PER_COMMIT_MAX,
            format!(
                "one transaction per {} runs",
                thousands(RUNS_PER_COMMIT_MAX)
            ),
        )
    };
    let mut samples = Vec::new();
    for _ in 0..reps {
        samples.push(write_runs(&path, runs, per_commit)?);
    }
    out.push(
        Measurement::new(
            "W3",
            format!("write {n_text} runs, one commit"),
            SYSTEM,
            format!("{schema_how}; {commit_how}, WAL, synchronous=FULL"),
            n as u64,
            samples,
        )
        .values(values)
        .bytes(disk_bytes(&path)),
    );

    let (want, _) = expected_top10(runs);
    let conn = open_reader(&path)?;
    let mut samples = Vec::new();
    let mut correct = true;
    for _ in 0..QUERY_REPS {
        let start = Instant::now();
        let names = query(&conn)?;
        samples.push(start.elapsed().as_secs_f64());
        correct &= names == want;
    }
    close(conn)?;
    out.push(
        Measurement::new(
            "W3",
            format!("query, {n_text} runs"),
            SYSTEM,
            "SQL join latest_outputs(key,value) index x params primary key x runs, ORDER BY value DESC, name LIMIT 10; ANALYZEd, open connection, cached statement",
            n as u64,
            samples,
        )
        .bytes(disk_bytes(&path))
        .correct(correct),
    );

    let mut samples = Vec::new();
    let mut correct = true;
    for _ in 0..QUERY_REPS {
        // A plain open: SQLite reads the schema lazily, at the first prepare (timed).
        let conn = Connection::open(&path)?;
        let start = Instant::now();
        let names = query(&conn)?;
        samples.push(start.elapsed().as_secs_f64());
        correct &= names == want;
        close(conn)?;
    }
    out.push(
        Measurement::new(
            "W3",
            format!("first query after open, {n_text} runs"),
            SYSTEM,
            "new connection each rep (open not timed; schema read + prepare + query timed)",
            n as u64,
            samples,
        )
        .bytes(disk_bytes(&path))
        .correct(correct),
    );
    remove_db(&path);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// W4 / W5 / W6: per-sample rows.

/// The W4 batch's columns as slices.
struct SampleColumns<'a> {
    example_id: &'a [i32],
    epoch: &'a [i32],
    predicted: &'a [i32],
    loss: &'a [f32],
    confidence: &'a [f32],
    embedding: &'a [f32],
    width: usize,
}

impl<'a> SampleColumns<'a> {
    fn of(batch: &'a RecordBatch) -> anyhow::Result<SampleColumns<'a>> {
        fn ints<'b>(batch: &'b RecordBatch, name: &str) -> anyhow::Result<&'b [i32]> {
            let column = batch
                .column_by_name(name)
                .with_context(|| format!("no column {name}"))?;
            let array = column
                .as_any()
                .downcast_ref::<Int32Array>()
                .with_context(|| format!("{name} is not int32"))?;
            Ok(array.values())
        }
        fn floats<'b>(batch: &'b RecordBatch, name: &str) -> anyhow::Result<&'b [f32]> {
            let column = batch
                .column_by_name(name)
                .with_context(|| format!("no column {name}"))?;
            let array = column
                .as_any()
                .downcast_ref::<Float32Array>()
                .with_context(|| format!("{name} is not float32"))?;
            Ok(array.values())
        }
        let embedding = batch
            .column_by_name("embedding")
            .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
            .context("no fixed-size-list embedding")?;
        let width = embedding.value_length() as usize;
        let values = embedding
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .context("embedding items are not float32")?;
        let columns = SampleColumns {
            example_id: ints(batch, "example_id")?,
            epoch: ints(batch, "epoch")?,
            predicted: ints(batch, "predicted")?,
            loss: floats(batch, "loss")?,
            confidence: floats(batch, "confidence")?,
            embedding: values.values(),
            width,
        };
        let rows = batch.num_rows();
        if columns.embedding.len() != rows * width || embedding.offset() != 0 {
            bail!("embedding values do not match the rows");
        }
        Ok(columns)
    }

    fn rows(&self) -> usize {
        self.example_id.len()
    }

    /// Row `i`'s embedding as little-endian bytes, into `blob`.
    fn embedding_blob(&self, i: usize, blob: &mut Vec<u8>) {
        blob.clear();
        for v in &self.embedding[i * self.width..(i + 1) * self.width] {
            blob.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Bytes of one row's values (what a plain file holds per row).
    fn row_bytes(&self) -> u64 {
        (5 * 4 + self.width * 4) as u64
    }
}

const W4_SCHEMA: &str = "CREATE TABLE samples(example_id INTEGER NOT NULL, epoch INTEGER NOT NULL,
    predicted INTEGER NOT NULL, loss REAL NOT NULL, confidence REAL NOT NULL,
    embedding BLOB NOT NULL);";
const W4_READ: &str =
    "SELECT example_id, epoch, predicted, loss, confidence, embedding FROM samples";
const W4_SUM: &str = "SELECT sum(loss), count(*) FROM samples";

/// Writes the W4 table into a fresh database, one transaction; returns the seconds.
fn write_w4(path: &Path, columns: &SampleColumns<'_>) -> anyhow::Result<f64> {
    remove_db(path);
    let conn = open(path, "FULL")?;
    conn.execute_batch(W4_SCHEMA)?;
    let start = Instant::now();
    conn.execute_batch("BEGIN")?;
    {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO samples(example_id, epoch, predicted, loss, confidence, embedding)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut blob = Vec::with_capacity(columns.width * 4);
        for i in 0..columns.rows() {
            columns.embedding_blob(i, &mut blob);
            stmt.execute(params![
                columns.example_id[i],
                columns.epoch[i],
                columns.predicted[i],
                f64::from(columns.loss[i]),
                f64::from(columns.confidence[i]),
                blob
            ])?;
        }
    }
    conn.execute_batch("COMMIT")?;
    let secs = start.elapsed().as_secs_f64();
    close(conn)?;
    Ok(secs)
}

/// Sum of the embedding values in row order, in f64 (the child sums the same way).
fn embedding_sum(values: &[f32]) -> f64 {
    values.iter().map(|v| f64::from(*v)).sum()
}

/// Sum of the three integer columns (the child checks its read with it).
fn int_checksum(example_id: &[i32], epoch: &[i32], predicted: &[i32]) -> i64 {
    example_id
        .iter()
        .zip(epoch)
        .zip(predicted)
        .map(|((a, b), c)| i64::from(*a) + i64::from(*b) + i64::from(*c))
        .sum()
}

/// W4: per-sample rows ([`Jobs::Scaling`]: not the fresh-process read of all columns).
pub fn w4(
    samples: &RecordBatch,
    dir: &Path,
    reps: usize,
    exe: &Path,
    jobs: Jobs,
) -> Vec<Measurement> {
    or_log("W4", w4_inner(samples, dir, reps, exe, jobs))
}

fn w4_inner(
    batch: &RecordBatch,
    dir: &Path,
    reps: usize,
    exe: &Path,
    jobs: Jobs,
) -> anyhow::Result<Vec<Measurement>> {
    let columns = SampleColumns::of(batch)?;
    let rows = columns.rows();
    let rows_text = thousands(rows);
    let path = dir.join("sqlite_w4.db");
    let values = (rows * (5 + columns.width)) as f64;
    let want_loss = batch
        .column_by_name("loss")
        .map_or(f64::NAN, |c| sum_f32(c.as_ref()));
    let want_embedding = embedding_sum(columns.embedding);
    let want_ints = int_checksum(columns.example_id, columns.epoch, columns.predicted);
    let mut out = Vec::new();

    let mut samples = Vec::new();
    for _ in 0..reps {
        samples.push(write_w4(&path, &columns)?);
    }
    let bytes = disk_bytes(&path);
    out.push(
        Measurement::new(
            "W4",
            format!("write {rows_text} rows"),
            SYSTEM,
            "rowid table, embedding as 256-byte LE f32 BLOB, prepared INSERT, one transaction, WAL, synchronous=FULL",
            rows as u64,
            samples,
        )
        .values(values)
        .bytes(bytes),
    );

    if jobs == Jobs::All {
        let mut samples = Vec::new();
        let mut correct = true;
        for _ in 0..reps {
            let result = run_child(exe, "sqlite-w4-read", &path)?;
            samples.push(secs_of(&result)?);
            correct &= result["rows"].as_u64() == Some(rows as u64)
                && same_sum(result["loss_sum"].as_f64().unwrap_or(f64::NAN), want_loss)
                && same_sum(
                    result["embedding_sum"].as_f64().unwrap_or(f64::NAN),
                    want_embedding,
                )
                && result["int_checksum"].as_i64() == Some(want_ints);
        }
        out.push(
        Measurement::new(
            "W4",
            "read all columns, fresh process",
            SYSTEM,
            "child: open (mmap_size set) + SELECT every column in rowid order into Vec<i32>/Vec<f32>, BLOBs decoded into one Vec<f32>",
            rows as u64,
            samples,
        )
        .values(values)
        .bytes(bytes)
        .correct(correct),
    );
    }

    let conn = open_reader(&path)?;
    let mut samples = Vec::new();
    let mut correct = true;
    for _ in 0..reps {
        let start = Instant::now();
        let (sum, count): (f64, i64) =
            conn.query_row(W4_SUM, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        samples.push(start.elapsed().as_secs_f64());
        correct &= count == rows as i64 && same_sum(sum, want_loss);
    }
    close(conn)?;
    out.push(
        Measurement::new(
            "W4",
            "sum of loss, after open",
            SYSTEM,
            "SELECT sum(loss) on an open connection, mmap_size set (20% faster than iterating rows)",
            rows as u64,
            samples,
        )
        .values(rows as f64)
        .bytes(bytes)
        .correct(correct),
    );

    let mut samples = Vec::new();
    let mut correct = true;
    for _ in 0..reps {
        let result = run_child(exe, "sqlite-w4-sum", &path)?;
        samples.push(secs_of(&result)?);
        correct &= result["rows"].as_u64() == Some(rows as u64)
            && same_sum(result["sum"].as_f64().unwrap_or(f64::NAN), want_loss);
    }
    out.push(
        Measurement::new(
            "W4",
            "open + sum of loss, fresh process",
            SYSTEM,
            "child: open (mmap_size set) + SELECT sum(loss)",
            rows as u64,
            samples,
        )
        .values(rows as f64)
        .bytes(bytes)
        .correct(correct),
    );
    remove_db(&path);
    Ok(out)
}

/// Inserts `rows` sample rows for `run_id`, cycling through the W4 batch, committing every
/// `BUILD_ROWS_PER_COMMIT` rows.
fn insert_samples(
    conn: &Connection,
    run_id: i64,
    columns: &SampleColumns<'_>,
    rows: usize,
) -> anyhow::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO samples(run_id, example_id, epoch, predicted, loss, confidence, embedding)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut blob = Vec::with_capacity(columns.width * 4);
    let batch_rows = columns.rows().max(1);
    conn.execute_batch("BEGIN")?;
    for k in 0..rows {
        if k > 0 && k % BUILD_ROWS_PER_COMMIT == 0 {
            conn.execute_batch("COMMIT; BEGIN")?;
        }
        let i = k % batch_rows;
        columns.embedding_blob(i, &mut blob);
        stmt.execute(params![
            run_id,
            k as i64,
            columns.epoch[i],
            columns.predicted[i],
            f64::from(columns.loss[i]),
            f64::from(columns.confidence[i]),
            blob
        ])?;
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}

/// Logical size of the database (main file + WAL frames not yet checkpointed).
fn logical_bytes(conn: &Connection) -> anyhow::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok((pages * page_size) as u64)
}

/// Builds the W5 big store (1,000 runs + copies of the W4 samples until `target_bytes`)
/// unless it exists; returns its path.
fn w5_big_store(
    runs: &[RunData],
    columns: &SampleColumns<'_>,
    dir: &Path,
    target_bytes: u64,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("sqlite_w5_{target_bytes}.db"));
    if path.exists() && disk_bytes(&path) >= target_bytes && !with_suffix(&path, "-wal").exists() {
        eprintln!(
            "sqlite W5: reusing {} ({} bytes)",
            path.display(),
            disk_bytes(&path)
        );
        return Ok(path);
    }
    let building = dir.join(format!("sqlite_w5_{target_bytes}.building.db"));
    remove_db(&building);
    let start = Instant::now();
    let conn = open(&building, "NORMAL")?;
    conn.execute_batch(RUNS_SCHEMA)?;
    conn.execute_batch(SAMPLES_SCHEMA)?;
    let ids = insert_runs(&conn, runs, RUNS_PER_COMMIT_MAX)?;
    let mut copies = 0usize;
    while logical_bytes(&conn)? < target_bytes {
        let run_id = ids.get(copies % ids.len().max(1)).copied().unwrap_or(1);
        insert_samples(&conn, run_id, columns, columns.rows())?;
        copies += 1;
    }
    conn.execute_batch("ANALYZE")?;
    close(conn)?;
    remove_db(&path);
    std::fs::rename(&building, &path)?;
    remove_db(&building);
    eprintln!(
        "sqlite W5: built {} ({} bytes, {copies} copies of {} sample rows) in {:.1} s",
        path.display(),
        disk_bytes(&path),
        columns.rows(),
        start.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// W5: the first query in a fresh process, on a big and a small store.
pub fn w5(
    runs: &[RunData],
    samples: &RecordBatch,
    dir: &Path,
    target_bytes: u64,
    exe: &Path,
) -> Vec<Measurement> {
    or_log("W5", w5_inner(runs, samples, dir, target_bytes, exe))
}

fn w5_inner(
    runs: &[RunData],
    batch: &RecordBatch,
    dir: &Path,
    target_bytes: u64,
    exe: &Path,
) -> anyhow::Result<Vec<Measurement>> {
    let runs = &runs[..runs.len().min(RUNS_PER_COMMIT_MAX)];
    let columns = SampleColumns::of(batch)?;
    let (want, _) = expected_top10(runs);
    let big = w5_big_store(runs, &columns, dir, target_bytes)?;
    let small = dir.join("sqlite_w5_small.db");
    write_runs(&small, runs, runs.len())?;

    let mut out = Vec::new();
    for (job, path, how) in [
        (
            "open + first query, big store",
            &big,
            "child: open + W3 SQL query; runs tables + samples table (index on run_id) in one file, ANALYZEd",
        ),
        (
            "open + first query, small store",
            &small,
            "child: open + W3 SQL query; 1,000 runs only, ANALYZEd",
        ),
    ] {
        let mut samples = Vec::new();
        let mut correct = true;
        for _ in 0..W5_REPS {
            let result = run_child(exe, "sqlite-query", path)?;
            samples.push(secs_of(&result)?);
            let names: Vec<String> = result["names"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default();
            correct &= names == want;
        }
        out.push(
            Measurement::new("W5", job, SYSTEM, how, runs.len() as u64, samples)
                .bytes(disk_bytes(path))
                .correct(correct),
        );
    }
    remove_db(&small);
    Ok(out)
}

/// W6: copying, deleting and vacuuming a run with about `metrics_bytes` of samples.
pub fn w6(samples: &RecordBatch, dir: &Path, metrics_bytes: u64) -> Vec<Measurement> {
    or_log("W6", w6_inner(samples, dir, metrics_bytes))
}

fn w6_inner(
    batch: &RecordBatch,
    dir: &Path,
    metrics_bytes: u64,
) -> anyhow::Result<Vec<Measurement>> {
    let columns = SampleColumns::of(batch)?;
    let rows = metrics_bytes.div_ceil(columns.row_bytes()) as usize;
    let path = dir.join("sqlite_w6.db");
    remove_db(&path);
    let start = Instant::now();
    let conn = open(&path, "FULL")?;
    conn.execute_batch(RUNS_SCHEMA)?;
    conn.execute_batch(SAMPLES_SCHEMA)?;
    let runs = crate::data::runs(1);
    let source = insert_runs(&conn, &runs, 1)?[0];
    insert_samples(&conn, source, &columns, rows)?;
    conn.execute_batch("ANALYZE")?;
    checkpoint(&conn)?;
    eprintln!(
        "sqlite W6: built {} ({rows} sample rows, {} bytes) in {:.1} s",
        path.display(),
        disk_bytes(&path),
        start.elapsed().as_secs_f64()
    );

    let reps = if metrics_bytes <= 256 << 20 { 3 } else { 1 };
    let (mut copy, mut delete, mut vacuum) = (Vec::new(), Vec::new(), Vec::new());
    let (mut copy_bytes, mut delete_bytes, mut vacuum_bytes) = (0, 0, 0);
    for rep in 0..reps {
        let start = Instant::now();
        conn.execute_batch("BEGIN")?;
        conn.execute(
            "INSERT INTO runs(project, name) VALUES (?1, ?2)",
            params![PROJECT, format!("{}-copy-{rep}", runs[0].name)],
        )?;
        let copy_id = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO params SELECT ?1, key, value FROM params WHERE run_id = ?2",
            params![copy_id, source],
        )?;
        conn.execute(
            "INSERT INTO outputs SELECT ?1, key, epoch, value FROM outputs WHERE run_id = ?2",
            params![copy_id, source],
        )?;
        conn.execute(
            "INSERT INTO latest_outputs SELECT ?1, key, epoch, value FROM latest_outputs WHERE run_id = ?2",
            params![copy_id, source],
        )?;
        let copied = conn.execute(
            "INSERT INTO samples(run_id, example_id, epoch, predicted, loss, confidence, embedding)
             SELECT ?1, example_id, epoch, predicted, loss, confidence, embedding
             FROM samples WHERE run_id = ?2",
            params![copy_id, source],
        )?;
        conn.execute_batch("COMMIT")?;
        copy.push(start.elapsed().as_secs_f64());
        if copied != rows {
            bail!("copied {copied} sample rows, not {rows}");
        }
        checkpoint(&conn)?;
        copy_bytes = disk_bytes(&path);

        let start = Instant::now();
        conn.execute_batch("BEGIN")?;
        for table in ["samples", "latest_outputs", "outputs", "params"] {
            conn.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [copy_id])?;
        }
        conn.execute("DELETE FROM runs WHERE id = ?1", [copy_id])?;
        conn.execute_batch("COMMIT")?;
        delete.push(start.elapsed().as_secs_f64());
        checkpoint(&conn)?;
        delete_bytes = disk_bytes(&path);

        let start = Instant::now();
        conn.execute_batch("VACUUM")?;
        checkpoint(&conn)?;
        vacuum.push(start.elapsed().as_secs_f64());
        vacuum_bytes = disk_bytes(&path);
    }
    close(conn)?;
    remove_db(&path);
    let rows = rows as u64;
    Ok(vec![
        Measurement::new(
            "W6",
            "copy a run with 1 GB of metrics",
            SYSTEM,
            "one transaction: INSERT runs + INSERT ... SELECT for params, outputs, latest_outputs, samples (index on run_id); WAL, synchronous=FULL",
            rows,
            copy,
        )
        .bytes(copy_bytes),
        Measurement::new(
            "W6",
            "delete the copy",
            SYSTEM,
            "one transaction: DELETE ... WHERE run_id = ? from every table (file does not shrink)",
            rows,
            delete,
        )
        .bytes(delete_bytes),
        Measurement::new(
            "W6",
            "vacuum",
            SYSTEM,
            "VACUUM + wal_checkpoint(TRUNCATE) after the delete",
            rows,
            vacuum,
        )
        .bytes(vacuum_bytes),
    ])
}

// ---------------------------------------------------------------------------------------
// Fresh-process children.

/// Fresh-process modes: `exe --child sqlite-... ARGS`; returns true if it handled args
/// (printing its result on stdout).
pub fn child(args: &[String]) -> bool {
    let args = match args.first() {
        Some(first) if first == "--child" => &args[1..],
        _ => args,
    };
    let (Some(mode), Some(path)) = (args.first(), args.get(1)) else {
        return false;
    };
    let path = Path::new(path);
    let result = match mode.as_str() {
        "sqlite-w2" => child_w2(path),
        "sqlite-w4-read" => child_w4_read(path),
        "sqlite-w4-sum" => child_w4_sum(path),
        "sqlite-query" => child_query(path),
        _ => return false,
    };
    match result {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("{mode}: {e:#}");
            std::process::exit(1);
        }
    }
    true
}

fn child_w2(path: &Path) -> anyhow::Result<serde_json::Value> {
    let start = Instant::now();
    let conn = open_reader(path)?;
    let loss = read_loss(&conn)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "secs": secs,
        "rows": loss.len(),
        "sum": loss.iter().sum::<f64>(),
    }))
}

fn child_w4_read(path: &Path) -> anyhow::Result<serde_json::Value> {
    let start = Instant::now();
    let conn = open_reader(path)?;
    let mut example_id: Vec<i32> = Vec::new();
    let mut epoch: Vec<i32> = Vec::new();
    let mut predicted: Vec<i32> = Vec::new();
    let mut loss: Vec<f32> = Vec::new();
    let mut confidence: Vec<f32> = Vec::new();
    let mut embedding: Vec<f32> = Vec::new();
    {
        let mut stmt = conn.prepare(W4_READ)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            example_id.push(row.get(0)?);
            epoch.push(row.get(1)?);
            predicted.push(row.get(2)?);
            loss.push(row.get::<_, f64>(3)? as f32);
            confidence.push(row.get::<_, f64>(4)? as f32);
            let blob = row.get_ref(5)?.as_blob()?;
            embedding.extend(
                blob.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let checksum = int_checksum(&example_id, &epoch, &predicted);
    Ok(serde_json::json!({
        "secs": secs,
        "rows": loss.len(),
        "loss_sum": loss.iter().map(|v| f64::from(*v)).sum::<f64>(),
        "embedding_sum": embedding_sum(&embedding),
        "int_checksum": checksum,
    }))
}

fn child_w4_sum(path: &Path) -> anyhow::Result<serde_json::Value> {
    let start = Instant::now();
    let conn = open_reader(path)?;
    let (sum, count): (f64, i64) = conn.query_row(W4_SUM, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let secs = start.elapsed().as_secs_f64();
    Ok(serde_json::json!({ "secs": secs, "rows": count, "sum": sum }))
}

fn child_query(path: &Path) -> anyhow::Result<serde_json::Value> {
    let start = Instant::now();
    let conn = open_reader(path)?;
    let names = query(&conn)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(serde_json::json!({ "secs": secs, "names": names }))
}
