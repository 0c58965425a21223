//! Issue 15, items 8, 9 and 12: opening a store read-only after a crash, what `check` and
//! `repair` do to the file, and store paths that are not regular files.
//!
//! - Item 8: after a writer died, every read-only open refused with "needs recovery" until a
//!   writer repaired the file, and `repair` on a full disk claimed success. Now a read-only
//!   open reads the last durable commit without writing (redb recovers in memory), and
//!   `repair` exits 1 when it cannot write.
//! - Item 9: `check` opened the file for writing and wrote 83 bytes to a healthy store. Now it
//!   changes nothing and runs beside a live writer.
//! - Item 12: a FIFO as the store path made `info` and `check` hang forever. Now every open of
//!   a store path refuses anything but a regular file, at once.
//!
//! Writers are child processes: this test binary run again with only [`edges_recovery_child`]
//! selected and `RUNSTORE_EDGES_CHILD=<store path>` set (without it the test returns at once).
//! The child commits [`CHILD_RUNS`] RUNNING runs, each with one output, printing `ack <i>` after each
//! commit, then `idle`, and waits with the store open until it is killed.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use runstore::{Error, RunStatus, Store, Value};

use crate::util::{child_test, runstore, stdout, temp_store};

const CHILD_ENV: &str = "RUNSTORE_EDGES_CHILD";
/// `idle`: commit the runs then wait; `busy`: go on committing until killed.
const CHILD_MODE_ENV: &str = "RUNSTORE_EDGES_CHILD_MODE";
const PROJECT: &str = "crashed";
/// Runs the child commits before it says `idle`.
const CHILD_RUNS: u64 = 5;
/// Longest any command or open may take before the test calls it hung.
const HANG_TIMEOUT: Duration = Duration::from_secs(20);

