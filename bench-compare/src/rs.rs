//! runstore doing each workload, and the fresh-process children that read its files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{
    Array, FixedSizeListArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
};
use arrow_schema::{DataType, Field, Schema};
use runstore::{
    CopyIfExists, CopyOptions, InitOptions, MetricsOptions, ScanOptions, Store, Value,
    WriteDurability, WriterOptions,
};

use crate::data::{self, Param, RunData, Steps, QUERY};
use crate::physical;
use crate::report::{thousands, Measurement};
use crate::Jobs;

/// The error type of the runner: anything, with context.
pub type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

const SYSTEM: &str = "runstore";

fn fresh(path: &Path) -> Fallible<Store> {
    for suffix in ["", ".lock"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
    Ok(Store::create(path)?)
}

fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn step_schema() -> Arc<Schema> {
    let mut fields = vec![Field::new("step", DataType::Int64, false)];
    for name in ["loss", "acc", "lr", "grad_norm"] {
        fields.push(Field::new(name, DataType::Float64, false));
    }
    Arc::new(Schema::new(fields))
}

fn append_steps(writer: &mut runstore::MetricsWriter, steps: &Steps, n: usize) -> Fallible<()> {
    for i in 0..n {
        writer.append_row(&[
            Value::Int(i as i64),
            Value::Float(steps.loss[i]),
            Value::Float(steps.acc[i]),
            Value::Float(steps.lr[i]),
            Value::Float(steps.grad_norm[i]),
        ])?;
    }
    Ok(())
}

/// W1: per-step logging with group commit, per call durable, and batched. Returns the
/// measurements and the path and url of a store holding the 100,000-step table (for W2).
/// [`Jobs::Scaling`] leaves out the per-call durable job and the raw-file references.
pub fn w1(
    steps: &Steps,
    dir: &Path,
    reps: usize,
    durable_calls: usize,
    jobs: Jobs,
) -> Fallible<(Vec<Measurement>, PathBuf, String)> {
    let n = steps.len();
    let path = dir.join("w1.runs");
    let mut out = Vec::new();

    let mut samples = Vec::new();
    let mut calls = Vec::new();
    let mut bytes = 0;
    let mut url = String::new();
    for _ in 0..reps {
        let store = fresh(&path)?;
        let run = store.init("bench", Some("steps"))?;
        let options = WriterOptions {
            durability: WriteDurability::Group {
                window: Duration::from_millis(100),
            },
        };
        let mut writer = run.metrics_writer(step_schema(), "steps", "train", &options)?;
        let started = Instant::now();
        append_steps(&mut writer, steps, n)?;
        calls.push(started.elapsed().as_secs_f64());
        let info = writer.close()?;
        samples.push(started.elapsed().as_secs_f64());
        url = info.url;
        drop(run);
        drop(store);
        bytes = file_bytes(&path);
    }
    out.push(
        Measurement::new(
            "W1",
            "per-step, group commit",
            SYSTEM,
            "MetricsWriter::append_row, 100 ms group commit, until durable (close)",
            n as u64,
            samples,
        )
        .values(4.0 * n as f64)
        .bytes(bytes),
    );
    out.push(
        Measurement::new(
            "W1",
            "per-step, group commit: the calls",
            SYSTEM,
            "the append_row calls alone (what the training loop waits for)",
            n as u64,
            calls,
        )
        .values(4.0 * n as f64)
        .target(">= 10M values/s"),
    );

    // The fsync-bound jobs alternate with their raw reference rep by rep, so a change in
    // the disk's speed during the run moves both.
    let durable_path = dir.join("w1-durable.runs");
    let all = jobs == Jobs::All;
    if all {
        let mut samples = Vec::new();
        let mut raw = Vec::new();
        for _ in 0..reps {
            raw.extend(physical::append_fsync_per_call(40, durable_calls, dir, 1)?);
            let store = fresh(&durable_path)?;
            let run = store.init("bench", Some("durable"))?;
            let options = WriterOptions {
                durability: WriteDurability::Immediate,
            };
            let mut writer = run.metrics_writer(step_schema(), "steps", "train", &options)?;
            let started = Instant::now();
            append_steps(&mut writer, steps, durable_calls.min(n))?;
            samples.push(started.elapsed().as_secs_f64());
            writer.close()?;
        }
        out.push(
            Measurement::new(
                "W1",
                "per-step, durable per call",
                SYSTEM,
                "append_row, WriteDurability::Immediate (one redb commit + sync per call)",
                durable_calls as u64,
                samples,
            )
            .values(4.0 * durable_calls as f64)
            .bytes(file_bytes(&durable_path))
            .target("<= 2.5x the fdatasync rate"),
        );
        out.push(
            Measurement::new(
                "W1",
                "per-step, durable per call",
                "raw file",
                "append 40 bytes + fdatasync per call (alternating with runstore)",
                durable_calls as u64,
                raw,
            )
            .values(4.0 * durable_calls as f64)
            .reference(),
        );
    }

    let batch = steps.batch();
    let mut samples = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..reps {
        if all {
            raw.extend(physical::append_fsync_per_call(
                40 * 1000,
                n.div_ceil(1000),
                dir,
                1,
            )?);
        }
        let store = fresh(&durable_path)?;
        let run = store.init("bench", Some("batched"))?;
        let options = WriterOptions {
            durability: WriteDurability::Immediate,
        };
        let mut writer = run.metrics_writer(step_schema(), "steps", "train", &options)?;
        let started = Instant::now();
        let mut offset = 0;
        while offset < n {
            let len = 1000.min(n - offset);
            writer.append(&batch.slice(offset, len))?;
            offset += len;
        }
        samples.push(started.elapsed().as_secs_f64());
        writer.close()?;
    }
    out.push(
        Measurement::new(
            "W1",
            "batched, 1,000 steps per call",
            SYSTEM,
            "MetricsWriter::append of a 1,000-row batch, durable per call",
            n as u64,
            samples,
        )
        .values(4.0 * n as f64)
        .bytes(file_bytes(&durable_path)),
    );
    if all {
        out.push(
            Measurement::new(
                "W1",
                "batched, 1,000 steps per call",
                "raw file",
                "append 1,000 steps' bytes + fdatasync per call (alternating with runstore)",
                n as u64,
                raw,
            )
            .values(4.0 * n as f64)
            .reference(),
        );
    }
    let _ = std::fs::remove_file(&durable_path);
    Ok((out, path, url))
}

/// Child: open `path` read-only, scan `column` of table `url`, sum it. Prints
/// `open_s read_s sum`.
pub fn child_read(path: &str, url: &str, column: &str) -> Fallible<()> {
    let started = Instant::now();
    let store = Store::open_read_only(path)?;
    let opened = started.elapsed().as_secs_f64();
    let sum = read_sum(&store, url, column)?;
    let total = started.elapsed().as_secs_f64();
    println!("{opened} {} {sum}", total - opened);
    Ok(())
}

fn read_sum(store: &Store, url: &str, column: &str) -> Fallible<f64> {
    let table = store.table(url)?;
    let batches = table.scan_with(&ScanOptions {
        columns: Some(vec![column.to_string()]),
        rows: None,
    })?;
    let mut sum = 0.0;
    for batch in &batches {
        let array = batch.column(0);
        if let Some(a) = array.as_any().downcast_ref::<Float64Array>() {
            sum += a.values().iter().sum::<f64>();
        } else {
            sum += data::sum_f32(array.as_ref());
        }
    }
    Ok(sum)
}

/// Child (for profiling): open read-only, then scan and sum `column` of `url` `times`
/// times. Prints the median seconds of one scan + sum.
pub fn child_sum_loop(path: &str, url: &str, column: &str, times: &str) -> Fallible<()> {
    let store = Store::open_read_only(path)?;
    let mut samples = Vec::new();
    for _ in 0..times.parse::<usize>()? {
        let started = Instant::now();
        std::hint::black_box(read_sum(&store, url, column)?);
        samples.push(started.elapsed().as_secs_f64());
    }
    println!("{}", crate::report::median(&samples));
    Ok(())
}

/// Child: open read-only and touch every value of every column of `url`. Prints
/// `seconds checksum`.
pub fn child_read_all(path: &str, url: &str) -> Fallible<()> {
    let started = Instant::now();
    let store = Store::open_read_only(path)?;
    let batches = store.table(url)?.scan()?;
    let mut checksum = 0.0f64;
    for batch in &batches {
        for column in batch.columns() {
            checksum += touch(column.as_ref());
        }
    }
    println!("{} {checksum}", started.elapsed().as_secs_f64());
    Ok(())
}

/// Sums every value of a column (ints as f64), so every page is read.
pub fn touch(column: &dyn Array) -> f64 {
    let any = column.as_any();
    if let Some(a) = any.downcast_ref::<Int32Array>() {
        a.values().iter().map(|v| f64::from(*v)).sum()
    } else if let Some(a) = any.downcast_ref::<Int64Array>() {
        a.values().iter().map(|v| *v as f64).sum()
    } else if let Some(a) = any.downcast_ref::<Float32Array>() {
        a.values().iter().map(|v| f64::from(*v)).sum()
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        a.values().iter().sum()
    } else if let Some(a) = any.downcast_ref::<FixedSizeListArray>() {
        touch(a.values().as_ref())
    } else {
        0.0
    }
}

/// Child: open read-only and run the W3 query. Prints `seconds name,name,...`.
pub fn child_query(path: &str) -> Fallible<()> {
    let started = Instant::now();
    let store = Store::open_read_only(path)?;
    let runs = store.query_runs().query(QUERY)?.run()?;
    let seconds = started.elapsed().as_secs_f64();
    let names: Vec<&str> = runs.iter().map(|r| r.name()).collect();
    println!("{seconds} {}", names.join(","));
    Ok(())
}

/// Runs the bench binary as a child and returns its stdout's words.
pub fn run_child(exe: &Path, args: &[&str]) -> Fallible<Vec<String>> {
    let output = Command::new(exe).arg("--child").args(args).output()?;
    if !output.status.success() {
        return Err(format!(
            "child {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(output.stdout)?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

fn close_enough(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// W2: the `loss` series of W1's table, from a fresh process (open included) and after open.
pub fn w2(
    steps: &Steps,
    path: &Path,
    url: &str,
    reps: usize,
    exe: &Path,
) -> Fallible<Vec<Measurement>> {
    let expected: f64 = steps.loss.iter().sum();
    let path_str = path.to_string_lossy();
    let mut fresh_samples = Vec::new();
    let mut open_samples = Vec::new();
    let mut correct = true;
    for _ in 0..reps {
        let words = run_child(exe, &["rs-read", &path_str, url, "loss"])?;
        let opened: f64 = words[0].parse()?;
        let read: f64 = words[1].parse()?;
        correct &= close_enough(words[2].parse()?, expected);
        open_samples.push(opened);
        fresh_samples.push(opened + read);
    }
    let n = steps.len() as u64;
    let mut out = vec![
        Measurement::new(
            "W2",
            "read loss series, fresh process",
            SYSTEM,
            "new process: Store::open_read_only + scan of `loss` + sum",
            n,
            fresh_samples,
        )
        .values(n as f64)
        .correct(correct),
        Measurement::new(
            "W2",
            "open, fresh process",
            SYSTEM,
            "Store::open_read_only in a new process",
            n,
            open_samples,
        ),
    ];
    let store = Store::open_read_only(path)?;
    let mut samples = Vec::new();
    let mut correct = true;
    for _ in 0..reps.max(50) {
        let started = Instant::now();
        let sum = read_sum(&store, url, "loss")?;
        samples.push(started.elapsed().as_secs_f64());
        correct &= close_enough(sum, expected);
    }
    out.push(
        Measurement::new(
            "W2",
            "read loss series, after open",
            SYSTEM,
            "Table::scan_with(loss) (zero-copy) + sum, store open",
            n,
            samples,
        )
        .values(n as f64)
        .correct(correct)
        .target("<= 1 ms"),
    );
    Ok(out)
}

fn parameters(run: &RunData) -> Value {
    Value::map(run.params.iter().map(|(key, value)| {
        let value = match value {
            Param::Int(v) => Value::from(*v),
            Param::Float(v) => Value::from(*v),
            Param::Text(v) => Value::from(v.as_str()),
        };
        (key.clone(), value)
    }))
}

fn outputs(run: &RunData) -> Vec<Value> {
    run.outputs
        .iter()
        .enumerate()
        .map(|(epoch, (acc, loss))| {
            Value::map([
                ("epoch", Value::from(epoch as i64)),
                ("acc", Value::from(*acc)),
                ("loss", Value::from(*loss)),
            ])
        })
        .collect()
}

/// Writes `runs` in commits of `per_commit` runs.
pub fn write_runs(store: &Store, runs: &[RunData], per_commit: usize) -> Fallible<()> {
    for chunk in runs.chunks(per_commit.max(1)) {
        store.batch(|batch| {
            for run in chunk {
                let options = InitOptions {
                    parameters: Some(parameters(run)),
                    ..InitOptions::default()
                };
                let handle = batch.init_with("bench", Some(&run.name), &options)?;
                batch.add_output_values(&handle, &outputs(run))?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn query_names(store: &Store) -> Fallible<Vec<String>> {
    Ok(store
        .query_runs()
        .query(QUERY)?
        .run()?
        .iter()
        .map(|r| r.name().to_string())
        .collect())
}

/// W3: writing `runs` (one commit; for more than 1,000 runs, a commit per 1,000), and for up
/// to 1,000 runs a commit per run and the per-call API (not for [`Jobs::Scaling`]); the query
/// on an open store and right after an open.
pub fn w3(
    runs: &[RunData],
    dir: &Path,
    reps: usize,
    jobs: Jobs,
) -> Fallible<(Vec<Measurement>, PathBuf)> {
    let n = runs.len();
    let (expected, _) = data::expected_top10(runs);
    let path = dir.join(format!("w3-{n}.runs"));
    let mut out = Vec::new();
    let per_commit = if n > 1000 { 1000 } else { n };
    let mut samples = Vec::new();
    let write_reps = if n > 1000 { 1 } else { reps };
    for _ in 0..write_reps {
        let store = fresh(&path)?;
        let started = Instant::now();
        write_runs(&store, runs, per_commit)?;
        samples.push(started.elapsed().as_secs_f64());
    }
    let how = if n > 1000 {
        "Store::batch, one commit per 1,000 runs"
    } else {
        "Store::batch: init_with(params) + add_output_values, one commit"
    };
    let mut write = Measurement::new(
        "W3",
        format!("write {} runs, one commit", thousands(n)),
        SYSTEM,
        how,
        n as u64,
        samples,
    )
    .bytes(file_bytes(&path));
    if n <= 1000 {
        write = write.target("<= 0.5 s for 1,000 runs");
    }
    out.push(write);
    if n <= 1000 && jobs == Jobs::All {
        let other = dir.join(format!("w3-{n}-per-run.runs"));
        let store = fresh(&other)?;
        let started = Instant::now();
        write_runs(&store, runs, 1)?;
        out.push(
            Measurement::new(
                "W3",
                format!("write {} runs, one commit per run", thousands(n)),
                SYSTEM,
                "Store::batch per run",
                n as u64,
                vec![started.elapsed().as_secs_f64()],
            )
            .bytes(file_bytes(&other)),
        );
        // 12 durable commits per run: 100 runs say what it costs.
        let few = &runs[..(runs.len() / 10).clamp(1, 100)];
        let store = fresh(&other)?;
        let started = Instant::now();
        for run in few {
            let handle = store.init("bench", Some(&run.name))?;
            handle.set_parameters(&parameters(run))?;
            for value in outputs(run) {
                handle.add_output_value(&value)?;
            }
        }
        out.push(
            Measurement::new(
                "W3",
                format!("write {} runs, per-call API", thousands(few.len())),
                SYSTEM,
                "init + set_parameters + 10 add_output_value: 12 commits per run",
                few.len() as u64,
                vec![started.elapsed().as_secs_f64()],
            )
            .bytes(file_bytes(&other)),
        );
        drop(store);
        let _ = std::fs::remove_file(&other);
    }

    let mut first = Vec::new();
    let mut correct = true;
    for _ in 0..reps.max(5) {
        let started = Instant::now();
        let store = Store::open_read_only(&path)?;
        let names = query_names(&store)?;
        first.push(started.elapsed().as_secs_f64());
        correct &= names == expected;
    }
    out.push(
        Measurement::new(
            "W3",
            format!("first query after open, {} runs", thousands(n)),
            SYSTEM,
            "Store::open_read_only + query",
            n as u64,
            first,
        )
        .correct(correct),
    );
    let store = Store::open_read_only(&path)?;
    let mut samples = Vec::new();
    let mut correct = true;
    for _ in 0..20 {
        let started = Instant::now();
        let names = query_names(&store)?;
        samples.push(started.elapsed().as_secs_f64());
        correct &= names == expected;
    }
    out.push(
        Measurement::new(
            "W3",
            format!("query, {} runs", thousands(n)),
            SYSTEM,
            "query_runs().query(..): key index, top-k",
            n as u64,
            samples,
        )
        .correct(correct)
        .target(if n <= 1000 { "<= 1 ms" } else { "<= 50 ms" }),
    );
    Ok((out, path))
}

/// W4: the per-sample table: write, full read (not for [`Jobs::Scaling`]) and sum of loss
/// (fresh process and after open).
pub fn w4(
    samples: &RecordBatch,
    dir: &Path,
    reps: usize,
    exe: &Path,
    jobs: Jobs,
) -> Fallible<Vec<Measurement>> {
    let n = samples.num_rows() as u64;
    let path = dir.join("w4.runs");
    let mut times = Vec::new();
    let mut url = String::new();
    let mut bytes = 0;
    for _ in 0..reps {
        let store = fresh(&path)?;
        let run = store.init("bench", Some("samples"))?;
        let started = Instant::now();
        let infos = run.add_metrics_data(samples, &MetricsOptions::default())?;
        times.push(started.elapsed().as_secs_f64());
        url = infos[0].url.clone();
        drop(run);
        drop(store);
        bytes = file_bytes(&path);
    }
    let mut out = vec![Measurement::new(
        "W4",
        format!("write {} rows", thousands(samples.num_rows())),
        SYSTEM,
        "Run::add_metrics_data (one commit)",
        n,
        times,
    )
    .values(n as f64)
    .bytes(bytes)
    .target("<= 1.5x raw write; file <= 1.05x raw bytes")];

    let path_str = path.to_string_lossy().into_owned();
    if jobs == Jobs::All {
        let expected_all: f64 = samples.columns().iter().map(|c| touch(c.as_ref())).sum();
        let mut times = Vec::new();
        let mut correct = true;
        for _ in 0..reps {
            let words = run_child(exe, &["rs-read-all", &path_str, &url])?;
            times.push(words[0].parse()?);
            correct &= close_enough(words[1].parse()?, expected_all);
        }
        out.push(
            Measurement::new(
                "W4",
                "read all columns, fresh process",
                SYSTEM,
                "new process: open + scan (zero-copy mmap) + touch every value",
                n,
                times,
            )
            .values(n as f64)
            .correct(correct),
        );
    }

    let expected = samples
        .column_by_name("loss")
        .map_or(f64::NAN, |c| data::sum_f32(c.as_ref()));
    let mut times = Vec::new();
    let mut correct = true;
    for _ in 0..reps {
        let words = run_child(exe, &["rs-read", &path_str, &url, "loss"])?;
        times.push(words[0].parse::<f64>()? + words[1].parse::<f64>()?);
        correct &= close_enough(words[2].parse()?, expected);
    }
    out.push(
        Measurement::new(
            "W4",
            "open + sum of loss, fresh process",
            SYSTEM,
            "new process: open + scan(loss) + sum",
            n,
            times,
        )
        .values(n as f64)
        .correct(correct),
    );
    let store = Store::open_read_only(&path)?;
    let mut times = Vec::new();
    let mut correct = true;
    for _ in 0..reps.max(50) {
        let started = Instant::now();
        let sum = read_sum(&store, &url, "loss")?;
        times.push(started.elapsed().as_secs_f64());
        correct &= close_enough(sum, expected);
    }
    out.push(
        Measurement::new(
            "W4",
            "sum of loss, after open",
            SYSTEM,
            "scan(loss) zero-copy + sum",
            n,
            times,
        )
        .values(n as f64)
        .correct(correct)
        .target("<= 2x the in-memory sum"),
    );
    Ok(out)
}

/// W5: open + first query of a store of about `target_bytes` (built once in `dir` and kept),
/// against the same on a store of the 1,000 runs alone.
pub fn w5(
    runs: &[RunData],
    samples: &RecordBatch,
    dir: &Path,
    target_bytes: u64,
    reps: usize,
    exe: &Path,
) -> Fallible<Vec<Measurement>> {
    let (expected, _) = data::expected_top10(runs);
    let small = dir.join("w5-small.runs");
    let store = fresh(&small)?;
    write_runs(&store, runs, runs.len())?;
    drop(store);
    let big = dir.join(format!("w5-{target_bytes}.runs"));
    if file_bytes(&big) < target_bytes {
        let started = Instant::now();
        let store = fresh(&big)?;
        write_runs(&store, runs, runs.len())?;
        let mut i = 0;
        while file_bytes(&big) < target_bytes {
            let run = store.run(&runstore::run_url("bench", &runs[i % runs.len()].name))?;
            run.add_metrics_data(samples, &MetricsOptions::default())?;
            i += 1;
        }
        eprintln!(
            "W5: built {} ({} tables) in {:.1} s",
            crate::report::size(file_bytes(&big)),
            i,
            started.elapsed().as_secs_f64()
        );
    }
    let mut out = Vec::new();
    for (job, path, reference) in [
        ("open + first query, small store", &small, true),
        ("open + first query, big store", &big, false),
    ] {
        let path_str = path.to_string_lossy();
        let mut times = Vec::new();
        let mut correct = true;
        for _ in 0..reps.max(5) {
            let words = run_child(exe, &["rs-query", &path_str])?;
            times.push(words[0].parse()?);
            let names: Vec<String> = words
                .get(1)
                .map_or(Vec::new(), |w| w.split(',').map(str::to_string).collect());
            correct &= names == expected;
        }
        let mut m = Measurement::new(
            "W5",
            job,
            SYSTEM,
            "new process: Store::open_read_only + the W3 query",
            runs.len() as u64,
            times,
        )
        .bytes(file_bytes(path))
        .correct(correct);
        if reference {
            m = m.reference();
        } else {
            m = m.target("<= 5 ms whatever the size");
        }
        out.push(m);
    }
    Ok(out)
}

/// W6: copy a run holding about `metrics_bytes` of metrics, delete the copy, vacuum.
pub fn w6(
    samples: &RecordBatch,
    dir: &Path,
    metrics_bytes: u64,
    reps: usize,
) -> Fallible<Vec<Measurement>> {
    let path = dir.join("w6.runs");
    let store = fresh(&path)?;
    let run = store.init("bench", Some("big"))?;
    run.set_parameters(&Value::map([("lr", Value::from(0.01))]))?;
    let per_table = data::raw_bytes(samples).len() as u64;
    let tables = metrics_bytes.div_ceil(per_table.max(1)).max(1);
    for _ in 0..tables {
        run.add_metrics_data(samples, &MetricsOptions::default())?;
    }
    let held = tables * per_table;
    let mut copies = Vec::new();
    let mut deletes = Vec::new();
    for i in 0..reps.max(5) {
        let started = Instant::now();
        let copy = run.copy(&CopyOptions {
            run_name: Some(format!("copy-{i}")),
            project_name: None,
            destination_url: None,
            if_exists: CopyIfExists::Raise,
        })?;
        copies.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        copy.delete()?;
        deletes.push(started.elapsed().as_secs_f64());
    }
    // Something to reclaim: a second run's tables, deleted.
    let victim = store.init("bench", Some("victim"))?;
    for _ in 0..tables {
        victim.add_metrics_data(samples, &MetricsOptions::default())?;
    }
    victim.delete()?;
    drop(victim);
    drop(run);
    drop(store);
    let before = file_bytes(&path);
    let started = Instant::now();
    Store::vacuum(&path)?;
    let vacuum = started.elapsed().as_secs_f64();
    let after = file_bytes(&path);
    Ok(vec![
        Measurement::new(
            "W6",
            "copy a run with 1 GB of metrics",
            SYSTEM,
            format!(
                "Run::copy: segments shared, one metadata commit ({} of metrics)",
                crate::report::size(held)
            ),
            held,
            copies,
        )
        .target("<= 5 ms whatever the size"),
        Measurement::new(
            "W6",
            "delete the copy",
            SYSTEM,
            "Run::delete (shared segments stay for the source)",
            held,
            deletes,
        ),
        Measurement::new(
            "W6",
            "vacuum",
            SYSTEM,
            format!(
                "Store::vacuum after deleting a second 1 GB run: {} -> {}",
                crate::report::size(before),
                crate::report::size(after)
            ),
            held,
            vec![vacuum],
        )
        .bytes(after),
    ])
}
