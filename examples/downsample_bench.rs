//! Measures a downsampled read for plotting: a series of POINTS `f32` values (default
//! 10,000,000) in sealed chunks of `SEAL_ROWS` rows, read into BUCKETS buckets (default 1,000)
//! of min/max/last, with its time and the process's peak memory.
//!
//! `cargo run --release --example downsample_bench -- [POINTS] [BUCKETS]`
//!
//! The store is built by this process; the read runs in a fresh child process (this binary
//! with `--read PATH BUCKETS`), so that its peak resident memory (`VmHWM` in
//! `/proc/self/status`) shows the read alone. Mapped file pages the scan touches count as
//! resident (`RssFile`: page cache the kernel may drop), and heap the read allocates as
//! `RssAnon`; the raw column's size is printed beside them to show that the heap stays bounded
//! by a chunk, not the column.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Float32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use runstore::table::SEAL_ROWS;
use runstore::Store;

const TABLE: &str = "bench/tables/series";

/// `VmHWM`, `VmRSS`, `RssAnon` and `RssFile` of this process, in KiB.
fn memory_kib() -> [(String, u64); 4] {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    ["VmHWM", "VmRSS", "RssAnon", "RssFile"].map(|key| {
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{key}:")))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        (key.to_string(), kib)
    })
}

fn print_memory(when: &str) {
    let line: Vec<String> = memory_kib()
        .iter()
        .map(|(key, kib)| format!("{key} {:.1} MiB", *kib as f64 / 1024.0))
        .collect();
    println!("{when:>8}: {}", line.join(", "));
}

fn read(path: &str, buckets: usize) {
    print_memory("start");
    let store = Store::open_read_only(path).expect("open the store");
    let table = store.table(TABLE).expect("the series table");
    let rows = table.row_count().expect("row count");
    print_memory("opened");
    let mut times_ms = Vec::new();
    for round in 0..5 {
        let started = Instant::now();
        let result = table
            .query()
            .downsample("value", buckets)
            .expect("downsample");
        times_ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(result.num_rows(), buckets.min(rows as usize));
        if round == 0 {
            print_memory("1st read");
        }
    }
    print_memory("5 reads");
    let first = times_ms[0];
    times_ms.sort_by(f64::total_cmp);
    println!(
        "downsample of {rows} f32 points into {buckets} buckets: first {first:.1} ms, median \
         of 5 {:.1} ms",
        times_ms[2]
    );
    println!(
        "raw column: {:.1} MiB of f32 ({} sealed chunks of {} rows)",
        rows as f64 * 4.0 / (1 << 20) as f64,
        table.info().expect("info").chunk_count,
        SEAL_ROWS
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--read") {
        let buckets = args.get(3).and_then(|b| b.parse().ok()).unwrap_or(1_000);
        read(&args[2], buckets);
        return;
    }
    let points: u64 = args
        .get(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(10_000_000);
    let buckets: usize = args.get(2).and_then(|b| b.parse().ok()).unwrap_or(1_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.runs");
    let store = Store::create(&path).expect("create the store");
    let schema = Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("value", DataType::Float32, false),
    ]));
    let started = Instant::now();
    let mut written = 0u64;
    while written < points {
        let rows = SEAL_ROWS.min(points - written);
        let steps = Int64Array::from_iter_values(written as i64..(written + rows) as i64);
        // A noisy decaying curve, as a loss looks.
        let values = Float32Array::from_iter_values((written..written + rows).map(|i| {
            let x = i as f32 / points as f32;
            (-3.0 * x).exp() + 0.05 * ((i.wrapping_mul(2_654_435_761) % 1000) as f32 / 1000.0)
        }));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(steps), Arc::new(values)])
            .expect("batch");
        if written == 0 {
            store
                .create_table("bench", "series", &[batch])
                .expect("create");
        } else {
            store.append_to_table(TABLE, &batch).expect("append");
        }
        written += rows;
    }
    drop(store);
    println!(
        "built {points} points in {:.1} s ({:.1} MiB file)",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / (1 << 20) as f64
    );
    let output = Command::new(std::env::current_exe().expect("this binary"))
        .args([
            "--read",
            path.to_str().expect("utf-8 path"),
            &buckets.to_string(),
        ])
        .output()
        .expect("run the reader");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
}
