//! The sweep harness, shared by the `sweep` tests (`tests/it/sweep.rs`) and the soak command
//! (`examples/sweep_soak.rs`): what one writer process of a sweep commits, how the parent starts
//! it and hears its lines, and the read-only check that a run's outputs grow as a prefix.
//!
//! A writer opens the store shared (`Store::open_or_create_shared`, redb's `MultiWriter`),
//! creates one run with a generated name (so concurrent name generation is exercised), prints
//! `sweep-run <url>`, then makes one commit per step and prints `sweep-ack <step>` after each
//! returned `Ok`. Step `s` is, by [`op`]: every tenth step (`s % 10 == 9`) a blob of 16 to
//! 48 KiB (a column segment, so column space is allocated under the writer lock and column
//! extents grow), other odd steps a metrics row appended to the run's table `metrics`, even
//! steps an output value `{worker, step}`. How the writer process is started (a test binary
//! selecting one test, the example with `--child`) is the caller's: it hands [`spawn_writer`]
//! the command. The parents' loops and final checks differ (the test asserts, the soak counts
//! and reports) and stay with them.
//!
//! Users include it as a module beside `rng.rs` (`super::rng`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use runstore::{batch_from_columns, Store, Value};

use super::rng::Rng;

/// The project every sweep run lives in.
pub const PROJECT: &str = "sweep";
/// The metrics table of every sweep run.
pub const TABLE: &str = "metrics";

/// What a step commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Output,
    Metric,
    Blob,
}

/// What step `step` commits (see the module docs).
pub fn op(step: u64) -> Op {
    if step % 10 == 9 {
        Op::Blob
    } else if step % 2 == 1 {
        Op::Metric
    } else {
        Op::Output
    }
}

/// The bytes of the blob `blob_<step>` of `worker`: 16 to 48 KiB fixed by the two numbers.
pub fn blob_content(worker: u64, step: u64) -> Vec<u8> {
    let mut rng = Rng::new((worker << 32) ^ step);
    let len = 16 * 1024 + rng.below(32 * 1024) as usize;
    rng.bytes(len)
}

/// The `value` of the metrics row of `worker` at `step`.
pub fn metric_value(worker: u64, step: u64) -> f64 {
    step as f64 * 0.5 + worker as f64
}

/// The metrics row (`step`, `value`) of `worker` at `step`.
pub fn metric_row(worker: u64, step: u64) -> runstore::Result<RecordBatch> {
    batch_from_columns(vec![
        (
            "step".to_string(),
            Arc::new(Int64Array::from(vec![step as i64])) as ArrayRef,
        ),
        (
            "value".to_string(),
            Arc::new(Float64Array::from(vec![metric_value(worker, step)])) as ArrayRef,
        ),
    ])
}

/// The writer process: `commits` steps of `worker` into a new run of the store at `path`,
/// each acknowledged on stdout (see the module docs). A parent that went away (stdout closed)
/// ends the writer with exit status 3.
pub fn writer_main(path: &Path, worker: u64, commits: u64) -> runstore::Result<()> {
    let store = Store::open_or_create_shared(path)?;
    assert!(store.is_shared());
    let run = store.init(PROJECT, None)?;
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            std::process::exit(3);
        }
    };
    say(format!("sweep-run {}", run.url()));
    for step in 0..commits {
        match op(step) {
            Op::Output => run.add_output_value(&Value::map([
                ("worker", Value::from(worker as i64)),
                ("step", Value::from(step as i64)),
            ]))?,
            Op::Metric => {
                let batch = metric_row(worker, step)?;
                run.append_metrics(TABLE, &mut std::iter::once(Ok(batch)))?;
            }
            Op::Blob => {
                run.put_bulk(&format!("blob_{step}"), &blob_content(worker, step))?;
            }
        }
        say(format!("sweep-ack {step}"));
    }
    Ok(())
}

/// One writer as the parent sees it.
#[derive(Debug, Default)]
pub struct Writer {
    pub url: Option<String>,
    /// Commits it was asked to make.
    pub commits: u64,
    /// Steps acknowledged: `0..acked`.
    pub acked: u64,
    pub killed: bool,
    /// Whether it exited successfully, once it has exited.
    pub exited_ok: Option<bool>,
}

/// What the parent hears from its writers.
pub enum Event {
    /// A line of the writer's stdout.
    Line(u64, String),
    /// The writer's stdout closed (it exited or was killed).
    Closed(u64),
}

/// Kills a writer that is still running when the parent stops, so no writer outlives it.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` (the caller's command for a writer `worker`) with its stdout read into
/// `events` by a thread.
pub fn spawn_writer(
    mut command: Command,
    worker: u64,
    events: &mpsc::Sender<Event>,
) -> Result<ChildGuard, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn writer: {e}"))?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let events = events.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if events.send(Event::Line(worker, line)).is_err() {
                return;
            }
        }
        let _ = events.send(Event::Closed(worker));
    });
    Ok(ChildGuard(child))
}

/// The number of outputs of the run at `url` in one read snapshot, given that an earlier read
/// saw `before`: the read starts at the last output seen, which must still be there, and what
/// follows must continue the prefix `step = 0, 2, 4, ...` of what its writer commits (reading
/// only the new outputs keeps the reader from competing with the writers for the CPU).
pub fn read_outputs(reader: &Store, url: &str, before: u64) -> Result<u64, String> {
    // The writer printed its url after the commit that created the run, so it is there.
    let run = reader.run(url).map_err(|e| format!("{url}: reader: {e}"))?;
    let from = before.saturating_sub(1);
    let values = run
        .output_values_range(from, u64::MAX)
        .map_err(|e| format!("{url}: reader: {e}"))?;
    if before > 0 && values.is_empty() {
        return Err(format!("{url}: output {from} seen before is gone"));
    }
    for (index, value) in values.iter().enumerate() {
        if value.get("step").and_then(Value::as_i64) != Some(2 * (from + index as u64) as i64) {
            return Err(format!("{url}: outputs torn: {values:?}"));
        }
    }
    Ok(from + values.len() as u64)
}