/// The writer child (see the module docs); returns at once in a normal test run.
#[test]
fn edges_recovery_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let busy = std::env::var(CHILD_MODE_ENV).is_ok_and(|mode| mode == "busy");
    let store = Store::open(&path).expect("child opens the store");
    let mut i = 0u64;
    loop {
        let run = store
            .init(PROJECT, Some(&format!("r{i}")))
            .expect("child creates a run");
        run.add_output_value(&Value::from_json_str(&format!(r#"{{"step":{i}}}"#)).unwrap())
            .expect("child logs an output");
        run.set_status(RunStatus::Running)
            .expect("child marks the run running");
        println!("ack {i}");
        i += 1;
        if !busy && i == CHILD_RUNS {
            println!("idle");
            std::thread::sleep(Duration::from_secs(600));
        }
    }
}

/// Kills its child when dropped, so a failing test leaves no writer behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a writer child on `path` and returns it once it printed `until` (`idle`, or an
/// `ack` line), with the number of the last acknowledged run.
fn start_writer(path: &Path, busy: bool, until: &str) -> (ChildGuard, Option<u64>) {
    let mut child = ChildGuard(
        child_test("edges_recovery::edges_recovery_child")
            .env(CHILD_ENV, path)
            .env(CHILD_MODE_ENV, if busy { "busy" } else { "idle" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the writer child"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().expect("piped stdout")).lines();
    let mut last_ack = None;
    loop {
        let line = lines
            .next()
            .expect("the child printed until it was told to stop")
            .expect("read the child's stdout");
        if let Some(n) = line.strip_prefix("ack ") {
            last_ack = Some(n.parse::<u64>().expect("ack number"));
        }
        if line == until {
            break;
        }
    }
    // Keep draining the child's stdout so a busy child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, last_ack)
}

/// A store whose writer child was SIGKILLed after acknowledging [`CHILD_RUNS`] runs.
fn crashed_store() -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = temp_store();
    drop(Store::create(&path).expect("create store"));
    let (mut child, _) = start_writer(&path, false, "idle");
    child.0.kill().expect("SIGKILL the writer");
    child.0.wait().expect("reap the writer");
    (dir, path)
}

/// The file's bytes and mtime.
fn fingerprint(path: &Path) -> (Vec<u8>, SystemTime) {
    let bytes = std::fs::read(path).expect("read the store's bytes");
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime");
    (bytes, mtime)
}

/// Runs the binary with `args` through `sh`, with `setup` (shell commands) run first; fails
/// the test if it takes longer than [`HANG_TIMEOUT`].
fn runstore_sh(setup: &str, args: &[&str]) -> Output {
    let script = format!("{setup}\nexec \"$0\" \"$@\"");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_runstore"))
        .args(args);
    run_with_timeout(command)
}

/// Runs the binary with `args`, failing the test if it takes longer than [`HANG_TIMEOUT`].
fn runstore_timed(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runstore"));
    command.args(args);
    run_with_timeout(command)
}

fn run_with_timeout(mut command: Command) -> Output {
    let described = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = out.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = err.read_to_end(&mut bytes);
        bytes
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > HANG_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{described} hung for {HANG_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The runs of `store` as (name, outputs as JSON text), sorted by name.
fn runs_and_outputs(store: &Store) -> Vec<(String, Vec<String>)> {
    let mut runs: Vec<(String, Vec<String>)> = store
        .runs(None)
        .expect("list runs")
        .iter()
        .map(|run| {
            let outputs = run
                .output_values()
                .expect("outputs")
                .iter()
                .map(|value| value.to_json().to_string())
                .collect();
            (run.url(), outputs)
        })
        .collect();
    runs.sort();
    runs
}

fn expected_runs(count: u64) -> Vec<(String, Vec<String>)> {
    let mut runs: Vec<(String, Vec<String>)> = (0..count)
        .map(|i| {
            (
                runstore::run_url(PROJECT, &format!("r{i}")),
                vec![format!(r#"{{"step":{i}}}"#)],
            )
        })
        .collect();
    runs.sort();
    runs
}

// ---------------------------------------------------------------------------------------------
// Item 8: read-only opens of a crashed store

/// Regression (issue 15, item 8): after a writer was SIGKILLed, `Store::open_read_only`,
/// `runs`, `show`, `info` and `close-stale --dry-run` all work and show the last acknowledged
/// commit, and none of them changes a byte of the file or its mtime.
#[test]
fn regression_15_read_only_opens_of_a_crashed_store_show_its_last_commit_and_write_nothing() {
    let (_dir, path) = crashed_store();
    let before = fingerprint(&path);
    let p = path.to_str().unwrap();

    let store = Store::open_read_only(&path).expect("read-only open of a crashed store");
    assert!(store.is_read_only());
    assert!(store.needs_recovery());
    assert_eq!(runs_and_outputs(&store), expected_runs(CHILD_RUNS));
    assert!(matches!(
        store.init(PROJECT, Some("more")),
        Err(Error::ReadOnly)
    ));
    let stale = store.stale_runs(None).expect("stale runs");
    assert_eq!(stale.len() as u64, CHILD_RUNS, "the dead writer's runs");
    drop(store);

    let runs = stdout(&runstore(&["runs", p, "--json"]));
    assert_eq!(runs.lines().count() as u64, CHILD_RUNS, "{runs}");
    let last = runstore::run_url(PROJECT, &format!("r{}", CHILD_RUNS - 1));
    let show = stdout(&runstore(&["show", p, &last, "--json"]));
    let show: serde_json::Value = serde_json::from_str(&show).expect("show --json");
    assert_eq!(
        show["outputs"],
        serde_json::json!([{ "step": CHILD_RUNS - 1 }])
    );
    let info = stdout(&runstore(&["info", p, "--json"]));
    let info: serde_json::Value = serde_json::from_str(&info).expect("info --json");
    assert_eq!(info["runs"], CHILD_RUNS);
    let stale = stdout(&runstore(&["close-stale", p, "--dry-run"]));
    assert_eq!(stale.lines().count() as u64, CHILD_RUNS, "{stale}");

    assert!(
        before == fingerprint(&path),
        "a read-only command changed the file"
    );

    // A writer still recovers it, and nothing acknowledged is lost.
    let repaired = stdout(&runstore(&["repair", p]));
    assert!(repaired.contains("consistent"), "{repaired}");
    let store = Store::open_read_only(&path).expect("read-only open after repair");
    assert_eq!(runs_and_outputs(&store), expected_runs(CHILD_RUNS));
}

/// Regression (issue 15, item 8): a writer killed in the middle of its work (not idle)
/// leaves a store whose read-only view holds every acknowledged run and at most the one in
/// flight, and `check` finds nothing wrong, all without writing to it.
#[test]
fn regression_15_read_only_open_after_a_kill_mid_work_holds_every_acknowledged_run() {
    let (_dir, path) = temp_store();
    drop(Store::create(&path).expect("create store"));
    let (mut child, last_ack) = start_writer(&path, true, "ack 20");
    child.0.kill().expect("SIGKILL the writer");
    child.0.wait().expect("reap the writer");
    let acknowledged = last_ack.expect("acks") + 1;
    let before = fingerprint(&path);

    let store = Store::open_read_only(&path).expect("read-only open of a crashed store");
    let runs = store.runs(None).expect("runs").len() as u64;
    assert!(
        runs >= acknowledged && runs <= acknowledged + 2,
        "{runs} runs, {acknowledged} acknowledged"
    );
    let report = runstore::check(&path).expect("check");
    assert!(report.is_ok(), "{:?}", report.problems);
    drop(store);
    assert!(
        before == fingerprint(&path),
        "a read-only open changed the file"
    );
}

/// Regression (issue 15, item 8): a read-only handle of a crashed store keeps showing the
/// commit it opened (never torn data) while a writer recovers the file, deletes every run it
/// saw and commits many others: the pages its snapshot reads are never reused under it.
#[test]
fn regression_15_a_crashed_store_snapshot_stays_intact_while_a_writer_rewrites_the_store() {
    let (_dir, path) = crashed_store();
    // Nothing is read before the writer is done: redb's page cache would hide a reused page.
    let reader = Store::open_read_only(&path).expect("read-only open of a crashed store");
    let seen = expected_runs(CHILD_RUNS);

    let writer = Store::open(&path).expect("a writer opens (and recovers) it beside the reader");
    for run in writer.runs(None).expect("runs") {
        run.delete().expect("delete");
    }
    let big = Value::from_json_str(&format!(r#"{{"blob":"{}"}}"#, "x".repeat(20_000))).unwrap();
    for i in 0..200 {
        let run = writer.init("other", Some(&format!("n{i}"))).expect("init");
        run.add_output_value(&big).expect("output");
    }
    assert_eq!(writer.runs(Some(PROJECT)).expect("runs").len(), 0);
    assert_eq!(
        runs_and_outputs(&reader),
        seen,
        "the snapshot changed under the reader"
    );
    drop(writer);
    assert_eq!(runs_and_outputs(&reader), seen);
}

/// Regression (issue 15, item 8): `repair` that cannot write (every write fails, as on a full
/// disk or read-only media: here the file-size limit is 0) exits 1 and says why, instead of
/// printing success; the store stays readable and a later repair succeeds.
#[test]
fn regression_15_repair_that_cannot_write_exits_1_and_says_so() {
    let (_dir, path) = crashed_store();
    let p = path.to_str().unwrap();
    let output = runstore_sh("ulimit -f 0; trap '' XFSZ", &["repair", p]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {} stderr: {}",
        String::from_utf8_lossy(&output.stdout),
        stderr_text(&output)
    );
    let stderr = stderr_text(&output);
    assert!(stderr.contains("repair"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("consistent"));

    let store = Store::open_read_only(&path).expect("still readable");
    assert_eq!(runs_and_outputs(&store), expected_runs(CHILD_RUNS));
    drop(store);
    let repaired = stdout(&runstore(&["repair", p]));
    assert!(repaired.contains("consistent"), "{repaired}");
}

/// Regression (issue 15, item 8): the write of a clean shutdown that fails (a full disk) is
/// reported by `Store::close`, where dropping the handle (all `repair` did) lost it and the
/// file stayed marked for recovery while `repair` said it was consistent.
#[test]
fn regression_15_close_reports_a_failed_shutdown_write() {
    use runstore::fault::{open_with_faults, FaultKind, FaultPlan};
    let (_dir, path) = crashed_store();
    let plan = FaultPlan {
        fail_at: Some(0),
        kind: FaultKind::NoSpace,
        sticky: true,
    };
    let (store, _faults) = open_with_faults(&path, plan).expect("a writer opens and recovers");
    let closed = store.close();
    assert!(
        matches!(&closed, Err(Error::Io { source, .. }) if source.raw_os_error() == Some(28)),
        "{closed:?}"
    );
    let store = Store::open_read_only(&path).expect("still readable");
    assert_eq!(runs_and_outputs(&store), expected_runs(CHILD_RUNS));
    drop(store);
    assert!(Store::repair(&path).expect("repair once space is back"));
    assert!(!Store::repair(&path).expect("a second repair"));
    let store = Store::open_read_only(&path).expect("read-only open after repair");
    assert!(!store.needs_recovery());
}

// ---------------------------------------------------------------------------------------------
// Item 9: check changes nothing

/// A closed store with a few runs.
fn healthy_store() -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = temp_store();
    let store = Store::create(&path).expect("create store");
    for i in 0..CHILD_RUNS {
        let run = store.init(PROJECT, Some(&format!("r{i}"))).expect("init");
        run.add_output_value(&Value::from_json_str(&format!(r#"{{"step":{i}}}"#)).unwrap())
            .expect("output");
    }
    drop(store);
    (dir, path)
}

/// Regression (issue 15, item 9): `runstore check` of a healthy store and of a crashed one
/// leaves the file's bytes and mtime as they were, and works when every write would fail.
#[test]
fn regression_15_check_changes_no_byte_and_no_mtime() {
    for (what, (_dir, path)) in [("healthy", healthy_store()), ("crashed", crashed_store())] {
        let p = path.to_str().unwrap();
        let before = fingerprint(&path);
        let output = runstore_timed(&["check", p]);
        let text = stdout(&output);
        assert!(text.contains("0 problems"), "{what}: {text}");
        assert!(
            before == fingerprint(&path),
            "{what}: check changed the file"
        );
        let report = runstore::check(&path).expect("library check");
        assert!(report.is_ok(), "{what}: {:?}", report.problems);
        assert!(
            before == fingerprint(&path),
            "{what}: check changed the file"
        );
        let output = runstore_sh("ulimit -f 0; trap '' XFSZ", &["check", p]);
        let text = stdout(&output);
        assert!(text.contains("0 problems"), "{what}: {text}");
        assert!(
            before == fingerprint(&path),
            "{what}: check changed the file"
        );
    }
}

/// Issue 16, item 4: an I/O failure under `backup` and `vacuum` (every write fails: the
/// file-size limit is 0) names the file it failed on, a file in the store's folder, where
/// redb's own I/O errors used to leave the path empty ("failed on :").
#[test]
fn regression_16_io_failures_under_backup_and_vacuum_name_the_file() {
    let (dir, path) = healthy_store();
    let p = path.to_str().unwrap();
    let dest = dir.path().join("backup.runs");
    let folder = format!("failed on {}/", dir.path().display());
    for args in [vec!["backup", p, dest.to_str().unwrap()], vec!["vacuum", p]] {
        let output = runstore_sh("ulimit -f 0; trap '' XFSZ", &args);
        let stderr = stderr_text(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(&folder), "{args:?}: {stderr}");
    }
    assert!(!dest.exists(), "a failed backup leaves no file");
    let store = Store::open_read_only(&path).expect("the store is as before");
    assert_eq!(runs_and_outputs(&store), expected_runs(CHILD_RUNS));
}

/// Regression (issue 15, item 9): `check` of a file the user may only read (skipped when the
/// tests run as root, who may write it anyway).
#[test]
fn regression_15_check_of_a_read_only_file_works() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = healthy_store();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        eprintln!("skipped: running as root, a 0444 file is still writable");
        return;
    }
    let text = stdout(&runstore_timed(&["check", path.to_str().unwrap()]));
    assert!(text.contains("0 problems"), "{text}");
    let store = Store::open_read_only(&path).expect("read-only open of a 0444 file");
    assert_eq!(runs_and_outputs(&store), expected_runs(CHILD_RUNS));
}

/// Regression (issue 15, item 9): `check` runs beside a live writer process (it refused with
/// "already open" before) and finds nothing wrong.
#[test]
fn regression_15_check_runs_beside_a_live_writer() {
    let (_dir, path) = temp_store();
    drop(Store::create(&path).expect("create store"));
    let (_child, _) = start_writer(&path, false, "idle");
    let p = path.to_str().unwrap();
    let text = stdout(&runstore_timed(&["check", p]));
    assert!(text.contains("0 problems"), "{text}");
    assert!(text.contains(&format!("{CHILD_RUNS} runs")), "{text}");
    let report = runstore::check(&path).expect("library check beside a writer");
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// Regression (issue 15, item 9): `check` beside a writer that keeps committing reports no
/// problem: it checks one commit, copied whole.
///
/// Regression (issue 15 finding, session 7): the check's in-memory recovery reads the system
/// tree of the commit it checks, and a writer frees a commit's replaced system-tree pages as
/// soon as the next commit is published, so a view that read the file lazily (pinning only
/// the commit's transaction) found those pages rewritten: "Primary is corrupted despite
/// 2-phase commit", or a contained redb panic, in a few percent of checks: 13 of 20 runs of
/// this test (twenty checks beside a writer committing a run every few milliseconds) failed
/// under CPU load before the fix, none of 1,500 after.
///
/// Soak: `RUNSTORE_CHECKS_BESIDE_WRITER=20000 cargo test --release --test it
/// check_beside_a_busy_writer -- --nocapture` (the number of checks; 20 by default).
#[test]
fn regression_15_check_beside_a_busy_writer_reports_no_problem() {
    let checks: u64 = std::env::var("RUNSTORE_CHECKS_BESIDE_WRITER")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let (_dir, path) = temp_store();
    drop(Store::create(&path).expect("create store"));
    let (child, _) = start_writer(&path, true, "ack 10");
    let started = std::time::Instant::now();
    for _ in 0..checks {
        let report = runstore::check(&path).expect("check beside a busy writer");
        assert!(report.is_ok(), "{:?}", report.problems);
    }
    drop(child);
    let runs = Store::open_read_only(&path)
        .expect("open after the writer")
        .runs(Some(PROJECT))
        .expect("runs")
        .len();
    println!(
        "{checks} checks beside a busy writer in {:.1?}: 0 problems; the writer committed {runs} runs meanwhile",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Item 12: store paths that are not regular files

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    let result = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
    assert_eq!(result, 0, "mkfifo {}", path.display());
}

/// Runs `f` on another thread and fails the test if it does not return within
/// [`HANG_TIMEOUT`].
fn within_timeout<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(f());
    });
    receiver
        .recv_timeout(HANG_TIMEOUT)
        .unwrap_or_else(|_| panic!("{what} hung for {HANG_TIMEOUT:?}"))
}

/// Regression (issue 15, item 12): a FIFO, a directory or a character device as the store
/// path is refused at once by every library open, with an error that names the path and says
/// what it is.
#[test]
fn regression_15_library_opens_refuse_a_fifo_a_directory_and_a_device() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("pipe.runs");
    mkfifo(&fifo);
    let directory = dir.path().join("dir.runs");
    std::fs::create_dir(&directory).expect("mkdir");
    let link = dir.path().join("link.runs");
    std::os::unix::fs::symlink(&fifo, &link).expect("symlink");
    for (path, kind) in [
        (fifo, "FIFO"),
        (link, "FIFO"),
        (directory, "directory"),
        (PathBuf::from("/dev/null"), "character device"),
    ] {
        type Open = fn(&Path) -> runstore::Result<()>;
        let opens: [(&str, Open); 7] = [
            ("open", |p| Store::open(p).map(drop)),
            ("open_read_only", |p| Store::open_read_only(p).map(drop)),
            ("open_shared", |p| Store::open_shared(p).map(drop)),
            ("open_or_create", |p| Store::open_or_create(p).map(drop)),
            ("probe", |p| Store::probe(p)),
            ("check", |p| runstore::check(p).map(drop)),
            ("vacuum", |p| Store::vacuum(p).map(drop)),
        ];
        for (name, open) in opens {
            let at = path.clone();
            let result =
                within_timeout(&format!("{name} of {}", path.display()), move || open(&at));
            match result {
                Err(Error::InvalidInput { reason }) => {
                    assert!(reason.contains(kind), "{name}: {reason}");
                    assert!(
                        reason.contains(&path.display().to_string()),
                        "{name}: {reason}"
                    );
                }
                other => panic!("{name} of {}: {other:?}", path.display()),
            }
        }
    }
}

/// Regression (issue 15, item 12): every command given a FIFO (or a directory) where a store
/// belongs fails at once with exit 1 and says what the path is, never hangs.
#[test]
fn regression_15_commands_refuse_a_fifo_or_a_directory_as_a_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("pipe.runs");
    mkfifo(&fifo);
    let directory = dir.path().join("dir.runs");
    std::fs::create_dir(&directory).expect("mkdir");
    let (_store_dir, store) = healthy_store();
    let good = store.to_str().unwrap();
    let url = runstore::run_url(PROJECT, "r0");
    let out_dir = dir.path().join("export");
    let out = out_dir.to_str().unwrap();
    let backup = dir.path().join("backup.runs");
    let backup = backup.to_str().unwrap();
    for (bad, kind) in [(&fifo, "FIFO"), (&directory, "directory")] {
        let s = bad.to_str().unwrap();
        let commands: Vec<Vec<&str>> = vec![
            vec!["info", s],
            vec!["check", s],
            vec!["repair", s],
            vec!["upgrade", s],
            vec!["projects", s],
            vec!["runs", s],
            vec!["show", s, &url],
            vec!["tables", s],
            vec!["scan", s, "p/runs/r/t"],
            vec!["close-stale", s, "--dry-run"],
            vec!["close-stale", s],
            vec!["init", s, "--project", "p"],
            vec!["log", s, &url, "--output", "{}"],
            vec!["set-status", s, &url, "completed"],
            vec!["delete", s, &url],
            vec!["vacuum", s],
            vec!["backup", s, backup],
            vec!["export", s, out],
            vec!["copy", s, &url, good],
            vec!["copy", good, &url, s],
            vec!["merge", s, good],
            vec!["merge", good, s],
            vec!["demo", s],
        ];
        for args in commands {
            let output = runstore_timed(&args);
            let stderr = stderr_text(&output);
            assert_ne!(output.status.code(), Some(0), "{args:?}: {stderr}");
            assert!(
                stderr.contains(kind) || stderr.contains("not a runstore store"),
                "{args:?}: {stderr}"
            );
        }
    }
    // The good store is untouched by all of it.
    let store = Store::open_read_only(&store).expect("open");
    assert_eq!(runs_and_outputs(&store), expected_runs(CHILD_RUNS));
}
