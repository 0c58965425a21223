//! Power loss and failing disks, through the fault-injecting backend (`runstore::fault`).
//!
//! Each trial runs a random sequence of operations on two copies of one store: a twin on the
//! ordinary backend, and the subject on a backend whose `n`-th write, length change or sync
//! fails (and every later one: the disk died). When the subject's operation fails, the power
//! goes: the file is replaced by what the disk could have kept (the bytes durable at the last
//! sync, plus a random subset of the sectors written since). Then the store must open, pass
//! `check`, and hold exactly the state after the last acknowledged operation, or after the
//! failed one (which may have reached the disk before its error).
//!
//! The normal run does 200 trials; the soak run is
//! `RUNSTORE_POWER_TRIALS=2000 cargo test --release --test it power_loss -- --nocapture`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch};
use runstore::fault::{open_with_faults, FaultKind, FaultPlan};
use runstore::{CopyIfExists, CopyOptions, Error, MetricsOptions, RunStatus, Store, Value};

use crate::util::{temp_store, Rng};

/// The store's content without timestamps (the twin's times differ).
fn state(store: &Store) -> runstore::Result<String> {
    let mut out = String::new();
    for run in store.runs(None)? {
        let info = run.info()?;
        writeln!(
            out,
            "run {} {:?} {:?} params={} inputs={:?} {:?} outputs={}",
            info.url,
            info.description,
            info.status,
            info.parameters,
            info.input_tables,
            info.input_values,
            info.output_count
        )
        .unwrap();
        for value in run.output_values()? {
            writeln!(out, "  output {value}").unwrap();
        }
        for table in run.metrics_table_handles()? {
            writeln!(out, "  table {} rows={}", table.url(), table.row_count()?).unwrap();
            for batch in table.scan()? {
                writeln!(out, "    {:?}", batch.columns()).unwrap();
            }
        }
        for blob in run.bulk_list()? {
            let bytes = run.bulk_bytes(&blob.name)?;
            writeln!(out, "  blob {} {}", blob.name, crc32fast::hash(&bytes)).unwrap();
        }
    }
    Ok(out)
}

/// One random operation, applied identically to the twin and the subject.
#[derive(Clone, Debug)]
enum Op {
    Init(String),
    Params(String, i64),
    Output(String, i64),
    Metrics(String, i64),
    Blob(String, usize),
    Status(String),
    Copy(String),
    Delete(String),
}

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

fn random_op(rng: &mut Rng) -> Op {
    let name = NAMES[rng.below(NAMES.len() as u64) as usize].to_string();
    let n = rng.below(1000) as i64;
    match rng.below(16) {
        0..=2 => Op::Init(name),
        3 | 4 => Op::Params(name, n),
        5..=8 => Op::Output(name, n),
        9 | 10 => Op::Metrics(name, n),
        11 => Op::Blob(name, rng.below(20_000) as usize),
        12 => Op::Status(name),
        13 | 14 => Op::Copy(name),
        _ => Op::Delete(name),
    }
}

fn apply(store: &Store, op: &Op) -> runstore::Result<()> {
    let url = |name: &str| format!("p/runs/{name}");
    match op {
        Op::Init(name) => store.init("p", Some(name)).map(drop),
        Op::Params(name, n) => store.run(&url(name))?.set_parameters(&Value::map([
            (format!("k{}", n % 5).as_str(), Value::from(*n)),
            ("lr", Value::from(*n as f64 / 1000.0)),
        ])),
        Op::Output(name, n) => store.run(&url(name))?.add_output_value(&Value::map([
            ("epoch", Value::from(*n)),
            ("loss", Value::from(1.0 / (*n as f64 + 1.0))),
        ])),
        Op::Metrics(name, n) => {
            let rows = 50 + n;
            let batch = RecordBatch::try_from_iter([
                (
                    "example_id",
                    Arc::new(Int64Array::from_iter_values(0..rows)) as ArrayRef,
                ),
                (
                    "loss",
                    Arc::new(Float32Array::from_iter_values(
                        (0..rows).map(|i| (i * n) as f32),
                    )) as ArrayRef,
                ),
            ])
            .unwrap();
            store
                .run(&url(name))?
                .add_metrics_data(&batch, &MetricsOptions::default())
                .map(drop)
        }
        Op::Blob(name, len) => {
            let bytes: Vec<u8> = (0..*len).map(|i| (i * 7 + len) as u8).collect();
            store
                .run(&url(name))?
                .put_bulk("blob.bin", &bytes)
                .map(drop)
        }
        Op::Status(name) => store.run(&url(name))?.set_status(RunStatus::Completed),
        Op::Copy(name) => store
            .run(&url(name))?
            .copy(&CopyOptions {
                run_name: Some(format!("{name}-copy")),
                project_name: None,
                destination_url: None,
                if_exists: CopyIfExists::Overwrite,
            })
            .map(drop),
        Op::Delete(name) => store.run(&url(name))?.delete(),
    }
}

