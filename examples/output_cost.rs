//! Measures the per-call cost of `Run::add_output_value` as a run accumulates outputs: the
//! median of a window of calls after 1,000 and after N (default 100,000) earlier calls.
//!
//! `cargo run --release --example output_cost -- [N] [PATH]`
//!
//! Every call is its own durable (two-phase, fsynced) commit, so the figure is dominated by
//! the disk's fsync latency; what matters is that it does not grow with the count.

use std::time::Instant;

use runstore::{Store, Value};

fn main() -> runstore::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile_dir();
    let path = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("output_cost.runs"));
    let _ = std::fs::remove_file(&path);
    let store = Store::create(&path)?;
    let run = store.init("bench", Some("outputs"))?;
    let window = 200u64;
    let checkpoints = [1_000u64, 10_000, total];
    let mut samples = Vec::with_capacity(window as usize);
    let started = Instant::now();
    for i in 0..total + window {
        let value = Value::map([
            ("epoch", Value::from(i as i64)),
            ("loss", Value::from(1.0 / (i + 1) as f64)),
            ("accuracy", Value::from(0.5 + i as f64 * 1e-7)),
        ]);
        let call = Instant::now();
        run.add_output_value(&value)?;
        let elapsed = call.elapsed();
        if let Some(&checkpoint) = checkpoints.iter().find(|&&c| i >= c && i < c + window) {
            samples.push(elapsed.as_secs_f64());
            if i + 1 == checkpoint + window {
                samples.sort_by(f64::total_cmp);
                println!(
                    "after {checkpoint:>7} calls: median {:.3} ms per call (p90 {:.3} ms)",
                    samples[samples.len() / 2] * 1e3,
                    samples[samples.len() * 9 / 10] * 1e3
                );
                samples.clear();
            }
        }
    }
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} calls in {:.1} s, {:.3} ms per call overall; file {} bytes",
        total + window,
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() * 1e3 / (total + window) as f64,
        file_bytes
    );
    Ok(())
}

fn tempfile_dir() -> std::path::PathBuf {
    std::env::temp_dir()
}
