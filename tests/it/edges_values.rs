//! Issue 15, values, queries and their printing: non-finite floats in every JSON writer,
//! exact integer filters and aggregates in `scan`, `--param`/`--output` nesting and integers
//! beyond `i64` refused with the limit named, `reduce` with nothing to reduce leaving the
//! status alone, and the file size after one huge value.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array, RecordBatch,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use runstore::{Agg, Error, ReduceOptions, RunStatus, Store, Value};

use crate::util::{failure, runstore, stdout, temp_store};

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

/// A store with run `p/runs/r` whose parameters and outputs hold NaN, both infinities, -0.0
/// and a null, at the top level and nested.
fn store_with_non_finite_values(path: &std::path::Path) {
    let store = Store::create(path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let specials = || {
        Value::map([
            ("nan", Value::Float(f64::NAN)),
            ("inf", Value::Float(f64::INFINITY)),
            ("ninf", Value::Float(f64::NEG_INFINITY)),
            ("none", Value::Null),
            ("one", Value::Float(1.5)),
        ])
    };
    let mut params = specials();
    if let Value::Map(map) = &mut params {
        map.insert("nested".into(), Value::List(vec![specials()]));
    }
    run.set_parameters(&params).unwrap();
    run.add_output_value(&specials()).unwrap();
    run.add_input_value(&specials()).unwrap();
}

fn check_specials(object: &serde_json::Value, what: &str) {
    assert_eq!(object["nan"], "NaN", "{what}: {object}");
    assert_eq!(object["inf"], "Infinity", "{what}: {object}");
    assert_eq!(object["ninf"], "-Infinity", "{what}: {object}");
    assert_eq!(object["none"], serde_json::Value::Null, "{what}: {object}");
    assert_eq!(object["one"], 1.5, "{what}: {object}");
}

#[test]
fn runs_and_show_json_print_nan_and_infinities_distinct_from_null() {
    let (_dir, path) = temp_store();
    store_with_non_finite_values(&path);
    let path = path.to_str().unwrap();

    let runs = json_lines(&stdout(&runstore(&["runs", path, "--json"])));
    assert_eq!(runs.len(), 1);
    check_specials(&runs[0]["params"], "runs --json params");
    check_specials(&runs[0]["params"]["nested"][0], "runs --json nested params");
    check_specials(&runs[0]["outputs"][0], "runs --json outputs");
    check_specials(&runs[0]["input_values"][0], "runs --json input values");

    let show: serde_json::Value =
        serde_json::from_str(&stdout(&runstore(&["show", path, "p/runs/r", "--json"]))).unwrap();
    check_specials(&show["params"], "show --json params");
    check_specials(&show["outputs"][0], "show --json outputs");

    // --columns as JSON: the cells, and maps holding non-finite floats.
    let runs = json_lines(&stdout(&runstore(&[
        "runs",
        path,
        "--json",
        "--columns",
        "params.nan,params.inf,params.ninf,params.none,params.one,params.nested,outputs.nan",
    ])));
    let columns = &runs[0]["columns"];
    assert_eq!(columns["params.nan"], "NaN", "{columns}");
    assert_eq!(columns["params.inf"], "Infinity", "{columns}");
    assert_eq!(columns["params.ninf"], "-Infinity", "{columns}");
    assert_eq!(columns["params.none"], serde_json::Value::Null, "{columns}");
    assert_eq!(columns["params.one"], 1.5, "{columns}");
    assert_eq!(columns["outputs.nan"], "NaN", "{columns}");
    check_specials(&columns["params.nested"][0], "runs --columns nested");

    // The text forms: show, the runs table and CSV never print a non-finite float as empty
    // or null.
    let text = stdout(&runstore(&["show", path, "p/runs/r"]));
    assert!(text.contains(r#""nan":"NaN""#), "{text}");
    assert!(text.contains(r#""ninf":"-Infinity""#), "{text}");
    let csv = stdout(&runstore(&[
        "runs",
        path,
        "--csv",
        "--columns",
        "params.nan,params.inf,params.ninf,params.none",
    ]));
    let row = csv.lines().nth(1).unwrap();
    assert!(row.ends_with(",NaN,inf,-inf,"), "{row}");
}

#[test]
fn scan_json_prints_nan_and_infinities_distinct_from_null() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let schema = Arc::new(Schema::new(vec![
        Field::new("f64", DataType::Float64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new("embedding", DataType::FixedSizeList(item.clone(), 2), false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(vec![
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            None,
            Some(0.1),
        ])),
        Arc::new(Float32Array::from(vec![
            Some(f32::NAN),
            Some(f32::INFINITY),
            Some(f32::NEG_INFINITY),
            None,
            Some(0.1),
        ])),
        Arc::new(
            FixedSizeListArray::try_new(
                item,
                2,
                Arc::new(Float32Array::from(vec![
                    f32::INFINITY,
                    0.2,
                    f32::NAN,
                    0.2,
                    f32::NEG_INFINITY,
                    0.2,
                    0.0,
                    0.2,
                    1.5,
                    0.2,
                ])),
                None,
            )
            .unwrap(),
        ),
    ];
    let batch = RecordBatch::try_new(schema, columns).unwrap();
    store.create_table("p", "t", &[batch]).unwrap();
    drop(store);
    let rows = json_lines(&stdout(&runstore(&[
        "scan",
        path.to_str().unwrap(),
        "p/tables/t",
        "--format",
        "json",
    ])));
    assert_eq!(rows.len(), 5);
    for column in ["f64", "f32"] {
        assert_eq!(rows[0][column], "NaN", "{:?}", rows[0]);
        assert_eq!(rows[1][column], "Infinity", "{:?}", rows[1]);
        assert_eq!(rows[2][column], "-Infinity", "{:?}", rows[2]);
        assert!(rows[3].get(column).is_none_or(|v| v.is_null()));
        assert_eq!(rows[4][column], 0.1, "{:?}", rows[4]);
    }
    assert_eq!(rows[0]["embedding"], serde_json::json!(["Infinity", 0.2]));
    assert_eq!(rows[1]["embedding"], serde_json::json!(["NaN", 0.2]));
    assert_eq!(rows[2]["embedding"], serde_json::json!(["-Infinity", 0.2]));
    assert_eq!(rows[4]["embedding"], serde_json::json!([1.5, 0.2]));
}

/// A table of `a: Int64` and `u: UInt64` around the points where `f64` stops being exact.
fn store_with_big_integers(path: &std::path::Path) -> Store {
    let store = Store::create(path).unwrap();
    let two53 = 1i64 << 53;
    let a = vec![
        two53,
        two53 + 1,
        i64::MIN,
        i64::MIN + 1,
        i64::MAX,
        i64::MAX - 1,
    ];
    let u = vec![
        1u64 << 63,
        (1u64 << 63) + 1,
        u64::MAX,
        u64::MAX - 1,
        5,
        (1u64 << 53) + 1,
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("u", DataType::UInt64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(a)) as ArrayRef,
            Arc::new(UInt64Array::from(u)) as ArrayRef,
        ],
    )
    .unwrap();
    store.create_table("p", "big", &[batch]).unwrap();
    store
}

fn matching_a(store: &Store, filter: &str) -> Vec<i64> {
    let batches = store
        .table("p/tables/big")
        .unwrap()
        .query()
        .filter(filter)
        .unwrap()
        .batches()
        .unwrap();
    let mut out = Vec::new();
    for batch in batches {
        let column = batch.column_by_name("a").unwrap();
        let column = column.as_any().downcast_ref::<Int64Array>().unwrap();
        out.extend(column.values().iter().copied());
    }
    out
}

#[test]
fn scan_where_compares_integers_exactly() {
    let (_dir, path) = temp_store();
    let store = store_with_big_integers(&path);
    let two53 = 1i64 << 53;
    assert_eq!(matching_a(&store, "a = 9007199254740993"), [two53 + 1]);
    assert_eq!(matching_a(&store, "a = 9007199254740992"), [two53]);
    assert_eq!(
        matching_a(&store, "a > 9007199254740992"),
        [two53 + 1, i64::MAX, i64::MAX - 1]
    );
    assert_eq!(matching_a(&store, "a < -9223372036854775807"), [i64::MIN]);
    assert_eq!(matching_a(&store, "a = -9223372036854775808"), [i64::MIN]);
    assert_eq!(matching_a(&store, "a >= 9223372036854775807"), [i64::MAX]);
    assert_eq!(
        matching_a(&store, "a IN (9007199254740993, -9223372036854775807)"),
        [two53 + 1, i64::MIN + 1]
    );
    // A float literal compares exactly with every integer.
    assert_eq!(matching_a(&store, "a = 9007199254740992.0"), [two53]);
    assert_eq!(matching_a(&store, "a > 9.2e18"), [i64::MAX, i64::MAX - 1]);
    // Unsigned columns: above 2^63 and at u64::MAX.
    assert_eq!(
        matching_a(&store, "u > 9223372036854775807"),
        [two53, two53 + 1, i64::MIN, i64::MIN + 1]
    );
    assert_eq!(matching_a(&store, "u = 18446744073709551615"), [i64::MIN]);
    assert_eq!(
        matching_a(&store, "u >= 18446744073709551614"),
        [i64::MIN, i64::MIN + 1]
    );
    assert_eq!(matching_a(&store, "u = 9007199254740993"), [i64::MAX - 1]);
    assert_eq!(matching_a(&store, "u < 0"), Vec::<i64>::new());
    assert_eq!(matching_a(&store, "u > -1").len(), 6);
    // Two integer columns of different signedness compare exactly too.
    assert_eq!(matching_a(&store, "u = a"), Vec::<i64>::new());
    assert_eq!(matching_a(&store, "u > a").len(), 4);

    // The CLI gives the same rows.
    let out = stdout(&runstore(&[
        "scan",
        path.to_str().unwrap(),
        "p/tables/big",
        "--where",
        "a = 9007199254740993",
        "--format",
        "csv",
    ]));
    assert_eq!(out, "a,u\n9007199254740993,9223372036854775809\n");
}

#[test]
fn scan_aggregates_of_integer_columns_are_exact() {
    let (_dir, path) = temp_store();
    let store = store_with_big_integers(&path);
    let table = store.table("p/tables/big").unwrap();
    let result = table
        .query()
        .filter("a > 0")
        .unwrap()
        .aggregate(None, &[Agg::min("a"), Agg::max("a")])
        .unwrap();
    let column = |name: &str| -> i64 {
        let array = result.column_by_name(name).unwrap();
        array
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    };
    assert_eq!(column("min(a)"), 1 << 53);
    assert_eq!(column("max(a)"), i64::MAX);
    // Sums are exact (the f64 sum of these is off by thousands) ...
    let sum = table
        .query()
        .aggregate(None, &[Agg::sum("a"), Agg::mean("a")])
        .unwrap();
    let exact = sum
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(exact, (1i64 << 54) - 1);
    // ... and a sum beyond i64 is an error that says so, not a wrapped or rounded number.
    let error = table
        .query()
        .filter("a > 0")
        .unwrap()
        .aggregate(None, &[Agg::sum("a")])
        .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("sum(a) is 18464758472219033598, which does not fit in Int64"),
        "{error}"
    );
    let unsigned = table
        .query()
        .aggregate(None, &[Agg::min("u"), Agg::max("u")])
        .unwrap();
    let u = |i: usize| {
        unsigned
            .column(i)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap()
            .value(0)
    };
    assert_eq!(u(0), 5);
    assert_eq!(u(1), u64::MAX);
    let out = stdout(&runstore(&[
        "scan",
        path.to_str().unwrap(),
        "p/tables/big",
        "--agg",
        "max:a,min:a,max:u",
        "--format",
        "csv",
    ]));
    assert_eq!(
        out,
        "max(a),min(a),max(u)\n9223372036854775807,-9223372036854775808,18446744073709551615\n"
    );
}

fn nested_json(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn params_and_outputs_nested_past_the_json_parser_limit_are_refused_naming_the_limit() {
    let (_dir, path) = temp_store();
    let path_text = path.to_str().unwrap();
    stdout(&runstore(&[
        "init",
        path_text,
        "--project",
        "p",
        "--name",
        "r",
    ]));
    for depth in [65, 127, 128, 129, 200, 5_000] {
        let param = format!("x={}", nested_json(depth));
        let error = failure(&runstore(&[
            "init",
            path_text,
            "--project",
            "p",
            "--name",
            "deep",
            "--param",
            &param,
        ]));
        assert!(
            error.contains("nest deeper than 64 levels"),
            "depth {depth}: {error}"
        );
        let output = format!(r#"{{"x":{}}}"#, nested_json(depth));
        let error = failure(&runstore(&[
            "log", path_text, "p/runs/r", "--output", &output,
        ]));
        assert!(
            error.contains("nest deeper than 64 levels"),
            "depth {depth}: {error}"
        );
    }
    // Nothing was written: one run, no outputs.
    let runs = json_lines(&stdout(&runstore(&["runs", path_text, "--json"])));
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outputs"], serde_json::json!([]));
    // 64 levels (63 inside the parameter map) are stored; text that is not JSON stays a string.
    stdout(&runstore(&[
        "init",
        path_text,
        "--project",
        "p",
        "--name",
        "ok",
        "--param",
        &format!("x={}", nested_json(63)),
        "--param",
        "y=[not json",
        "--param",
        "z=adam",
    ]));
    let show: serde_json::Value = serde_json::from_str(&stdout(&runstore(&[
        "show",
        path_text,
        "p/runs/ok",
        "--json",
    ])))
    .unwrap();
    assert_eq!(show["params"]["y"], "[not json");
    assert_eq!(show["params"]["z"], "adam");
}

#[test]
fn integers_beyond_i64_are_refused_not_rounded() {
    let (_dir, path) = temp_store();
    let path_text = path.to_str().unwrap();
    stdout(&runstore(&[
        "init",
        path_text,
        "--project",
        "p",
        "--name",
        "r",
    ]));
    let error = failure(&runstore(&[
        "init",
        path_text,
        "--project",
        "p",
        "--name",
        "big",
        "--param",
        "seed=18446744073709551615",
    ]));
    assert!(
        error.contains(
            "integer 18446744073709551615 does not fit in i64; write it as a string or a float"
        ),
        "{error}"
    );
    let error = failure(&runstore(&[
        "log",
        path_text,
        "p/runs/r",
        "--output",
        r#"{"a":{"b":[9223372036854775808]}}"#,
    ]));
    assert!(
        error.contains("integer 9223372036854775808 does not fit in i64"),
        "{error}"
    );
    // The library's JSON parser refuses them as well; i64's own range is exact.
    assert!(Value::from_json_str("18446744073709551615").is_err());
    assert_eq!(
        Value::from_json_str("[9223372036854775807,-9223372036854775808]").unwrap(),
        Value::List(vec![Value::Int(i64::MAX), Value::Int(i64::MIN)])
    );
    let runs = json_lines(&stdout(&runstore(&["runs", path_text, "--json"])));
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outputs"], serde_json::json!([]));
}

#[test]
fn reduce_with_nothing_to_reduce_leaves_the_status_alone() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    run.set_status(RunStatus::Running).unwrap();
    let before = run.info().unwrap().last_modified_us;
    let report = run
        .reduce_embeddings_per_dataset(&ReduceOptions::default())
        .unwrap();
    assert!(report.tables.is_empty());
    assert_eq!(run.status().unwrap(), RunStatus::Running);
    assert_eq!(run.info().unwrap().last_modified_us, before);
    // A table without embedding columns is nothing to reduce either.
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef],
    )
    .unwrap();
    run.add_metrics_data(&batch, &Default::default()).unwrap();
    run.set_status(RunStatus::Paused).unwrap();
    let report = run
        .reduce_embeddings_per_dataset(&ReduceOptions::default())
        .unwrap();
    assert!(report.tables.is_empty());
    assert_eq!(run.status().unwrap(), RunStatus::Paused);
    drop(run);
    drop(store);
    // The CLI too.
    let path_text = path.to_str().unwrap();
    stdout(&runstore(&[
        "reduce", path_text, "p/runs/r", "--method", "pca",
    ]));
    let show: serde_json::Value = serde_json::from_str(&stdout(&runstore(&[
        "show", path_text, "p/runs/r", "--json",
    ])))
    .unwrap();
    assert_eq!(show["status"], "PAUSED");
}

/// Appends one row holding a `VALUE_BYTES` string through the CLI (JSON lines, as the issue
/// did with 200 MB) and returns the file's size.
fn file_bytes_after_one_huge_row(path: &std::path::Path, value_bytes: usize) -> u64 {
    let path_text = path.to_str().unwrap();
    stdout(&runstore(&[
        "init",
        path_text,
        "--project",
        "p",
        "--name",
        "r",
    ]));
    let rows = path.with_extension("jsonl");
    let line = serde_json::json!({"step": 1, "text": "x".repeat(value_bytes)});
    std::fs::write(&rows, format!("{line}\n")).unwrap();
    stdout(&runstore(&[
        "append",
        path_text,
        "p/runs/r",
        "--table",
        "t",
        "--from",
        rows.to_str().unwrap(),
    ]));
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn one_huge_string_value_does_not_triple_the_file() {
    const VALUE_BYTES: usize = 48 << 20;
    let (_dir, path) = temp_store();
    let file_bytes = file_bytes_after_one_huge_row(&path, VALUE_BYTES);
    assert!(
        file_bytes <= VALUE_BYTES as u64 * 3 / 2,
        "a {VALUE_BYTES}-byte value made a {file_bytes}-byte file ({:.2}x)",
        file_bytes as f64 / VALUE_BYTES as f64
    );
    let store = Store::open_read_only(&path).unwrap();
    let batches = store
        .table("p/runs/r/t")
        .unwrap()
        .query()
        .batches()
        .unwrap();
    let text = batches[0].column_by_name("text").unwrap();
    let text = text
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap();
    assert_eq!(text.value(0).len(), VALUE_BYTES);
}
