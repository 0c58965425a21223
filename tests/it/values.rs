//! The cross-run table, `RunQuery::values`: one row per selected run in query order, a column
//! per key typed from its values, and the exact rejection of bad column lists.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use runstore::query::VALUE_COLUMNS_MAX;
use runstore::{Error, Store, Value};

use crate::util::temp_store;

/// Three runs: `a` and `b` with full parameters and outputs, `c` with a few of mixed kinds.
fn sweep() -> (tempfile::TempDir, Store) {
    let (dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let a = store.init("p", Some("a")).unwrap();
    a.set_parameters(&Value::map([
        ("lr", Value::from(0.1)),
        ("epochs", Value::from(10_i64)),
        ("fast", Value::from(true)),
        ("opt", Value::map([("name", Value::from("adam"))])),
        ("mixed", Value::from(1_i64)),
        (
            "layers",
            Value::List(vec![Value::from(64_i64), Value::from(32_i64)]),
        ),
    ]))
    .unwrap();
    a.add_output_values(&[
        Value::map([("loss", Value::from(0.9)), ("acc", Value::from(0.5))]),
        Value::map([("loss", Value::from(0.2)), ("acc", Value::from(0.7))]),
        Value::map([("loss", Value::from(0.4))]),
    ])
    .unwrap();
    a.set_status_completed().unwrap();
    let b = store.init("p", Some("b")).unwrap();
    b.set_parameters(&Value::map([
        ("lr", Value::from(1_i64)),
        ("epochs", Value::from(20_i64)),
        ("fast", Value::from(false)),
        ("opt", Value::map([("name", Value::from("sgd"))])),
        ("mixed", Value::from("one")),
    ]))
    .unwrap();
    b.add_output_values(&[Value::map([
        ("loss", Value::from(f64::NAN)),
        ("acc", Value::from(0.9)),
    ])])
    .unwrap();
    let c = store.init("q", Some("c")).unwrap();
    c.set_parameters(&Value::map([("lr", Value::from(f64::INFINITY))]))
        .unwrap();
    (dir, store)
}

fn column_names(batch: &RecordBatch) -> Vec<String> {
    batch
        .schema()
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect()
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let array = batch.column_by_name(name).unwrap().as_string::<i32>();
    array.iter().map(|s| s.map(str::to_string)).collect()
}

fn invalid_query(result: runstore::Result<RecordBatch>) -> (usize, String) {
    match result {
        Err(Error::InvalidQuery { column, message }) => (column, message),
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
}

#[test]
fn values_start_with_project_name_and_url_in_query_order() {
    let (_dir, store) = sweep();
    let batch = store
        .query_runs()
        .order_by("params.epochs DESC")
        .unwrap()
        .values(&[" params.epochs "])
        .unwrap();
    assert_eq!(
        column_names(&batch),
        ["project", "name", "url", "params.epochs"]
    );
    assert_eq!(batch.num_rows(), 3);
    // Nulls sort last.
    assert_eq!(
        strings(&batch, "name"),
        [Some("b"), Some("a"), Some("c")].map(|s| s.map(str::to_string))
    );
    assert_eq!(
        strings(&batch, "url")[0].as_deref(),
        Some("p/runs/b"),
        "url is <project>/runs/<name>"
    );
    assert_eq!(strings(&batch, "project")[2].as_deref(), Some("q"));
    for fixed in ["project", "name", "url"] {
        let field = batch.schema().field_with_name(fixed).unwrap().clone();
        assert_eq!(field.data_type(), &DataType::Utf8);
        assert!(!field.is_nullable());
    }
    let epochs = batch.column(3).as_primitive::<Int64Type>();
    assert_eq!(
        epochs.iter().collect::<Vec<_>>(),
        [Some(20), Some(10), None]
    );
}

#[test]
fn values_type_each_column_from_its_non_null_values() {
    let (_dir, store) = sweep();
    // `missing` is held by `c` only, as null: a real column, all null. A key no run holds at
    // all is a typo, refused with the closest key.
    store
        .run("q/runs/c")
        .unwrap()
        .set_parameters(&Value::map([
            ("lr", Value::from(f64::INFINITY)),
            ("missing", Value::Null),
        ]))
        .unwrap();
    assert!(matches!(
        store.query_runs().values(&["params.epoch"]),
        Err(runstore::Error::UnknownKey { suggestion: Some(s), .. }) if s == "epochs"
    ));
    let batch = store
        .query_runs()
        .values(&[
            "params.fast",
            "params.epochs",
            "params.lr",
            "params.opt.name",
            "params.mixed",
            "params.layers",
            "params.missing",
            "status",
        ])
        .unwrap();
    let types: Vec<DataType> = batch
        .schema()
        .fields()
        .iter()
        .skip(3)
        .map(|field| field.data_type().clone())
        .collect();
    assert_eq!(
        types,
        [
            DataType::Boolean,
            DataType::Int64,
            DataType::Float64,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
        ]
    );
    let fast = batch.column_by_name("params.fast").unwrap().as_boolean();
    assert_eq!(
        fast.iter().collect::<Vec<_>>(),
        [Some(true), Some(false), None]
    );
    // An integer among floats becomes a float; infinity is kept.
    let lr = batch
        .column_by_name("params.lr")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(
        lr.iter().collect::<Vec<_>>(),
        [Some(0.1), Some(1.0), Some(f64::INFINITY)]
    );
    // Nested parameters by dotted path.
    assert_eq!(
        strings(&batch, "params.opt.name"),
        [Some("adam".to_string()), Some("sgd".to_string()), None]
    );
    // Kinds that do not mix, and lists, are JSON text marked as such.
    assert_eq!(
        strings(&batch, "params.mixed"),
        [Some("1".to_string()), Some("\"one\"".to_string()), None]
    );
    assert_eq!(
        strings(&batch, "params.layers"),
        [Some("[64,32]".to_string()), None, None]
    );
    for (name, json) in [
        ("params.mixed", true),
        ("params.layers", true),
        ("params.opt.name", false),
        ("params.missing", false),
    ] {
        let schema = batch.schema();
        let field = schema.field_with_name(name).unwrap();
        assert_eq!(
            field
                .metadata()
                .get("ARROW:extension:name")
                .map(String::as_str),
            json.then_some("arrow.json"),
            "{name}"
        );
    }
    // A key held only as null: Utf8, all null.
    assert_eq!(
        batch.column_by_name("params.missing").unwrap().null_count(),
        3
    );
    assert_eq!(
        strings(&batch, "status"),
        ["COMPLETED", "EMPTY", "EMPTY"].map(|s| Some(s.to_string()))
    );
}

#[test]
fn values_of_outputs_take_latest_values_and_aggregates() {
    let (_dir, store) = sweep();
    let batch = store
        .query_runs()
        .project("p")
        .values(&[
            "outputs.loss",
            "outputs.loss.min",
            "outputs.loss.count",
            "outputs.acc",
            "outputs.acc.first",
        ])
        .unwrap();
    let floats = |name: &str| -> Vec<Option<f64>> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Float64Type>()
            .iter()
            .collect()
    };
    assert_eq!(floats("outputs.loss")[0], Some(0.4));
    assert!(
        floats("outputs.loss")[1].is_some_and(f64::is_nan),
        "NaN is kept"
    );
    // min skips NaN: b has no numeric loss but NaN.
    assert_eq!(floats("outputs.loss.min"), [Some(0.2), None]);
    let count = batch
        .column_by_name("outputs.loss.count")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(count.iter().collect::<Vec<_>>(), [Some(3), Some(1)]);
    assert_eq!(floats("outputs.acc"), [Some(0.7), Some(0.9)]);
    assert_eq!(floats("outputs.acc.first"), [Some(0.5), Some(0.9)]);
}

#[test]
fn values_of_timestamp_attributes_are_utc_microsecond_timestamps() {
    let (_dir, store) = sweep();
    let runs = store.query_runs().run().unwrap();
    let batch = store
        .query_runs()
        .values(&["created", "attributes.last_modified"])
        .unwrap();
    for name in ["created", "attributes.last_modified"] {
        let schema = batch.schema();
        assert_eq!(
            schema.field_with_name(name).unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
    }
    let created = batch
        .column_by_name("created")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    for (row, run) in runs.iter().enumerate() {
        assert_eq!(created.value(row), run.created().unwrap());
    }
}

#[test]
fn values_follow_filter_limit_and_offset() {
    let (_dir, store) = sweep();
    let query = store
        .query_runs()
        .filter("params.lr > 0")
        .unwrap()
        .order_by("params.lr DESC")
        .unwrap()
        .offset(1)
        .limit(1);
    let batch = query.values(&["params.lr"]).unwrap();
    assert_eq!(strings(&batch, "name"), [Some("b".to_string())]);
    let (runs, same) = query.run_with_values(&["params.lr"]).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].name(), "b");
    assert_eq!(same, batch);
    // No run selected: the columns are still there, with no rows.
    let empty = store
        .query_runs()
        .filter("name = 'none'")
        .unwrap()
        .values(&["params.lr"])
        .unwrap();
    assert_eq!(empty.num_rows(), 0);
    assert_eq!(
        column_names(&empty),
        ["project", "name", "url", "params.lr"]
    );
    // No column keys: just the run columns.
    let bare = store.query_runs().values(&[]).unwrap();
    assert_eq!(bare.num_columns(), 3);
    assert_eq!(bare.num_rows(), 3);
}

