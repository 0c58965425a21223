//! `Store::merge_from` and `runstore merge`: per-job stores written by separate processes merge
//! into one store with every run, row and blob; input tables equal in content are stored once;
//! a second merge with skip changes nothing; each `if_exists` mode does what it says; a damaged
//! source is refused and leaves the destination unchanged.
//!
//! The job stores are written by this test binary run again (`merge::merge_job_child`), one
//! process per store (50 of them, the issue's size).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use runstore::{
    Error, MergeIfExists, MergeOptions, MergeProgress, MergeReport, Store, StoreInfo, Value,
};

use crate::util::{assert_checks, child_test, runstore, stdout};

const JOB_ENV: &str = "RUNSTORE_MERGE_JOB";
const JOB_ID_ENV: &str = "RUNSTORE_MERGE_JOB_ID";
/// Rows of each job's first run's metrics table: past one seal (64 Ki rows), so the merge
/// moves sealed chunks and a tail.
const SEALED_METRICS_ROWS: i64 = 70_000;

/// The shared input table: the same rows in every even job's store.
fn train_table() -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "image",
            Arc::new(StringArray::from_iter_values(
                (0..200).map(|i| format!("img/{i:05}.png")),
            )) as ArrayRef,
        ),
        (
            "label",
            Arc::new(Int32Array::from_iter_values((0..200).map(|i| i % 10))) as _,
        ),
    ])
    .unwrap()
}

fn metrics_batch(job: i64, start: i64, rows: i64) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "step",
            Arc::new(Int64Array::from_iter_values(start..start + rows)) as ArrayRef,
        ),
        (
            "loss",
            Arc::new(Float64Array::from_iter_values(
                (start..start + rows).map(|i| (job as f64 + 1.0) / (i + 1) as f64),
            )) as _,
        ),
    ])
    .unwrap()
}

fn blob(job: i64) -> Vec<u8> {
    (0..20_000u32).map(|i| (i as i64 * 7 + job) as u8).collect()
}

