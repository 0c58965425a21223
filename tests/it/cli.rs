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

#[test]
fn cli_every_command_help_shows_an_example() {
    let help = stdout(&runstore(&["--help"]));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|command| *command != "help")
        .collect();
    // A guard against a change of clap's layout leaving nothing to check.
    assert!(commands.len() >= 15, "{commands:?} from {help}");
    assert!(commands.contains(&"runs"), "{commands:?}");
    for command in commands {
        let text = stdout(&runstore(&[command, "--help"]));
        assert!(
            text.contains("Example: runstore ") || text.contains("Examples:\n  runstore "),
            "`runstore {command} --help` has no example:\n{text}"
        );
    }
}

/// A store with runs `p/a` (lr 0.1, two outputs), `p/b` (lr 0.01, a key holding a comma, a
/// description with a comma and a quote) and `p/c` (no parameters or outputs).
fn columns_store(path: &str) {
    for (name, params) in [
        ("a", vec!["lr=0.1", "opt={\"name\":\"adam\"}"]),
        ("b", vec!["lr=0.01", "a,b=3"]),
        ("c", vec![]),
    ] {
        let mut args = vec!["init", path, "--project", "p", "--name", name];
        for param in &params {
            args.extend(["--param", param]);
        }
        if name == "b" {
            args.extend(["--description", "small, \"careful\" lr"]);
        }
        stdout(&runstore(&args));
    }
    stdout(&runstore(&[
        "log",
        path,
        "p/runs/a",
        "--output",
        r#"{"acc":0.5,"loss":0.9}"#,
        "--output",
        r#"{"acc":0.75,"loss":0.3}"#,
    ]));
    stdout(&runstore(&[
        "log",
        path,
        "p/runs/b",
        "--output",
        r#"{"acc":0.25}"#,
    ]));
}

#[test]
fn cli_runs_columns_adds_values_to_the_table() {
    let (_dir, path) = temp_store();
    let path = path.to_str().unwrap();
    columns_store(path);
    let text = stdout(&runstore(&[
        "runs",
        path,
        "--order-by",
        "outputs.acc DESC",
        "--columns",
        "params.lr, outputs.loss.min,params.`a,b`",
    ]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let header: Vec<&str> = lines[0]
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "RUN",
            "STATUS",
            "CREATED (UTC)",
            "OUTPUTS",
            "params.lr",
            "outputs.loss.min",
            "params.`a,b`",
            "LAST OUTPUT"
        ],
        "{text}"
    );
    assert!(lines[1].starts_with("p/runs/a "), "{text}");
    assert!(lines[1].contains(" 0.1 "), "{text}");
    assert!(lines[1].contains(" 0.3 "), "{text}");
    assert!(lines[2].starts_with("p/runs/b "), "{text}");
    assert!(lines[2].contains(" 0.01 "), "{text}");
    assert!(lines[2].contains(" 3 "), "{text}");
    assert!(lines[3].starts_with("p/runs/c "), "{text}");
    assert_eq!(lines[4], "(3 runs)");
    // Every row is aligned with the header.
    let at = lines[0].find("params.lr").unwrap();
    assert_eq!(lines[1].find("0.1"), Some(at), "{text}");
    assert_eq!(lines[2].find("0.01"), Some(at), "{text}");
}

#[test]
fn cli_runs_columns_adds_a_columns_object_to_json() {
    let (_dir, path) = temp_store();
    let path = path.to_str().unwrap();
    columns_store(path);
    let runs = runs_json(
        path,
        &[
            "--columns",
            "params.lr,params.opt,outputs.acc,created,status",
        ],
    );
    assert_eq!(runs.len(), 3);
    assert_eq!(
        runs[0]["columns"],
        serde_json::json!({
            "params.lr": 0.1,
            "params.opt": {"name": "adam"},
            "outputs.acc": 0.75,
            "created": runs[0]["created"],
            "status": "EMPTY",
        })
    );
    assert_eq!(runs[1]["columns"]["params.opt"], serde_json::Value::Null);
    assert_eq!(runs[2]["columns"]["params.lr"], serde_json::Value::Null);
    // The fields without --columns are unchanged, and there is no "columns" then.
    let plain = runs_json(path, &[]);
    for (with, without) in runs.iter().zip(&plain) {
        let mut with = with.clone();
        with.as_object_mut().unwrap().remove("columns");
        assert_eq!(&with, without);
        assert!(without.get("columns").is_none());
    }
}

