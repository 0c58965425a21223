//! Criterion benches of the hot paths of metrics tables: writing a per-example table, scanning
//! a column of it zero-copy, and logging single-row steps with group commit. Ratios against
//! physical references (raw file write, in-memory sum, fdatasync) are printed by
//! `cargo run --release --example metrics_bench`.

use std::hint::black_box;
use std::sync::Arc;

use arrow_array::{Array, FixedSizeListArray, Float32Array, Int32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use runstore::{MetricsOptions, ScanOptions, Store, Value, WriterOptions};

const ROWS: usize = 100_000;

fn per_example_batch(rows: usize) -> RecordBatch {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let schema = Arc::new(Schema::new(vec![
        Field::new("example_id", DataType::Int32, false),
        Field::new("loss", DataType::Float32, false),
        Field::new(
            "embedding",
            DataType::FixedSizeList(item.clone(), 64),
            false,
        ),
    ]));
    let values = Float32Array::from_iter_values((0..rows * 64).map(|i| (i % 997) as f32));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int32Array::from_iter_values(0..rows as i32)),
            Arc::new(Float32Array::from_iter_values(
                (0..rows).map(|i| i as f32 * 1e-5),
            )),
            Arc::new(FixedSizeListArray::try_new(item, 64, Arc::new(values), None).unwrap()),
        ],
    )
    .unwrap()
}

fn metrics(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let batch = per_example_batch(ROWS);
    let bytes: usize = batch
        .columns()
        .iter()
        .map(|c| c.get_array_memory_size())
        .sum();

    let mut group = c.benchmark_group("metrics");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    let store = Store::create(dir.path().join("write.runs")).unwrap();
    let run = store.init("bench", Some("write")).unwrap();
    group.bench_function("add_metrics_data_100k_rows_emb64", |b| {
        b.iter(|| {
            run.add_metrics_data(&batch, &MetricsOptions::default())
                .unwrap()
        })
    });

    let table = store
        .table(
            &run.add_metrics_data(&batch, &MetricsOptions::default())
                .unwrap()[0]
                .url,
        )
        .unwrap();
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("scan_sum_loss_100k_rows", |b| {
        b.iter(|| {
            let batches = table
                .scan_with(&ScanOptions {
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
                sum += loss.values().iter().map(|v| f64::from(*v)).sum::<f64>();
            }
            black_box(sum)
        })
    });

    let schema = Arc::new(Schema::new(
        ["loss", "acc", "lr", "grad_norm"]
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, false))
            .collect::<Vec<_>>(),
    ));
    let mut writer = run
        .metrics_writer(schema, "steps", "train", &WriterOptions::default())
        .unwrap();
    group.throughput(Throughput::Elements(4));
    let row = [
        Value::Float(0.5),
        Value::Float(0.9),
        Value::Float(0.01),
        Value::Float(1.5),
    ];
    group.bench_function("append_row_4_f64_group_commit", |b| {
        b.iter(|| writer.append_row(black_box(&row)).unwrap())
    });
    group.finish();
    writer.close().unwrap();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