/// Writes job `job`'s store at `path`: runs `sweep/runs/job<job>-a` and `-b` with parameters,
/// outputs, a metrics table and a blob; even jobs also create the shared input table
/// `sweep/tables/train` and use it; job 0 has a project of its own without runs.
fn write_job_store(path: &Path, job: i64) {
    let store = Store::create(path).expect("create job store");
    if job % 2 == 0 {
        store
            .create_table("sweep", "train", &[train_table()])
            .expect("create the shared input table");
    }
    if job == 0 {
        store
            .create_table("notes", "only", &[train_table()])
            .unwrap();
    }
    for (suffix, rows) in [("a", SEALED_METRICS_ROWS), ("b", 500)] {
        let run = store
            .init("sweep", Some(&format!("job{job}-{suffix}")))
            .expect("init");
        run.set_parameters(
            &Value::from_json_str(&format!(r#"{{"job": {job}, "lr": 0.01}}"#)).unwrap(),
        )
        .unwrap();
        run.add_output_values(&[
            Value::map([("epoch", Value::from(0)), ("loss", 1.0.into())]),
            Value::map([("epoch", Value::from(1)), ("loss", 0.5.into())]),
        ])
        .unwrap();
        if job % 2 == 0 {
            run.add_input_table("sweep/tables/train").unwrap();
        }
        let mut batches = (0..rows)
            .step_by(10_000)
            .map(|start| Ok(metrics_batch(job, start, (rows - start).min(10_000))));
        run.append_metrics("metrics", &mut batches)
            .expect("metrics");
        run.put_bulk("model.bin", &blob(job)).expect("blob");
        run.set_status_completed().unwrap();
    }
}

/// The job's side: does nothing unless started by `start_job` with `JOB_ENV`.
#[test]
fn merge_job_child() {
    let (Ok(path), Ok(job)) = (std::env::var(JOB_ENV), std::env::var(JOB_ID_ENV)) else {
        return;
    };
    write_job_store(Path::new(&path), job.parse().expect("job id"));
}

/// Writes `count` job stores under `dir`, one child process each, all at once.
fn job_stores(dir: &Path, count: usize) -> Vec<PathBuf> {
    let paths: Vec<PathBuf> = (0..count)
        .map(|job| dir.join(format!("job{job}.runs")))
        .collect();
    let children: Vec<_> = paths
        .iter()
        .enumerate()
        .map(|(job, path)| {
            child_test("merge::merge_job_child")
                .env(JOB_ENV, path)
                .env(JOB_ID_ENV, job.to_string())
                .stdout(Stdio::null())
                .spawn()
                .expect("start a job")
        })
        .collect();
    for mut child in children {
        assert!(
            child.wait().expect("wait for a job").success(),
            "a job failed"
        );
    }
    for path in &paths {
        assert!(path.exists(), "{} was not written", path.display());
    }
    paths
}

/// Every run of `source` is in `dest` under the same url with the same parameters, outputs,
/// status, input tables (which exist in `dest` with the same rows), metrics rows and blobs.
fn assert_contains(dest: &Store, source: &Store) {
    for run in source.runs(None).unwrap() {
        let copy = dest
            .run(&run.url())
            .unwrap_or_else(|e| panic!("{} missing: {e}", run.url()));
        assert_eq!(copy.parameters().unwrap(), run.parameters().unwrap());
        assert_eq!(copy.output_values().unwrap(), run.output_values().unwrap());
        assert_eq!(copy.status().unwrap(), run.status().unwrap());
        assert_eq!(copy.input_tables().unwrap(), run.input_tables().unwrap());
        for url in run.input_tables().unwrap() {
            assert_eq!(
                dest.table(&url).unwrap().scan().unwrap(),
                source.table(&url).unwrap().scan().unwrap()
            );
        }
        let tables = run.metrics_tables().unwrap();
        let copied = copy.metrics_tables().unwrap();
        assert_eq!(copied.len(), tables.len());
        for (ours, theirs) in tables.iter().zip(&copied) {
            assert_eq!(theirs.row_count, ours.row_count);
            let rows = |store: &Store, url: &str| {
                let batches = store.table(url).unwrap().scan().unwrap();
                arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
            };
            assert_eq!(rows(dest, &theirs.url), rows(source, &ours.url));
        }
        for info in run.bulk_list().unwrap() {
            assert_eq!(
                copy.bulk_bytes(&info.name).unwrap(),
                run.bulk_bytes(&info.name).unwrap()
            );
        }
    }
}

/// What a "changed nothing" comparison looks at: file facts and every count.
fn snapshot(path: &Path) -> (StoreInfo, Vec<(String, u64)>) {
    let store = Store::open_read_only(path).unwrap();
    let mut info = store.info().unwrap();
    info.path = PathBuf::new();
    let tables = store
        .tables(None)
        .unwrap()
        .into_iter()
        .map(|t| (t.url, t.row_count))
        .collect();
    (info, tables)
}

/// What a failed merge must leave as it was: every count and table. (Column bytes a failed
/// merge appended past the high-water mark may have grown the file; they are unreferenced.)
fn contents(path: &Path) -> (StoreInfo, Vec<(String, u64)>) {
    let (mut info, tables) = snapshot(path);
    info.file_bytes = 0;
    info.redb_bytes = 0;
    info.column_extent_bytes = 0;
    info.extent_count = 0;
    info.superblock_generation = 0;
    (info, tables)
}

fn merge(dest: &Path, source: &Path, if_exists: MergeIfExists) -> runstore::Result<MergeReport> {
    let dest = Store::open_or_create(dest)?;
    let source = Store::open_read_only(source)?;
    dest.merge_from(
        &source,
        &MergeOptions {
            if_exists,
            ..Default::default()
        },
    )
}

#[test]
fn merge_job_stores_from_processes() {
    // The issue's size: it takes a couple of seconds.
    let count = 50;
    let dir = tempfile::tempdir().unwrap();
    let sources = job_stores(dir.path(), count);
    let dest_path = dir.path().join("all.runs");
    let dest = Store::create(&dest_path).unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let seen = calls.clone();
    let options = MergeOptions {
        progress: Some(Arc::new(move |progress: &MergeProgress| {
            assert!(progress.runs_done <= progress.runs_total);
            seen.fetch_add(1, Ordering::Relaxed);
        })),
        ..Default::default()
    };
    let mut total = MergeReport::default();
    for path in &sources {
        let source = Store::open_read_only(path).unwrap();
        let report = dest.merge_from(&source, &options).unwrap();
        assert_eq!(report.runs_copied, 2);
        assert_eq!(report.blobs, 2);
        total.add(&report);
    }
    let jobs = count as u64;
    let even = jobs.div_ceil(2);
    assert_eq!(total.runs_copied, 2 * jobs);
    assert_eq!(total.runs_skipped, 0);
    // The shared table is copied once and found equal in every later even job's store.
    assert_eq!(total.tables_reused, even - 1);
    assert_eq!(total.tables_copied, 2 * jobs + 1 + 1);
    assert_eq!(
        total.rows,
        jobs * (SEALED_METRICS_ROWS as u64 + 500) + 2 * 200
    );
    assert!(total.bytes > jobs * 2 * 20_000);
    assert!(calls.load(Ordering::Relaxed) >= 2 * jobs);
    assert_eq!(dest.runs(None).unwrap().len() as u64, 2 * jobs);
    let projects: Vec<String> = dest
        .projects()
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(projects, ["notes", "sweep"]);
    for path in &sources {
        assert_contains(&dest, &Store::open_read_only(path).unwrap());
    }
    drop(dest);
    assert_checks(&dest_path);

    // Merging every source again with skip adds nothing, not even a commit. A writer's first
    // open and close after the merges may trim redb's free tail (check's writable open used to
    // do it before `check` stopped writing), so the snapshot is taken after one.
    drop(Store::open(&dest_path).unwrap());
    let before = snapshot(&dest_path);
    for path in &sources {
        let report = merge(&dest_path, path, MergeIfExists::Skip).unwrap();
        assert_eq!(report.runs_skipped, 2);
        assert!(!report.changed(), "{report:?}");
    }
    assert_eq!(snapshot(&dest_path), before);
    assert_checks(&dest_path);
}

/// Two small stores with one clashing run url and one run each of their own.
fn clashing_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let make = |name: &str, loss: f64| {
        let path = dir.join(format!("{name}.runs"));
        let store = Store::create(&path).unwrap();
        let run = store.init("p", Some("shared")).unwrap();
        run.add_output_value(&Value::map([("loss", Value::from(loss))]))
            .unwrap();
        run.append_metrics(
            "m",
            &mut std::iter::once(Ok(metrics_batch(loss as i64, 0, 10))),
        )
        .unwrap();
        store.init("p", Some(&format!("own-{name}"))).unwrap();
        path
    };
    (make("a", 1.0), make("b", 2.0))
}

fn loss_of(path: &Path, url: &str) -> Value {
    let store = Store::open_read_only(path).unwrap();
    store.run(url).unwrap().output_values().unwrap()[0].clone()
}

#[test]
fn merge_if_exists_raise_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = clashing_pair(dir.path());
    merge(&a, &b, MergeIfExists::Raise).expect_err("a clash under raise");
    let before = contents(&a);
    let error = merge(&a, &b, MergeIfExists::Raise).unwrap_err();
    assert!(
        matches!(&error, Error::AlreadyExists { what } if what == "run p/runs/shared"),
        "{error}"
    );
    assert_eq!(contents(&a), before);
    assert!(Store::open_read_only(&a)
        .unwrap()
        .run("p/runs/own-b")
        .is_err());
    assert_checks(&a);
}

