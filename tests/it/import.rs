//! `runstore import` against fixtures the real tools wrote (tests/fixtures/import/, made by
//! its `make_fixtures.py`): every value imported is compared with what the tool's own reader
//! returned for the same files (the `expected.json` beside each fixture: TensorBoard's
//! EventAccumulator, MlflowClient, trackio's SQLiteStorage).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use runstore::import::{import, ImportOptions, ImportReport, ImportSource};
use runstore::names::escape_name;
use runstore::{RunStatus, Store, Value};
use serde_json::Value as Json;

use crate::util::{new_store, runstore, stdout};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(rel)
}

fn expected(rel: &str) -> Json {
    let text = std::fs::read_to_string(fixture(rel)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn run_import(
    source: ImportSource,
    src: &Path,
    store: &Store,
    options: &ImportOptions,
) -> ImportReport {
    let mut calls = Vec::new();
    let report = import(source, src, store, options, &mut |done, total| {
        calls.push((done, total))
    })
    .unwrap();
    // Progress: the total first, then once per run.
    let total = calls[0].1;
    assert_eq!(calls[0].0, 0);
    assert_eq!(calls.len(), total + 1);
    report
}

/// A table of `url`, whole.
fn table(store: &Store, url: &str) -> RecordBatch {
    let table = store.table(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let batches = table.scan().unwrap();
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn f64s(batch: &RecordBatch, column: &str) -> Vec<Option<f64>> {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let array = array.as_primitive::<Float64Type>();
    (0..array.len())
        .map(|i| array.is_valid(i).then(|| array.value(i)))
        .collect()
}

fn i64s(batch: &RecordBatch, column: &str) -> Vec<i64> {
    batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

fn strs(batch: &RecordBatch, column: &str) -> Vec<String> {
    let array = batch.column_by_name(column).unwrap().as_string::<i32>();
    (0..array.len())
        .map(|i| array.value(i).to_string())
        .collect()
}

fn num(json: &Json) -> f64 {
    match json {
        Json::Number(n) => n.as_f64().unwrap(),
        Json::String(s) if s == "NaN" => f64::NAN,
        Json::String(s) if s == "Infinity" => f64::INFINITY,
        Json::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        other => panic!("not a number: {other}"),
    }
}

fn same_number(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// `value` equals the tool's JSON, numbers compared as numbers (an int 32 is 32.0).
fn same_value(value: &Value, json: &Json) -> bool {
    match (value, json) {
        (Value::Null, Json::Null) => true,
        (Value::Bool(a), Json::Bool(b)) => a == b,
        (Value::Int(a), Json::Number(_)) => *a as f64 == num(json),
        (Value::Float(a), Json::Number(_) | Json::String(_)) => same_number(*a, num(json)),
        (Value::Str(a), Json::String(b)) => a == b,
        (Value::List(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y))
        }
        (Value::Map(a), Json::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|j| same_value(v, j)))
        }
        _ => false,
    }
}

// ---- TensorBoard ----

#[test]
fn tensorboard_import_matches_the_event_accumulator_value_for_value() {
    let (_dir, _path, store) = new_store();
    let report = run_import(
        ImportSource::Tensorboard,
        &fixture("tensorboard/logs"),
        &store,
        &ImportOptions::default(),
    );
    let expected = expected("tensorboard/expected.json");
    let runs = expected["runs"].as_object().unwrap();
    assert_eq!(report.imported.len(), runs.len());
    assert!(report.failed.is_empty() && report.skipped.is_empty());

    for (rel, want) in runs {
        let url = format!("logs/runs/{}", escape_name(rel));
        let run = store.run(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(run.status().unwrap(), RunStatus::Completed);

        // Scalars: every event, in the order the accumulator returns it (file order).
        let scalars_want = want["scalars"].as_object().unwrap();
        let mut first_wall = f64::INFINITY;
        if !scalars_want.is_empty() {
            let scalars = table(&store, &format!("{url}/scalars"));
            let tags = strs(&scalars, "tag");
            let steps = i64s(&scalars, "step");
            let walls = f64s(&scalars, "wall_time");
            let values = f64s(&scalars, "value");
            let steps_table = table(&store, &format!("{url}/steps_0000"));
            let table_steps = i64s(&steps_table, "step");
            for (tag, events) in scalars_want {
                let got: Vec<(i64, f64, f64)> = (0..tags.len())
                    .filter(|&i| tags[i] == *tag)
                    .map(|i| (steps[i], walls[i].unwrap(), values[i].unwrap()))
                    .collect();
                let events = events.as_array().unwrap();
                assert_eq!(got.len(), events.len(), "{url} {tag}");
                let mut last_at_step = BTreeMap::new();
                for (g, e) in got.iter().zip(events) {
                    let e = e.as_array().unwrap();
                    assert_eq!(g.0, e[0].as_i64().unwrap(), "{url} {tag} step");
                    assert_eq!(g.1, num(&e[1]), "{url} {tag} wall time");
                    assert!(same_number(g.2, num(&e[2])), "{url} {tag} value");
                    last_at_step.insert(g.0, g.2);
                    first_wall = first_wall.min(g.1);
                }
                // The step table: the tag's last value at each of its steps, null elsewhere.
                let column = f64s(&steps_table, tag);
                for (row, step) in table_steps.iter().enumerate() {
                    assert_eq!(
                        column[row],
                        last_at_step.get(step).copied(),
                        "{url} {tag} @{step}"
                    );
                }
            }
            // The last output is every tag's last value.
            let last = run.last_output().unwrap().unwrap();
            for (tag, events) in scalars_want {
                let last_event = events.as_array().unwrap().last().unwrap();
                assert!(same_number(
                    last.get(tag).unwrap().as_f64().unwrap(),
                    num(&last_event[2])
                ));
            }
        }

        // Text summaries are output values.
        let outputs = run.output_values().unwrap();
        for (tag, events) in want["text"].as_object().unwrap() {
            for event in events.as_array().unwrap() {
                let event = event.as_array().unwrap();
                assert!(
                    outputs.iter().any(|o| o.get("step").and_then(Value::as_i64)
                        == event[0].as_i64()
                        && o.get(tag).and_then(Value::as_str) == event[2].as_str()),
                    "{url}: text {tag} at {} missing from {outputs:?}",
                    event[0]
                );
            }
        }

        // Histograms, field by field.
        let histograms_want = want["histograms"].as_object().unwrap();
        if !histograms_want.is_empty() {
            let histograms = table(&store, &format!("{url}/histograms"));
            let tags = strs(&histograms, "tag");
            for (tag, events) in histograms_want {
                let rows: Vec<usize> = (0..tags.len()).filter(|&i| tags[i] == *tag).collect();
                let events = events.as_array().unwrap();
                assert_eq!(rows.len(), events.len());
                for (&row, event) in rows.iter().zip(events) {
                    assert_eq!(
                        i64s(&histograms, "step")[row],
                        event["step"].as_i64().unwrap()
                    );
                    for field in ["wall_time", "min", "max", "num", "sum", "sum_squares"] {
                        assert_eq!(
                            f64s(&histograms, field)[row],
                            Some(num(&event[field])),
                            "{field}"
                        );
                    }
                    for field in ["bucket_limit", "bucket"] {
                        let list = histograms.column_by_name(field).unwrap().as_list::<i32>();
                        let got = list.value(row);
                        let got = got.as_primitive::<Float64Type>().values().to_vec();
                        let want: Vec<f64> =
                            event[field].as_array().unwrap().iter().map(num).collect();
                        assert_eq!(got, want, "{field}");
                    }
                }
            }
        }

        // hparams are the parameters.
        let params = run.parameters().unwrap();
        let hparams = want["hparams"].as_object().unwrap();
        assert_eq!(
            params.as_map().map_or(0, |m| m.len()),
            hparams.len(),
            "{url} params"
        );
        for (name, value) in hparams {
            assert!(
                same_value(params.get(name).unwrap(), value),
                "{url} hparam {name}"
            );
        }

        // Projector embeddings: vectors and labels.
        for embedding in want["embeddings"].as_array().unwrap() {
            let name = embedding["tensor_name"].as_str().unwrap();
            let batch = table(&store, &format!("{url}/projector_{}", escape_name(name)));
            let role =
                runstore::ColumnRole::of(batch.schema().field_with_name("embedding").unwrap());
            assert_eq!(role, Some(runstore::ColumnRole::Embedding));
            let vectors = batch
                .column_by_name("embedding")
                .unwrap()
                .as_fixed_size_list();
            let want_rows = embedding["tensor"].as_array().unwrap();
            assert_eq!(vectors.len(), want_rows.len());
            for (i, row) in want_rows.iter().enumerate() {
                let got = vectors.value(i);
                let got = got.as_primitive::<Float32Type>().values().to_vec();
                let want: Vec<f32> = row
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| num(v) as f32)
                    .collect();
                assert_eq!(got, want);
            }
            let labels: Vec<String> = embedding["metadata"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| match v {
                    Json::String(s) => s.clone(),
                    Json::Array(cells) => cells[0].as_str().unwrap().to_string(),
                    other => other.to_string(),
                })
                .collect();
            let got = strs(&batch, batch.schema().field(1).name());
            assert_eq!(got, labels);
        }

        // Every record of every event file decodes.
        for (file, count) in want["record_counts"].as_object().unwrap() {
            let bytes = std::fs::read(fixture("tensorboard/logs").join(rel).join(file)).unwrap();
            let log = runstore::import::tensorboard::decode_event_file(&bytes);
            assert_eq!(log.events(), count.as_u64().unwrap(), "{rel}/{file}");
            assert!(log.problems().is_empty());
        }

        // The event files are named in the input value; the first event is the creation time.
        let inputs = run.input_values().unwrap();
        let files = inputs[0].get_path(&["tensorboard", "event_files"]).unwrap();
        let files: Vec<&str> = files
            .as_list()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let want_files: Vec<&str> = want["event_files"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Json::as_str)
            .collect();
        assert_eq!(files, want_files);
        if first_wall.is_finite() {
            assert!(run.created().unwrap() <= (first_wall * 1e6).round() as i64);
        }
    }
    crate::util::assert_checks(store.path());
}

#[test]
fn a_truncated_or_corrupt_event_file_imports_what_is_intact_and_says_where_it_stopped() {
    let (_dir, _path, store) = new_store();
    let report = run_import(
        ImportSource::Tensorboard,
        &fixture("tensorboard/corrupt"),
        &store,
        &ImportOptions::default(),
    );
    let expected = expected("tensorboard/corrupt/expected.json");
    assert_eq!(report.imported.len(), 2, "{report:?}");
    assert!(report.failed.is_empty());
    for (file, want) in expected["files"].as_object().unwrap() {
        let folder = file.split('/').next().unwrap();
        let imported = report
            .imported
            .iter()
            .find(|r| r.url == format!("corrupt/runs/{folder}"))
            .unwrap();
        // The fixture script's own reader (both CRCs checked, a bad payload skipped) found
        // this many intact records; the importer decodes every one of them.
        let own = &want["own_reader"];
        let intact = own["intact_total_skipping_bad"].as_u64().unwrap();
        let offset = own["first_error"]["offset"].as_u64().unwrap();
        let bytes = std::fs::read(fixture("tensorboard/corrupt").join(file)).unwrap();
        let log = runstore::import::tensorboard::decode_event_file(&bytes);
        assert_eq!(log.events(), intact, "{file}");
        assert!(!log.problems().is_empty());
        assert!(
            imported
                .notes
                .iter()
                .any(|n| n.contains(&format!("at byte {offset}"))),
            "{folder}: the damage is reported where it is: {:?}",
            imported.notes
        );
        // More than TensorBoard's own loader, which stops at the first bad record.
        let tensorboard = want["tensorboard_RawEventFileLoader"]["events"]
            .as_u64()
            .unwrap();
        assert!(intact >= tensorboard);
        assert!(store.run(&imported.url).is_ok());
    }
}

// ---- MLflow ----

fn mlflow_status(name: &str) -> RunStatus {
    match name {
        "FINISHED" => RunStatus::Completed,
        "FAILED" | "KILLED" => RunStatus::Cancelled,
        "RUNNING" => RunStatus::Running,
        _ => RunStatus::Empty,
    }
}

fn check_mlflow(kind: &str, src: &Path) {
    let (_dir, _path, store) = new_store();
    let report = run_import(ImportSource::Mlflow, src, &store, &ImportOptions::default());
    let expected = expected("mlflow/expected.json");
    let runs = expected[kind]["runs"].as_array().unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    let active: Vec<&Json> = runs
        .iter()
        .filter(|r| r["lifecycle_stage"] == "active")
        .collect();
    assert_eq!(report.imported.len(), active.len());

    for want in active {
        let url = format!(
            "{}/runs/{}",
            escape_name(want["experiment_name"].as_str().unwrap()),
            escape_name(want["run_name"].as_str().unwrap())
        );
        let run = store
            .run(&url)
            .unwrap_or_else(|e| panic!("{kind} {url}: {e}"));
        assert_eq!(
            run.status().unwrap(),
            mlflow_status(want["status"].as_str().unwrap()),
            "{url}"
        );
        assert_eq!(
            run.created().unwrap(),
            want["start_time"].as_i64().unwrap() * 1000
        );
        let tags = want["tags"].as_object().unwrap();
        assert_eq!(
            run.description().unwrap(),
            tags.get("mlflow.note.content")
                .and_then(Json::as_str)
                .unwrap_or("")
        );

        // Params: typed when they read as a number or JSON, the text otherwise.
        let params = run.parameters().unwrap();
        let want_params = want["params"].as_object().unwrap();
        assert_eq!(params.as_map().map_or(0, |m| m.len()), want_params.len());
        for (key, text) in want_params {
            let text = text.as_str().unwrap();
            let got = params.get(key).unwrap();
            match serde_json::from_str::<Json>(text) {
                Ok(json) if !json.is_string() => assert!(same_value(got, &json), "{key}: {got:?}"),
                _ => assert_eq!(got, &Value::Str(text.into()), "{key}"),
            }
        }

        // Tags and the MLflow ids: the input value.
        let input = &run.input_values().unwrap()[0];
        assert_eq!(
            input.get_path(&["mlflow", "run_id"]).unwrap().as_str(),
            want["run_id"].as_str()
        );
        let got_tags = input.get_path(&["mlflow", "tags"]).unwrap();
        assert!(
            same_value(got_tags, &want["tags"]),
            "{url} tags {got_tags:?}"
        );
        assert_eq!(
            input.get_path(&["mlflow", "end_time"]).unwrap().as_i64(),
            want["end_time"].as_i64()
        );

        // Every value of the metric history, and each key's latest value.
        let history = want["metrics"].as_object().unwrap();
        if !history.is_empty() {
            let metrics = table(&store, &format!("{url}/metrics"));
            let keys = strs(&metrics, "key");
            let steps = i64s(&metrics, "step");
            let times = i64s(&metrics, "timestamp");
            let values = f64s(&metrics, "value");
            let steps_table = table(&store, &format!("{url}/steps_0000"));
            for (key, points) in history {
                let mut got: Vec<(i64, i64, f64)> = (0..keys.len())
                    .filter(|&i| keys[i] == *key)
                    .map(|i| (steps[i], times[i], values[i].unwrap()))
                    .collect();
                let mut want: Vec<(i64, i64, f64)> = points
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_i64().unwrap(), p[1].as_i64().unwrap(), num(&p[2])))
                    .collect();
                got.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
                want.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
                assert_eq!(got.len(), want.len(), "{url} {key}");
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        g.0 == w.0 && g.1 == w.1 && same_number(g.2, w.2),
                        "{url} {key}: {g:?} vs {w:?}"
                    );
                }
                // The step table has one of the values logged at each step.
                let column = f64s(&steps_table, key);
                for (row, step) in i64s(&steps_table, "step").iter().enumerate() {
                    match column[row] {
                        Some(v) => {
                            assert!(want.iter().any(|w| w.0 == *step && same_number(w.2, v)))
                        }
                        None => assert!(!want.iter().any(|w| w.0 == *step)),
                    }
                }
            }
            let latest = run.last_output().unwrap().unwrap();
            for (key, value) in want["latest"].as_object().unwrap() {
                assert!(
                    same_number(latest.get(key).unwrap().as_f64().unwrap(), num(value)),
                    "{key}"
                );
            }
        }

        // Local artifacts are the run's blobs, byte for byte.
        let blobs = run.user_bulk_list().unwrap();
        let want_artifacts = want["artifacts"].as_array().unwrap();
        assert_eq!(
            blobs.len(),
            want_artifacts.len(),
            "{url} artifacts {blobs:?}"
        );
        for artifact in want_artifacts {
            let path = artifact["path"].as_str().unwrap();
            let bytes = run.bulk_bytes(path).unwrap();
            assert_eq!(
                bytes.len() as u64,
                artifact["file_size"].as_u64().unwrap(),
                "{path}"
            );
        }
    }
    crate::util::assert_checks(store.path());
}

