//! Bad input, one test per row of the table in `docs/BAD_INPUT.md`: each gets a typed error
//! naming the problem, and nothing already committed is lost. Rows tested elsewhere name
//! their test in that table.

use std::process::Command;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch};
use runstore::{Error, MetricsOptions, Store, Value};

use crate::util::temp_store;

fn store() -> (tempfile::TempDir, Store) {
    let (dir, path) = temp_store();
    (dir, Store::create(&path).unwrap())
}

fn nested(depth: usize) -> Value {
    let mut value = Value::from(1i64);
    for _ in 1..depth {
        value = Value::map([("k", value)]);
    }
    value
}

#[test]
fn bad_names_are_invalid_name_for_projects_runs_tables_and_blobs() {
    let (_dir, store) = store();
    let long = "x".repeat(257);
    let bad = [
        "",
        long.as_str(),
        "a/b",
        "a\\b",
        "a\nb",
        "a\u{0}b",
        "a\tb",
        "..",
        ".",
        " ",
    ];
    for name in bad {
        let err = store.init(name, Some("ok")).unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { .. }),
            "project {name:?}: {err:?}"
        );
        let err = store.init("p", Some(name)).unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { .. }),
            "run {name:?}: {err:?}"
        );
    }
    let run = store.init("p", Some("ok")).unwrap();
    for name in ["", long.as_str(), "a\nb"] {
        let err = run.put_bulk(name, b"x").unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { .. }),
            "blob {name:?}: {err:?}"
        );
    }
    // Nothing half-made: the one good run is all there is.
    assert_eq!(store.run_count().unwrap(), 1);
    assert_eq!(store.projects().unwrap().len(), 1);
}