#[test]
fn merge_if_exists_skip_keeps_the_existing_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = clashing_pair(dir.path());
    let report = merge(&a, &b, MergeIfExists::Skip).unwrap();
    assert_eq!((report.runs_copied, report.runs_skipped), (1, 1));
    assert_eq!(
        loss_of(&a, "p/runs/shared"),
        Value::map([("loss", Value::from(1.0))])
    );
    Store::open_read_only(&a)
        .unwrap()
        .run("p/runs/own-b")
        .unwrap();
    assert_checks(&a);
}

#[test]
fn merge_if_exists_rename_picks_the_first_free_name() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = clashing_pair(dir.path());
    {
        let store = Store::open(&a).unwrap();
        store.init("p", Some("shared_0000")).unwrap();
    }
    let report = merge(&a, &b, MergeIfExists::Rename).unwrap();
    assert_eq!((report.runs_copied, report.runs_renamed), (2, 1));
    assert_eq!(
        loss_of(&a, "p/runs/shared"),
        Value::map([("loss", Value::from(1.0))])
    );
    assert_eq!(
        loss_of(&a, "p/runs/shared_0001"),
        Value::map([("loss", Value::from(2.0))])
    );
    let store = Store::open_read_only(&a).unwrap();
    let tables = store
        .run("p/runs/shared_0001")
        .unwrap()
        .metrics_tables()
        .unwrap();
    assert_eq!(tables[0].url, "p/runs/shared_0001/m");
    drop(store);
    assert_checks(&a);
}

