//! Blob names are paths inside the run's bulk data: `/` separates folders
//! (`ckpt/epoch-3/model.pt`), and no name climbs out (`..`, `.`, empty segments, a leading or
//! trailing `/`). Names starting with `reducer-` are kept for the stored reducers, which
//! `Run::user_bulk_list` leaves out.

use arrow_array::{FixedSizeListArray, Float32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use runstore::{Error, Method, MetricsOptions, ReduceOptions, Store};
use std::sync::Arc;

use crate::util::temp_store;

fn invalid_name(result: runstore::Result<u64>) -> String {
    match result {
        Err(Error::InvalidName { reason, .. }) => reason.to_string(),
        other => panic!("expected InvalidName, got {other:?}"),
    }
}

#[test]
fn blob_names_hold_folders_and_never_climb_out() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    assert_eq!(
        run.put_bulk("ckpt/epoch-3/model.pt", b"weights").unwrap(),
        7
    );
    assert_eq!(run.bulk_bytes("ckpt/epoch-3/model.pt").unwrap(), b"weights");
    for (name, reason) in [
        ("../x", "name has a '.' or '..' segment"),
        ("ckpt/../../x", "name has a '.' or '..' segment"),
        ("ckpt//x", "name has an empty segment ('//')"),
        ("/etc/passwd", "name starts with '/'"),
        ("ckpt/", "name ends with '/'"),
        ("", "name is empty"),
    ] {
        assert_eq!(invalid_name(run.put_bulk(name, b"x")), reason, "{name}");
    }
    assert!(invalid_name(run.put_bulk("reducer-mine", b"x")).contains("reducer"));
    let names: Vec<String> = run
        .bulk_list()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["ckpt/epoch-3/model.pt"]);
}

#[test]
fn stored_reducers_are_blobs_the_user_listing_leaves_out() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let values: Vec<f32> = (0..40 * 4).map(|i| ((i * 7919) % 97) as f32).collect();
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let embedding =
        FixedSizeListArray::new(item.clone(), 4, Arc::new(Float32Array::from(values)), None);
    let field = runstore::table::with_role(
        Field::new("x", DataType::FixedSizeList(item, 4), false),
        runstore::table::ColumnRole::Embedding,
    );
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![field])),
        vec![Arc::new(embedding)],
    )
    .unwrap();
    run.add_metrics_data(&batch, &MetricsOptions::default())
        .unwrap();
    run.put_bulk("notes.txt", b"hi").unwrap();
    run.reduce_embeddings_per_dataset(&ReduceOptions {
        method: Method::Pca,
        ..ReduceOptions::default()
    })
    .unwrap();
    assert_eq!(run.bulk_list().unwrap().len(), 2);
    let user: Vec<String> = run
        .user_bulk_list()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(user, ["notes.txt"]);
    assert_eq!(run.reducers().unwrap().len(), 1);
}
