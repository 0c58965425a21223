//! Kill-the-child crash tests: a child process commits as fast as it can and says what each
//! commit made durable; the parent kills it with SIGKILL at a random moment and then checks
//! that nothing acknowledged was lost. The child, the parent and the checks are the harness in
//! `tests/harness/crash/` (its module docs say what is committed and what is asserted after each
//! kill), shared with `examples/crash_soak.rs`.
//!
//! The child is this test binary run again (`std::env::current_exe()`) with only
//! [`crash_child`] selected and `RUNSTORE_CRASH_CHILD=<store path>` in its environment; without
//! that variable `crash_child` returns at once, so a normal test run skips it.
//!
//! `RUNSTORE_CRASH_KILLS=N` changes the number of kills of `crash_kill_loop` (default 50);
//! `RUNSTORE_CRASH_SEED=S` repeats its operation choices and delays (kill timing still varies
//! with the machine). `cargo run --release --example crash_soak` is the long version.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use runstore::{MetricsOptions, RunStatus, Store, Value};

use crate::harness::crash::*;
use crate::util::{child_test, seed_from_env, temp_store, Rng};

const CHILD_ENV: &str = "RUNSTORE_CRASH_CHILD";
const CHILD_SEED_ENV: &str = "RUNSTORE_CRASH_CHILD_SEED";
const CHILD_INCARNATION_ENV: &str = "RUNSTORE_CRASH_CHILD_INCARNATION";

// ---------------------------------------------------------------------------------------------
// The child

/// The child's side: does nothing unless started by a crash test with `RUNSTORE_CRASH_CHILD`.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let number = |name: &str| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("crash child: {name} is not set to a number"))
    };
    let config = ChildConfig {
        seed: number(CHILD_SEED_ENV),
        incarnation: number(CHILD_INCARNATION_ENV),
    };
    child_main(Path::new(&path), config);
}

/// The command that starts a child on `path`: this test binary with only [`crash_child`]
/// selected.
fn child_command(path: &Path, config: &ChildConfig) -> Result<Command, String> {
    let mut command = child_test("crash::crash_child");
    command
        .env(CHILD_ENV, path)
        .env(CHILD_SEED_ENV, config.seed.to_string())
        .env(CHILD_INCARNATION_ENV, config.incarnation.to_string());
    Ok(command)
}

// ---------------------------------------------------------------------------------------------
// The parent

/// One kill of the loop: spawn, kill, verify.
fn kill_once(
    journal: &mut Journal,
    path: &Path,
    rng: &mut Rng,
    plan: KillPlan,
) -> Result<(), String> {
    let config = ChildConfig {
        seed: rng.next_u64(),
        incarnation: journal.kills,
    };
    let lines = run_child_and_kill(child_command(path, &config)?, path, plan)?;
    journal.kills += 1;
    let in_flight = journal.take_lines(&lines)?;
    journal.verify(path, in_flight.as_ref())
}

/// Kills a writer `RUNSTORE_CRASH_KILLS` (default 50) times at random moments on one store, so
/// damage accumulates, and checks after each kill that the store is intact and holds every
/// acknowledged commit.
#[test]
fn crash_kill_loop() {
    let kills: u64 = std::env::var("RUNSTORE_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let seed = seed_from_env("RUNSTORE_CRASH_SEED");
    let (_dir, path) = temp_store();
    drop(Store::create(&path).expect("create store"));
    let mut rng = Rng::new(seed);
    let mut journal = Journal::default();
    let started = Instant::now();
    for _ in 0..kills {
        let plan = KillPlan::random(&mut rng);
        if let Err(error) = kill_once(&mut journal, &path, &mut rng, plan) {
            panic!("kill {} (seed {seed}, {plan:?}): {error}", journal.kills);
        }
    }
    let file_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "crash_kill_loop: {} seed={seed} file_bytes={file_bytes} in {:.1?}\ncrash_kill_loop: {}",
        journal.summary(),
        started.elapsed(),
        journal.op_summary()
    );
    assert!(journal.acks > 0, "no commit was acknowledged");
    assert!(
        journal.problems.is_empty(),
        "seed {seed}: {}",
        journal.problems.join("\n")
    );
    assert_eq!(journal.losses, 0);
}

