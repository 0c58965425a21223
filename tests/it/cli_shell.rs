//! The shell-writing and export commands end to end: `init` -> `log` -> `append` (JSON lines on
//! stdin, a Parquet file, a CSV file) -> `runs --filter` -> `scan --format json` -> `export`,
//! reading the exported Parquet back; `export --since` refreshing only what changed and
//! `--prune` removing what the store no longer has; `copy` across stores and within one;
//! hostile names that must not escape the export directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use runstore::Store;

use crate::util::{failure, runstore, runstore_with_stdin, stdout, temp_store};

fn read_parquet(path: &Path) -> RecordBatch {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let reader = builder.build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

fn scan_store(path: &Path, url: &str) -> RecordBatch {
    let store = Store::open_read_only(path).unwrap();
    let table = store.table(url).unwrap();
    let schema = table.schema().unwrap();
    arrow_select::concat::concat_batches(&schema, &table.scan().unwrap()).unwrap()
}

/// Same column names, types and values (schema metadata aside).
fn assert_same_rows(exported: &RecordBatch, stored: &RecordBatch, what: &str) {
    assert_eq!(exported.num_rows(), stored.num_rows(), "{what}: rows");
    assert_eq!(
        exported.num_columns(),
        stored.num_columns(),
        "{what}: columns"
    );
    for (index, field) in stored.schema().fields().iter().enumerate() {
        let exported_field = exported.schema().field(index).clone();
        assert_eq!(exported_field.name(), field.name(), "{what}");
        assert_eq!(exported_field.data_type(), field.data_type(), "{what}");
        assert_eq!(
            exported.column(index).to_data(),
            stored.column(index).to_data(),
            "{what}: column {}",
            field.name()
        );
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn cli_shell_init_log_append_scan_export_and_read_back() {
    let (dir, path) = temp_store();
    let store_path = path.to_str().unwrap();
    let url = stdout(&runstore(&[
        "init",
        store_path,
        "--project",
        "mnist",
        "--name",
        "base",
        "--param",
        "lr=0.01",
        "--param",
        "opt=adam",
        "--param",
        "model={\"depth\":18}",
    ]));
    assert_eq!(url.trim(), "mnist/runs/base");
    stdout(&runstore(&[
        "log",
        store_path,
        "mnist/runs/base",
        "--output",
        r#"{"epoch":1,"loss":0.5}"#,
    ]));

    // JSON lines on stdin: a new table, then more rows into it.
    let lines = "{\"step\":0,\"loss\":1.5,\"emb\":[0.5,1,2],\"tag\":\"a\"}\n\
                 \n\
                 {\"step\":1,\"loss\":0.75,\"emb\":[1.5,2,3],\"tag\":null}\n";
    let output = runstore_with_stdin(
        &["append", store_path, "mnist/runs/base", "--table", "steps"],
        lines,
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stdout(&output), "", "stdout stays clean");
    assert!(
        stderr.contains("appended 2 rows to mnist/runs/base/steps (created)"),
        "{stderr}"
    );
    stdout(&runstore_with_stdin(
        &["append", store_path, "mnist/runs/base", "--table", "steps"],
        "{\"step\":2,\"loss\":0.5,\"emb\":[2.5,3,4]}\n",
    ));
    // A row that does not fit names its line, and nothing of the input is appended.
    let stderr = failure(&runstore_with_stdin(
        &["append", store_path, "mnist/runs/base", "--table", "steps"],
        "{\"step\":3,\"loss\":0.25,\"emb\":[1,2,3]}\n{\"step\":\"four\"}\n",
    ));
    assert!(stderr.contains("line 2"), "{stderr}");
    let stderr = failure(&runstore_with_stdin(
        &["append", store_path, "mnist/runs/base", "--table", "steps"],
        "{\"step\":3,\"emb\":[1,2]}\n",
    ));
    assert!(stderr.contains("line 1"), "{stderr}");

    // A Parquet file written here, then a CSV file into the same table and into a new one.
    let parquet_path = dir.path().join("eval.parquet");
    let eval = RecordBatch::try_from_iter([
        (
            "step",
            Arc::new(Int64Array::from(vec![10, 20, 30])) as ArrayRef,
        ),
        (
            "acc",
            Arc::new(Float64Array::from(vec![0.5, 0.625, 0.75])) as _,
        ),
    ])
    .unwrap();
    let mut writer =
        ArrowWriter::try_new(File::create(&parquet_path).unwrap(), eval.schema(), None).unwrap();
    writer.write(&eval).unwrap();
    writer.close().unwrap();
    stdout(&runstore(&[
        "append",
        store_path,
        "mnist/runs/base",
        "--table",
        "eval",
        "--from",
        parquet_path.to_str().unwrap(),
    ]));
    let csv_path = dir.path().join("more.csv");
    std::fs::write(&csv_path, "acc,step\n0.875,40\n1,50\n").unwrap();
    stdout(&runstore(&[
        "append",
        store_path,
        "mnist/runs/base",
        "--table",
        "mnist/runs/base/eval",
        "--from",
        csv_path.to_str().unwrap(),
    ]));
    // Arrow IPC, as a file and as a stream; `step` as Int32 is cast to the table's Int64.
    let ipc = RecordBatch::try_from_iter([
        ("step", Arc::new(Int32Array::from(vec![60])) as ArrayRef),
        ("acc", Arc::new(Float64Array::from(vec![0.25])) as _),
    ])
    .unwrap();
    let ipc_file = dir.path().join("more.arrow");
    let mut writer =
        arrow_ipc::writer::FileWriter::try_new(File::create(&ipc_file).unwrap(), &ipc.schema())
            .unwrap();
    writer.write(&ipc).unwrap();
    writer.finish().unwrap();
    let ipc_stream = dir.path().join("stream.arrow");
    let mut writer =
        arrow_ipc::writer::StreamWriter::try_new(File::create(&ipc_stream).unwrap(), &ipc.schema())
            .unwrap();
    writer.write(&ipc).unwrap();
    writer.finish().unwrap();
    for file in [&ipc_file, &ipc_stream] {
        stdout(&runstore(&[
            "append",
            store_path,
            "mnist/runs/base",
            "--table",
            "eval",
            "--from",
            file.to_str().unwrap(),
        ]));
    }
    stdout(&runstore(&[
        "append",
        store_path,
        "mnist/runs/base",
        "--table",
        "csv_only",
        "--from",
        csv_path.to_str().unwrap(),
    ]));

    // runs --filter and scan --format json see it all.
    let runs = stdout(&runstore(&[
        "runs",
        store_path,
        "--filter",
        "params.lr < 0.1 AND outputs.loss = 0.5",
        "--json",
    ]));
    let runs: Vec<serde_json::Value> = runs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 1);
    let metrics: Vec<&str> = runs[0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        metrics,
        [
            "mnist/runs/base/steps",
            "mnist/runs/base/eval",
            "mnist/runs/base/csv_only"
        ]
    );
    let scanned = stdout(&runstore(&[
        "scan",
        store_path,
        "mnist/runs/base/steps",
        "--format",
        "json",
    ]));
    let rows: Vec<serde_json::Value> = scanned
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            serde_json::json!({"step":0,"loss":1.5,"emb":[0.5,1.0,2.0],"tag":"a"}),
            serde_json::json!({"step":1,"loss":0.75,"emb":[1.5,2.0,3.0]}),
            serde_json::json!({"step":2,"loss":0.5,"emb":[2.5,3.0,4.0]}),
        ]
    );
    let eval_rows = stdout(&runstore(&[
        "scan",
        store_path,
        "mnist/runs/base/eval",
        "--format",
        "csv",
    ]));
    assert_eq!(
        eval_rows,
        "step,acc\n10,0.5\n20,0.625\n30,0.75\n40,0.875\n50,1.0\n60,0.25\n60,0.25\n"
    );

    // export, then read every file back and compare with the store's scans.
    let out = dir.path().join("export");
    let output = runstore(&[
        "export",
        store_path,
        out.to_str().unwrap(),
        "--format",
        "parquet",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stdout(&output), "");
    assert!(stderr.contains("exported 1 runs and 3 tables"), "{stderr}");
    let files: Vec<String> = files_under(&out)
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "project=mnist/run=base/csv_only.parquet",
            "project=mnist/run=base/eval.parquet",
            "project=mnist/run=base/steps.parquet",
            "runs.parquet",
        ]
    );
    for table in ["steps", "eval", "csv_only"] {
        let exported = read_parquet(&out.join(format!("project=mnist/run=base/{table}.parquet")));
        let stored = scan_store(&path, &format!("mnist/runs/base/{table}"));
        assert_same_rows(&exported, &stored, table);
    }
    let steps = read_parquet(&out.join("project=mnist/run=base/steps.parquet"));
    let emb = steps.column_by_name("emb").unwrap().as_fixed_size_list();
    assert_eq!(emb.value_length(), 3);
    assert_eq!(
        emb.value(2).as_primitive::<Float32Type>().values(),
        &[2.5, 3.0, 4.0]
    );
    assert_eq!(
        steps
            .column_by_name("step")
            .unwrap()
            .as_primitive::<Int64Type>()
            .values(),
        &[0, 1, 2]
    );

    let runs = read_parquet(&out.join("runs.parquet"));
    assert_eq!(runs.num_rows(), 1);
    let names: Vec<String> = runs
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    for wanted in [
        "url",
        "project",
        "name",
        "status",
        "created",
        "last_modified",
        "description",
        "params",
        "outputs",
        "params.lr",
        "params.opt",
        "params.model.depth",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} in {names:?}");
    }
    assert_eq!(
        runs.column_by_name("url")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "mnist/runs/base"
    );
    assert_eq!(
        runs.column_by_name("status")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "EMPTY"
    );
    assert_eq!(
        runs.column_by_name("params.lr")
            .unwrap()
            .as_primitive::<Float64Type>()
            .value(0),
        0.01
    );
    assert_eq!(
        runs.column_by_name("params.opt")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "adam"
    );
    assert_eq!(
        runs.column_by_name("params.model.depth")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0),
        18
    );
    let params: serde_json::Value = serde_json::from_str(
        runs.column_by_name("params")
            .unwrap()
            .as_string::<i32>()
            .value(0),
    )
    .unwrap();
    assert_eq!(params["opt"], "adam");
    let outputs: serde_json::Value = serde_json::from_str(
        runs.column_by_name("outputs")
            .unwrap()
            .as_string::<i32>()
            .value(0),
    )
    .unwrap();
    assert_eq!(outputs, serde_json::json!([{"epoch":1,"loss":0.5}]));
    assert!(matches!(
        runs.column_by_name("created").unwrap().data_type(),
        DataType::Timestamp(_, Some(tz)) if tz.as_ref() == "UTC"
    ));
    assert_eq!(
        std::fs::read_dir(out.join("project=mnist/run=base"))
            .unwrap()
            .count(),
        3,
        "no temporary files are left"
    );
}