/// What a trial saw.
#[derive(Debug, Default)]
struct Outcome {
    operations: u64,
    failed_at_step: Option<usize>,
    matched_failed_op: bool,
}

/// The base store every trial starts from: one run with some of everything.
fn base_store(path: &Path) {
    let store = Store::create(path).unwrap();
    for op in [
        Op::Init("a".into()),
        Op::Params("a".into(), 3),
        Op::Output("a".into(), 1),
        Op::Metrics("a".into(), 7),
        Op::Blob("a".into(), 5000),
    ] {
        apply(&store, &op).unwrap();
    }
}

const STEPS: usize = 12;

fn trial(seed: u64, base: &[u8], dir: &Path) -> Outcome {
    let mut rng = Rng::new(seed);
    let ops: Vec<Op> = (0..STEPS).map(|_| random_op(&mut rng)).collect();
    let subject = dir.join(format!("subject-{seed}.runs"));
    let twin_path = dir.join(format!("twin-{seed}.runs"));

    // A dry run counts the mutating operations, so the fault lands somewhere in the sequence.
    std::fs::write(&subject, base).unwrap();
    let total = {
        let (store, handle) = open_with_faults(&subject, FaultPlan::never()).unwrap();
        for op in &ops {
            let _ = apply(&store, op);
        }
        drop(store);
        handle.operations()
    };
    std::fs::write(&subject, base).unwrap();
    std::fs::write(&twin_path, base).unwrap();
    let plan = FaultPlan {
        fail_at: Some(rng.below(total.max(1) + 2)),
        kind: if rng.below(2) == 0 {
            FaultKind::Io
        } else {
            FaultKind::NoSpace
        },
        sticky: true,
    };
    let twin = Store::open(&twin_path).unwrap();
    let (store, handle) = open_with_faults(&subject, plan).unwrap();
    let mut acknowledged = state(&twin).unwrap();
    let mut candidates = vec![];
    let mut outcome = Outcome::default();
    for (step, op) in ops.iter().enumerate() {
        let expected = apply(&twin, op);
        let got = apply(&store, op);
        match (&expected, &got) {
            (Ok(()), Ok(())) => acknowledged = state(&twin).unwrap(),
            (Err(_), Err(_)) if handle.failures() == 0 => {}
            (_, Err(error)) if handle.failures() > 0 => {
                assert!(
                    matches!(error, Error::Io { .. } | Error::Database { .. }),
                    "seed {seed} step {step} {op:?}: an injected fault gave {error:?}"
                );
                candidates.push(state(&twin).unwrap());
                outcome.failed_at_step = Some(step);
                break;
            }
            _ => panic!("seed {seed} step {step} {op:?}: twin {expected:?}, subject {got:?}"),
        }
    }
    candidates.insert(0, acknowledged);
    outcome.operations = handle.operations();
    drop(store);
    drop(twin);

    handle.apply_power_loss(&subject, rng.next_u64()).unwrap();
    let recovered = Store::open(&subject)
        .unwrap_or_else(|e| panic!("seed {seed}: the store does not open after power loss: {e}"));
    let after = state(&recovered).unwrap();
    drop(recovered);
    let report = runstore::check(&subject).unwrap();
    assert!(
        report.is_ok(),
        "seed {seed}: check after power loss: {:?}",
        report.problems
    );
    let position = candidates.iter().position(|candidate| *candidate == after);
    assert!(
        position.is_some(),
        "seed {seed}: after power loss the store holds neither the acknowledged state nor the \
         failed operation's ({:?})\nacknowledged:\n{}\nrecovered:\n{}",
        outcome.failed_at_step.map(|step| &ops[step]),
        candidates[0],
        after
    );
    outcome.matched_failed_op = position == Some(1);
    let _ = std::fs::remove_file(&subject);
    let _ = std::fs::remove_file(&twin_path);
    outcome
}