#[test]
fn merge_if_exists_overwrite_replaces_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = clashing_pair(dir.path());
    let report = merge(&a, &b, MergeIfExists::Overwrite).unwrap();
    assert_eq!((report.runs_copied, report.runs_overwritten), (2, 1));
    assert_eq!(
        loss_of(&a, "p/runs/shared"),
        Value::map([("loss", Value::from(2.0))])
    );
    let store = Store::open_read_only(&a).unwrap();
    assert_eq!(store.runs(None).unwrap().len(), 3);
    assert_contains(&store, &Store::open_read_only(&b).unwrap());
    drop(store);
    assert_checks(&a);
}

#[test]
fn merge_input_table_of_other_content_follows_if_exists() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, rows: i64| {
        let path = dir.path().join(name);
        let store = Store::create(&path).unwrap();
        store
            .create_table("p", "train", &[metrics_batch(0, 0, rows)])
            .unwrap();
        let run = store.init("p", Some(name)).unwrap();
        run.add_input_table("p/tables/train").unwrap();
        path
    };
    let (a, b) = (make("a", 5), make("b", 6));
    let error = merge(&a, &b, MergeIfExists::Raise).unwrap_err();
    assert!(
        matches!(&error, Error::AlreadyExists { what } if what.contains("p/tables/train")),
        "{error}"
    );
    merge(&a, &b, MergeIfExists::Skip).unwrap();
    let store = Store::open_read_only(&a).unwrap();
    let run = store.run("p/runs/b").unwrap();
    assert_eq!(run.input_tables().unwrap(), ["p/tables/train_0000"]);
    assert_eq!(
        store.table("p/tables/train").unwrap().row_count().unwrap(),
        5
    );
    assert_eq!(
        store
            .table("p/tables/train_0000")
            .unwrap()
            .row_count()
            .unwrap(),
        6
    );
    drop(store);
    assert_checks(&a);
}

