//! Sweeps: several processes write their own runs into one store file at the same time
//! (`Store::open_shared`, redb's `MultiWriter`), while a read-only handle in this process
//! follows their commits.
//!
//! Each writer is this test binary run again (`std::env::current_exe()`) with only
//! [`sweep_child`] selected and `RUNSTORE_SWEEP_CHILD=<store path>` in its environment; without
//! that variable `sweep_child` returns at once. What a writer commits and prints is the
//! harness in `tests/harness/sweep.rs`, shared with `examples/sweep_soak.rs`.
//!
//! The parent reads the store read-only while the writers commit: every read of a run's outputs
//! sees a prefix of its steps (never a torn one) that never shrinks, and it must see runs grow. With
//! kills, it SIGKILLs random writers mid-run and starts a fresh writer (a new run) in each one's
//! place; the others go on. At the end every acknowledged step of every writer is in the store
//! (a killed writer's commit in flight may be there or not; nothing else), and
//! `runstore::check` passes.
//!
//! `RUNSTORE_SWEEP=full` runs the full size (8 writers x 2,000 commits) in
//! `sweep_writers_commit_into_one_file`; `cargo run --release --example sweep_soak` is the soak
//! with kills and numbers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use runstore::{Error, Store, Value};

use crate::harness::sweep::{
    blob_content, metric_value, op, read_outputs, spawn_writer, writer_main, ChildGuard, Event, Op,
    Writer, PROJECT, TABLE,
};
use crate::util::{child_test, runstore, seed_from_env, stdout, temp_store, Rng};

const CHILD_ENV: &str = "RUNSTORE_SWEEP_CHILD";
const WORKER_ENV: &str = "RUNSTORE_SWEEP_WORKER";
const COMMITS_ENV: &str = "RUNSTORE_SWEEP_COMMITS";

/// The child role: see the module docs. Skipped in a normal test run.
#[test]
fn sweep_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let number = |name: &str| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("sweep child: {name} is not set to a number"))
    };
    let worker = number(WORKER_ENV);
    let commits = number(COMMITS_ENV);
    writer_main(Path::new(&path), worker, commits).expect("sweep child");
}

/// Starts a writer `worker` of `commits` commits on `path`: this test binary with only
/// [`sweep_child`] selected.
fn start_writer(
    path: &Path,
    worker: u64,
    commits: u64,
    events: &mpsc::Sender<Event>,
) -> ChildGuard {
    let mut command = child_test("sweep::sweep_child");
    command
        .env(CHILD_ENV, path)
        .env(WORKER_ENV, worker.to_string())
        .env(COMMITS_ENV, commits.to_string());
    spawn_writer(command, worker, events).expect("spawn sweep writer")
}

/// What one sweep did.
#[derive(Debug)]
struct Outcome {
    writers: BTreeMap<u64, Writer>,
    commits: u64,
    kills: u64,
    elapsed: Duration,
    reads: u64,
    reads_that_grew: u64,
}

