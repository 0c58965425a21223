//! Stale runs: a run left RUNNING by a process that died is reported as stale and can be
//! closed with a chosen status; a run whose writer lives is not.

use std::process::Command;

use runstore::Liveness;
use runstore::{RunStatus, Store};

use crate::util::temp_store;

fn runstore_bin() -> &'static str {
    env!("CARGO_BIN_EXE_runstore")
}

fn has_proc() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

#[test]
fn a_run_set_running_by_this_process_is_alive_and_by_a_dead_script_is_stale() {
    if !has_proc() {
        eprintln!("no /proc: liveness cannot be told here");
        return;
    }
    let (_dir, path) = temp_store();
    let p = path.to_str().unwrap();
    {
        let store = Store::create(&path).unwrap();
        let run = store.init("p", Some("mine")).unwrap();
        assert_eq!(run.liveness().unwrap(), Liveness::Inactive);
        run.set_status_running().unwrap();
        assert!(matches!(run.liveness().unwrap(), Liveness::Alive(_)));
        store.init("p", Some("scripted")).unwrap();
        store.init("p", Some("done")).unwrap();
    }
    // A shell script sets the run RUNNING through the CLI and exits: its writer is the
    // script (the CLI's parent), which is gone when this returns.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' set-status '{p}' p/runs/scripted running",
            runstore_bin()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    // The CLI run directly by this test: its parent (this process) lives.
    let output = Command::new(runstore_bin())
        .args(["set-status", p, "p/runs/done", "running"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let store = Store::open(&path).unwrap();
    let scripted = store.run("p/runs/scripted").unwrap();
    assert!(
        scripted.liveness().unwrap().is_stale(),
        "{:?}",
        scripted.liveness()
    );
    assert!(matches!(
        store.run("p/runs/done").unwrap().liveness().unwrap(),
        Liveness::Alive(_)
    ));
    // "mine" was set RUNNING by this process, which still lives.
    assert!(matches!(
        store.run("p/runs/mine").unwrap().liveness().unwrap(),
        Liveness::Alive(_)
    ));
    // `runs` shows it, for people and for programs.
    let listed = Command::new(runstore_bin())
        .args(["runs", p])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("p/runs/scripted") && l.contains("RUNNING (stale)")),
        "{table}"
    );
    assert!(!table
        .lines()
        .any(|l| l.starts_with("p/runs/done") && l.contains("stale")));
    let json = Command::new(runstore_bin())
        .args(["runs", p, "--json"])
        .output()
        .unwrap();
    let stale_in_json: Vec<(String, bool)> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|line| {
            let run: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                run["name"].as_str().unwrap().to_string(),
                run["stale"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        stale_in_json.contains(&("scripted".to_string(), true)),
        "{stale_in_json:?}"
    );
    assert!(
        stale_in_json.contains(&("done".to_string(), false)),
        "{stale_in_json:?}"
    );
    let stale: Vec<String> = store
        .stale_runs(None)
        .unwrap()
        .iter()
        .map(|run| run.url())
        .collect();
    assert_eq!(stale, ["p/runs/scripted"]);
    drop(scripted);
    drop(store);

    // The CLI lists them (dry run changes nothing), then closes them with a chosen status.
    let listed = Command::new(runstore_bin())
        .args(["close-stale", p, "--dry-run"])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "p/runs/scripted\n");
    let closed = Command::new(runstore_bin())
        .args(["close-stale", p, "--status", "paused"])
        .output()
        .unwrap();
    assert!(
        closed.status.success(),
        "{}",
        String::from_utf8_lossy(&closed.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&closed.stdout), "p/runs/scripted\n");
    let store = Store::open_read_only(&path).unwrap();
    let scripted = store.run("p/runs/scripted").unwrap();
    assert_eq!(scripted.status().unwrap(), RunStatus::Paused);
    assert_eq!(scripted.liveness().unwrap(), Liveness::Inactive);
    assert!(store.stale_runs(None).unwrap().is_empty());
    assert_eq!(
        store.run("p/runs/done").unwrap().status().unwrap(),
        RunStatus::Running
    );
}

#[test]
fn stale_writer_records_survive_vacuum_and_go_with_deleted_runs() {
    if !has_proc() {
        return;
    }
    let (_dir, path) = temp_store();
    {
        let store = Store::create(&path).unwrap();
        let run = store.init("p", Some("a")).unwrap();
        run.set_status_running().unwrap();
        let gone = store.init("p", Some("b")).unwrap();
        gone.set_status_running().unwrap();
        gone.delete().unwrap();
    }
    Store::vacuum(&path).unwrap();
    let store = Store::open(&path).unwrap();
    assert!(matches!(
        store.run("p/runs/a").unwrap().liveness().unwrap(),
        Liveness::Alive(_)
    ));
    drop(store);
    let report = runstore::check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