/// Flips one byte of the blob whose bytes are `blob(job)` in the file at `path`.
fn corrupt_blob(path: &Path, job: i64) {
    let mut bytes = std::fs::read(path).unwrap();
    let needle = &blob(job)[..64];
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the blob's bytes in the file");
    bytes[at + 10] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn merge_refuses_a_corrupted_source() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.runs");
    let bad = dir.path().join("bad.runs");
    write_job_store(&good, 1);
    write_job_store(&bad, 3);
    corrupt_blob(&bad, 3);
    let dest = dir.path().join("all.runs");
    let other = dir.path().join("other.runs");
    write_job_store(&other, 5);
    let open = |path: &Path| Store::open_read_only(path).unwrap();
    let store = Store::create(&dest).unwrap();
    store
        .merge_from(&open(&good), &MergeOptions::default())
        .unwrap();
    drop(store);
    let before = contents(&dest);

    let store = Store::open(&dest).unwrap();
    let error = store
        .merge_from(&open(&bad), &MergeOptions::default())
        .unwrap_err();
    assert!(
        matches!(&error, Error::Corrupted { reason, .. } if reason.contains("checksum")),
        "{error}"
    );
    let mut info = store.info().unwrap();
    info.path = PathBuf::new();
    assert_eq!(info.runs, before.0.runs);
    assert_eq!(info.tables, before.0.tables);
    assert_eq!(info.blobs, before.0.blobs);
    assert_eq!(info.column_used_bytes, before.0.column_used_bytes);
    // The source's damage is not the destination's: the same handle goes on merging.
    store
        .merge_from(&open(&other), &MergeOptions::default())
        .expect("a damaged source leaves the handle usable");
    assert_eq!(store.runs(None).unwrap().len(), 4);
    drop(store);
    assert_checks(&dest);
    let before = contents(&dest);

    // The command refuses the source and names the problem (found by the segment CRCs the
    // merge checks as it copies; its up-front check reads only the catalog); DEST is
    // unchanged by it.
    let output = runstore(&[
        "merge",
        dest.to_str().unwrap(),
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
        "--if-exists",
        "skip",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refused") && stderr.contains("checksum"),
        "{stderr}"
    );
    assert_eq!(contents(&dest), before);
}

#[test]
fn merge_refuses_a_store_into_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.runs");
    write_job_store(&path, 1);
    let store = Store::open(&path).unwrap();
    let error = store
        .merge_from(&store, &MergeOptions::default())
        .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
}