#[test]
fn cli_copy_across_stores_and_within_one() {
    let (dir, path) = temp_store();
    let src = path.to_str().unwrap();
    let dest_path = dir.path().join("dest.runs");
    let dest = dest_path.to_str().unwrap();
    stdout(&runstore(&[
        "init",
        src,
        "--project",
        "p",
        "--name",
        "r",
        "--param",
        "lr=0.1",
    ]));
    stdout(&runstore(&[
        "log",
        src,
        "p/runs/r",
        "--output",
        r#"{"acc":0.5}"#,
    ]));
    stdout(&runstore_with_stdin(
        &["append", src, "p/runs/r", "--table", "m"],
        "{\"x\":1}\n{\"x\":2}\n",
    ));
    stdout(&runstore(&["set-status", src, "p/runs/r", "running"]));

    assert_eq!(
        stdout(&runstore(&["copy", src, "p/runs/r", dest])),
        "p/runs/r\n"
    );
    let show = |store: &str, url: &str| -> serde_json::Value {
        serde_json::from_str(&stdout(&runstore(&["show", store, url, "--json"]))).unwrap()
    };
    assert_eq!(show(src, "p/runs/r"), show(dest, "p/runs/r"));
    assert_eq!(
        stdout(&runstore(&["scan", dest, "p/runs/r/m", "--format", "csv"])),
        "x\n1\n2\n"
    );

    // A second copy under the same name is refused (the default), renamed, or named.
    let stderr = failure(&runstore(&["copy", src, "p/runs/r", dest]));
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(
        stdout(&runstore(&[
            "copy",
            src,
            "p/runs/r",
            dest,
            "--if-exists",
            "rename"
        ])),
        "p/runs/r_0000\n"
    );
    assert_eq!(
        stdout(&runstore(&["copy", src, "p/runs/r", dest, "--as", "named"])),
        "p/runs/named\n"
    );
    let mut renamed = show(dest, "p/runs/named");
    let original = show(src, "p/runs/r");
    assert_eq!(renamed["url"], "p/runs/named");
    assert_eq!(renamed["metrics"][0]["url"], "p/runs/named/m");
    renamed["url"] = original["url"].clone();
    renamed["name"] = original["name"].clone();
    renamed["metrics"][0]["url"] = original["metrics"][0]["url"].clone();
    assert_eq!(renamed, original, "equal but for the url");
    stdout(&runstore(&[
        "copy",
        src,
        "p/runs/r",
        dest,
        "--if-exists",
        "overwrite",
    ]));
    assert_eq!(
        stdout(&runstore(&["runs", dest, "--json"])).lines().count(),
        3,
        "r, r_0000, named"
    );

    // The same file on both sides copies within the store.
    assert_eq!(
        stdout(&runstore(&["copy", src, "p/runs/r", src])),
        "p/runs/r_0000\n"
    );
    let check = stdout(&runstore(&["check", dest]));
    assert!(check.contains("0 problems"), "{check}");
}

