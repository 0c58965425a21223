//! Issue 15, file-level edges of the CLI commands: no command that writes a file may lose,
//! truncate or lock away a store. `demo` replaces only its own store, under the writer lock;
//! no output file (`scan --output`, `export`, `copy`/`merge` DEST) may be the store it reads;
//! `backup` appears complete or not at all and a rerun after a kill succeeds; `vacuum` keeps a
//! symbolic link, the file's mode and owner; `export` never follows links planted in its
//! directory and cleans up after killed exports; `--wait` is honoured by every command that
//! opens for writing; text printed for people never carries raw control characters, and
//! errors that echo input are cut to a readable length.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use runstore::{MetricsOptions, Store, Value};

use crate::util::{failure, runstore, stdout, temp_store};

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Runs `script` with `sh -c`, `$RUNSTORE` naming the binary.
fn sh(script: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("RUNSTORE", env!("CARGO_BIN_EXE_runstore"))
        .stdin(Stdio::null())
        .output()
        .expect("run sh")
}

/// A store with two projects: `a` (runs `r1`, `r2`, a metrics table `m_0000` on `r1` and a 2 MiB
/// blob on `r2`) and `b` (run `r3`).
fn two_project_store(path: &Path) {
    let store = Store::create(path).unwrap();
    let r1 = store.init("a", Some("r1")).unwrap();
    r1.add_output_value(&Value::map([("loss", Value::from(0.5))]))
        .unwrap();
    let batch = RecordBatch::try_from_iter([
        (
            "step",
            Arc::new(Int64Array::from_iter_values(0..100)) as ArrayRef,
        ),
        (
            "loss",
            Arc::new(Float64Array::from_iter_values((0..100).map(f64::from))) as ArrayRef,
        ),
    ])
    .unwrap();
    r1.add_metrics_data(
        &batch,
        &MetricsOptions {
            table_writer_base_name: "m".into(),
            ..MetricsOptions::default()
        },
    )
    .unwrap();
    let r2 = store.init("a", Some("r2")).unwrap();
    let blob: Vec<u8> = (0..2u32 << 20).map(|i| (i % 251) as u8).collect();
    r2.put_bulk("weights.bin", &blob).unwrap();
    store.init("b", Some("r3")).unwrap();
}