#[test]
fn cli_merge_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let sources: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("j{i}.runs")))
        .collect();
    for (i, path) in sources.iter().enumerate() {
        let path = path.to_str().unwrap();
        let name = format!("job{i}");
        stdout(&runstore(&[
            "init",
            path,
            "--project",
            "sweep",
            "--name",
            &name,
            "--param",
            "lr=0.1",
        ]));
        let url = format!("sweep/runs/{name}");
        stdout(&runstore(&[
            "log",
            path,
            &url,
            "--output",
            r#"{"epoch":1,"loss":0.5}"#,
        ]));
        let rows = dir.path().join(format!("rows{i}.jsonl"));
        std::fs::write(
            &rows,
            "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"loss\":0.25}\n",
        )
        .unwrap();
        let output = runstore(&[
            "append",
            path,
            &url,
            "--table",
            "val",
            "--from",
            rows.to_str().unwrap(),
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let dest = dir.path().join("all.runs");
    let mut args = vec!["merge", dest.to_str().unwrap()];
    args.extend(sources.iter().map(|p| p.to_str().unwrap()));
    let text = stdout(&runstore(&args));
    assert_eq!(text.matches("merged ").count(), 3, "{text}");
    assert!(text.contains("total into"), "{text}");
    let runs = stdout(&runstore(&["runs", dest.to_str().unwrap()]));
    for i in 0..3 {
        assert!(runs.contains(&format!("sweep/runs/job{i}")), "{runs}");
    }
    let store = Store::open_read_only(&dest).unwrap();
    assert_eq!(
        store
            .table("sweep/runs/job2/val")
            .unwrap()
            .row_count()
            .unwrap(),
        2
    );
    drop(store);

    // Again: raise refuses every source (exit 1); skip adds nothing.
    let before = contents(&dest);
    assert_eq!(runstore(&args).status.code(), Some(1));
    args.extend(["--if-exists", "skip"]);
    let text = stdout(&runstore(&args));
    assert!(text.contains("0 runs copied"), "{text}");
    assert_eq!(contents(&dest), before);
    let check = stdout(&runstore(&["check", dest.to_str().unwrap()]));
    assert!(check.contains("0 problems"), "{check}");
}

#[test]
fn merge_killed_midway_resumes_with_skip() {
    let dir = tempfile::tempdir().unwrap();
    let sources = job_stores(dir.path(), 12);
    let dest = dir.path().join("all.runs");
    let mut args: Vec<&str> = vec!["merge", dest.to_str().unwrap()];
    args.extend(sources.iter().map(|p| p.to_str().unwrap()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_runstore"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let _ = child.kill();
    child.wait().unwrap();

    // A commit boundary: each source's runs are all there or none are.
    if dest.exists() {
        let store = Store::open(&dest).expect("a writable open recovers the store");
        let runs = store.runs(None).unwrap();
        for job in 0..sources.len() {
            let present = runs
                .iter()
                .filter(|run| run.name().starts_with(&format!("job{job}-")))
                .count();
            assert!(present == 0 || present == 2, "job {job}: {present} runs");
        }
        eprintln!("killed after {} of {} runs", runs.len(), 2 * sources.len());
        // Runs hold the store open too.
        drop((runs, store));
        assert_checks(&dest);
    }

    args.extend(["--if-exists", "skip"]);
    stdout(&runstore(&args));
    let store = Store::open_read_only(&dest).unwrap();
    assert_eq!(store.runs(None).unwrap().len(), 2 * sources.len());
    for path in &sources {
        assert_contains(&store, &Store::open_read_only(path).unwrap());
    }
    drop(store);
    assert_checks(&dest);
}

/// `tests/fixtures/unreadable_tables.runs`, written by runstore before schemas were checked
/// against the reader: a good run, and three runs whose metrics tables no reader can rebuild
/// (a struct nested 35 deep, a list nested 40 deep, a union column). Copied to a temporary
/// folder, so the test never touches the fixture.
fn unreadable_source(dir: &Path) -> PathBuf {
    let path = dir.join("unreadable.runs");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/unreadable_tables.runs");
    std::fs::copy(fixture, &path).unwrap();
    path
}

#[test]
fn the_catalog_only_check_finds_every_table_the_full_check_finds_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let source = unreadable_source(dir.path());
    let full = runstore::check(&source).unwrap();
    let quick =
        runstore::check_with(&source, &runstore::CheckOptions { column_data: false }).unwrap();
    assert_eq!(full.problems.len(), 3, "{:?}", full.problems);
    assert_eq!(quick.problems.len(), 3, "{:?}", quick.problems);
    for (table, problem) in ["deep", "deeplist", "union"].iter().zip(&quick.problems) {
        assert!(
            problem.contains(&format!("proj/runs/{table}/metrics_0000")),
            "{problem}"
        );
    }
}

#[test]
fn merge_refuses_a_source_with_an_unreadable_table_and_copies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source = unreadable_source(dir.path());
    let dest = dir.path().join("dest.runs");
    let output = runstore(&["merge", dest.to_str().unwrap(), source.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("fails `runstore check` (3 problems)"),
        "{stderr}"
    );
    assert!(stderr.contains("nests deeper than 32"), "{stderr}");
    let dest_store = Store::open_read_only(&dest).unwrap();
    assert_eq!(dest_store.run_count().unwrap(), 0);
    drop(dest_store);
    let check = runstore::check(&dest).unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);
}

#[test]
fn merge_from_and_copy_to_refuse_an_unreadable_table_and_the_destination_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let source_path = unreadable_source(dir.path());
    let source = Store::open_read_only(&source_path).unwrap();
    let dest_path = dir.path().join("dest.runs");
    let dest = Store::create(&dest_path).unwrap();
    let error = dest
        .merge_from(&source, &MergeOptions::default())
        .unwrap_err();
    assert!(matches!(error, Error::Corrupted { .. }), "{error:?}");
    assert_eq!(dest.run_count().unwrap(), 0);
    for name in ["deep", "deeplist", "union"] {
        let run = source.run(&format!("proj/runs/{name}")).unwrap();
        let error = run.copy_to(&dest, &Default::default()).unwrap_err();
        assert!(
            matches!(error, Error::Corrupted { .. }),
            "{name}: {error:?}"
        );
    }
    // The good run still copies: the destination handle was not poisoned by the source.
    source
        .run("proj/runs/good")
        .unwrap()
        .copy_to(&dest, &Default::default())
        .unwrap();
    assert_eq!(dest.run_count().unwrap(), 1);
    drop(dest);
    let check = runstore::check(&dest_path).unwrap();
    assert!(check.is_ok(), "{:?}", check.problems);
}
