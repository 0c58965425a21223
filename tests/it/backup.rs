//! Backups while another process writes continuously: every backup opens, passes `check` and
//! holds one consistent commit (outputs `0..k` without gaps, a metrics table per ten outputs,
//! blobs whole). A plain file copy taken at the same moments is reported for contrast.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch};
use runstore::{MetricsOptions, Store, Value};

use crate::util::{child_test, temp_store};

const WRITER_ENV: &str = "RUNSTORE_BACKUP_WRITER";

/// The writer's side: does nothing unless started by the backup test with `WRITER_ENV`.
/// Commits until a file `<store>.stop` appears (or 60 s pass).
#[test]
fn backup_writer_child() {
    let Ok(path) = std::env::var(WRITER_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let stop = path.with_extension("stop");
    let store = Store::open(&path).expect("backup writer: open");
    let run = store.run("p/runs/live").expect("backup writer: run");
    let started = Instant::now();
    let mut i = run.output_count().expect("backup writer: count") as i64;
    while !stop.exists() && started.elapsed() < Duration::from_secs(60) {
        run.add_output_value(&Value::map([("i", Value::from(i))]))
            .expect("backup writer: output");
        if i % 10 == 9 {
            let rows = 100 + i;
            let batch = RecordBatch::try_from_iter([
                (
                    "example_id",
                    Arc::new(Int64Array::from_iter_values(0..rows)) as ArrayRef,
                ),
                (
                    "loss",
                    Arc::new(Float32Array::from_iter_values((0..rows).map(|r| r as f32)))
                        as ArrayRef,
                ),
            ])
            .expect("backup writer: batch");
            run.add_metrics_data(&batch, &MetricsOptions::default())
                .expect("backup writer: metrics");
            run.put_bulk(&format!("blob{i}"), &vec![(i % 251) as u8; 40_000])
                .expect("backup writer: blob");
        }
        i += 1;
    }
}

fn start_writer(path: &Path) -> Child {
    child_test("backup::backup_writer_child")
        .env(WRITER_ENV, path)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the writer")
}

/// Checks one backup: opens, passes check, and is one consistent commit.
fn verify_backup(path: &Path) -> i64 {
    let report = runstore::check(path).expect("check the backup");
    assert!(report.is_ok(), "{}: {:?}", path.display(), report.problems);
    let store = Store::open_read_only(path).expect("open the backup");
    let run = store.run("p/runs/live").unwrap();
    let outputs = run.output_values().unwrap();
    for (n, value) in outputs.iter().enumerate() {
        assert_eq!(
            value.get_path(&["i"]),
            Some(&Value::from(n as i64)),
            "{}",
            path.display()
        );
    }
    let k = outputs.len() as i64;
    // Output, table and blob are three commits: a snapshot may fall between them.
    let tables = run.metrics_table_handles().unwrap();
    let t = tables.len() as i64;
    assert!(
        t == k / 10 || (k % 10 == 0 && k > 0 && t == k / 10 - 1),
        "{}: {t} tables for {k} outputs",
        path.display()
    );
    for (n, table) in tables.iter().enumerate() {
        let rows: usize = table.scan().unwrap().iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows as i64, 100 + 10 * n as i64 + 9);
    }
    let blobs = run.bulk_list().unwrap();
    let b = blobs.len() as i64;
    assert!(
        b == t || b == t - 1,
        "{}: {b} blobs for {t} tables",
        path.display()
    );
    for blob in blobs {
        let bytes = run.bulk_bytes(&blob.name).unwrap();
        let i: i64 = blob.name["blob".len()..].parse().unwrap();
        assert!(bytes.iter().all(|&b| b == (i % 251) as u8));
    }
    k
}

fn output_count(path: &Path) -> u64 {
    Store::open_read_only(path)
        .and_then(|store| store.run("p/runs/live")?.output_count())
        .unwrap_or(0)
}

#[test]
fn backups_taken_while_another_process_writes_are_consistent_and_pass_check() {
    let (dir, path) = temp_store();
    {
        let store = Store::create(&path).unwrap();
        store.init("p", Some("live")).unwrap();
    }
    let mut writer = start_writer(&path);
    let deadline = Instant::now() + Duration::from_secs(30);
    while output_count(&path) < 30 {
        assert!(Instant::now() < deadline, "the writer made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut counts = Vec::new();
    let mut plain_copies_broken = 0;
    for round in 0..4 {
        // The library, from a read-only handle (the writer holds the write lock).
        let dest = dir.path().join(format!("api-{round}.runs"));
        let reader = Store::open_read_only(&path).unwrap();
        reader.backup_to(&dest).unwrap();
        drop(reader);
        counts.push(verify_backup(&dest));
        // The command line falls back to the same snapshot copy.
        let dest = dir.path().join(format!("cli-{round}.runs"));
        let output = Command::new(env!("CARGO_BIN_EXE_runstore"))
            .args(["backup", path.to_str().unwrap(), dest.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        counts.push(verify_backup(&dest));
        // For contrast: a plain copy of the file taken now.
        let plain = dir.path().join(format!("plain-{round}.runs"));
        std::fs::copy(&path, &plain).unwrap();
        let intact = runstore::check(&plain).map(|r| r.is_ok()).unwrap_or(false);
        if !intact {
            plain_copies_broken += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(path.with_extension("stop"), b"").unwrap();
    let status = writer.wait().unwrap();
    assert!(status.success(), "the writer failed");
    eprintln!(
        "backups at output counts {counts:?}; {plain_copies_broken} of 4 plain copies failed check"
    );
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert!(
        counts.last() > counts.first(),
        "the writer went on: {counts:?}"
    );
    // The writer's own commits are all there after it stopped.
    let total = output_count(&path);
    assert!(total as i64 >= *counts.last().unwrap());
}