#[test]
fn values_reject_bad_keys_pointing_into_the_key() {
    let (_dir, store) = sweep();
    let query = store.query_runs();
    let cases: [(&[&str], usize, &str); 9] = [
        (
            &["params.lr DESC"],
            11,
            "in column key \"params.lr DESC\": expected the end of the key, found 'DESC'",
        ),
        (&["params.lr ASC"], 11, "found 'ASC'"),
        (&["params.lr, outputs.acc"], 10, "found ','"),
        (&["params.lr < 0.1"], 11, "found '<'"),
        (&["'params.lr'"], 1, "found the string"),
        (&["params.lr", "  "], 1, "column key 2 is blank"),
        (
            &["params.lr", " params.lr"],
            2,
            "column key \"params.lr\" is requested twice",
        ),
        (&["url"], 1, "column key \"url\" is always in the table"),
        (&["tags.x"], 1, "tags"),
    ];
    for (keys, expected_column, expected_message) in cases {
        let (column, message) = invalid_query(query.values(keys));
        assert!(message.contains(expected_message), "{keys:?}: {message}");
        assert_eq!(column, expected_column, "{keys:?}: {message}");
    }
}

#[test]
fn values_reject_more_than_the_column_limit() {
    let (_dir, store) = sweep();
    // Keys some run holds: a key no run holds is refused on its own.
    let many = store.init("q", Some("many")).unwrap();
    let params: Vec<(String, Value)> = (0..=VALUE_COLUMNS_MAX)
        .map(|i| (format!("k{i}"), Value::from(i as i64)))
        .collect();
    many.set_parameters(&Value::Map(params.into_iter().collect()))
        .unwrap();
    let keys: Vec<String> = (0..=VALUE_COLUMNS_MAX)
        .map(|i| format!("params.k{i}"))
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (_, message) = invalid_query(store.query_runs().values(&refs));
    assert_eq!(
        message,
        format!(
            "{} columns requested; at most {VALUE_COLUMNS_MAX} are allowed",
            VALUE_COLUMNS_MAX + 1
        )
    );
    let batch = store
        .query_runs()
        .values(&refs[..VALUE_COLUMNS_MAX])
        .unwrap();
    assert_eq!(batch.num_columns(), 3 + VALUE_COLUMNS_MAX);
    drop(many);
}