/// Runs `procs` writers of `commits` commits each on a new store at `path`, killing `kills`
/// of them at random moments (each replaced by a fresh writer, a new run, that makes the commits
/// the victim did not), while this process reads.
fn sweep(path: &Path, procs: u64, commits: u64, kills: u64, seed: u64) -> Outcome {
    let mut rng = Rng::new(seed);
    drop(Store::create(path).expect("create store"));
    let reader = Store::open_read_only(path).expect("open read-only beside the writers");
    let (events, received) = mpsc::channel();
    let mut children: BTreeMap<u64, ChildGuard> = BTreeMap::new();
    let mut writers: BTreeMap<u64, Writer> = BTreeMap::new();
    for worker in 0..procs {
        children.insert(worker, start_writer(path, worker, commits, &events));
        writers.insert(
            worker,
            Writer {
                commits,
                ..Writer::default()
            },
        );
    }
    let mut next_worker = procs;
    let mut kills_done = 0;
    // Kill when this many acknowledgements have arrived since the last kill.
    let kill_gap = |rng: &mut Rng| rng.range(commits / 4, commits / 2 + 1);
    let mut until_kill = kill_gap(&mut rng);
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let (mut reads, mut reads_that_grew) = (0, 0);
    let started = Instant::now();
    let mut last_read = Instant::now();
    let deadline = started + Duration::from_secs(600);
    while writers.values().any(|w| w.exited_ok.is_none()) {
        assert!(Instant::now() < deadline, "sweep did not finish in time");
        match received.recv_timeout(Duration::from_millis(5)) {
            Ok(Event::Line(worker, line)) => {
                let writer = writers.get_mut(&worker).expect("known writer");
                // The test harness may print its own text before ours on the same line.
                if let Some((_, url)) = line.split_once("sweep-run ") {
                    writer.url = Some(url.to_string());
                } else if let Some((_, step)) = line.split_once("sweep-ack ") {
                    let step: u64 = step.parse().expect("ack step");
                    assert_eq!(step, writer.acked, "writer {worker} acks in order");
                    writer.acked += 1;
                    until_kill = until_kill.saturating_sub(1);
                }
            }
            Ok(Event::Closed(worker)) => {
                let mut child = children.remove(&worker).expect("child of closed output");
                let status = child.0.wait().expect("wait for writer");
                let writer = writers.get_mut(&worker).expect("known writer");
                writer.exited_ok = Some(status.success());
                assert!(
                    writer.killed || status.success(),
                    "writer {worker} failed: {status}"
                );
                if !writer.killed {
                    assert_eq!(
                        writer.acked, writer.commits,
                        "writer {worker} acked every commit"
                    );
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("the parent holds a sender"),
        }
        if kills_done < kills && until_kill == 0 {
            let live: Vec<u64> = children
                .keys()
                .copied()
                .filter(|w| !writers[w].killed)
                .collect();
            if !live.is_empty() {
                let victim = live[rng.below(live.len() as u64) as usize];
                children
                    .get_mut(&victim)
                    .expect("live child")
                    .0
                    .kill()
                    .expect("SIGKILL");
                let writer = writers.get_mut(&victim).expect("victim");
                writer.killed = true;
                kills_done += 1;
                // A fresh writer (a new run) makes the commits the victim did not, so the sweep
                // ends however often writers are killed.
                let left = writer.commits.saturating_sub(writer.acked).max(1);
                children.insert(next_worker, start_writer(path, next_worker, left, &events));
                writers.insert(
                    next_worker,
                    Writer {
                        commits: left,
                        ..Writer::default()
                    },
                );
                next_worker += 1;
            }
            until_kill = kill_gap(&mut rng);
        }
        if last_read.elapsed() >= Duration::from_millis(50) {
            last_read = Instant::now();
            for url in writers.values().filter_map(|w| w.url.clone()) {
                let before = seen.get(&url).copied().unwrap_or(0);
                let steps = read_outputs(&reader, &url, before).unwrap_or_else(|e| panic!("{e}"));
                seen.insert(url, steps);
                reads += 1;
                reads_that_grew += u64::from(steps > before);
            }
        }
    }
    let elapsed = started.elapsed();
    drop(reader);
    Outcome {
        commits: writers.values().map(|w| w.acked).sum(),
        writers,
        kills: kills_done,
        elapsed,
        reads,
        reads_that_grew,
    }
}

/// The steps of `op` a writer that acknowledged `0..acked` must have in the store: those below
/// `acked`, plus `acked` itself when it was killed with that commit in flight.
fn expected_steps(writer: &Writer, kind: Op, found: &[u64]) -> Vec<u64> {
    let mut expected: Vec<u64> = (0..writer.acked).filter(|s| op(*s) == kind).collect();
    if writer.killed && op(writer.acked) == kind && found.last() == Some(&writer.acked) {
        expected.push(writer.acked);
    }
    expected
}

/// Checks that every acknowledged step of every writer is in the store and nothing else;
/// returns the number of commits checked.
fn verify(path: &Path, outcome: &Outcome) -> u64 {
    let report = runstore::check(path).expect("check runs");
    assert!(
        report.is_ok(),
        "check found problems: {:?}",
        report.problems
    );
    let store = Store::open_read_only(path).expect("open read-only after the sweep");
    let mut urls: Vec<&str> = Vec::new();
    let mut checked = 0;
    for (worker, writer) in &outcome.writers {
        let Some(url) = writer.url.as_deref() else {
            // Killed before its run was acknowledged.
            assert!(writer.killed, "writer {worker} never created its run");
            continue;
        };
        urls.push(url);
        let run = store.run(url).expect("acknowledged run");
        let outputs: Vec<u64> = run
            .output_values()
            .expect("outputs")
            .iter()
            .map(|v| {
                assert_eq!(
                    v.get("worker").and_then(Value::as_i64),
                    Some(*worker as i64)
                );
                v.get("step").and_then(Value::as_i64).expect("step") as u64
            })
            .collect();
        assert_eq!(
            outputs,
            expected_steps(writer, Op::Output, &outputs),
            "{url}"
        );
        let metrics: Vec<u64> = match store.table(&format!("{url}/{TABLE}")) {
            Ok(table) => {
                let mut steps = Vec::new();
                for batch in table.scan().expect("scan metrics") {
                    let step = batch.column(0).as_primitive::<Int64Type>();
                    let value = batch
                        .column(1)
                        .as_primitive::<arrow_array::types::Float64Type>();
                    for row in 0..batch.num_rows() {
                        let s = step.value(row) as u64;
                        assert_eq!(value.value(row), metric_value(*worker, s), "{url}");
                        steps.push(s);
                    }
                }
                steps
            }
            Err(Error::NotFound { .. }) => Vec::new(),
            Err(error) => panic!("{url}: metrics table: {error}"),
        };
        assert_eq!(
            metrics,
            expected_steps(writer, Op::Metric, &metrics),
            "{url}"
        );
        let mut blobs: Vec<u64> = run
            .bulk_list()
            .expect("blobs")
            .iter()
            .map(|b| b.name["blob_".len()..].parse().expect("blob step"))
            .collect();
        blobs.sort_unstable();
        assert_eq!(blobs, expected_steps(writer, Op::Blob, &blobs), "{url}");
        for step in &blobs {
            let bytes = run.bulk_bytes(&format!("blob_{step}")).expect("blob bytes");
            assert!(
                bytes == blob_content(*worker, *step),
                "{url}: blob_{step} differs"
            );
        }
        checked += writer.acked;
    }
    let mut sorted = urls.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        urls.len(),
        "two writers got the same run name"
    );
    // A killed writer may have committed its run before it could say so; no other run exists.
    let runs = store.run_count().expect("run count");
    assert!(
        runs >= urls.len() as u64,
        "{runs} runs for {} writers",
        urls.len()
    );
    assert!(
        runs <= urls.len() as u64 + outcome.kills,
        "{runs} runs, unexplained ones"
    );
    checked
}

fn size_from_env() -> (u64, u64) {
    match std::env::var("RUNSTORE_SWEEP").as_deref() {
        Ok("full") => (8, 2_000),
        _ => (4, 200),
    }
}

#[test]
fn sweep_writers_commit_into_one_file() {
    let (_dir, path) = temp_store();
    let (procs, commits) = size_from_env();
    let outcome = sweep(
        &path,
        procs,
        commits,
        0,
        seed_from_env("RUNSTORE_SWEEP_SEED"),
    );
    assert_eq!(outcome.commits, procs * commits);
    assert!(
        outcome.reads_that_grew > 0,
        "the reader never saw a new commit in {} reads",
        outcome.reads
    );
    assert_eq!(verify(&path, &outcome), procs * commits);
    eprintln!(
        "sweep: {procs} writers x {commits} commits in {:.2?} ({:.0} commits/s), {} reads",
        outcome.elapsed,
        outcome.commits as f64 / outcome.elapsed.as_secs_f64(),
        outcome.reads
    );
}

#[test]
fn sweep_survives_killed_writers() {
    let (_dir, path) = temp_store();
    let seed = seed_from_env("RUNSTORE_SWEEP_SEED");
    let outcome = sweep(&path, 3, 120, 3, seed);
    assert_eq!(outcome.kills, 3, "seed {seed}");
    let checked = verify(&path, &outcome);
    assert_eq!(checked, outcome.commits, "seed {seed}");
    // The store stays writable in both modes once the cohort is gone.
    let store = Store::open(&path).expect("open single-writer after the sweep");
    store
        .init(PROJECT, Some("after"))
        .expect("write after the sweep");
}

#[test]
fn shared_and_single_writers_exclude_each_other() {
    let (_dir, path) = temp_store();
    drop(Store::create(&path).expect("create"));
    let first = Store::open_shared(&path).expect("first shared writer");
    let second = Store::open_shared(&path).expect("a second shared writer joins");
    assert!(matches!(Store::open(&path), Err(Error::AlreadyOpen { .. })));
    let reader = Store::open_read_only(&path).expect("a reader opens beside shared writers");
    first.init(PROJECT, Some("a")).expect("first writes");
    second.init(PROJECT, Some("b")).expect("second writes");
    // Names are decided inside the transaction: the same name from two handles is renamed.
    let clash = second
        .init(PROJECT, Some("a"))
        .expect("second writes a taken name");
    assert_eq!(clash.name(), "a_0000");
    assert_eq!(reader.run_count().expect("reader sees both"), 3);
    drop((first, second, reader, clash));
    let single = Store::open(&path).expect("single writer after the cohort closed");
    assert!(!single.is_shared());
    assert!(matches!(
        Store::open_shared(&path),
        Err(Error::AlreadyOpen { .. })
    ));
}

#[test]
fn cli_writes_with_shared_beside_a_shared_writer() {
    let (_dir, path) = temp_store();
    let path_arg = path.to_str().expect("utf-8 temp path");
    let url = stdout(&runstore(&[
        "init",
        path_arg,
        "--project",
        PROJECT,
        "--name",
        "cli",
        "--shared",
    ]));
    assert_eq!(url.trim(), "sweep/runs/cli");
    let held = Store::open_shared(&path).expect("a shared writer holds the store");
    let refused = runstore(&["log", path_arg, "sweep/runs/cli", "--output", r#"{"a":1}"#]);
    assert!(
        !refused.status.success(),
        "a single writer must not join shared writers"
    );
    for args in [
        &[
            "log",
            path_arg,
            "sweep/runs/cli",
            "--output",
            r#"{"a":1}"#,
            "--shared",
        ][..],
        &[
            "set-status",
            path_arg,
            "sweep/runs/cli",
            "running",
            "--shared",
        ][..],
    ] {
        stdout(&runstore(args));
    }
    let run = held
        .run("sweep/runs/cli")
        .expect("the held handle sees the run");
    assert_eq!(run.output_count().expect("outputs"), 1);
    assert_eq!(run.status().expect("status"), runstore::RunStatus::Running);
}