#[test]
fn cli_export_escapes_hostile_names_inside_the_directory() {
    let (dir, path) = temp_store();
    let store = path.to_str().unwrap();
    // `.`, `..`, `/` and `\` are refused as names (they are path components of urls).
    for (project, name) in [("..", "ok"), ("ok", ".."), ("ok", "x\\y")] {
        let refused = runstore(&["init", store, "--project", project, "--name", name]);
        assert_eq!(refused.status.code(), Some(1), "{project}/{name}");
    }
    for (project, name) in [
        ("...", "..."),
        ("a=b", "%2F"),
        (".hidden", "x:y"),
        ("CON", "é"),
    ] {
        stdout(&runstore(&[
            "init",
            store,
            "--project",
            project,
            "--name",
            name,
        ]));
        let url = format!("{project}/runs/{name}");
        stdout(&runstore_with_stdin(
            &["append", store, &url, "--table", "..."],
            "{\"v\":1}\n",
        ));
    }
    let out = dir.path().join("sub").join("export");
    let before: Vec<PathBuf> = files_under(dir.path());
    stdout(&runstore(&["export", store, out.to_str().unwrap()]));
    let after = files_under(dir.path());
    let new: Vec<&PathBuf> = after.iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(new.len(), 5, "{new:?}");
    for file in &new {
        let relative = file.strip_prefix(&out).expect("every file is inside DIR");
        assert!(
            relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{relative:?}"
        );
    }
    let relative: Vec<String> = files_under(&out)
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        relative,
        [
            "project=%2E.%2E/run=%2E.%2E/%2E.%2E.parquet",
            "project=%2Ehidden/run=x%3Ay/%2E.%2E.parquet",
            "project=%43ON/run=%C3%A9/%2E.%2E.parquet",
            "project=a%3Db/run=%252F/%2E.%2E.parquet",
            "runs.parquet",
        ]
    );
    let runs = read_parquet(&out.join("runs.parquet"));
    assert_eq!(runs.num_rows(), 4);
    let exported = read_parquet(&out.join("project=%2E.%2E/run=%2E.%2E/%2E.%2E.parquet"));
    assert_same_rows(&exported, &scan_store(&path, ".../runs/.../..."), "hostile");

    // --project limits the export to one project.
    let one = dir.path().join("one");
    stdout(&runstore(&[
        "export",
        store,
        one.to_str().unwrap(),
        "--project",
        "a=b",
    ]));
    assert_eq!(files_under(&one).len(), 2);
    assert_eq!(read_parquet(&one.join("runs.parquet")).num_rows(), 1);
}

