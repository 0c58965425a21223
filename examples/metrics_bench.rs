//! Measures metrics tables against physical references measured in the same run, and prints
//! ratios (medians of several repetitions).
//!
//! `cargo run --release --example metrics_bench -- [ROWS] [REPS]` (default 1,000,000 rows, 5)
//!
//! - write: ROWS of {example_id i32, epoch i32, loss f32, confidence f32, predicted i32,
//!   embedding f32[64]} with `add_metrics_data`, against writing the same bytes to a plain
//!   file with one fsync;
//! - file bytes against the raw bytes;
//! - sum of `loss` in a fresh process (open + scan + sum), against summing a `Vec<f32>` in
//!   memory;
//! - 100,000 single-row appends of 4 f64 scalars with group commit (values per second) and
//!   with per-call durability, against the raw fdatasync rate.

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, FixedSizeListArray, Float32Array, Int32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use runstore::{MetricsOptions, Store, Value, WriteDurability, WriterOptions};

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn batch(rows: usize) -> RecordBatch {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let embedding: Vec<f32> = (0..rows * 64).map(|_| next()).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("example_id", DataType::Int32, false),
        Field::new("epoch", DataType::Int32, false),
        Field::new("loss", DataType::Float32, false),
        Field::new("confidence", DataType::Float32, false),
        Field::new("predicted", DataType::Int32, false),
        Field::new(
            "embedding",
            DataType::FixedSizeList(item.clone(), 64),
            false,
        ),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int32Array::from_iter_values(0..rows as i32)),
            Arc::new(Int32Array::from(vec![3; rows])),
            Arc::new(Float32Array::from_iter_values((0..rows).map(|_| next()))),
            Arc::new(Float32Array::from_iter_values((0..rows).map(|_| next()))),
            Arc::new(Int32Array::from_iter_values(
                (0..rows as i32).map(|i| i % 10),
            )),
            Arc::new(
                FixedSizeListArray::try_new(
                    item,
                    64,
                    Arc::new(Float32Array::from(embedding)),
                    None,
                )
                .unwrap(),
            ),
        ],
    )
    .unwrap()
}

