//! What one durable commit costs: run it under `strace -c -f` to count the syncs and writes a
//! commit makes (the figures docs/FORMAT.md's "Commit cost" quotes).
//!
//! ```sh
//! cargo run --release --example commit_cost -- step 1000 [PATH]   # durable append_row calls
//! cargo run --release --example commit_cost -- run 1000 [PATH]    # one run (20 params, 10 outputs) per commit
//! strace -c -f -e trace=fsync,fdatasync,pwrite64,pwritev,write \
//!     target/release/examples/commit_cost step 1000
//! ```
//!
//! It prints the wall time per commit; the store is created fresh (one warm-up commit first, so
//! the counts are of steady-state commits, not of creating the file).

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use runstore::{InitOptions, Store, Value, WriteDurability, WriterOptions};

fn main() -> runstore::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "step".to_string());
    let count: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let path = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("commit_cost.runs"));
    if mode != "query" {
        let _ = std::fs::remove_file(&path);
    }
    let store = if mode == "query" {
        Store::open_read_only(&path)?
    } else {
        Store::create(&path)?
    };
    let started;
    match mode.as_str() {
        "step" => {
            let run = store.init("bench", Some("steps"))?;
            let schema = Arc::new(Schema::new(vec![
                Field::new("step", DataType::Int64, false),
                Field::new("loss", DataType::Float64, false),
            ]));
            let options = WriterOptions {
                durability: WriteDurability::Immediate,
            };
            let mut writer = run.metrics_writer(schema.clone(), "steps", "train", &options)?;
            let row = |i: u64| {
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(vec![i as i64])),
                        Arc::new(Float64Array::from(vec![1.0 / (i + 1) as f64])),
                    ],
                )
                .expect("the schema's columns")
            };
            writer.append(&row(0))?;
            eprintln!("commit_cost: warm; {count} durable appends of one row");
            started = Instant::now();
            for i in 1..=count {
                writer.append(&row(i))?;
            }
            let elapsed = started.elapsed();
            writer.close()?;
            report(count, elapsed);
        }
        "steps" => {
            // Durable appends of 1,000-row batches until `count` rows: the time per 100,000
            // rows as the table grows (the bench's W1 batched job).
            let run = store.init("bench", Some("steps"))?;
            let schema = Arc::new(Schema::new(vec![
                Field::new("step", DataType::Int64, false),
                Field::new("loss", DataType::Float64, false),
            ]));
            let options = WriterOptions {
                durability: WriteDurability::Immediate,
            };
            let mut writer = run.metrics_writer(schema.clone(), "steps", "train", &options)?;
            started = Instant::now();
            let mut window = Instant::now();
            let mut done = 0u64;
            while done < count {
                let steps: Vec<i64> = (done as i64..done as i64 + 1000).collect();
                let loss: Vec<f64> = steps.iter().map(|s| 1.0 / (*s + 1) as f64).collect();
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(steps)),
                        Arc::new(Float64Array::from(loss)),
                    ],
                )
                .expect("the schema's columns");
                writer.append(&batch)?;
                done += 1000;
                if done.is_multiple_of(100_000) {
                    println!(
                        "{done} rows: {:.1} ms for the last 100,000",
                        window.elapsed().as_secs_f64() * 1e3
                    );
                    window = Instant::now();
                }
            }
            writer.close()?;
            report(count / 1000, started.elapsed());
        }
        "vacuum" => {
            // A run holding `count` MB of metrics and a deleted one as large, then
            // `Store::vacuum` (the bench's W6 vacuum).
            let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Float64, false)]));
            let rows = 1 << 20;
            let batch = RecordBatch::try_new(
                schema,
                vec![Arc::new(Float64Array::from_iter_values(
                    (0..rows).map(|i| i as f64),
                ))],
            )
            .expect("the schema's columns");
            for name in ["kept", "victim"] {
                let run = store.init("bench", Some(name))?;
                for _ in 0..count.div_ceil(8) {
                    run.add_metrics_data(&batch, &runstore::MetricsOptions::default())?;
                }
                if name == "victim" {
                    run.delete()?;
                }
            }
            drop(store);
            started = Instant::now();
            let report = Store::vacuum(&path)?;
            println!(
                "vacuum {} -> {} bytes in {:.3} s",
                report.bytes_before,
                report.bytes_after,
                started.elapsed().as_secs_f64()
            );
            let _ = std::fs::remove_file(&path);
            return Ok(());
        }
        "run" => {
            let write = |i: u64| store.batch(|batch| write_run(batch, i));
            write(0)?;
            eprintln!("commit_cost: warm; {count} runs, one commit each");
            started = Instant::now();
            for i in 1..=count {
                write(i)?;
            }
            report(count, started.elapsed());
        }
        "batch" => {
            // `count` runs in one commit, as the bench's W3 "write 1,000 runs, one commit".
            started = Instant::now();
            store.batch(|batch| (0..count).try_for_each(|i| write_run(batch, i)))?;
            println!(
                "{count} runs in one commit: {:.1} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        "query" => {
            // `count` repetitions of the bench's W3 query on the store at PATH (not recreated).
            drop(store);
            let store = Store::open_read_only(&path)?;
            let query = std::env::var("COMMIT_COST_QUERY").unwrap_or_else(|_| {
                "params.lr < 0.01 AND outputs.acc > 0.5 ORDER BY outputs.acc DESC LIMIT 10"
                    .to_string()
            });
            let query = query.as_str();
            started = Instant::now();
            let mut found = 0;
            for _ in 0..count {
                found += store.query_runs().query(query)?.run()?.len();
            }
            println!(
                "{count} queries: {:.1} µs each ({found} runs found in all)",
                started.elapsed().as_secs_f64() * 1e6 / count as f64
            );
            return Ok(());
        }
        other => {
            eprintln!("commit_cost: unknown mode {other:?} (step or run)");
            std::process::exit(2);
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Writes run `i` in `batch` as the bench's W3 does: 20 parameters, 10 output values of three
/// keys.
fn write_run(batch: &mut runstore::Batch<'_>, i: u64) -> runstore::Result<()> {
    let params =
        Value::map((0..20).map(|k| (format!("p{k:02}"), Value::from((i * 31 + k) as f64 * 1e-3))));
    let options = InitOptions {
        parameters: Some(params),
        ..InitOptions::default()
    };
    let run = batch.init_with("bench", Some(&format!("run-{i:07}")), &options)?;
    let outputs: Vec<Value> = (0..10)
        .map(|epoch| {
            Value::map([
                ("epoch", Value::from(epoch as i64)),
                ("acc", Value::from(epoch as f64 / 10.0)),
                ("loss", Value::from(1.0 - epoch as f64 / 10.0)),
            ])
        })
        .collect();
    batch.add_output_values(&run, &outputs)
}

fn report(count: u64, elapsed: std::time::Duration) {
    println!(
        "{count} commits in {:.3} s: {:.1} µs per commit",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / count as f64
    );
}
