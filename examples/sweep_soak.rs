//! Sweep soak: several processes write their own runs into one store file at the same time
//! (`Store::open_shared`), optionally while random writers are killed with SIGKILL; then every
//! acknowledged commit of every process is looked for. The long version of the
//! `sweep::sweep_writers_commit_into_one_file` and `sweep::sweep_survives_killed_writers` tests.
//!
//! ```text
//! cargo run --release --example sweep_soak -- --procs 8 --commits 2000 [--kill-every N]
//!     [--store PATH] [--seed S]
//! ```
//!
//! Each writer is this program run again with a hidden `--child PATH WORKER COMMITS`. It creates
//! one run with a generated name, prints `sweep-run <url>`, then makes one commit per step and
//! prints `sweep-ack <step>` after each: every tenth step a blob of 16 to 48 KiB (a column
//! segment), other odd steps a metrics row appended to the run's table `metrics`, even steps an
//! output value. With `--kill-every N`, after about every N acknowledged commits (in total) a
//! random live writer is killed with SIGKILL and a fresh writer (a new run) starts in its place
//! to make the commits the victim did not; the others go on. Meanwhile this process reads the store read-only and
//! checks that each read of a run sees a prefix of its outputs that never shrinks.
//!
//! At the end: `runstore::check` must pass, and for each writer every acknowledged step must be
//! in the store with its content (a killed writer's commit in flight may be there or not).
//! Prints processes, commits, commits/s, SIGKILLs, losses, reads and the file size; exits with
//! status 1 on any loss or problem (the store is kept), 2 on bad arguments.
//!
//! The writer, how it is heard and the reader's prefix check are the harness in
//! `tests/harness/sweep.rs`, which the `sweep` tests use too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use runstore::{Error, Store, Value};

// `seed_from_env` and `clock_seed` are the tests' and the crash soak's ways to a seed.
#[allow(dead_code)]
#[path = "../tests/harness/rng.rs"]
mod rng;
#[path = "../tests/harness/sweep.rs"]
mod sweep;

use rng::Rng;
use sweep::{
    blob_content, metric_value, op, read_outputs, spawn_writer, writer_main, ChildGuard, Event, Op,
    Writer, TABLE,
};

/// Starts a writer `worker` of `commits` commits on `path`: this program with the hidden
/// `--child`.
fn start_writer(
    path: &Path,
    worker: u64,
    commits: u64,
    events: &mpsc::Sender<Event>,
) -> Result<ChildGuard, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let mut command = Command::new(exe);
    command
        .arg("--child")
        .arg(path)
        .arg(worker.to_string())
        .arg(commits.to_string());
    spawn_writer(command, worker, events)
}

