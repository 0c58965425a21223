//! API tests: Inputs and outputs.

use super::*;

#[test]
fn add_input_table_keeps_order_and_does_not_repeat_duplicates() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    for table in [
        "data/tables/train",
        "s3://bucket/val.parquet",
        "data/tables/train",
        "data/tables/test",
        "s3://bucket/val.parquet",
    ] {
        run.add_input_table(table).unwrap();
    }
    let expected = [
        "data/tables/train",
        "s3://bucket/val.parquet",
        "data/tables/test",
    ];
    assert_eq!(run.input_tables().unwrap(), expected);
    assert_eq!(run.info().unwrap().input_tables, expected);
    let before = run.info().unwrap();
    for bad in ["", "a\nb", "tab\there"] {
        let err = run.add_input_table(bad).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidUrl { url, .. } if url == bad),
            "{bad:?}: {err:?}"
        );
    }
    assert_eq!(run.info().unwrap(), before);
}

#[test]
fn add_input_value_adds_an_identical_map_once() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let a = json(r#"{"split": "train", "size": 100}"#);
    let same_as_a = Value::map([("size", Value::from(100)), ("split", Value::from("train"))]);
    let b = json(r#"{"split": "val", "size": 100}"#);
    run.add_input_value(&a).unwrap();
    run.add_input_value(&same_as_a).unwrap();
    run.add_input_value(&b).unwrap();
    run.add_input_value(&a).unwrap();
    assert_eq!(run.input_values().unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(run.info().unwrap().input_values, vec![a, b]);
    assert_eq!(store.info().unwrap().inputs, 2);
    let before = run.info().unwrap();
    for bad in [
        Value::from(1),
        Value::from("x"),
        Value::List(vec![]),
        Value::Null,
    ] {
        let err = run.add_input_value(&bad).unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    }
    assert_eq!(run.info().unwrap(), before);
}

#[test]
fn add_output_value_appends_in_order() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    assert_eq!(run.last_output().unwrap(), None);
    let outputs: Vec<Value> = (0..10)
        .map(|epoch| {
            Value::map([
                ("epoch", Value::from(epoch)),
                ("average_loss", Value::from(0.1 / f64::from(epoch + 1))),
            ])
        })
        .collect();
    for (i, output) in outputs.iter().enumerate() {
        run.add_output_value(output).unwrap();
        assert_eq!(run.output_count().unwrap(), i as u64 + 1);
        assert_eq!(run.last_output().unwrap().as_ref(), Some(output));
    }
    // The same value twice is two outputs.
    run.add_output_value(&outputs[9]).unwrap();
    let mut expected = outputs.clone();
    expected.push(outputs[9].clone());
    assert_eq!(run.output_values().unwrap(), expected);
    assert_eq!(run.info().unwrap().output_count, 11);
    assert_eq!(run.output_values_range(2, 5).unwrap(), outputs[2..5]);
    assert_eq!(run.output_values_range(0, 1).unwrap(), outputs[0..1]);
    assert_eq!(run.output_values_range(9, 100).unwrap(), expected[9..]);
    assert!(run.output_values_range(5, 5).unwrap().is_empty());
    assert!(run.output_values_range(5, 2).unwrap().is_empty());
    assert!(run.output_values_range(11, u64::MAX).unwrap().is_empty());
    assert_eq!(store.info().unwrap().outputs, 11);
}

#[test]
fn add_output_values_appends_a_batch_in_order() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let other = store.init("p", Some("other")).unwrap();
    run.add_output_value(&Value::map([("step", 0)])).unwrap();
    let batch: Vec<Value> = (1..=100).map(|step| Value::map([("step", step)])).collect();
    run.add_output_values(&batch).unwrap();
    other.add_output_values(&batch[..3]).unwrap();
    run.add_output_values(&[]).unwrap();
    assert_eq!(run.output_count().unwrap(), 101);
    let outputs = run.output_values().unwrap();
    for (step, output) in outputs.iter().enumerate() {
        assert_eq!(output, &Value::map([("step", step as i64)]));
    }
    assert_eq!(
        run.last_output().unwrap(),
        Some(Value::map([("step", 100)]))
    );
    assert_eq!(other.output_values().unwrap(), batch[..3]);
}

#[test]
fn add_output_values_with_one_non_map_adds_none() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    run.add_output_value(&Value::map([("epoch", 0)])).unwrap();
    let before = run_snapshot(&run);
    let batch = vec![
        Value::map([("epoch", 1)]),
        Value::map([("epoch", 2)]),
        Value::from(3),
        Value::map([("epoch", 4)]),
    ];
    let err = run.add_output_values(&batch).unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    let err = run.add_output_value(&Value::from("loss=0.1")).unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    assert_eq!(run_snapshot(&run), before);
    assert_eq!(run.output_count().unwrap(), 1);
    assert_eq!(store.info().unwrap().outputs, 1);
}