#[test]
fn unknown_and_malformed_urls_are_not_found_and_invalid_url() {
    let (_dir, store) = store();
    store.init("p", Some("r")).unwrap();
    assert!(matches!(
        store.run("p/runs/missing"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(store.run("q/runs/r"), Err(Error::NotFound { .. })));
    for bad in [
        "",
        "p",
        "p/runs",
        "p/runs/",
        "p/tables/r",
        "/p/runs/r",
        "p/runs/r/x",
    ] {
        let err = store.run(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{bad:?}: {err:?}");
    }
    assert!(matches!(
        store.table("p/tables/missing"),
        Err(Error::NotFound { .. }) | Err(Error::InvalidUrl { .. })
    ));
}

#[test]
fn nan_and_infinities_are_stored_faithfully_in_params_outputs_inputs_and_columns() {
    let (_dir, store) = store();
    let run = store.init("p", Some("r")).unwrap();
    let specials = Value::map([
        ("nan", Value::Float(f64::NAN)),
        ("inf", Value::Float(f64::INFINITY)),
        ("neg_inf", Value::Float(f64::NEG_INFINITY)),
        ("neg_zero", Value::Float(-0.0)),
    ]);
    run.set_parameters(&specials).unwrap();
    run.add_output_value(&specials).unwrap();
    run.add_input_value(&specials).unwrap();
    let floats = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1.5];
    let batch = RecordBatch::try_from_iter([
        (
            "example_id",
            Arc::new(Int64Array::from_iter_values(0..5)) as ArrayRef,
        ),
        (
            "f64",
            Arc::new(Float64Array::from(floats.to_vec())) as ArrayRef,
        ),
        (
            "f32",
            Arc::new(Float32Array::from(
                floats.iter().map(|&f| f as f32).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
    ])
    .unwrap();
    let info = run
        .add_metrics_data(&batch, &MetricsOptions::default())
        .unwrap();

    let bits = |value: &Value| -> Vec<u64> {
        ["nan", "inf", "neg_inf", "neg_zero"]
            .iter()
            .map(|key| match value.get_path(&[key]) {
                Some(Value::Float(f)) => f.to_bits(),
                other => panic!("{key}: {other:?}"),
            })
            .collect()
    };
    let expected = bits(&specials);
    assert_eq!(bits(&run.parameters().unwrap()), expected);
    assert_eq!(bits(&run.output_values().unwrap()[0]), expected);
    assert_eq!(bits(&run.input_values().unwrap()[0]), expected);
    let table = store.table(&info[0].url).unwrap();
    let scanned = table.scan().unwrap();
    let f64s: Vec<u64> = scanned
        .iter()
        .flat_map(|b| {
            b.column_by_name("f64")
                .unwrap()
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .values()
                .iter()
                .map(|f| f.to_bits())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(f64s, floats.iter().map(|f| f.to_bits()).collect::<Vec<_>>());
    let f32s: Vec<u32> = scanned
        .iter()
        .flat_map(|b| {
            b.column_by_name("f32")
                .unwrap()
                .as_any()
                .downcast_ref::<Float32Array>()
                .unwrap()
                .values()
                .iter()
                .map(|f| f.to_bits())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        f32s,
        floats
            .iter()
            .map(|&f| (f as f32).to_bits())
            .collect::<Vec<_>>()
    );
    // A query over NaN treats it as unknown, not as a number.
    let found = store
        .query_runs()
        .filter("params.nan > 0 OR params.nan <= 0")
        .unwrap()
        .run()
        .unwrap();
    assert!(found.is_empty());
}

#[test]
fn a_hundred_thousand_parameters_round_trip() {
    let (_dir, store) = store();
    let run = store.init("p", Some("r")).unwrap();
    let params = Value::map(
        (0..100_000)
            .map(|i| (format!("param_{i:06}"), Value::from(i as i64)))
            .collect::<Vec<_>>()
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone())),
    );
    run.set_parameters(&params).unwrap();
    let back = run.parameters().unwrap();
    assert_eq!(back, params);
    assert_eq!(
        back.get_path(&["param_099999"]),
        Some(&Value::from(99_999i64))
    );
    let found = store
        .query_runs()
        .filter("params.param_054321 = 54321")
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(found.len(), 1);
}

#[test]
fn nesting_deeper_than_64_levels_is_invalid_value_and_writes_nothing() {
    let (_dir, store) = store();
    let run = store.init("p", Some("r")).unwrap();
    let ok = Value::map([("deep", nested(64))]);
    assert_eq!(ok.depth(), 64);
    run.set_parameters(&ok).unwrap();
    run.add_output_value(&ok).unwrap();
    run.add_input_value(&ok).unwrap();
    let too_deep = Value::map([("deep", nested(65))]);
    assert_eq!(too_deep.depth(), 65);
    let calls: [(&str, runstore::Result<()>); 3] = [
        ("set_parameters", run.set_parameters(&too_deep)),
        ("add_output_value", run.add_output_value(&too_deep)),
        ("add_input_value", run.add_input_value(&too_deep)),
    ];
    for (call, result) in calls {
        match result {
            Err(Error::InvalidValue { reason }) => {
                assert!(reason.contains("64"), "{call}: {reason}")
            }
            other => panic!("{call}: expected InvalidValue, got {other:?}"),
        }
    }
    assert_eq!(run.parameters().unwrap(), ok);
    assert_eq!(run.output_values().unwrap(), vec![ok.clone()]);
    assert_eq!(run.input_values().unwrap(), vec![ok]);
}

#[test]
fn a_second_writer_process_gets_already_open_and_nothing_changes() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    store.init("p", Some("held")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_runstore"))
        .args([
            "init",
            path.to_str().unwrap(),
            "--project",
            "p",
            "--name",
            "second",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already open"), "{stderr}");
    // The message names the holder (this test's process, where /proc tells) and what to do.
    #[cfg(target_os = "linux")]
    assert!(
        stderr.contains(&format!("by process {}", std::process::id())),
        "{stderr}"
    );
    assert!(
        stderr.contains("--wait SECONDS") && stderr.contains("--shared"),
        "{stderr}"
    );
    assert_eq!(store.run_count().unwrap(), 1);
    // Readers in other processes are not refused.
    let output = Command::new(env!("CARGO_BIN_EXE_runstore"))
        .args(["runs", path.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("p/runs/held"));
}

#[test]
fn a_second_writer_can_wait_for_the_first_to_close() {
    let (_dir, path) = temp_store();
    let first = Store::create(&path).unwrap();
    first.init("p", Some("first")).unwrap();
    // Fails after the timeout while the first stays open.
    let started = std::time::Instant::now();
    let err = Store::open_waiting(&path, std::time::Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err:?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(100));
    // Succeeds once the first closes within the timeout.
    let closer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(150));
        drop(first);
    });
    let second = Store::open_waiting(&path, std::time::Duration::from_secs(30)).unwrap();
    closer.join().unwrap();
    second.init("p", Some("second")).unwrap();
    assert_eq!(second.run_count().unwrap(), 2);
}