#[test]
fn mlflow_file_store_import_matches_mlflow_client() {
    check_mlflow("file", &fixture("mlflow/mlruns"));
}

#[test]
fn mlflow_sqlite_store_import_matches_mlflow_client() {
    check_mlflow("sqlite", &fixture("mlflow/mlflow.db"));
}

#[test]
fn a_damaged_mlflow_file_store_imports_the_rest_and_lists_the_damage() {
    let (_dir, _path, store) = new_store();
    let report = run_import(
        ImportSource::Mlflow,
        &fixture("mlflow/corrupt/mlruns"),
        &store,
        &ImportOptions::default(),
    );
    let expected = expected("mlflow/corrupt/expected.json");
    let finished = expected["ids"]["finished"].as_str().unwrap();
    // The garbage metric line is skipped and said; the run is imported.
    let baseline = report
        .imported
        .iter()
        .find(|r| r.source.contains(finished))
        .unwrap_or_else(|| panic!("{report:?}"));
    assert!(
        baseline
            .notes
            .iter()
            .any(|n| n.contains("not `timestamp value step`")),
        "{baseline:?}"
    );
    // The run whose meta.yaml is cut is listed with the reason, never dropped silently
    // (MLflow's own reader fails the whole search on it).
    let failed = expected["ids"]["failed"].as_str().unwrap();
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.source.contains(failed) && s.reason.contains("unterminated")),
        "{report:?}"
    );
    assert_eq!(report.imported.len(), 3);
}

