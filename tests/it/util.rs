//! Helpers shared by the integration tests: temporary stores, files, the `runstore` binary,
//! and this test binary run again as a child process.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use runstore::Store;

pub use crate::harness::rng::{seed_from_env, Rng};

/// A fresh directory and a store path inside it that does not exist yet.
pub fn temp_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("test.runs");
    (dir, path)
}

/// A fresh store in a fresh directory.
pub fn new_store() -> (tempfile::TempDir, PathBuf, Store) {
    let (dir, path) = temp_store();
    let store = Store::create(&path).expect("create store");
    (dir, path, store)
}

/// The length of the file at `path`.
pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").len()
}

/// The names in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// `runstore::check` of the store at `path` finds no problem.
pub fn assert_checks(path: &Path) {
    let report = runstore::check(path).expect("check");
    assert!(report.is_ok(), "{}: {:?}", path.display(), report.problems);
}

/// Runs the `runstore` binary with `args` and an empty stdin and returns what it did.
pub fn runstore(args: &[&str]) -> Output {
    runstore_with_stdin(args, "")
}

/// Runs the `runstore` binary with `args`, `stdin` written to its standard input.
pub fn runstore_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runstore"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the runstore binary");
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait for runstore")
}

/// The stdout of a run that must have succeeded (its stderr in the failure message).
pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "runstore failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

/// Runs the binary and returns its stdout, failing the test (with the arguments, the exit
/// status and stderr) on a non-zero exit.
pub fn runstore_ok(args: &[&str]) -> String {
    let output = runstore(args);
    assert!(
        output.status.success(),
        "runstore {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// The stderr of a run that must have failed with exit code 1 and printed nothing on stdout.
pub fn failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit code 1; stdout: {}; stderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout on failure; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// This test binary run again with only the test `name` (`module::test`) selected and its
/// output not captured: how a test starts a child process that plays a role (a writer to kill,
/// a job to merge). The child test reads an environment variable the caller sets and returns at
/// once without it, so a normal test run skips it.
pub fn child_test(name: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command.args([name, "--exact", "--nocapture", "--test-threads=1"]);
    command
}