#[test]
fn power_loss_after_an_injected_fault_leaves_an_acknowledged_state() {
    let (dir, path) = temp_store();
    base_store(&path);
    let base = std::fs::read(&path).unwrap();
    let trials: u64 = std::env::var("RUNSTORE_POWER_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let first: u64 = std::env::var("RUNSTORE_POWER_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let (mut failed, mut completed_anyway, mut operations) = (0, 0, 0);
    for seed in first..first + trials {
        let outcome = trial(seed, &base, dir.path());
        operations += outcome.operations;
        if outcome.failed_at_step.is_some() {
            failed += 1;
        }
        if outcome.matched_failed_op {
            completed_anyway += 1;
        }
    }
    eprintln!(
        "{trials} power-loss trials: {failed} hit an injected fault ({completed_anyway} of those \
         kept the failed operation), {operations} mutating operations in all"
    );
    assert!(failed > trials / 2, "too few trials reached their fault");
}

#[test]
fn a_full_disk_fails_the_call_keeps_the_last_commit_and_a_reopened_writer_continues() {
    let (_dir, path) = temp_store();
    base_store(&path);
    let before = state(&Store::open_read_only(&path).unwrap()).unwrap();
    let (store, handle) = open_with_faults(
        &path,
        FaultPlan {
            fail_at: Some(0),
            kind: FaultKind::NoSpace,
            sticky: false,
        },
    )
    .unwrap();
    let run = store.run("p/runs/a").unwrap();
    let error = run
        .add_output_value(&Value::map([("epoch", Value::from(2))]))
        .unwrap_err();
    match &error {
        Error::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(28), "{error}"),
        other => panic!("expected Error::Io with ENOSPC, got {other:?}"),
    }
    // The last commit is still what readers see. The failed handle refuses even reads (redb
    // will not trust its cache after an I/O error) with an error that says to reopen.
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(state(&reader).unwrap(), before);
    drop(reader);
    let refused = state(&store).unwrap_err();
    let mut chain = refused.to_string();
    let mut cause = std::error::Error::source(&refused);
    while let Some(error) = cause {
        chain.push_str(&format!(": {error}"));
        cause = error.source();
    }
    assert!(chain.contains("re-open"), "{chain}");
    // Space came back: this handle stays refused (the page cache may hold bytes the disk did
    // not take), and says to reopen; a reopened writer continues.
    handle.heal();
    let again = run.add_output_value(&Value::map([("epoch", Value::from(2))]));
    assert!(
        again.is_err(),
        "a handle that hit a write error must not write again"
    );
    drop(run);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(state(&store).unwrap(), before);
    let run = store.run("p/runs/a").unwrap();
    run.add_output_value(&Value::map([("epoch", Value::from(2))]))
        .unwrap();
    assert_eq!(run.output_count().unwrap(), 2);
    drop(run);
    drop(store);
    assert!(runstore::check(&path).unwrap().is_ok());
}

/// The same on a real file system that fills up. Needs a directory on a small file system,
/// e.g. as root: `mkdir -p /tmp/small && mount -t tmpfs -o size=3m tmpfs /tmp/small`, then
/// `RUNSTORE_SMALL_FS=/tmp/small cargo test --release --test it real_full_disk -- --ignored`.
#[test]
#[ignore = "needs RUNSTORE_SMALL_FS: a directory on a small file system"]
fn real_full_disk_fails_with_enospc_and_the_store_continues_after_space_returns() {
    let dir = std::path::PathBuf::from(
        std::env::var_os("RUNSTORE_SMALL_FS")
            .expect("set RUNSTORE_SMALL_FS to a small file system"),
    );
    let path = dir.join("full.runs");
    let filler = dir.join("filler.bin");
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&filler);
    base_store(&path);
    let store = Store::open(&path).unwrap();
    let run = store.run("p/runs/a").unwrap();
    // Fill the rest of the disk with a file we can delete later.
    let mut fill = std::fs::File::create(&filler).unwrap();
    let chunk = vec![1u8; 64 * 1024];
    while std::io::Write::write_all(&mut fill, &chunk).is_ok() {}
    drop(fill);
    let mut acknowledged = run.output_count().unwrap();
    let mut error = None;
    for i in 0..10_000 {
        match run.put_bulk(&format!("blob{i}"), &vec![i as u8; 256 * 1024]) {
            Ok(_) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        match run.add_output_value(&Value::map([("i", Value::from(i as i64))])) {
            Ok(()) => acknowledged += 1,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let error = error.expect("the disk never filled up");
    match &error {
        Error::Io {
            source, path: at, ..
        } => {
            assert_eq!(source.raw_os_error(), Some(28), "{error}");
            assert_eq!(at, &path);
        }
        other => panic!("expected Error::Io with ENOSPC, got {other:?}"),
    }
    // The last commit is intact and readable (a reader that opens while the failed writer is
    // still open; once that writer is gone without a clean close, a writer must open the file
    // first, as after a crash).
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(
        reader.run("p/runs/a").unwrap().output_count().unwrap(),
        acknowledged
    );
    drop(reader);
    drop(run);
    drop(store);
    // Space returns; a reopened writer continues.
    std::fs::remove_file(&filler).unwrap();
    let store = Store::open(&path).unwrap();
    let run = store.run("p/runs/a").unwrap();
    run.add_output_value(&Value::map([("after", Value::from(true))]))
        .unwrap();
    assert_eq!(run.output_count().unwrap(), acknowledged + 1);
    drop(run);
    drop(store);
    assert!(runstore::check(&path).unwrap().is_ok());
    let _ = std::fs::remove_file(&path);
}