#[test]
fn cli_export_writes_input_tables_and_joined_metrics_tables() {
    let (dir, path) = temp_store();
    {
        let store = Store::create(&path).unwrap();
        let inputs = RecordBatch::try_from_iter([(
            "image",
            Arc::new(arrow_array::StringArray::from(vec!["a.png", "b.png"])) as ArrayRef,
        )])
        .unwrap();
        let input = store.create_table("p", "inputs", &[inputs]).unwrap();
        let run = store.init("p", Some("r")).unwrap();
        let confidence = RecordBatch::try_from_iter([(
            "confidence",
            Arc::new(Float64Array::from(vec![0.25, 0.75])) as ArrayRef,
        )])
        .unwrap();
        run.add_metrics_data(
            &confidence,
            &runstore::MetricsOptions {
                input_table_url: Some(input.url().to_string()),
                ..Default::default()
            },
        )
        .unwrap();
    }
    let out = dir.path().join("out");
    stdout(&runstore(&[
        "export",
        path.to_str().unwrap(),
        out.to_str().unwrap(),
    ]));
    let exported = read_parquet(&out.join("project=p/tables/inputs.parquet"));
    assert_same_rows(
        &exported,
        &scan_store(&path, "p/tables/inputs"),
        "input table",
    );
    // The joined table carries example_id and the dictionary-encoded input_table_id column.
    let exported = read_parquet(&out.join("project=p/run=r/metrics_0000.parquet"));
    assert_same_rows(
        &exported,
        &scan_store(&path, "p/runs/r/metrics_0000"),
        "joined metrics table",
    );
    let names: Vec<String> = exported
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["example_id", "confidence", "input_table_id"]);
}

