//! The `runstore` binary end to end: writing runs from the shell (`init`, `log`,
//! `set-status`, `delete`) and reading them back (`runs --json`, `runs --filter`).

use crate::util::{runstore, stdout, temp_store};

fn runs_json(path: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["runs", path, "--json"];
    args.extend_from_slice(extra);
    stdout(&runstore(&args))
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[test]
fn cli_init_log_set_status_and_delete_round_trip_through_runs_json() {
    let (_dir, path) = temp_store();
    let path = path.to_str().unwrap();
    let url = stdout(&runstore(&[
        "init",
        path,
        "--project",
        "mnist",
        "--name",
        "base",
        "--param",
        "lr=0.01",
        "--param",
        "opt=adam",
        "--param",
        "layers=[64,32]",
    ]));
    assert_eq!(url.trim(), "mnist/runs/base");
    stdout(&runstore(&[
        "log",
        path,
        "mnist/runs/base",
        "--output",
        r#"{"epoch":1,"loss":0.5}"#,
        "--output",
        r#"{"epoch":2,"loss":0.25}"#,
    ]));
    stdout(&runstore(&[
        "set-status",
        path,
        "mnist/runs/base",
        "completed",
    ]));

    let runs = runs_json(path, &[]);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["url"], "mnist/runs/base");
    assert_eq!(run["status"], "COMPLETED");
    assert_eq!(run["status_code"], 1);
    assert_eq!(run["params"]["lr"], 0.01);
    assert_eq!(run["params"]["opt"], "adam");
    assert_eq!(run["params"]["layers"], serde_json::json!([64, 32]));
    assert_eq!(
        run["outputs"],
        serde_json::json!([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}])
    );

    stdout(&runstore(&["delete", path, "mnist/runs/base"]));
    assert!(runs_json(path, &[]).is_empty());
}

#[test]
fn cli_init_without_a_name_generates_one_and_renames_taken_names() {
    let (_dir, path) = temp_store();
    let path = path.to_str().unwrap();
    let generated = stdout(&runstore(&["init", path, "--project", "p"]));
    assert!(generated.trim().starts_with("p/runs/"), "{generated}");
    stdout(&runstore(&["init", path, "--project", "p", "--name", "x"]));
    let renamed = stdout(&runstore(&["init", path, "--project", "p", "--name", "x"]));
    assert_eq!(renamed.trim(), "p/runs/x_0000");
}

#[test]
fn cli_runs_filter_selects_by_numeric_params_and_latest_outputs() {
    let (_dir, path) = temp_store();
    let path = path.to_str().unwrap();
    for (name, lr, acc) in [
        ("a", "0.1", "0.9"),
        ("b", "0.001", "0.8"),
        ("c", "0.005", "0.3"),
    ] {
        let param = format!("lr={lr}");
        stdout(&runstore(&[
            "init",
            path,
            "--project",
            "p",
            "--name",
            name,
            "--param",
            &param,
        ]));
        let output = format!(r#"{{"acc":{acc}}}"#);
        stdout(&runstore(&[
            "log",
            path,
            &format!("p/runs/{name}"),
            "--output",
            &output,
        ]));
    }
    let selected = runs_json(
        path,
        &[
            "--filter",
            "params.lr < 0.01 AND outputs.acc > 0.5",
            "--order-by",
            "outputs.acc DESC",
        ],
    );
    let names: Vec<&str> = selected
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b"]);
    let ordered = runs_json(path, &["--order-by", "outputs.acc DESC", "--limit", "2"]);
    let names: Vec<&str> = ordered
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn cli_rejects_bad_input_with_exit_code_1_and_a_message() {
    let (_dir, path) = temp_store();
    let path = path.to_str().unwrap();
    stdout(&runstore(&["init", path, "--project", "p", "--name", "r"]));
    for args in [
        vec!["log", path, "p/runs/r", "--output", "not json"],
        vec!["log", path, "p/runs/r", "--output", "[1, 2]"],
        vec!["log", path, "p/runs/missing", "--output", "{}"],
        vec!["set-status", path, "p/runs/r", "finished"],
        vec!["init", path, "--project", "p", "--param", "novalue"],
        vec!["runs", path, "--filter", "params.lr <"],
        vec!["delete", path, "p/runs/missing"],
    ] {
        let output = runstore(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("runstore: "), "{args:?}: {stderr}");
    }
    let output = runstore(&["log", path]);
    assert_eq!(output.status.code(), Some(2), "usage errors exit 2");
    // Nothing above changed the run.
    let runs = runs_json(path, &[]);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outputs"], serde_json::json!([]));
    assert_eq!(runs[0]["status"], "EMPTY");
}

#[test]
fn cli_usage_errors_exit_2_and_runtime_errors_exit_1_with_a_message_on_stderr() {
    let usage = runstore(&["runs"]);
    assert_eq!(usage.status.code(), Some(2));
    let usage = runstore(&["no-such-command"]);
    assert_eq!(usage.status.code(), Some(2));
    let (_dir, path) = temp_store();
    let missing = runstore(&["runs", path.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(missing.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.starts_with("runstore: "), "{stderr}");
}