struct Args {
    procs: u64,
    commits: u64,
    kill_every: Option<u64>,
    store: Option<PathBuf>,
    seed: u64,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args {
        procs: 8,
        commits: 2_000,
        kill_every: None,
        store: None,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or(format!("{flag} needs a value"));
        let number = |text: &String| {
            text.parse::<u64>()
                .map_err(|_| format!("{flag}: {text} is not a number"))
        };
        match flag.as_str() {
            "--procs" => parsed.procs = number(value()?)?,
            "--commits" => parsed.commits = number(value()?)?,
            "--kill-every" => parsed.kill_every = Some(number(value()?)?.max(1)),
            "--seed" => parsed.seed = number(value()?)?,
            "--store" => parsed.store = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if parsed.procs == 0 || parsed.commits == 0 {
        return Err("--procs and --commits must be at least 1".into());
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let parsed = match args.as_slice() {
            [_, path, worker, commits] => worker
                .parse()
                .ok()
                .zip(commits.parse().ok())
                .map(|(w, c)| (PathBuf::from(path), w, c)),
            _ => None,
        };
        let Some((path, worker, commits)) = parsed else {
            eprintln!("sweep_soak: bad --child arguments");
            return ExitCode::from(2);
        };
        return match writer_main(&path, worker, commits) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("sweep_soak writer {worker}: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args(&args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("sweep_soak: {message}");
            return ExitCode::from(2);
        }
    };
    match soak(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("sweep_soak: {message}");
            ExitCode::FAILURE
        }
    }
}

fn soak(args: &Args) -> Result<bool, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let path = args
        .store
        .clone()
        .unwrap_or_else(|| dir.path().join("sweep.runs"));
    if path.exists() {
        return Err(format!("{} exists; give a new path", path.display()));
    }
    drop(Store::create(&path).map_err(|e| format!("create: {e}"))?);
    let reader = Store::open_read_only(&path).map_err(|e| format!("open read-only: {e}"))?;
    let mut rng = Rng::new(args.seed);
    let (events, received) = mpsc::channel();
    let mut children: BTreeMap<u64, ChildGuard> = BTreeMap::new();
    let mut writers: BTreeMap<u64, Writer> = BTreeMap::new();
    for worker in 0..args.procs {
        children.insert(worker, start_writer(&path, worker, args.commits, &events)?);
        writers.insert(
            worker,
            Writer {
                commits: args.commits,
                ..Writer::default()
            },
        );
    }
    let mut next_worker = args.procs;
    let mut kills = 0u64;
    let mut until_kill = args.kill_every.map(|n| n / 2 + rng.below(n));
    let mut problems: Vec<String> = Vec::new();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let (mut reads, mut reads_that_grew) = (0u64, 0u64);
    let started = Instant::now();
    let mut last_read = Instant::now();
    while writers.values().any(|w| w.exited_ok.is_none()) {
        match received.recv_timeout(Duration::from_millis(5)) {
            Ok(Event::Line(worker, line)) => {
                let Some(writer) = writers.get_mut(&worker) else {
                    continue;
                };
                // The test harness may print its own text before ours on the same line.
                if let Some((_, url)) = line.split_once("sweep-run ") {
                    writer.url = Some(url.to_string());
                } else if let Some((_, step)) = line.split_once("sweep-ack ") {
                    if step.parse::<u64>().ok() != Some(writer.acked) {
                        problems.push(format!("writer {worker}: ack {step} out of order"));
                    }
                    writer.acked += 1;
                    until_kill = until_kill.map(|n| n.saturating_sub(1));
                }
            }
            Ok(Event::Closed(worker)) => {
                if let (Some(mut child), Some(writer)) =
                    (children.remove(&worker), writers.get_mut(&worker))
                {
                    let status = child.0.wait().map_err(|e| format!("wait: {e}"))?;
                    writer.exited_ok = Some(status.success());
                    if !writer.killed && !status.success() {
                        problems.push(format!("writer {worker} failed: {status}"));
                    }
                    if !writer.killed && writer.acked != writer.commits {
                        problems.push(format!(
                            "writer {worker} acked {} of {} commits",
                            writer.acked, writer.commits
                        ));
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err("events closed".into()),
        }
        if until_kill == Some(0) {
            let live: Vec<u64> = children
                .keys()
                .copied()
                .filter(|w| !writers[w].killed)
                .collect();
            if !live.is_empty() {
                let victim = live[rng.below(live.len() as u64) as usize];
                if let Some(child) = children.get_mut(&victim) {
                    child.0.kill().map_err(|e| format!("SIGKILL: {e}"))?;
                }
                let mut left = 1;
                if let Some(writer) = writers.get_mut(&victim) {
                    writer.killed = true;
                    left = writer.commits.saturating_sub(writer.acked).max(1);
                }
                kills += 1;
                // A fresh writer (a new run) makes the commits the victim did not, so the soak
                // ends however often writers are killed.
                children.insert(
                    next_worker,
                    start_writer(&path, next_worker, left, &events)?,
                );
                writers.insert(
                    next_worker,
                    Writer {
                        commits: left,
                        ..Writer::default()
                    },
                );
                next_worker += 1;
            }
            until_kill = args.kill_every.map(|n| n / 2 + rng.below(n));
        }
        if last_read.elapsed() >= Duration::from_millis(50) {
            last_read = Instant::now();
            for url in writers.values().filter_map(|w| w.url.clone()) {
                let before = seen.get(&url).copied().unwrap_or(0);
                match read_outputs(&reader, &url, before) {
                    Ok(count) => {
                        seen.insert(url, count);
                        reads += 1;
                        reads_that_grew += u64::from(count > before);
                    }
                    Err(message) => problems.push(message),
                }
            }
        }
    }
    let elapsed = started.elapsed();
    drop(reader);
    let commits: u64 = writers.values().map(|w| w.acked).sum();
    let report = runstore::check(&path).map_err(|e| format!("check: {e}"))?;
    problems.extend(report.problems.iter().map(|p| format!("check: {p}")));
    let (losses, in_flight_kept) = verify(&path, &writers, kills, &mut problems)?;
    let file_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "processes:        {} ({} started)",
        args.procs,
        writers.len()
    );
    println!("commits:          {commits} acknowledged");
    println!(
        "commits/s:        {:.0} ({:.2?} in all)",
        commits as f64 / elapsed.as_secs_f64(),
        elapsed
    );
    println!("SIGKILLs:         {kills}");
    println!("losses:           {losses}");
    println!("in-flight kept:   {in_flight_kept}");
    println!("reads:            {reads} ({reads_that_grew} saw new commits)");
    println!("file:             {file_bytes} bytes");
    println!("seed:             {}", args.seed);
    for problem in problems.iter().take(20) {
        println!("problem: {problem}");
    }
    let ok = losses == 0 && problems.is_empty();
    if ok {
        println!("ok");
    } else {
        println!("FAILED; store kept at {}", path.display());
        std::mem::forget(dir);
    }
    Ok(ok)
}

/// Compares the steps of `kind` found with those acknowledged: returns acknowledged steps
/// missing, and whether the in-flight step (`acked`, of a killed writer) was found. Anything
/// else found is a problem.
fn compare(
    writer: &Writer,
    kind: Op,
    found: &[u64],
    url: &str,
    problems: &mut Vec<String>,
) -> (u64, bool) {
    let expected: Vec<u64> = (0..writer.acked).filter(|s| op(*s) == kind).collect();
    let mut missing = 0;
    for step in &expected {
        if !found.contains(step) {
            missing += 1;
        }
    }
    let in_flight = writer.killed && op(writer.acked) == kind && found.contains(&writer.acked);
    let extra: Vec<&u64> = found
        .iter()
        .filter(|s| !expected.contains(s) && (!in_flight || **s != writer.acked))
        .collect();
    if !extra.is_empty() {
        problems.push(format!("{url}: unacknowledged {kind:?} steps {extra:?}"));
    }
    if missing > 0 {
        problems.push(format!(
            "{url}: {missing} acknowledged {kind:?} steps missing"
        ));
    }
    (missing, in_flight)
}

fn verify(
    path: &Path,
    writers: &BTreeMap<u64, Writer>,
    kills: u64,
    problems: &mut Vec<String>,
) -> Result<(u64, u64), String> {
    let store = Store::open_read_only(path).map_err(|e| format!("open after: {e}"))?;
    let mut losses = 0;
    let mut in_flight_kept = 0;
    let mut urls = 0u64;
    for (worker, writer) in writers {
        let Some(url) = writer.url.as_deref() else {
            if !writer.killed {
                problems.push(format!("writer {worker} never created its run"));
            }
            continue;
        };
        urls += 1;
        let run = match store.run(url) {
            Ok(run) => run,
            Err(error) => {
                problems.push(format!("{url}: {error}"));
                losses += writer.acked;
                continue;
            }
        };
        let outputs: Vec<u64> = run
            .output_values()
            .map_err(|e| format!("{url}: {e}"))?
            .iter()
            .filter_map(|v| v.get("step").and_then(Value::as_i64))
            .map(|s| s as u64)
            .collect();
        let metrics = match store.table(&format!("{url}/{TABLE}")) {
            Ok(table) => {
                let mut steps = Vec::new();
                for batch in table.scan().map_err(|e| format!("{url}: scan: {e}"))? {
                    let step = batch.column(0).as_primitive::<Int64Type>();
                    let value = batch.column(1).as_primitive::<Float64Type>();
                    for row in 0..batch.num_rows() {
                        let s = step.value(row) as u64;
                        if value.value(row) != metric_value(*worker, s) {
                            problems.push(format!("{url}: metric row {s} differs"));
                        }
                        steps.push(s);
                    }
                }
                steps
            }
            Err(Error::NotFound { .. }) => Vec::new(),
            Err(error) => return Err(format!("{url}: metrics table: {error}")),
        };
        let mut blobs: Vec<u64> = Vec::new();
        for info in run.bulk_list().map_err(|e| format!("{url}: {e}"))? {
            let Some(step) = info.name.strip_prefix("blob_").and_then(|s| s.parse().ok()) else {
                problems.push(format!("{url}: unexpected blob {}", info.name));
                continue;
            };
            let bytes = run
                .bulk_bytes(&info.name)
                .map_err(|e| format!("{url}: {e}"))?;
            if bytes != blob_content(*worker, step) {
                problems.push(format!("{url}: blob {} differs", info.name));
            }
            blobs.push(step);
        }
        for (kind, found) in [
            (Op::Output, &outputs),
            (Op::Metric, &metrics),
            (Op::Blob, &blobs),
        ] {
            let (missing, kept) = compare(writer, kind, found, url, problems);
            losses += missing;
            in_flight_kept += u64::from(kept);
        }
    }
    let runs = store.run_count().map_err(|e| format!("run count: {e}"))?;
    if runs < urls || runs > urls + kills {
        problems.push(format!(
            "{runs} runs in the store for {urls} acknowledged runs"
        ));
    }
    Ok((losses, in_flight_kept))
}
