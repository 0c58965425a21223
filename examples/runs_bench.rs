//! Issue 4's run-query measurement: N runs with 20 parameters and 10 output values each,
//! written through `Store::batch` (one commit per 1,000 runs) and, for N <= 1,000, through the
//! per-call API (one commit per call); then the query
//! `params.lr < 0.01 AND outputs.acc > 0.5 ORDER BY outputs.acc DESC LIMIT 10`, timed once
//! right after a fresh open and as the median of 20 repetitions.
//!
//! `cargo run --release --example runs_bench -- [N] [DIR] [--keep]` (N defaults to 1,000;
//! `--keep` leaves the stores in DIR), or `-- --query PATH` to time the query on a kept store.

use std::time::Instant;

use runstore::{InitOptions, Store, Value};

const QUERY: &str = "params.lr < 0.01 AND outputs.acc > 0.5 ORDER BY outputs.acc DESC LIMIT 10";
const BATCH_RUNS: u64 = 1_000;

/// A small deterministic generator (xorshift), so every run of the bench writes the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn parameters(rng: &mut Rng, i: u64) -> Value {
    let lr = 10f64.powf(-4.0 + 3.0 * rng.unit());
    let optimizers = ["adam", "sgd", "adamw", "rmsprop"];
    let mut entries: Vec<(String, Value)> = vec![
        ("lr".into(), Value::from(lr)),
        ("batch_size".into(), Value::from(16i64 << (rng.next() % 5))),
        (
            "optimizer".into(),
            Value::from(optimizers[(rng.next() % 4) as usize]),
        ),
        ("seed".into(), Value::from(i as i64)),
        ("dropout".into(), Value::from(rng.unit() * 0.5)),
    ];
    for k in 0..15 {
        let value = match k % 3 {
            0 => Value::from((rng.next() % 1000) as i64),
            1 => Value::from(format!("choice_{}", rng.next() % 10)),
            _ => Value::from(rng.unit()),
        };
        entries.push((format!("p{k:02}"), value));
    }
    Value::map(entries)
}

fn outputs(rng: &mut Rng) -> Vec<Value> {
    let ceiling = rng.unit();
    (0..10)
        .map(|epoch| {
            let progress = f64::from(epoch + 1) / 10.0;
            Value::map([
                ("epoch", Value::from(i64::from(epoch))),
                ("acc", Value::from(ceiling * progress)),
                ("loss", Value::from((1.0 - ceiling * progress) * 2.0)),
            ])
        })
        .collect()
}

fn write_batched(store: &Store, runs: u64) -> runstore::Result<()> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut i = 0;
    while i < runs {
        let end = (i + BATCH_RUNS).min(runs);
        store.batch(|batch| {
            for j in i..end {
                let options = InitOptions {
                    parameters: Some(parameters(&mut rng, j)),
                    ..InitOptions::default()
                };
                let run = batch.init_with("bench", Some(&format!("run-{j:07}")), &options)?;
                batch.add_output_values(&run, &outputs(&mut rng))?;
            }
            Ok(())
        })?;
        i = end;
    }
    Ok(())
}

fn write_per_call(store: &Store, runs: u64) -> runstore::Result<()> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for j in 0..runs {
        let run = store.init("bench", Some(&format!("run-{j:07}")))?;
        run.set_parameters(&parameters(&mut rng, j))?;
        for value in outputs(&mut rng) {
            run.add_output_value(&value)?;
        }
    }
    Ok(())
}

fn time_query(path: &std::path::Path) -> runstore::Result<(f64, f64, usize)> {
    let store = Store::open_read_only(path)?;
    let started = Instant::now();
    let first = store.query_runs().query(QUERY)?.run()?;
    let first_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut samples = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let runs = store.query_runs().query(QUERY)?.run()?;
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(runs.len(), first.len());
    }
    samples.sort_by(f64::total_cmp);
    Ok((first_ms, samples[samples.len() / 2], first.len()))
}

fn main() -> runstore::Result<()> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path] = all.as_slice() {
        if flag == "--query" {
            let (first_ms, median_ms, found) = time_query(std::path::Path::new(path))?;
            println!(
                "query: first after open {first_ms:.2} ms, median of 20 {median_ms:.2} ms \
                 ({found} runs)"
            );
            return Ok(());
        }
    }
    let keep = all.iter().any(|a| a == "--keep");
    let mut args = all.into_iter().filter(|a| a != "--keep");
    let runs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!("{runs} runs x (20 params + 10 output values of 3 keys)");
    let mut paths = Vec::new();
    if runs <= 1_000 {
        let path = dir.join("runs_bench_per_call.runs");
        let _ = std::fs::remove_file(&path);
        let store = Store::create(&path)?;
        let started = Instant::now();
        write_per_call(&store, runs)?;
        println!(
            "per-call write ({} commits): {:.3} s",
            runs * 12,
            started.elapsed().as_secs_f64()
        );
        paths.push(("per-call", path));
    }
    let path = dir.join("runs_bench_batched.runs");
    let _ = std::fs::remove_file(&path);
    let store = Store::create(&path)?;
    let started = Instant::now();
    write_batched(&store, runs)?;
    println!(
        "batched write ({} commits of <= {BATCH_RUNS} runs): {:.3} s",
        runs.div_ceil(BATCH_RUNS),
        started.elapsed().as_secs_f64()
    );
    drop(store);
    paths.push(("batched", path));
    for (label, path) in &paths {
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let (first_ms, median_ms, found) = time_query(path)?;
        println!(
            "{label}: file {bytes} bytes; query: first after open {first_ms:.2} ms, median of 20 \
             {median_ms:.2} ms ({found} runs)"
        );
        if !keep {
            let _ = std::fs::remove_file(path);
        }
    }
    println!("query: {QUERY}");
    Ok(())
}