/// A store copied with `std::fs::copy` after its writer was killed (a cold copy) opens
/// read-write, which repairs it, passes `check`, and holds every acknowledged commit.
#[test]
fn crash_cold_copy_after_kill_opens_and_checks() {
    let seed = seed_from_env("RUNSTORE_CRASH_SEED");
    let (dir, path) = temp_store();
    drop(Store::create(&path).expect("create store"));
    let mut rng = Rng::new(seed);
    let mut journal = Journal::default();
    for round in 0..3 {
        let config = ChildConfig {
            seed: rng.next_u64(),
            incarnation: round,
        };
        let plan = KillPlan {
            delay: Duration::from_millis(rng.range(5, 60)),
            after_ready: true,
            min_acks: 5,
        };
        let lines = child_command(&path, &config)
            .and_then(|child| run_child_and_kill(child, &path, plan))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        journal.kills += 1;
        let in_flight = journal
            .take_lines(&lines)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let copy = dir.path().join(format!("copy-{round}.runs"));
        std::fs::copy(&path, &copy).expect("copy the store");
        // The copy gets the checks; the original stays as the killed writer left it, for the
        // next round's child to repair.
        let mut copy_journal = Journal {
            state: journal.state.clone(),
            ..Journal::default()
        };
        copy_journal
            .verify(&copy, in_flight.as_ref())
            .unwrap_or_else(|e| panic!("seed {seed}, round {round}: {e}"));
        assert!(
            copy_journal.problems.is_empty(),
            "seed {seed}, round {round}: {}",
            copy_journal.problems.join("\n")
        );
        journal.state = copy_journal.state;
    }
    assert!(journal.acks >= 15, "{}", journal.summary());
}

/// Right after a writer is killed, a read-only open works (it recovers the store in memory)
/// and sees what a writer then finds; once a writer has opened the store (and while it has it
/// open), a read-only open works and sees every acknowledged commit.
#[test]
fn crash_read_only_open_after_kill() {
    let seed = seed_from_env("RUNSTORE_CRASH_SEED");
    let (_dir, path) = temp_store();
    drop(Store::create(&path).expect("create store"));
    let mut rng = Rng::new(seed);
    let mut journal = Journal::default();
    let config = ChildConfig {
        seed: rng.next_u64(),
        incarnation: 0,
    };
    let plan = KillPlan {
        delay: Duration::from_millis(rng.range(5, 40)),
        after_ready: true,
        min_acks: 3,
    };
    let lines = child_command(&path, &config)
        .and_then(|child| run_child_and_kill(child, &path, plan))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let in_flight = journal
        .take_lines(&lines)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let read_only = Store::open_read_only(&path).expect("read-only open after a kill");
    let (seen, problems) = read_state(&read_only).expect("read through the crashed store");
    assert!(problems.is_empty(), "{problems:?}");
    drop(read_only);
    let writer = Store::open(&path).expect("a writer opens (and repairs) the store");
    let reader = Store::open_read_only(&path).expect("read-only open beside the writer");
    let (found, problems) = read_state(&reader).expect("read through the reader");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        seen, found,
        "the crashed store read-only, then after recovery"
    );
    journal
        .compare(found, in_flight.as_ref())
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert!(
        journal.problems.is_empty(),
        "{}",
        journal.problems.join("\n")
    );
    drop(reader);
    drop(writer);
    let reader = Store::open_read_only(&path).expect("read-only open after the writer closed");
    let (found, _) = read_state(&reader).expect("read through the reader");
    assert_eq!(found, journal.state);
}