/// The store at `path` still opens, passes `check` and holds the three runs.
fn assert_intact(path: &Path) {
    let store = Store::open_read_only(path).expect("the store still opens");
    let urls: Vec<String> = store
        .runs(None)
        .unwrap()
        .iter()
        .map(|run| run.url())
        .collect();
    assert_eq!(urls.len(), 3, "{urls:?}");
    drop(store);
    let report = runstore::check(path).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

fn metrics_url(path: &Path) -> String {
    let store = Store::open_read_only(path).unwrap();
    let run = store.run("a/runs/r1").unwrap();
    let tables = run.metrics_table_handles().unwrap();
    tables[0].url().to_string()
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The pid of a process that has exited (and been reaped).
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

// ---- item 1: demo ----

#[test]
fn demo_refuses_a_store_with_other_projects_and_says_what_it_holds() {
    let (_dir, path) = temp_store();
    two_project_store(&path);
    let stderr = failure(&runstore(&["demo", text(&path)]));
    assert!(stderr.contains("refusing to replace"), "{stderr}");
    assert!(stderr.contains(text(&path)), "{stderr}");
    assert!(stderr.contains("2 projects (a, b)"), "{stderr}");
    assert!(stderr.contains("3 runs"), "{stderr}");
    assert_intact(&path);
}

#[test]
fn demo_refuses_a_demo_store_holding_a_run_of_the_user() {
    let (_dir, path) = temp_store();
    stdout(&runstore(&["demo", text(&path)]));
    stdout(&runstore(&[
        "init",
        text(&path),
        "--project",
        "cifar10-sweep",
        "--name",
        "mine",
    ]));
    let stderr = failure(&runstore(&["demo", text(&path)]));
    assert!(stderr.contains("refusing to replace"), "{stderr}");
    assert!(stderr.contains("cifar10-sweep/runs/mine"), "{stderr}");
    let store = Store::open_read_only(&path).unwrap();
    store.run("cifar10-sweep/runs/mine").unwrap();
}

#[test]
fn demo_refuses_while_another_process_writes_and_the_writer_loses_nothing() {
    let (_dir, path) = temp_store();
    stdout(&runstore(&["demo", text(&path)]));
    let writer = Store::open(&path).unwrap();
    let stderr = failure(&runstore(&["demo", text(&path)]));
    assert!(stderr.contains("refusing to replace"), "{stderr}");
    assert!(stderr.contains("open for writing"), "{stderr}");
    let run = writer.run("cifar10-sweep/runs/resnet18-lr0.1").unwrap();
    let before = run.output_count().unwrap();
    run.add_output_value(&Value::map([("late", Value::from(1))]))
        .unwrap();
    drop(run);
    drop(writer);
    let store = Store::open_read_only(&path).unwrap();
    let run = store.run("cifar10-sweep/runs/resnet18-lr0.1").unwrap();
    assert_eq!(run.output_count().unwrap(), before + 1);
}

#[test]
fn demo_replaces_its_own_store_and_an_empty_one_and_keeps_a_link() {
    let (dir, path) = temp_store();
    stdout(&runstore(&["demo", text(&path)]));
    stdout(&runstore(&["demo", text(&path)]));
    let empty = dir.path().join("empty.runs");
    drop(Store::create(&empty).unwrap());
    stdout(&runstore(&["demo", text(&empty)]));
    let link = dir.path().join("link.runs");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    stdout(&runstore(&["demo", text(&link)]));
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(store.runs(None).unwrap().len(), 4);
}

#[test]
fn demo_refuses_a_file_that_is_not_a_store() {
    let (_dir, path) = temp_store();
    std::fs::write(&path, b"precious notes").unwrap();
    let stderr = failure(&runstore(&["demo", text(&path)]));
    assert!(stderr.contains("refusing to replace"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious notes");
}

// ---- item 2: no output may be the store ----

#[test]
fn scan_output_refuses_the_store_by_path_symlink_and_hard_link() {
    let (dir, path) = temp_store();
    two_project_store(&path);
    let url = metrics_url(&path);
    let symlink = dir.path().join("symlink.csv");
    std::os::unix::fs::symlink(&path, &symlink).unwrap();
    let hard_link = dir.path().join("hard.csv");
    std::fs::hard_link(&path, &hard_link).unwrap();
    for output in [&path, &symlink, &hard_link] {
        for format in ["csv", "parquet"] {
            let stderr = failure(&runstore(&[
                "scan",
                text(&path),
                &url,
                "--format",
                format,
                "--output",
                text(output),
            ]));
            assert!(stderr.contains("is the store"), "{stderr}");
            assert_intact(&path);
        }
    }
    assert!(std::fs::symlink_metadata(&symlink).unwrap().is_symlink());
    assert_eq!(std::fs::metadata(&hard_link).unwrap().nlink(), 2);
}

#[test]
fn export_refuses_a_directory_whose_files_are_the_store() {
    let (dir, path) = temp_store();
    two_project_store(&path);
    // The store inside the export directory, under the name of the runs table.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::hard_link(&path, out.join("runs.parquet")).unwrap();
    let stderr = failure(&runstore(&["export", text(&path), text(&out)]));
    assert!(stderr.contains("is the store"), "{stderr}");
    assert_intact(&path);
    // A symbolic link to it, and a store that lives where a table file goes.
    let out2 = dir.path().join("out2");
    std::fs::create_dir(&out2).unwrap();
    std::os::unix::fs::symlink(&path, out2.join("runs.parquet")).unwrap();
    let stderr = failure(&runstore(&["export", text(&path), text(&out2)]));
    assert!(stderr.contains("is the store"), "{stderr}");
    assert_intact(&path);
    let out3 = dir.path().join("out3");
    let run_dir = out3.join("project=a").join("run=r1");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::hard_link(&path, run_dir.join("m_0000.parquet")).unwrap();
    let stderr = failure(&runstore(&["export", text(&path), text(&out3)]));
    assert!(stderr.contains("is the store"), "{stderr}");
    assert_intact(&path);
    // The store itself as runs.parquet: DIR is the store's own folder.
    let (dir4, _) = temp_store();
    let store_as_runs = dir4.path().join("runs.parquet");
    two_project_store(&store_as_runs);
    let stderr = failure(&runstore(&[
        "export",
        text(&store_as_runs),
        text(dir4.path()),
    ]));
    assert!(stderr.contains("is the store"), "{stderr}");
    assert_intact(&store_as_runs);
}

#[test]
fn copy_and_merge_treat_a_hard_link_to_the_source_as_the_same_store() {
    let (dir, path) = temp_store();
    two_project_store(&path);
    let hard_link = dir.path().join("hard.runs");
    std::fs::hard_link(&path, &hard_link).unwrap();
    let merged = runstore(&["merge", text(&hard_link), text(&path)]);
    assert_eq!(merged.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&merged.stderr);
    assert!(stderr.contains("it is the destination"), "{stderr}");
    assert_intact(&path);
    // A copy into a hard link of the source is a copy within one store.
    let url = stdout(&runstore(&[
        "copy",
        text(&path),
        "b/runs/r3",
        text(&hard_link),
    ]));
    assert_eq!(url.trim(), "b/runs/r3_0000");
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(store.runs(None).unwrap().len(), 4);
}

// ---- item 7: backup appears complete or not at all ----

#[test]
fn backup_killed_mid_copy_leaves_no_dest_and_a_rerun_succeeds() {
    let (dir, path) = temp_store();
    two_project_store(&path);
    let dest = dir.path().join("backup.runs");
    // A file size limit of 512 KiB: the write that passes it kills the process (SIGXFSZ).
    let killed = sh(&format!(
        "ulimit -f 1024; exec \"$RUNSTORE\" backup '{}' '{}'",
        text(&path),
        text(&dest)
    ));
    assert!(!killed.status.success(), "the limit must stop the backup");
    assert!(!dest.exists(), "a killed backup leaves no DEST");
    stdout(&runstore(&["backup", text(&path), text(&dest)]));
    assert_intact(&dest);
    // The killed run's temporary file was cleaned up by the rerun.
    assert_eq!(dir_names(dir.path()), ["backup.runs", "test.runs"]);
}

#[test]
fn backup_failing_with_a_write_error_removes_its_temporary_file() {
    let (dir, path) = temp_store();
    two_project_store(&path);
    let dest = dir.path().join("backup.runs");
    // SIGXFSZ ignored: the write past the limit fails with EFBIG, as a full disk would.
    let failed = sh(&format!(
        "trap '' XFSZ; ulimit -f 1024; exec \"$RUNSTORE\" backup '{}' '{}'",
        text(&path),
        text(&dest)
    ));
    let stderr = failure(&failed);
    assert!(stderr.contains("backup"), "{stderr}");
    assert_eq!(dir_names(dir.path()), ["test.runs"]);
    stdout(&runstore(&["backup", text(&path), text(&dest)]));
    assert_intact(&dest);
}

#[test]
fn backup_never_replaces_an_existing_dest() {
    let (dir, path) = temp_store();
    two_project_store(&path);
    let dest = dir.path().join("backup.runs");
    std::fs::write(&dest, b"keep me").unwrap();
    let stderr = failure(&runstore(&["backup", text(&path), text(&dest)]));
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"keep me");
    // The store itself as DEST.
    let stderr = failure(&runstore(&["backup", text(&path), text(&path)]));
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_intact(&path);
}

// ---- item 10: vacuum keeps links, mode and owner; backup keeps mode and owner ----

#[test]
fn vacuum_through_a_symlink_keeps_the_link_and_vacuums_its_target() {
    let (dir, path) = temp_store();
    two_project_store(&path);
    {
        let store = Store::open(&path).unwrap();
        store.delete_run("a/runs/r2").unwrap();
    }
    let size_before = std::fs::metadata(&path).unwrap().len();
    let link = dir.path().join("link.runs");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    stdout(&runstore(&["vacuum", text(&link)]));
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    let size_after = std::fs::metadata(&path).unwrap().len();
    assert!(
        size_after < size_before,
        "the target was vacuumed: {size_before} -> {size_after}"
    );
    let store = Store::open_read_only(&link).unwrap();
    assert_eq!(store.runs(None).unwrap().len(), 2);
    drop(store);
    assert_eq!(dir_names(dir.path()), ["link.runs", "test.runs"]);
}

#[test]
fn vacuum_and_backup_keep_the_file_mode_and_owner() {
    let (dir, path) = temp_store();
    two_project_store(&path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    // Another owner can be set only by root; elsewhere the owner is the caller's anyway.
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if is_root {
        std::os::unix::fs::chown(&path, Some(12345), Some(23456)).unwrap();
    }
    let owner = std::fs::metadata(&path).unwrap();
    stdout(&runstore(&["vacuum", text(&path)]));
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(after.mode() & 0o7777, 0o640);
    assert_eq!((after.uid(), after.gid()), (owner.uid(), owner.gid()));
    for (i, holder) in [false, true].into_iter().enumerate() {
        let dest = dir.path().join(format!("backup{i}.runs"));
        // With a writer elsewhere the backup is the logical snapshot copy.
        let writer = holder.then(|| Store::open(&path).unwrap());
        stdout(&runstore(&["backup", text(&path), text(&dest)]));
        drop(writer);
        let copy = std::fs::metadata(&dest).unwrap();
        assert_eq!(copy.mode() & 0o7777, 0o640, "backup {i}");
        assert_eq!((copy.uid(), copy.gid()), (owner.uid(), owner.gid()));
    }
}

// ---- item 11: export never follows links in DIR and cleans up after killed exports ----

#[test]
fn export_refuses_a_subdirectory_that_is_a_symlink_and_writes_nothing_through_it() {
    let (dir, path) = temp_store();
    two_project_store(&path);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("project=a")).unwrap();
    let stderr = failure(&runstore(&["export", text(&path), text(&out)]));
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(stderr.contains("project=a"), "{stderr}");
    assert!(dir_names(&victim).is_empty(), "{:?}", dir_names(&victim));
}

#[test]
fn export_removes_temporary_files_of_dead_exports_and_keeps_live_ones() {
    let (dir, path) = temp_store();
    two_project_store(&path);
    let out = dir.path().join("out");
    let run_dir = out.join("project=a").join("run=r1");
    std::fs::create_dir_all(&run_dir).unwrap();
    let dead = dead_pid();
    let live = std::process::id();
    let stale = [
        out.join(format!(".runs.parquet.tmp-{dead}")),
        out.join(format!(".runs.parquet.tmp-{dead}-123456")),
        run_dir.join(format!(".m_0000.parquet.tmp-{dead}")),
    ];
    for file in &stale {
        std::fs::write(file, b"half a file").unwrap();
    }
    let alive = out.join(format!(".runs.parquet.tmp-{live}-1"));
    std::fs::write(&alive, b"another export at work").unwrap();
    let unrelated = out.join(".notes");
    std::fs::write(&unrelated, b"mine").unwrap();
    stdout(&runstore(&["export", text(&path), text(&out)]));
    for file in &stale {
        assert!(!file.exists(), "{} was not cleaned up", file.display());
    }
    assert!(alive.exists());
    assert!(unrelated.exists());
    assert!(out.join("runs.parquet").exists());
    assert!(run_dir.join("m_0000.parquet").exists());
}

#[test]
fn scan_output_removes_temporary_files_of_dead_scans() {
    let (dir, path) = temp_store();
    two_project_store(&path);
    let url = metrics_url(&path);
    let output = dir.path().join("out.csv");
    let dead = dead_pid();
    let stale = [
        dir.path().join(format!(".out.csv.{dead}.tmp")),
        dir.path().join(format!(".out.csv.tmp-{dead}-99")),
    ];
    for file in &stale {
        std::fs::write(file, b"half").unwrap();
    }
    stdout(&runstore(&[
        "scan",
        text(&path),
        &url,
        "--format",
        "csv",
        "--output",
        text(&output),
    ]));
    for file in &stale {
        assert!(!file.exists(), "{} was not cleaned up", file.display());
    }
    assert!(std::fs::read_to_string(&output)
        .unwrap()
        .starts_with("step,loss"));
}

// ---- --wait ----

#[test]
fn vacuum_check_and_repair_wait_for_the_writer_with_wait() {
    let (_dir, path) = temp_store();
    two_project_store(&path);
    for command in ["vacuum", "repair", "check", "upgrade", "close-stale"] {
        let holder = Store::open(&path).unwrap();
        let waiting = Command::new(env!("CARGO_BIN_EXE_runstore"))
            .args(["--wait", "30", command, text(&path)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(holder);
        let output = waiting.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{command} --wait: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_intact(&path);
}

// ---- control characters and long echoes ----

#[test]
fn human_output_escapes_control_characters_from_the_store() {
    let (_dir, path) = temp_store();
    let esc = "\u{1b}[2J\u{1b}]0;pwned\u{7}";
    let url = {
        let store = Store::create(&path).unwrap();
        let run = store.init("p", Some("r")).unwrap();
        run.set_description(&format!("desc{esc}")).unwrap();
        run.set_parameters(&Value::map([(esc, Value::from(esc))]))
            .unwrap();
        run.add_output_value(&Value::map([("v", Value::from(esc))]))
            .unwrap();
        let batch = RecordBatch::try_from_iter([(
            "s",
            Arc::new(StringArray::from(vec![format!("cell{esc}")])) as ArrayRef,
        )])
        .unwrap();
        run.add_metrics_data(
            &batch,
            &MetricsOptions {
                table_writer_base_name: "t".into(),
                stream_name: format!("stream{esc}"),
                ..MetricsOptions::default()
            },
        )
        .unwrap();
        run.metrics_table_handles().unwrap()[0].url().to_string()
    };
    let p = text(&path);
    for args in [
        vec!["show", p, "p/runs/r"],
        vec!["runs", p],
        vec!["runs", p, "--columns", "description,outputs.v"],
        vec!["projects", p],
        vec!["tables", p],
        vec!["tables", p, "p/runs/r"],
        vec!["scan", p, &url],
        vec!["info", p],
    ] {
        let output = stdout(&runstore(&args));
        assert!(!output.contains('\u{1b}'), "{args:?}: {output:?}");
        assert!(!output.contains('\u{7}'), "{args:?}: {output:?}");
    }
    let shown = stdout(&runstore(&["show", p, "p/runs/r"]));
    assert!(shown.contains("desc\\u{1b}[2J"), "{shown}");
    // An error that echoes a name from the command line.
    let missing = format!("p/runs/x{esc}");
    let stderr = failure(&runstore(&["show", p, &missing]));
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn errors_that_echo_input_are_cut_to_a_readable_length() {
    let (_dir, path) = temp_store();
    two_project_store(&path);
    let url = metrics_url(&path);
    let long = format!("params.x = '{}'", "y".repeat(120_000));
    let cases: Vec<Vec<String>> = vec![
        vec![
            "runs".into(),
            text(&path).into(),
            "--filter".into(),
            long.clone(),
        ],
        vec![
            "runs".into(),
            text(&path).into(),
            "--columns".into(),
            format!("{},", "z".repeat(120_000)),
        ],
        vec![
            "scan".into(),
            text(&path).into(),
            url.clone(),
            "--where".into(),
            long.clone(),
        ],
        vec![
            "log".into(),
            text(&path).into(),
            "a/runs/r1".into(),
            "--output".into(),
            format!("{{\"a\": \"{}", "q".repeat(120_000)),
        ],
        vec![
            "init".into(),
            text(&path).into(),
            "--project".into(),
            "p".into(),
            "--param".into(),
            "q".repeat(120_000),
        ],
        vec![
            "show".into(),
            text(&path).into(),
            format!("a/runs/{}", "n".repeat(120_000)),
        ],
    ];
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = failure(&runstore(&args));
        assert!(
            stderr.len() < 2_000,
            "{} {}: {} bytes of error: {}...",
            args[0],
            args[2],
            stderr.len(),
            &stderr[..300]
        );
        assert!(stderr.contains("bytes)"), "{stderr}");
    }
}
