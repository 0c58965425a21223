//! API tests: Parameters.

use super::*;

#[test]
fn set_parameters_merges_top_level_keys_like_dict_update() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    run.set_parameters(&json(
        r#"{"lr": 0.1, "epochs": 10, "model": {"depth": 50, "width": 2}}"#,
    ))
    .unwrap();
    run.set_parameters(&json(
        r#"{"epochs": 20, "model": {"depth": 101}, "seed": 7}"#,
    ))
    .unwrap();
    // Top-level keys overwrite; a nested map is replaced whole, not merged.
    assert_eq!(
        run.parameters().unwrap(),
        json(r#"{"lr": 0.1, "epochs": 20, "model": {"depth": 101}, "seed": 7}"#)
    );
    // An empty map changes nothing.
    run.set_parameters(&empty_map()).unwrap();
    assert_eq!(
        run.info().unwrap().parameters,
        json(r#"{"lr": 0.1, "epochs": 20, "model": {"depth": 101}, "seed": 7}"#)
    );
    // A key can be set to null.
    run.set_parameters(&json(r#"{"seed": null}"#)).unwrap();
    assert_eq!(run.parameters().unwrap().get("seed"), Some(&Value::Null));
}

#[test]
fn set_parameters_round_trips_nested_values_of_every_kind() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let mut inner = std::collections::BTreeMap::new();
    inner.insert("empty_list".to_string(), Value::List(vec![]));
    inner.insert("empty_map".to_string(), empty_map());
    inner.insert(
        "deep".to_string(),
        json(r#"{"a": {"b": {"c": {"d": [1, [2, [3, {"e": "f"}]]]}}}}"#),
    );
    let parameters = Value::map([
        ("null", Value::Null),
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("int_min", Value::Int(i64::MIN)),
        ("int_max", Value::Int(i64::MAX)),
        ("float", Value::Float(-1.5e-300)),
        ("negative_zero", Value::Float(-0.0)),
        ("infinity", Value::Float(f64::INFINITY)),
        ("text", Value::from("ünïcode ✓ \"quoted\"\n")),
        ("", Value::from("empty key")),
        (
            "list",
            Value::List(vec![Value::from(1), Value::from("two"), Value::Null]),
        ),
        ("nested", Value::Map(inner)),
    ]);
    run.set_parameters(&parameters).unwrap();
    assert_eq!(run.parameters().unwrap(), parameters);
    let stored = run.parameters().unwrap();
    let zero = stored.get("negative_zero").unwrap().as_f64().unwrap();
    assert!(zero == 0.0 && zero.is_sign_negative(), "-0.0 lost its sign");
    drop((run, store));
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.run("p/runs/r").unwrap().parameters().unwrap(),
        parameters
    );
}

#[test]
fn set_parameters_round_trips_a_1_mb_config() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let mut rng = Rng::new(42);
    let parameters = Value::map((0..1000).map(|i| {
        let text: String = (0..1000)
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect();
        (
            format!("key-{i:04}"),
            Value::map([
                ("text", Value::from(text)),
                ("index", Value::from(i)),
                ("weight", Value::from(f64::from(i) * 0.5)),
            ]),
        )
    }));
    assert!(parameters.encode().len() > MIB, "the config is under 1 MB");
    run.set_parameters(&parameters).unwrap();
    assert!(run.parameters().unwrap() == parameters, "parameters differ");
    drop((run, store));
    let store = Store::open(&path).unwrap();
    let run = store.run("p/runs/r").unwrap();
    assert!(
        run.parameters().unwrap() == parameters,
        "parameters differ after reopening"
    );
}

#[test]
fn set_parameters_of_a_non_map_is_invalid_value_and_changes_nothing() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    run.set_parameters(&json(r#"{"lr": 0.1}"#)).unwrap();
    let before = run.info().unwrap();
    let mut too_deep = Value::map([("leaf", 1)]);
    for _ in 0..70 {
        too_deep = Value::map([("x", too_deep)]);
    }
    for bad in [
        Value::from(3),
        Value::from("lr=0.1"),
        Value::List(vec![json(r#"{"lr": 0.2}"#)]),
        Value::Null,
        Value::Bool(true),
        Value::Float(0.2),
        too_deep,
    ] {
        let err = run.set_parameters(&bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidValue { .. }),
            "{}: {err:?}",
            bad.type_name()
        );
    }
    assert_eq!(run.info().unwrap(), before);
}