/// The oracle itself: the protocol lines round-trip, and `Journal::compare` accepts the
/// acknowledged state or it plus the commit in flight, and flags anything else as a loss.
#[test]
fn crash_journal_accepts_in_flight_and_flags_losses() {
    let url = runstore::run_url(PROJECT, "r0-0");
    let ops = [
        CrashOp::Init { url: url.clone() },
        CrashOp::Output {
            url: url.clone(),
            outputs: 1,
        },
        CrashOp::Params {
            url: url.clone(),
            key: "lr".into(),
            value: 7,
        },
        CrashOp::Put {
            url: url.clone(),
            blob: "ckpt".into(),
            len: 3,
            crc: crc32fast::hash(b"abc"),
        },
        CrashOp::Status {
            url: url.clone(),
            status: RunStatus::PostProcessing,
        },
        CrashOp::Copy {
            from: url.clone(),
            to: runstore::run_url(PROJECT, "c0-5"),
        },
        CrashOp::Vacuum { runs: 2 },
        CrashOp::Delete {
            url: runstore::run_url(PROJECT, "c0-5"),
        },
    ];
    let mut lines = vec!["test crash::crash_child ... ".to_string(), "ready".into()];
    for (n, op) in ops.iter().enumerate() {
        let words: Vec<String> = op.to_string().split(' ').map(String::from).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(CrashOp::parse(&words).as_ref(), Some(op), "{op}");
        lines.push(format!("begin {n} {op}"));
        lines.push(format!("ack {n} {op}"));
    }
    let in_flight = CrashOp::Output {
        url: url.clone(),
        outputs: 2,
    };
    lines.push(format!("begin {} {in_flight}", ops.len()));
    let mut journal = Journal::default();
    assert_eq!(journal.take_lines(&lines), Ok(Some(in_flight.clone())));
    assert_eq!(journal.acks, ops.len() as u64);
    let acknowledged = journal.state.clone();
    assert_eq!(acknowledged[&url].outputs, 1);
    assert_eq!(acknowledged[&url].status, RunStatus::PostProcessing);
    assert_eq!(acknowledged.len(), 1);

    // The acknowledged state, and it plus the commit in flight, are both fine.
    journal
        .compare(acknowledged.clone(), Some(&in_flight))
        .unwrap();
    let mut landed = acknowledged.clone();
    landed.get_mut(&url).unwrap().outputs = 2;
    journal.compare(landed, Some(&in_flight)).unwrap();
    assert_eq!((journal.losses, journal.in_flight_landed), (0, 1));

    // A lost acknowledged output, a changed blob, an invented run: each is a loss.
    let mut journal = Journal {
        state: acknowledged.clone(),
        ..Journal::default()
    };
    let mut lost = acknowledged.clone();
    lost.get_mut(&url).unwrap().outputs = 0;
    journal.compare(lost, Some(&in_flight)).unwrap();
    journal.state = acknowledged.clone();
    let mut changed = acknowledged.clone();
    changed
        .get_mut(&url)
        .unwrap()
        .blobs
        .insert("ckpt".into(), (3, 0));
    journal.compare(changed, None).unwrap();
    journal.state = acknowledged.clone();
    let mut invented = acknowledged.clone();
    invented.insert(runstore::run_url(PROJECT, "ghost"), RunState::new());
    journal.compare(invented, None).unwrap();
    assert_eq!(journal.losses, 3, "{:?}", journal.problems);

    // An ack without its begin, or a second begin before the ack, is a broken child.
    let mut journal = Journal::default();
    assert!(journal.take_lines(&[format!("ack 0 init {url}")]).is_err());
    assert!(journal
        .take_lines(&[format!("begin 0 init {url}"), format!("begin 1 init {url}")])
        .is_err());
}