#[test]
fn cli_runs_csv_quotes_fields_and_adds_columns() {
    let (_dir, path) = temp_store();
    let path = path.to_str().unwrap();
    columns_store(path);
    let text = stdout(&runstore(&[
        "runs",
        path,
        "--csv",
        "--columns",
        r#"params.lr,params.opt,params."a,b",outputs.acc"#,
    ]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "url,project,name,status,status_code,stale,created,last_modified,description,\
         output_count,params.lr,params.opt,\"params.\"\"a,b\"\"\",outputs.acc"
    );
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].starts_with("p/runs/a,p,a,EMPTY,2,false,"),
        "{text}"
    );
    assert!(
        lines[1].ends_with(r#",,2,0.1,"{""name"":""adam""}",,0.75"#),
        "{text}"
    );
    assert!(
        lines[2].ends_with(r#","small, ""careful"" lr",1,0.01,,3,0.25"#),
        "{text}"
    );
    assert!(lines[3].ends_with(",,0,,,,"), "{text}");
}

#[test]
fn cli_runs_csv_and_json_together_is_a_usage_error() {
    let (_dir, path) = temp_store();
    let path = path.to_str().unwrap();
    columns_store(path);
    let output = runstore(&["runs", path, "--csv", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
}

#[test]
fn cli_runs_bad_column_keys_exit_1_like_bad_filters() {
    let (_dir, path) = temp_store();
    let path = path.to_str().unwrap();
    columns_store(path);
    for (columns, expected) in [
        (
            "params.lr DESC",
            "expected the end of the key, found 'DESC'",
        ),
        ("params.lr,,outputs.acc", "column key 2 is blank"),
        ("params.lr,params.lr", "requested twice"),
        ("params.lr < 1", "found '<'"),
        (
            "params.`lr",
            "column 8: in column key \"params.`lr\": unterminated quoted name",
        ),
    ] {
        let output = runstore(&["runs", path, "--columns", columns]);
        assert_eq!(output.status.code(), Some(1), "{columns}");
        assert!(output.stdout.is_empty(), "{columns}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("runstore: --columns "), "{stderr}");
        assert!(stderr.contains(expected), "{columns}: {stderr}");
    }
}

#[test]
fn info_tables_says_where_the_catalog_bytes_go() {
    let (_dir, path) = temp_store();
    {
        let store = runstore::Store::create(&path).unwrap();
        for i in 0..50 {
            let run = store.init("p", Some(&format!("r{i}"))).unwrap();
            run.set_parameters(&runstore::Value::map([("lr", runstore::Value::from(0.1))]))
                .unwrap();
            for epoch in 0..3 {
                run.add_output_value(&runstore::Value::map([(
                    "loss",
                    runstore::Value::from(epoch as f64),
                )]))
                .unwrap();
            }
        }
        let stats = store.catalog_stats().unwrap();
        let entries = |name: &str| {
            stats
                .iter()
                .find(|t| t.name == name)
                .unwrap_or_else(|| panic!("{name} in {stats:?}"))
                .entries
        };
        assert_eq!(entries("runs"), 50);
        assert_eq!(entries("outputs"), 150);
        assert_eq!(entries("param_keys"), 1);
        assert!(stats.iter().all(|t| t.name != "param_index"));
        let runs = stats.iter().find(|t| t.name == "runs").unwrap();
        assert!(
            runs.leaf_pages >= 1 && runs.stored_bytes > 50 * 8,
            "{runs:?}"
        );
        let mut names: Vec<&str> = stats.iter().map(|t| t.name.as_str()).collect();
        let sorted = names.clone();
        names.sort();
        assert_eq!(names, sorted, "in name order");
    }
    let p = path.to_str().unwrap();
    let text = stdout(&runstore(&["info", p, "--tables"]));
    let line = text
        .lines()
        .find(|l| l.starts_with("outputs "))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(line.split_whitespace().nth(1), Some("150"), "{line}");
    assert!(text.contains("tables' pages"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&runstore(&["info", p, "--json", "--tables"]))).unwrap();
    let tables = json["catalog_tables"].as_array().unwrap();
    let runs = tables.iter().find(|t| t["name"] == "runs").unwrap();
    assert_eq!(runs["entries"], 50);
    assert!(runs["leaf_pages"].as_u64().unwrap() >= 1);
    // Without --tables the JSON has no such field (the walk is not free).
    let plain: serde_json::Value =
        serde_json::from_str(&stdout(&runstore(&["info", p, "--json"]))).unwrap();
    assert!(plain.get("catalog_tables").is_none());
}