#[test]
fn a_second_writer_fails_at_once_or_waits_with_wait() {
    let (_dir, path) = temp_store();
    let path_text = path.to_str().unwrap().to_string();
    let run_url = {
        let store = Store::create(&path).unwrap();
        store.init("p", Some("a")).unwrap().url()
    };
    let holder = Store::open(&path).unwrap();
    let refused = crate::util::runstore(&["log", &path_text, &run_url, "--output", r#"{"x":1}"#]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("already open"), "{stderr}");
    let bad = crate::util::runstore(&[
        "log", &path_text, &run_url, "--wait", "nan", "--output", "{}",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let waiting = std::process::Command::new(env!("CARGO_BIN_EXE_runstore"))
        .args([
            "log",
            &path_text,
            &run_url,
            "--wait",
            "20",
            "--output",
            r#"{"x":2}"#,
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(holder);
    let status = waiting.wait_with_output().unwrap().status;
    assert!(status.success());
    let store = Store::open_read_only(&path).unwrap();
    let outputs = store.run(&run_url).unwrap().output_values().unwrap();
    assert_eq!(
        outputs,
        [runstore::Value::map([("x", runstore::Value::Int(2))])]
    );
}

/// Builds the store of the `--since` tests: project `p` with runs `a` (its metrics joined to
/// the input table `p/tables/inputs`) and `b`, project `q` with run `c`; each run has one
/// metrics table `metrics_0000` of two rows.
fn since_store(path: &Path) {
    let store = Store::create(path).unwrap();
    let inputs = RecordBatch::try_from_iter([(
        "image",
        Arc::new(arrow_array::StringArray::from(vec!["a.png", "b.png"])) as ArrayRef,
    )])
    .unwrap();
    let input = store.create_table("p", "inputs", &[inputs]).unwrap();
    for (project, name) in [("p", "a"), ("p", "b"), ("q", "c")] {
        let run = store.init(project, Some(name)).unwrap();
        let loss = RecordBatch::try_from_iter([(
            "loss",
            Arc::new(Float64Array::from(vec![0.5, 0.25])) as ArrayRef,
        )])
        .unwrap();
        let input_table_url = (name == "a").then(|| input.url().to_string());
        run.add_metrics_data(
            &loss,
            &runstore::MetricsOptions {
                input_table_url,
                ..Default::default()
            },
        )
        .unwrap();
    }
}

/// What tells whether a file was written again: its inode (a rewrite renames a new file into
/// place), modification time and bytes.
fn file_state(path: &Path) -> (u64, std::time::SystemTime, Vec<u8>) {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::symlink_metadata(path).unwrap();
    assert!(metadata.is_file(), "{}", path.display());
    (
        metadata.ino(),
        metadata.modified().unwrap(),
        std::fs::read(path).unwrap(),
    )
}

/// The `url` column of an exported `runs.parquet`, with the `status` column, sorted.
fn exported_runs(out: &Path) -> Vec<(String, String)> {
    let runs = read_parquet(&out.join("runs.parquet"));
    let column = |name: &str| {
        runs.column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .map(|value| value.unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let mut rows: Vec<(String, String)> = column("url").into_iter().zip(column("status")).collect();
    rows.sort();
    rows
}

/// A time after every change so far, as `--since` takes it, for a change made after it.
fn instant_after_now() -> String {
    std::thread::sleep(std::time::Duration::from_millis(5));
    let since = runstore::time::format_us(runstore::time::now_us());
    std::thread::sleep(std::time::Duration::from_millis(5));
    since
}

#[test]
fn cli_export_since_rewrites_changed_runs_and_leaves_unchanged_files_alone() {
    let (dir, path) = temp_store();
    since_store(&path);
    let out = dir.path().join("out");
    let (store_text, out_text) = (path.to_str().unwrap(), out.to_str().unwrap());
    stdout(&runstore(&["export", store_text, out_text]));
    let files = [
        "project=p/run=a/metrics_0000.parquet",
        "project=p/run=b/metrics_0000.parquet",
        "project=q/run=c/metrics_0000.parquet",
        "project=p/tables/inputs.parquet",
        "runs.parquet",
    ];
    let before: Vec<_> = files.iter().map(|f| file_state(&out.join(f))).collect();
    let since = instant_after_now();
    {
        let store = Store::open(&path).unwrap();
        // a changes (its last_modified moves past `since`); b only gains rows through
        // append_to_table, which leaves the run's time alone; c does not change.
        store
            .run("p/runs/a")
            .unwrap()
            .set_status_completed()
            .unwrap();
        let more = RecordBatch::try_from_iter([(
            "loss",
            Arc::new(Float64Array::from(vec![0.125])) as ArrayRef,
        )])
        .unwrap();
        store
            .append_to_table("p/runs/b/metrics_0000", &more)
            .unwrap();
        assert!(
            store.run("p/runs/b").unwrap().last_modified().unwrap()
                < runstore::time::parse_rfc3339_us(&since).unwrap()
        );
    }
    let output = runstore(&["export", store_text, out_text, "--since", &since]);
    stdout(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("exported 2 runs and 3 tables"), "{stderr}");
    assert!(
        stderr.contains("skipped 1 runs and 1 tables unchanged since"),
        "{stderr}"
    );
    assert!(stderr.contains("runs.parquet lists all 3 runs"), "{stderr}");
    let after: Vec<_> = files.iter().map(|f| file_state(&out.join(f))).collect();
    // a's table, the input table a uses, b's grown table and runs.parquet are new files ...
    for index in [0, 1, 3, 4] {
        assert_ne!(
            before[index].0, after[index].0,
            "{} rewritten",
            files[index]
        );
    }
    // ... c's table is the very file the first export wrote.
    assert_eq!(before[2], after[2], "{} untouched", files[2]);
    assert_same_rows(
        &read_parquet(&out.join(files[1])),
        &scan_store(&path, "p/runs/b/metrics_0000"),
        "b's grown table",
    );
    assert_eq!(
        exported_runs(&out),
        [
            ("p/runs/a".to_string(), "COMPLETED".to_string()),
            ("p/runs/b".to_string(), "EMPTY".to_string()),
            ("q/runs/c".to_string(), "EMPTY".to_string()),
        ]
    );
    // Nothing changed since: only runs.parquet is written.
    let output = runstore(&["export", store_text, out_text, "--since", "0s"]);
    stdout(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("exported 0 runs and 0 tables"), "{stderr}");
    assert!(stderr.contains("skipped 3 runs and 4 tables"), "{stderr}");
    // A missing file is written even when its run did not change.
    std::fs::remove_file(out.join(files[2])).unwrap();
    let output = runstore(&["export", store_text, out_text, "--since", "0s"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("exported 1 runs and 1 tables"), "{stderr}");
    assert_same_rows(
        &read_parquet(&out.join(files[2])),
        &scan_store(&path, "q/runs/c/metrics_0000"),
        "c's table written again",
    );
}

#[test]
fn cli_export_since_reads_times_dates_epochs_and_ages_and_rejects_others() {
    let (dir, path) = temp_store();
    since_store(&path);
    let out = dir.path().join("out");
    let (store_text, out_text) = (path.to_str().unwrap(), out.to_str().unwrap());
    for (since, tables) in [
        ("2000-01-01", 4),
        ("2000-01-01T00:00:00Z", 4),
        ("946684800", 4),
        ("7d", 4),
        ("2999-01-01", 0),
    ] {
        std::fs::remove_dir_all(&out).ok();
        let output = runstore(&["export", store_text, out_text, "--since", since]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{since}: {stderr}");
        // Into an empty folder every table file is missing, so each is written whatever the
        // time; the count shows which the time alone chose when a first export is there.
        assert!(stderr.contains("and 4 tables ("), "{since}: {stderr}");
        let output = runstore(&["export", store_text, out_text, "--since", since]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("and {tables} tables (")),
            "{since}: {stderr}"
        );
    }
    for bad in ["yesterday", "24 h", "-1d", "1.5h", "2026-13-01", ""] {
        let since = format!("--since={bad}");
        let output = runstore(&["export", store_text, out_text, &since]);
        assert_eq!(output.status.code(), Some(2), "--since {bad:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--since"), "{bad:?}: {stderr}");
        assert!(stderr.contains("RFC 3339"), "{bad:?}: {stderr}");
    }
}

#[test]
fn cli_export_since_with_project_writes_that_project_only() {
    let (dir, path) = temp_store();
    since_store(&path);
    let out = dir.path().join("out");
    let (store_text, out_text) = (path.to_str().unwrap(), out.to_str().unwrap());
    stdout(&runstore(&[
        "export",
        store_text,
        out_text,
        "--project",
        "p",
    ]));
    assert!(!out.join("project=q").exists());
    let a_before = file_state(&out.join("project=p/run=a/metrics_0000.parquet"));
    let b_before = file_state(&out.join("project=p/run=b/metrics_0000.parquet"));
    let since = instant_after_now();
    {
        let store = Store::open(&path).unwrap();
        store
            .run("p/runs/b")
            .unwrap()
            .set_status_cancelled()
            .unwrap();
        store
            .run("q/runs/c")
            .unwrap()
            .set_status_completed()
            .unwrap();
    }
    let output = runstore(&[
        "export",
        store_text,
        out_text,
        "--since",
        &since,
        "--project",
        "p",
    ]);
    stdout(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("exported 1 runs and 1 tables"), "{stderr}");
    assert!(stderr.contains("skipped 1 runs and 2 tables"), "{stderr}");
    assert!(stderr.contains("runs.parquet lists all 2 runs"), "{stderr}");
    assert_eq!(
        file_state(&out.join("project=p/run=a/metrics_0000.parquet")),
        a_before
    );
    assert_ne!(
        file_state(&out.join("project=p/run=b/metrics_0000.parquet")).0,
        b_before.0
    );
    // q changed too, but is not this export's project.
    assert!(!out.join("project=q").exists());
    assert_eq!(
        exported_runs(&out),
        [
            ("p/runs/a".to_string(), "EMPTY".to_string()),
            ("p/runs/b".to_string(), "CANCELLED".to_string()),
        ]
    );
}

#[test]
fn cli_export_prune_removes_the_files_of_deleted_runs_and_nothing_else() {
    let (dir, path) = temp_store();
    since_store(&path);
    let out = dir.path().join("out");
    let (store_text, out_text) = (path.to_str().unwrap(), out.to_str().unwrap());
    stdout(&runstore(&["export", store_text, out_text]));
    // Files that are not the export's to remove: another file in a run's folder, a folder
    // that is a link to one outside, a hard link to the store named as a table file, and a
    // table file outside the layout.
    std::fs::write(out.join("project=p/run=b/notes.txt"), b"keep").unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("metrics_0000.parquet"), b"not ours").unwrap();
    std::os::unix::fs::symlink(&outside, out.join("project=p/run=linked")).unwrap();
    std::fs::create_dir(out.join("project=p/run=gone")).unwrap();
    std::fs::hard_link(&path, out.join("project=p/run=gone/metrics_0000.parquet")).unwrap();
    std::fs::create_dir(out.join("project=p/other")).unwrap();
    std::fs::write(out.join("project=p/other/x.parquet"), b"keep").unwrap();
    {
        let store = Store::open(&path).unwrap();
        store.delete_run("p/runs/b").unwrap();
        store.delete_run("q/runs/c").unwrap();
    }
    // Without --prune the files of deleted runs stay; runs.parquet no longer lists them.
    let output = runstore(&["export", store_text, out_text, "--since", "1h"]);
    stdout(&output);
    assert!(out.join("project=p/run=b/metrics_0000.parquet").exists());
    assert_eq!(
        exported_runs(&out),
        [("p/runs/a".to_string(), "EMPTY".to_string())]
    );
    let output = runstore(&["export", store_text, out_text, "--since", "1h", "--prune"]);
    stdout(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pruned 2 files"), "{stderr}");
    assert!(!out.join("project=p/run=b/metrics_0000.parquet").exists());
    assert!(!out.join("project=q").exists(), "q's emptied folders go");
    assert!(out.join("project=p/run=b/notes.txt").exists());
    assert_eq!(
        std::fs::read(outside.join("metrics_0000.parquet")).unwrap(),
        b"not ours"
    );
    assert!(out.join("project=p/run=linked").is_symlink());
    assert!(out.join("project=p/run=gone/metrics_0000.parquet").exists());
    assert!(out.join("project=p/other/x.parquet").exists());
    assert!(out.join("project=p/run=a/metrics_0000.parquet").exists());
    assert!(out.join("project=p/tables/inputs.parquet").exists());
    // The store still opens: the hard link to it was never removed.
    Store::open_read_only(&path).unwrap();
}