/// The table part of the oracle: the table ops round-trip; a group writer's acknowledged rows
/// may or may not be in the store but its flushed rows must; an append in flight may land; a
/// copied run has copies of its tables, a deleted run's tables are gone; anything else is a
/// loss.
#[test]
fn crash_journal_table_rows() {
    let url = runstore::run_url(PROJECT, "r0-0");
    let copy = runstore::run_url(PROJECT, "c0-9");
    let t = |name: &str| format!("{url}/{name}");
    let ops = [
        CrashOp::Init { url: url.clone() },
        CrashOp::Table {
            url: url.clone(),
            table: "t0x1_0000".into(),
            rows: 70_000,
        },
        CrashOp::Append {
            kind: AppendKind::Store,
            url: t("t0x1_0000"),
            add: 5,
            rows: 70_005,
        },
        CrashOp::Writer {
            url: url.clone(),
            table: "w0x3_0000".into(),
            group: false,
        },
        CrashOp::Append {
            kind: AppendKind::Row,
            url: t("w0x3_0000"),
            add: 1,
            rows: 1,
        },
        CrashOp::Append {
            kind: AppendKind::Batch,
            url: t("w0x3_0000"),
            add: 9,
            rows: 10,
        },
        CrashOp::Flush {
            url: t("w0x3_0000"),
            rows: 10,
        },
        CrashOp::Close {
            url: t("w0x3_0000"),
            rows: 10,
        },
        CrashOp::Writer {
            url: url.clone(),
            table: "w0x8_0000".into(),
            group: true,
        },
        CrashOp::Append {
            kind: AppendKind::GroupBatch,
            url: t("w0x8_0000"),
            add: 100,
            rows: 100,
        },
        CrashOp::Flush {
            url: t("w0x8_0000"),
            rows: 100,
        },
        CrashOp::Append {
            kind: AppendKind::GroupRow,
            url: t("w0x8_0000"),
            add: 1,
            rows: 101,
        },
        CrashOp::Append {
            kind: AppendKind::GroupBatch,
            url: t("w0x8_0000"),
            add: 20,
            rows: 121,
        },
        CrashOp::Copy {
            from: url.clone(),
            to: copy.clone(),
        },
    ];
    let mut lines = vec!["ready".to_string()];
    for (n, op) in ops.iter().enumerate() {
        let words: Vec<String> = op.to_string().split(' ').map(String::from).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(CrashOp::parse(&words).as_ref(), Some(op), "{op}");
        lines.push(format!("begin {n} {op}"));
        lines.push(format!("ack {n} {op}"));
    }
    let in_flight = CrashOp::Append {
        kind: AppendKind::Store,
        url: t("t0x1_0000"),
        add: 3,
        rows: 70_008,
    };
    lines.push(format!("begin {} {in_flight}", ops.len()));
    let mut journal = Journal::default();
    assert_eq!(journal.take_lines(&lines), Ok(Some(in_flight.clone())));
    let acknowledged = journal.state.clone();
    let rows = |state: &State, run: &str, name: &str| state[run].tables[name];
    assert_eq!(rows(&acknowledged, &url, "t0x1_0000"), Rows::exact(70_005));
    assert_eq!(rows(&acknowledged, &url, "w0x3_0000"), Rows::exact(10));
    let group = Rows { min: 100, max: 121 };
    assert_eq!(rows(&acknowledged, &url, "w0x8_0000"), group);
    assert_eq!(rows(&acknowledged, &copy, "w0x8_0000"), group);

    // What a store may hold: the group writer's unflushed rows in part (one run) or not at
    // all (the other), the append in flight landed or not.
    let found = |t0x1: u64, w0x8: u64, copied_w0x8: u64| {
        let mut found = acknowledged.clone();
        for run in found.values_mut() {
            for rows in run.tables.values_mut() {
                *rows = Rows::exact(rows.min);
            }
        }
        let run = found.get_mut(&url).unwrap();
        run.tables.insert("t0x1_0000".into(), Rows::exact(t0x1));
        run.tables.insert("w0x8_0000".into(), Rows::exact(w0x8));
        let run = found.get_mut(&copy).unwrap();
        run.tables.insert("t0x1_0000".into(), Rows::exact(70_005));
        run.tables
            .insert("w0x8_0000".into(), Rows::exact(copied_w0x8));
        found
    };
    for (store, landed) in [
        (found(70_005, 100, 121), false),
        (found(70_005, 121, 100), false),
        (found(70_005, 110, 101), false),
        (found(70_008, 121, 121), true),
    ] {
        let mut journal = Journal {
            state: acknowledged.clone(),
            ..Journal::default()
        };
        journal.compare(store.clone(), Some(&in_flight)).unwrap();
        assert_eq!(journal.losses, 0, "{:?}", journal.problems);
        assert_eq!(journal.in_flight_landed, u64::from(landed));
        assert_eq!(journal.state, store, "the journal adopts what it found");
    }

    // Losses: flushed group rows missing, more rows than appended, an acknowledged append
    // missing, more rows than the append in flight, a lost table, a table too many.
    let mut lost_table = found(70_005, 100, 100);
    lost_table
        .get_mut(&copy)
        .unwrap()
        .tables
        .remove("w0x3_0000");
    let mut extra_table = found(70_005, 100, 100);
    extra_table
        .get_mut(&copy)
        .unwrap()
        .tables
        .insert("ghost_0000".into(), Rows::exact(1));
    for store in [
        found(70_005, 99, 100),
        found(70_005, 122, 100),
        found(70_005, 100, 122),
        found(70_004, 100, 100),
        found(70_009, 100, 100),
        lost_table,
        extra_table,
    ] {
        let mut journal = Journal {
            state: acknowledged.clone(),
            ..Journal::default()
        };
        journal.compare(store, Some(&in_flight)).unwrap();
        assert_eq!(journal.losses, 1, "{:?}", journal.problems);
    }

    // Deleting a run takes its tables; an append that disagrees with the acknowledged count
    // is a broken child.
    let mut state = acknowledged.clone();
    apply(&mut state, &CrashOp::Delete { url: copy.clone() }).unwrap();
    assert!(!state.contains_key(&copy));
    let mut state = acknowledged.clone();
    let stale = CrashOp::Append {
        kind: AppendKind::Store,
        url: t("t0x1_0000"),
        add: 1,
        rows: 70_001,
    };
    assert!(apply(&mut state, &stale).is_err());
    let beyond = CrashOp::Flush {
        url: t("w0x8_0000"),
        rows: 122,
    };
    assert!(apply(&mut state, &beyond).is_err());
}