#[test]
fn a_truncated_mlflow_database_is_an_error_naming_it() {
    let (_dir, _path, store) = new_store();
    let src = fixture("mlflow/corrupt/mlflow.db");
    let error = import(
        ImportSource::Mlflow,
        &src,
        &store,
        &ImportOptions::default(),
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("mlflow.db"), "{error}");
    assert!(store.runs(None).unwrap().is_empty());
}

// ---- trackio ----

#[test]
fn trackio_import_matches_trackios_reader() {
    let (_dir, _path, store) = new_store();
    let report = run_import(
        ImportSource::Trackio,
        &fixture("trackio/demo.db"),
        &store,
        &ImportOptions::default(),
    );
    let expected = expected("trackio/expected.json");
    let runs = expected["runs"].as_array().unwrap();
    assert_eq!(report.imported.len(), runs.len(), "{report:?}");
    for want in runs {
        let url = format!(
            "{}/runs/{}",
            escape_name(want["project"].as_str().unwrap()),
            escape_name(want["name"].as_str().unwrap())
        );
        let run = store.run(&url).unwrap();
        // The config: parameters, but for trackio's own `_` keys (in the input value).
        let params = run.parameters().unwrap();
        let input = &run.input_values().unwrap()[0];
        for (key, value) in want["config"].as_object().unwrap() {
            if key.starts_with('_') {
                assert!(
                    same_value(input.get_path(&["trackio", key]).unwrap(), value),
                    "{key}"
                );
            } else {
                assert!(
                    same_value(params.get(key).unwrap(), value),
                    "{key}: {params:?}"
                );
            }
        }
        assert_eq!(
            input.get_path(&["trackio", "run_id"]).unwrap().as_str(),
            want["record"]["id"].as_str()
        );
        // Every logged number, by step.
        let metrics = table(&store, &format!("{url}/metrics"));
        let keys = strs(&metrics, "key");
        let steps = i64s(&metrics, "step");
        let values = f64s(&metrics, "value");
        let mut got: Vec<(i64, String, f64)> = (0..keys.len())
            .map(|i| (steps[i], keys[i].clone(), values[i].unwrap()))
            .collect();
        let mut want_points = Vec::new();
        for log in want["logs"].as_array().unwrap() {
            let step = log["step"].as_i64().unwrap();
            for (key, value) in log.as_object().unwrap() {
                if key == "step" || key == "timestamp" {
                    continue;
                }
                want_points.push((step, key.clone(), num(value)));
            }
        }
        let order = |a: &(i64, String, f64), b: &(i64, String, f64)| {
            (a.0, &a.1).cmp(&(b.0, &b.1)).then(a.2.total_cmp(&b.2))
        };
        got.sort_by(order);
        want_points.sort_by(order);
        assert_eq!(got.len(), want_points.len(), "{url}");
        for (g, w) in got.iter().zip(&want_points) {
            assert!(
                g.0 == w.0 && g.1 == w.1 && same_number(g.2, w.2),
                "{g:?} vs {w:?}"
            );
        }
        let steps_table = table(&store, &format!("{url}/steps_0000"));
        assert_eq!(
            i64s(&steps_table, "step"),
            want["logs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["step"].as_i64().unwrap())
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_truncated_trackio_database_is_an_error_naming_it() {
    let (_dir, _path, store) = new_store();
    let src = fixture("trackio/corrupt/demo.db");
    let result = import(
        ImportSource::Trackio,
        &src,
        &store,
        &ImportOptions::default(),
        &mut |_, _| {},
    );
    match result {
        Err(error) => assert!(error.to_string().contains("demo.db"), "{error}"),
        // SQLite may read a cut file's first pages: then every run is imported or listed.
        Ok(report) => assert!(
            report.imported.len() + report.failed.len() >= 1,
            "{report:?}"
        ),
    }
}

// ---- the command and --if-exists ----

fn summary_line(output: &str) -> &str {
    output.lines().last().unwrap()
}

#[test]
fn import_again_raise_fails_skip_completes_rename_and_overwrite_place_copies() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("new/history.runs");
    let dest = dest.to_str().unwrap();
    let src = fixture("mlflow/mlruns");
    let src = src.to_str().unwrap();

    let first = runstore(&["import", "mlflow", src, dest]);
    assert!(first.status.success(), "{first:?}");
    let text = stdout(&first);
    assert!(
        summary_line(&text).contains("4 runs imported, 0 skipped, 0 failed"),
        "{text}"
    );

    // Raise: every run fails, exit 1, the store unchanged.
    let again = runstore(&["import", "mlflow", src, dest]);
    assert_eq!(again.status.code(), Some(1));
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains("FAILED") && text.contains("--if-exists"),
        "{text}"
    );
    let store = Store::open_read_only(dest).unwrap();
    assert_eq!(store.runs(None).unwrap().len(), 4);
    drop(store);

    // An interrupted import (a run missing) completed by skip.
    let store = Store::open(dest).unwrap();
    store.delete_run("cifar/runs/baseline").unwrap();
    drop(store);
    let skip = runstore(&["import", "mlflow", src, dest, "--if-exists", "skip"]);
    assert!(skip.status.success());
    assert!(summary_line(&stdout(&skip)).contains("1 runs imported, 3 skipped, 0 failed"));

    let rename = runstore(&["import", "mlflow", src, dest, "--if-exists", "rename"]);
    assert!(rename.status.success());
    assert!(stdout(&rename).contains("cifar/runs/baseline_0000"));
    let overwrite = runstore(&["import", "mlflow", src, dest, "--if-exists", "overwrite"]);
    assert!(overwrite.status.success());
    let store = Store::open_read_only(dest).unwrap();
    assert_eq!(store.runs(None).unwrap().len(), 8);

    // --project puts everything in one project.
    let projected = dir.path().join("one.runs");
    let out = runstore(&[
        "import",
        "tensorboard",
        fixture("tensorboard/logs").to_str().unwrap(),
        projected.to_str().unwrap(),
        "--project",
        "tb",
    ]);
    assert!(out.status.success());
    let store = Store::open_read_only(&projected).unwrap();
    assert!(store
        .runs(None)
        .unwrap()
        .iter()
        .all(|r| r.project() == "tb"));
    assert!(store.run("tb/runs/sweep%2Flr=0.1").is_ok());
}

#[test]
fn two_mlflow_runs_of_one_name_are_told_apart_the_same_way_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let mlruns = dir.path().join("mlruns");
    copy_dir(&fixture("mlflow/mlruns"), &mlruns);
    let expected = expected("mlflow/expected.json");
    let exp = expected["file"]["ids"]["exp"][0].as_str().unwrap();
    let finished = expected["file"]["ids"]["finished"].as_str().unwrap();
    let twin = "ffffffff0000000000000000000000aa";
    copy_dir(
        &mlruns.join(exp).join(finished),
        &mlruns.join(exp).join(twin),
    );
    let meta = mlruns.join(exp).join(twin).join("meta.yaml");
    let text = std::fs::read_to_string(&meta)
        .unwrap()
        .replace(finished, twin);
    std::fs::write(&meta, text).unwrap();

    for _ in 0..2 {
        let (_d, _p, store) = new_store();
        let report = run_import(
            ImportSource::Mlflow,
            &mlruns,
            &store,
            &ImportOptions::default(),
        );
        assert_eq!(report.imported.len(), 5, "{report:?}");
        let urls: Vec<&str> = report.imported.iter().map(|r| r.url.as_str()).collect();
        assert!(urls.contains(&"cifar/runs/baseline"));
        assert!(urls.contains(&"cifar/runs/baseline-ffffffff"), "{urls:?}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_source_that_is_not_the_tools_is_a_clear_error_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("d.runs");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (tool, src) in [
        ("tensorboard", empty.clone()),
        ("mlflow", empty.clone()),
        ("trackio", empty.clone()),
        ("trackio", fixture("tensorboard/expected.json")),
        ("mlflow", dir.path().join("missing")),
    ] {
        let out = runstore(&[
            "import",
            tool,
            src.to_str().unwrap(),
            dest.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{tool} {src:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("importing"), "{err}");
    }
    let out = runstore(&["import", "wandb", ".", dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_symbolic_link_loop_in_an_mlflow_run_folder_is_a_note_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let mlruns = dir.path().join("mlruns");
    copy_dir(&fixture("mlflow/mlruns"), &mlruns);
    let expected = expected("mlflow/expected.json");
    let exp = expected["file"]["ids"]["exp"][0].as_str().unwrap();
    let finished = expected["file"]["ids"]["finished"].as_str().unwrap();
    let params = mlruns.join(exp).join(finished).join("params");
    std::os::unix::fs::symlink("..", params.join("loop")).unwrap();
    let (_d, _p, store) = new_store();
    let report = run_import(
        ImportSource::Mlflow,
        &mlruns,
        &store,
        &ImportOptions::default(),
    );
    let baseline = report
        .imported
        .iter()
        .find(|r| r.url == "cifar/runs/baseline")
        .unwrap();
    assert!(
        baseline.notes.iter().any(|n| n.contains("symbolic link")),
        "{baseline:?}"
    );
    let params = store
        .run("cifar/runs/baseline")
        .unwrap()
        .parameters()
        .unwrap();
    assert_eq!(params.as_map().unwrap().len(), 6);
}

#[test]
fn a_run_whose_files_cannot_be_read_fails_alone_and_the_import_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    copy_dir(&fixture("tensorboard/logs"), &logs);
    let (_d, _p, store) = new_store();
    // The sweep's folder vanishes after the runs are found, before they are read.
    let sweep = logs.join("sweep/lr=0.1");
    let report = import(
        ImportSource::Tensorboard,
        &logs,
        &store,
        &ImportOptions::default(),
        &mut |done, _| {
            if done == 0 {
                std::fs::remove_dir_all(&sweep).unwrap();
            }
        },
    )
    .unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].source.contains("sweep"));
    assert!(
        report.failed[0].reason.contains("could not be read"),
        "{report:?}"
    );
    assert_eq!(report.imported.len(), 3);
}
