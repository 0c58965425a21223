//! Measures `Store::merge_from` throughput against a plain file copy of the same source files
//! (`std::fs::copy` plus one fsync per file), both from a warm page cache, and prints MB/s and
//! the ratio (medians of several repetitions).
//!
//! `cargo run --release --example merge_bench -- [SOURCES] [MB_PER_SOURCE] [REPS]`
//! (default 8 sources of 64 MB of metrics, 3 repetitions). Also times the catalog `check` + merge per
//! source, as `runstore merge` does it.
//!
//! Each source holds 4 runs; each run one metrics table of {step i64, loss f64, acc f32}
//! rows, sized so the source's column bytes come to MB_PER_SOURCE, plus a 1 MiB blob. The merge goes into a fresh destination each repetition, one commit per source.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch};
use runstore::{MergeOptions, Store};

/// Bytes per metrics row: step (8) + loss (8) + acc (4).
const ROW_BYTES: u64 = 20;
/// Rows per appended batch.
const BATCH_ROWS: i64 = 65_536;
const RUNS_PER_SOURCE: u64 = 4;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn batch(start: i64, rows: i64) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "step",
            Arc::new(Int64Array::from_iter_values(start..start + rows)) as ArrayRef,
        ),
        (
            "loss",
            Arc::new(Float64Array::from_iter_values(
                (start..start + rows).map(|i| 1.0 / (i + 1) as f64),
            )) as _,
        ),
        (
            "acc",
            Arc::new(Float32Array::from_iter_values(
                (start..start + rows).map(|i| (i % 1000) as f32 / 1000.0),
            )) as _,
        ),
    ])
    .expect("batch")
}

fn write_source(path: &Path, job: usize, bytes: u64) {
    let store = Store::create(path).expect("create source");
    let rows = (bytes / RUNS_PER_SOURCE / ROW_BYTES) as i64;
    for r in 0..RUNS_PER_SOURCE {
        let run = store
            .init("sweep", Some(&format!("job{job}-run{r}")))
            .expect("init");
        let mut batches = (0..rows)
            .step_by(BATCH_ROWS as usize)
            .map(|start| Ok(batch(start, (rows - start).min(BATCH_ROWS))));
        run.append_metrics("metrics", &mut batches).expect("append");
        run.put_bulk("model.bin", &vec![job as u8; 1 << 20])
            .expect("blob");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: u64| {
        args.get(i)
            .map(|a| a.parse::<u64>().expect("a number"))
            .unwrap_or(default)
    };
    let (sources, mb, reps) = (arg(1, 8) as usize, arg(2, 64), arg(3, 3) as usize);
    let dir = tempfile::tempdir_in(std::env::var("TMPDIR").unwrap_or_else(|_| ".".into()))
        .expect("temp dir");
    let paths: Vec<PathBuf> = (0..sources)
        .map(|job| dir.path().join(format!("job{job}.runs")))
        .collect();
    let started = Instant::now();
    for (job, path) in paths.iter().enumerate() {
        write_source(path, job, mb << 20);
    }
    let file_bytes: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).expect("size").len())
        .sum();
    println!(
        "{sources} sources x {mb} MB of metrics written in {:.1} s; {:.1} MB of source files",
        started.elapsed().as_secs_f64(),
        file_bytes as f64 / 1e6
    );

    let mut copy_mbs = Vec::new();
    let mut merge_mbs = Vec::new();
    let mut checked_mbs = Vec::new();
    let mut merged_bytes = 0;
    for rep in 0..reps {
        // Plain copy: the same files, each fsynced, as a merge commit is.
        let copies = dir.path().join(format!("copy{rep}"));
        std::fs::create_dir(&copies).expect("copy dir");
        let started = Instant::now();
        for path in &paths {
            let to = copies.join(path.file_name().expect("name"));
            std::fs::copy(path, &to).expect("copy");
            std::fs::File::open(&to)
                .and_then(|f| f.sync_all())
                .expect("sync");
        }
        let seconds = started.elapsed().as_secs_f64();
        copy_mbs.push(file_bytes as f64 / 1e6 / seconds);
        std::fs::remove_dir_all(&copies).expect("remove copies");

        let dest_path = dir.path().join(format!("all{rep}.runs"));
        let started = Instant::now();
        let dest = Store::create(&dest_path).expect("dest");
        let mut bytes = 0;
        for path in &paths {
            let source = Store::open_read_only(path).expect("open source");
            bytes += dest
                .merge_from(&source, &MergeOptions::default())
                .expect("merge")
                .bytes;
        }
        drop(dest);
        let seconds = started.elapsed().as_secs_f64();
        merge_mbs.push(file_bytes as f64 / 1e6 / seconds);
        merged_bytes = bytes;
        std::fs::remove_file(&dest_path).expect("remove dest");

        // As `runstore merge` does it: each source checked, then merged.
        let started = Instant::now();
        let dest = Store::create(&dest_path).expect("dest");
        for path in &paths {
            let options = runstore::CheckOptions { column_data: false };
            assert!(runstore::check_with(path, &options).expect("check").is_ok());
            let source = Store::open_read_only(path).expect("open source");
            dest.merge_from(&source, &MergeOptions::default())
                .expect("merge");
        }
        drop(dest);
        checked_mbs.push(file_bytes as f64 / 1e6 / started.elapsed().as_secs_f64());
        std::fs::remove_file(&dest_path).expect("remove dest");
    }
    let (copy, merge) = (median(copy_mbs), median(merge_mbs));
    println!(
        "column bytes merged per repetition: {:.1} MB",
        merged_bytes as f64 / 1e6
    );
    println!("plain file copy + fsync: {copy:.0} MB/s (of source file bytes)");
    println!("merge_from:              {merge:.0} MB/s (of source file bytes)");
    println!("copy / merge:            {:.2}x", copy / merge);
    let checked = median(checked_mbs);
    println!(
        "check + merge_from:      {checked:.0} MB/s ({:.2}x the copy)",
        copy / checked
    );
}