/// The content check accepts exactly the rows `0..n` of the table's own content, in any
/// batching, and names the first row that differs.
#[test]
fn crash_table_content_check() {
    let name = "t3x17_0000";
    let seed = table_seed(name);
    let batches = [
        table_batch(seed, 0, 10),
        table_batch(seed, 10, 1),
        table_batch(seed, 11, 300),
    ];
    assert_eq!(check_table_rows(name, &batches), Ok(311));
    assert_eq!(check_table_rows(name, &[]), Ok(0));
    let single = RecordBatch::try_new(
        table_schema(),
        table_batch(seed, 11, 300)
            .slice(5, 1)
            .columns()
            .iter()
            .map(|c| arrow_select::concat::concat(&[c.as_ref()]).unwrap())
            .collect(),
    )
    .unwrap();
    assert_eq!(
        check_table_rows(name, &[table_batch(seed, 0, 16), single]),
        Ok(17)
    );
    // A row skipped, a row of another table, a batch sliced out of place.
    let skipped = check_table_rows(name, &[table_batch(seed, 0, 5), table_batch(seed, 6, 5)]);
    assert!(skipped.unwrap_err().starts_with("row 5: the row column"));
    let other = check_table_rows(name, &[table_batch(table_seed("t3x18_0000"), 0, 5)]);
    assert!(other.unwrap_err().starts_with("row 0: value"));
    let sliced = check_table_rows(name, &[table_batch(seed, 0, 20).slice(1, 5)]);
    assert!(sliced.is_err());
    // Every row value matches what append_row would write.
    for row in [0, 1, 12_345] {
        let values = row_values(seed, row);
        let content = row_content(seed, row);
        assert_eq!(values[0], Value::from(row as i64));
        assert_eq!(values[1], content.value.map_or(Value::Null, Value::from));
        assert_eq!(values[3].as_list().map(<[Value]>::len), Some(EMB_WIDTH));
    }
    let nulls = (0..1000)
        .filter(|&row| row_content(seed, row).value.is_none())
        .count();
    assert!(
        (80..220).contains(&nulls),
        "{nulls} null values in 1000 rows"
    );
    let tags = (0..1000)
        .filter(|&row| row_content(seed, row).tag.is_none_or(str::is_empty))
        .count();
    assert!(
        (150..400).contains(&tags),
        "{tags} null or empty tags in 1000 rows"
    );
}

/// `Store::vacuum` keeps every table's content when a chunk has a zero-length buffer (here the
/// values of a utf8 column whose one row is null or empty), which lies at the same offset as
/// the chunk's next buffer (here the `emb` values).
#[test]
fn crash_vacuum_keeps_the_segment_after_an_empty_one() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).expect("create store");
    let run = store.init(PROJECT, Some("r")).expect("init");
    let mut written = Vec::new();
    for (i, tag) in [None, Some(""), Some("x"), None].into_iter().enumerate() {
        let mut columns = table_batch(table_seed("v"), 0, 1).columns().to_vec();
        columns[2] = Arc::new(arrow_array::StringArray::from(vec![tag]));
        let batch = RecordBatch::try_new(table_schema(), columns).expect("batch");
        let options = MetricsOptions {
            table_writer_base_name: format!("v{i}"),
            ..MetricsOptions::default()
        };
        let infos = run
            .add_metrics_data(&batch, &options)
            .expect("add_metrics_data");
        written.push((infos[0].url.clone(), batch));
    }
    drop(run);
    drop(store);
    assert!(runstore::check(&path).expect("check").is_ok());
    Store::vacuum(&path).expect("vacuum");
    let report = runstore::check(&path).expect("check");
    assert!(report.is_ok(), "after vacuum: {:#?}", report.problems);
    let store = Store::open(&path).expect("open");
    for (url, batch) in written {
        let scanned = store.table(&url).and_then(|t| t.scan()).expect("scan");
        assert_eq!(scanned.len(), 1, "{url}");
        for (found, wrote) in scanned[0].columns().iter().zip(batch.columns()) {
            assert_eq!(found.to_data(), wrote.to_data(), "{url}");
        }
    }
}
