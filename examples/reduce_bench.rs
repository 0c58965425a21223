//! Time and peak memory of embedding reduction.
//!
//! `cargo run --release --example reduce_bench -- pca [ROWS]` (default 1,000,000 x 64): PCA fit
//! and apply on the data in memory, then the whole `Run::reduce_embeddings_per_dataset` on a
//! store holding it.
//! `cargo run --release --example reduce_bench -- umap [ROWS]` (default 100,000 x 64): UMAP fit
//! (neighbour graph, layout) and the transform of 10,000 new rows.
//! Peak memory is the process's VmHWM from /proc/self/status; run one kind per process.
//! The data: 20 Gaussian clusters (unit noise) with centres uniform in [-5, 5]^64.

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{FixedSizeListArray, Float32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use runstore::reduce::{pca, umap};
use runstore::{with_role, ColumnRole, Method, MetricsOptions, ReduceOptions, Store};

const DIM: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind = args.first().map(String::as_str).unwrap_or("pca");
    let rows: Option<usize> = args.get(1).map(|s| s.parse()).transpose()?;
    match kind {
        "pca" => bench_pca(rows.unwrap_or(1_000_000)),
        "umap" => bench_umap(rows.unwrap_or(100_000)),
        other => Err(format!("unknown kind {other}; pca or umap").into()),
    }
}

fn bench_pca(rows: usize) -> Result<(), Box<dyn std::error::Error>> {
    let data = clustered(rows, 1);
    let started = Instant::now();
    let model = pca::fit(&data, DIM, 2, None);
    let fitted = started.elapsed();
    let projected = model.transform(&data);
    let total = started.elapsed();
    assert_eq!(projected.len(), rows * 2);
    println!(
        "pca {rows} x {DIM}: fit {:.3} s, apply {:.3} s, fit+apply {:.3} s; explained {:?}",
        fitted.as_secs_f64(),
        (total - fitted).as_secs_f64(),
        total.as_secs_f64(),
        model.explained_variance_ratio
    );

    let dir = std::env::temp_dir().join(format!("reduce_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.runs");
    let store = Store::create(&path)?;
    let run = store.init("bench", Some("pca"))?;
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let schema = Arc::new(Schema::new(vec![with_role(
        Field::new(
            "embedding",
            DataType::FixedSizeList(item.clone(), DIM as i32),
            false,
        ),
        ColumnRole::Embedding,
    )]));
    let column =
        FixedSizeListArray::try_new(item, DIM as i32, Arc::new(Float32Array::from(data)), None)?;
    let batch = RecordBatch::try_new(schema, vec![Arc::new(column)])?;
    let started = Instant::now();
    run.add_metrics_data(&batch, &MetricsOptions::default())?;
    let written = started.elapsed();
    drop(batch);
    let started = Instant::now();
    let report = run.reduce_embeddings_per_dataset(&ReduceOptions {
        method: Method::Pca,
        ..ReduceOptions::default()
    })?;
    let reduced = started.elapsed();
    println!(
        "store: write {rows} x {DIM} {:.3} s; reduce_embeddings_per_dataset (pca) {:.3} s -> {}",
        written.as_secs_f64(),
        reduced.as_secs_f64(),
        report.tables[0].1
    );
    println!("peak memory (VmHWM): {} MiB", peak_mib());
    drop(run);
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn bench_umap(rows: usize) -> Result<(), Box<dyn std::error::Error>> {
    let data = clustered(rows, 2);
    let new_rows = clustered(10_000, 2);
    let before = peak_mib();
    let started = Instant::now();
    let progress = move |p: &runstore::Progress| {
        if p.done == p.total {
            eprintln!(
                "  {} done at {:.1} s",
                p.stage.name(),
                started.elapsed().as_secs_f64()
            );
        }
    };
    let model = umap::fit(
        &data,
        DIM,
        umap::UmapParams {
            n_components: 2,
            n_neighbors: 15,
            min_dist: 0.1,
            seed: 0,
        },
        Some(&progress),
    );
    let fitted = started.elapsed();
    let started = Instant::now();
    let placed = model.transform(&new_rows, None);
    let applied = started.elapsed();
    assert_eq!(placed.len(), 20_000);
    // Quality: leave-one-out 5-NN accuracy of the cluster labels on 2,000 sampled rows, in
    // 64-D and in the 2-D layout.
    let sample: Vec<usize> = (0..2000).map(|i| i * rows / 2000).collect();
    let labels: Vec<usize> = sample.iter().map(|row| row % 20).collect();
    let pick = |values: &[f32], width: usize| -> Vec<f32> {
        sample
            .iter()
            .flat_map(|row| values[row * width..(row + 1) * width].iter().copied())
            .collect()
    };
    println!(
        "5-NN accuracy on 2000 sampled rows: {:.3} in {DIM}-D, {:.3} in 2-D",
        knn_accuracy(&pick(&data, DIM), DIM, &labels),
        knn_accuracy(&pick(&model.embedding, 2), 2, &labels)
    );
    println!(
        "umap {rows} x {DIM}: fit {:.1} s; transform of 10000 rows {:.1} s; peak memory \
         (VmHWM) {} MiB (data alone {} MiB, {before} MiB before the fit)",
        fitted.as_secs_f64(),
        applied.as_secs_f64(),
        peak_mib(),
        (rows * DIM * 4) >> 20
    );
    Ok(())
}

/// Leave-one-out accuracy of a 5-nearest-neighbour majority vote.
fn knn_accuracy(values: &[f32], width: usize, labels: &[usize]) -> f64 {
    let rows = labels.len();
    let mut correct = 0;
    for i in 0..rows {
        let row = &values[i * width..(i + 1) * width];
        let mut dists: Vec<(f32, usize)> = (0..rows)
            .filter(|j| *j != i)
            .map(|j| {
                let other = &values[j * width..(j + 1) * width];
                (
                    row.iter().zip(other).map(|(a, b)| (a - b) * (a - b)).sum(),
                    j,
                )
            })
            .collect();
        dists.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut votes = [0usize; 20];
        for (_, j) in &dists[..5] {
            votes[labels[*j]] += 1;
        }
        let best = votes.iter().copied().max().unwrap_or(0);
        let predicted = dists[..5]
            .iter()
            .map(|(_, j)| labels[*j])
            .find(|label| votes[*label] == best);
        correct += usize::from(predicted == Some(labels[i]));
    }
    correct as f64 / rows as f64
}

/// `rows` points of 20 Gaussian clusters in `DIM` dimensions.
fn clustered(rows: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let centres: Vec<f64> = (0..20 * DIM).map(|_| next() * 10.0 - 5.0).collect();
    let mut out = Vec::with_capacity(rows * DIM);
    for row in 0..rows {
        let centre = &centres[(row % 20) * DIM..(row % 20 + 1) * DIM];
        for c in centre {
            // Sum of 4 uniforms: roughly Gaussian, unit variance.
            let noise = (next() + next() + next() + next() - 2.0) * 3f64.sqrt();
            out.push((c + noise) as f32);
        }
    }
    out
}

/// Peak resident memory of this process so far, MiB.
fn peak_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