fn raw_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    for column in batch.columns() {
        let data = column.to_data();
        for buffer in data.buffers() {
            out.extend_from_slice(buffer.as_slice());
        }
        for child in data.child_data() {
            for buffer in child.buffers() {
                out.extend_from_slice(buffer.as_slice());
            }
        }
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("--sum-child") {
        // Fresh-process read: open, scan loss, sum; print the seconds it took.
        let path = args.next().unwrap();
        let url = args.next().unwrap();
        let started = Instant::now();
        let store = Store::open_read_only(&path).unwrap();
        let table = store.table(&url).unwrap();
        let batches = table
            .scan_with(&runstore::ScanOptions {
                columns: Some(vec!["loss".into()]),
                rows: None,
            })
            .unwrap();
        let mut sum = 0f64;
        for batch in &batches {
            let loss = batch
                .column(0)
                .as_any()
                .downcast_ref::<Float32Array>()
                .unwrap();
            sum += loss.values().iter().map(|v| *v as f64).sum::<f64>();
        }
        println!("{} {sum}", started.elapsed().as_secs_f64());
        return;
    }
    let rows: usize = first.and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("runstore-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = batch(rows);
    let raw = raw_bytes(&data);
    println!("rows {rows}, raw column bytes {}", raw.len());

    let mut raw_write = Vec::new();
    let mut store_write = Vec::new();
    let mut file_bytes = 0;
    let mut url = String::new();
    let path = dir.join("bench.runs");
    // One warm-up of each, then the two alternate which goes first, so neither always pays
    // for the page cache the other left behind.
    for rep in 0..=reps {
        let raw_first = rep % 2 == 0;
        let mut raw_seconds = 0.0;
        let mut store_seconds = 0.0;
        for turn in 0..2 {
            if (turn == 0) == raw_first {
                let raw_path = dir.join("raw.bin");
                let started = Instant::now();
                let mut file = std::fs::File::create(&raw_path).unwrap();
                file.write_all(&raw).unwrap();
                file.sync_data().unwrap();
                raw_seconds = started.elapsed().as_secs_f64();
                drop(file);
                std::fs::remove_file(&raw_path).unwrap();
            } else {
                let _ = std::fs::remove_file(&path);
                let store = Store::create(&path).unwrap();
                let run = store.init("bench", Some(&format!("run{rep}"))).unwrap();
                let started = Instant::now();
                let infos = run
                    .add_metrics_data(&data, &MetricsOptions::default())
                    .unwrap();
                store_seconds = started.elapsed().as_secs_f64();
                url = infos[0].url.clone();
                drop(run);
                drop(store);
                file_bytes = std::fs::metadata(&path).unwrap().len();
            }
        }
        if rep > 0 {
            raw_write.push(raw_seconds);
            store_write.push(store_seconds);
        }
    }
    let (raw_s, store_s) = (median(raw_write), median(store_write));
    println!(
        "write: runstore {:.3} s, raw file + fsync {:.3} s, ratio {:.2}x (target <= 1.5x)",
        store_s,
        raw_s,
        store_s / raw_s
    );
    println!(
        "file bytes: {} = {:.3}x raw (target <= 1.05x)",
        file_bytes,
        file_bytes as f64 / raw.len() as f64
    );

    let loss: Vec<f32> = data
        .column(2)
        .as_any()
        .downcast_ref::<Float32Array>()
        .unwrap()
        .values()
        .to_vec();
    let mut memory_sum = Vec::new();
    let mut fresh_sum = Vec::new();
    let exe = std::env::current_exe().unwrap();
    for _ in 0..reps {
        let started = Instant::now();
        let sum: f64 = loss.iter().map(|v| *v as f64).sum();
        memory_sum.push(started.elapsed().as_secs_f64());
        std::hint::black_box(sum);
        let output = Command::new(&exe)
            .args(["--sum-child", path.to_str().unwrap(), &url])
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        fresh_sum.push(
            text.split_whitespace()
                .next()
                .unwrap()
                .parse::<f64>()
                .unwrap(),
        );
    }
    let (memory_s, fresh_s) = (median(memory_sum), median(fresh_sum));
    println!(
        "sum of loss: fresh process open+scan+sum {:.2} ms, in-memory Vec<f32> {:.2} ms, ratio {:.2}x (target <= 2x)",
        fresh_s * 1e3,
        memory_s * 1e3,
        fresh_s / memory_s
    );

    // Step logging: 100,000 single-row appends of 4 f64.
    let steps = 100_000usize;
    let schema = Arc::new(Schema::new(
        ["loss", "acc", "lr", "grad_norm"]
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, false))
            .collect::<Vec<_>>(),
    ));
    let mut group = Vec::new();
    for rep in 0..reps {
        let store = Store::open(&path).unwrap();
        let run = store.init("bench", Some(&format!("steps{rep}"))).unwrap();
        let mut writer = run
            .metrics_writer(
                schema.clone(),
                "steps",
                "train",
                &WriterOptions {
                    durability: WriteDurability::Group {
                        window: Duration::from_millis(100),
                    },
                },
            )
            .unwrap();
        let started = Instant::now();
        for step in 0..steps {
            let x = step as f64;
            writer
                .append_row(&[
                    Value::Float(1.0 / (x + 1.0)),
                    Value::Float(x * 1e-6),
                    Value::Float(0.01),
                    Value::Float(0.5),
                ])
                .unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        writer.close().unwrap();
        group.push(elapsed);
    }
    let group_s = median(group);
    println!(
        "step logging, group commit (100 ms window): {:.0} values/s ({:.3} s for {steps} rows; target >= 10,000,000 values/s)",
        steps as f64 * 4.0 / group_s,
        group_s
    );

    // Per-call durability against the raw fdatasync rate.
    let calls = 500usize;
    let store = Store::open(&path).unwrap();
    let run = store.init("bench", Some("durable")).unwrap();
    let mut writer = run
        .metrics_writer(
            schema,
            "steps",
            "train",
            &WriterOptions {
                durability: WriteDurability::Immediate,
            },
        )
        .unwrap();
    let started = Instant::now();
    for step in 0..calls {
        let x = step as f64;
        writer
            .append_row(&[
                Value::Float(x),
                Value::Float(x),
                Value::Float(x),
                Value::Float(x),
            ])
            .unwrap();
    }
    let durable_s = started.elapsed().as_secs_f64() / calls as f64;
    writer.close().unwrap();
    let raw_path = dir.join("fsync.bin");
    let mut file = std::fs::File::create(&raw_path).unwrap();
    let started = Instant::now();
    for i in 0..calls {
        file.write_all(&(i as u64).to_le_bytes()).unwrap();
        file.sync_data().unwrap();
    }
    let fsync_s = started.elapsed().as_secs_f64() / calls as f64;
    println!(
        "step logging, durable per call: {:.0} appends/s ({:.3} ms each); raw write+fdatasync {:.0}/s ({:.3} ms); ratio {:.2}x",
        1.0 / durable_s,
        durable_s * 1e3,
        1.0 / fsync_s,
        fsync_s * 1e3,
        durable_s / fsync_s
    );
    let _ = std::fs::remove_dir_all(&dir);
}
