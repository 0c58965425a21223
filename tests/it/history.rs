//! One history per run (`Run::history`): a logger's step tables (`steps_NNNN`, a new one
//! whenever a key appears) read back as one batch joined by step, the last non-null value
//! logged for a key at a step winning; a user's table that only shares the name is not
//! history, and a key never logged is `NotFound` with the closest logged key.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use runstore::{Error, MetricsOptions, Run, Store};

use crate::util::temp_store;

/// One logged row: its step and each key's value.
type Row<'a> = (i64, &'a [(&'a str, Option<f64>)]);

/// A step table written as a logger writes one: `step`, then a Float64 column per key.
fn steps(run: &Run, rows: &[Row<'_>]) {
    let keys: Vec<&str> = rows[0].1.iter().map(|(key, _)| *key).collect();
    let mut fields = vec![Field::new("step", DataType::Int64, false)];
    fields.extend(
        keys.iter()
            .map(|key| Field::new(*key, DataType::Float64, true)),
    );
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|(step, _)| *step),
    ))];
    for at in 0..keys.len() {
        columns.push(Arc::new(Float64Array::from_iter(
            rows.iter().map(|(_, values)| values[at].1),
        )));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    run.add_metrics_data(
        &batch,
        &MetricsOptions {
            table_writer_base_name: "steps".into(),
            ..MetricsOptions::default()
        },
    )
    .unwrap();
}

fn column(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect()
}

#[test]
fn history_joins_a_runs_step_tables_by_step() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    // Loss per step, then a validation key at step 2 (a new, wider table), then step 2 again.
    steps(
        &run,
        &[(0, &[("loss", Some(1.0))]), (1, &[("loss", Some(0.5))])],
    );
    steps(
        &run,
        &[
            (2, &[("loss", Some(0.25)), ("acc", Some(0.7))]),
            (3, &[("loss", Some(f64::NAN)), ("acc", None)]),
            (2, &[("loss", None), ("acc", Some(0.8))]),
        ],
    );
    let history = run.history(None).unwrap();
    let names: Vec<String> = history
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["step", "loss", "acc"]);
    let step: Vec<i64> = history
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    assert_eq!(step, [0, 1, 2, 3]);
    let loss = column(&history, "loss");
    assert_eq!(&loss[..3], &[Some(1.0), Some(0.5), Some(0.25)]);
    assert!(loss[3].unwrap().is_nan());
    assert_eq!(column(&history, "acc"), [None, None, Some(0.8), None]);
    // Only the steps of the tables holding the keys asked for.
    let acc = run.history(Some(&["acc", "step"])).unwrap();
    assert_eq!(acc.num_columns(), 2);
    assert_eq!(column(&acc, "acc"), [Some(0.8), None]);
    match run.history(Some(&["Acc"])) {
        Err(Error::NotFound { what }) => assert!(what.contains("did you mean 'acc'"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn a_table_only_named_like_a_step_table_is_not_history() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let labels = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "label",
            DataType::Utf8,
            false,
        )])),
        vec![Arc::new(StringArray::from(vec!["x"]))],
    )
    .unwrap();
    run.add_metrics_data(
        &labels,
        &MetricsOptions {
            table_writer_base_name: "steps".into(),
            ..MetricsOptions::default()
        },
    )
    .unwrap();
    assert!(run.step_tables().unwrap().is_empty());
    let history = run.history(None).unwrap();
    assert_eq!((history.num_rows(), history.num_columns()), (0, 1));
}
