//! `Run::copy_to` (one run into another store) and `Run::append_metrics` (rows into a named
//! metrics table in one commit): every part of a run arrives intact, name clashes follow
//! `if_exists`, input tables are copied or matched, and a failed copy leaves the destination
//! unchanged and passing `check`.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use runstore::{CopyIfExists, CopyOptions, Error, MetricsOptions, Run, Store, Value};

use crate::util::temp_store;

/// A blob that spans two 4 MiB chunks, with a pattern that is easy to find in the file.
fn blob_bytes() -> Vec<u8> {
    (0..(4 << 20) + 1000)
        .map(|i: u32| b"BLOBDATA"[(i % 8) as usize])
        .collect()
}

fn input_batch(rows: i32) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "image",
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("img/{i:05}.png")),
            )) as ArrayRef,
        ),
        (
            "label",
            Arc::new(Int32Array::from_iter_values(0..rows)) as _,
        ),
    ])
    .unwrap()
}

fn step_batch(start: i64, rows: i64) -> RecordBatch {
    let mut embedding = FixedSizeListBuilder::new(Float32Builder::new(), 4);
    for i in start..start + rows {
        for k in 0..4 {
            embedding.values().append_value((i * 4 + k) as f32);
        }
        embedding.append(true);
    }
    RecordBatch::try_from_iter([
        (
            "step",
            Arc::new(Int64Array::from_iter_values(start..start + rows)) as ArrayRef,
        ),
        (
            "loss",
            Arc::new(Float64Array::from_iter_values(
                (start..start + rows).map(|i| 1.0 / (i + 1) as f64),
            )) as _,
        ),
        ("embedding", Arc::new(embedding.finish()) as _),
    ])
    .unwrap()
}

/// A run with every part filled in: params, description, status, input table and values,
/// outputs, two blobs, a metrics table joined to the input table and an appended one with
/// both sealed and tail rows.
fn full_run(store: &Store) -> Run {
    let input = store
        .create_table("p", "inputs", &[input_batch(10)])
        .unwrap();
    let run = store
        .init_with(
            "p",
            Some("r"),
            &runstore::InitOptions {
                description: Some("the full run".into()),
                parameters: Some(
                    Value::from_json_str(r#"{"lr":0.01,"opt":{"name":"adam","beta":0.9}}"#)
                        .unwrap(),
                ),
                ..Default::default()
            },
        )
        .unwrap();
    run.add_input_table(input.url()).unwrap();
    run.add_input_table("s3://bucket/elsewhere").unwrap();
    run.add_input_value(&Value::from_json_str(r#"{"split":"train"}"#).unwrap())
        .unwrap();
    for epoch in 0..3 {
        run.add_output_value(&Value::map([
            ("epoch", Value::from(epoch)),
            ("acc", Value::from(0.5 + f64::from(epoch) / 10.0)),
        ]))
        .unwrap();
    }
    run.put_bulk("checkpoint.bin", &blob_bytes()).unwrap();
    run.put_bulk("small", b"tiny").unwrap();
    let per_example = RecordBatch::try_from_iter([(
        "confidence",
        Arc::new(Float64Array::from_iter_values((0..10).map(f64::from))) as ArrayRef,
    )])
    .unwrap();
    run.add_metrics_data(
        &per_example,
        &MetricsOptions {
            input_table_url: Some(input.url().to_string()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut big = (0..7).map(|i| Ok(step_batch(i * 10_000, 10_000)));
    let report = run.append_metrics("steps", &mut big).unwrap();
    assert!(report.created);
    assert_eq!(report.rows_appended, 70_000);
    let report = run
        .append_metrics("steps", &mut std::iter::once(Ok(step_batch(70_000, 5))))
        .unwrap();
    assert!(!report.created);
    assert_eq!(report.table.row_count, 70_005);
    run.set_status_completed().unwrap();
    run
}

/// Everything observable about a store's runs and tables, for equality checks.
fn dump(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for run in store.runs(None).unwrap() {
        out.push(format!("{:?}", run.info().unwrap()));
        out.push(format!("{:?}", run.output_values().unwrap()));
        for blob in run.bulk_list().unwrap() {
            let bytes = run.bulk_bytes(&blob.name).unwrap();
            out.push(format!("{blob:?} crc {}", crc(&bytes)));
        }
    }
    for info in store.tables(None).unwrap() {
        out.push(format!("{info:?}"));
        out.push(format!(
            "{:?}",
            store.table(&info.url).unwrap().scan().unwrap()
        ));
    }
    out
}

fn crc(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0u32, |h, b| h.rotate_left(5) ^ u32::from(*b))
}

fn assert_check_passes(path: &Path) {
    let report = runstore::check(path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn copy_to_carries_every_part_of_a_run() {
    let (_dir, src_path) = temp_store();
    let dest_path = src_path.with_file_name("dest.runs");
    {
        let src = Store::create(&src_path).unwrap();
        let dest = Store::create(&dest_path).unwrap();
        let run = full_run(&src);
        let copy = run.copy_to(&dest, &CopyOptions::default()).unwrap();
        assert_eq!(copy.url(), "p/runs/r");
        assert!(copy.store().path() == dest.path());

        let (a, b) = (run.info().unwrap(), copy.info().unwrap());
        assert_eq!(
            a, b,
            "record, params, status, times, inputs and metrics entries"
        );
        assert_eq!(b.status, runstore::RunStatus::Completed);
        assert_eq!(b.input_tables, ["p/tables/inputs", "s3://bucket/elsewhere"]);
        assert_eq!(run.output_values().unwrap(), copy.output_values().unwrap());
        assert_eq!(run.bulk_list().unwrap(), copy.bulk_list().unwrap());
        assert_eq!(
            copy.bulk_bytes("checkpoint.bin").unwrap(),
            blob_bytes(),
            "a blob of two chunks"
        );
        assert_eq!(copy.bulk_bytes("small").unwrap(), b"tiny");
        // Every table (metrics and the input table) scans to the same rows with the same
        // schema, row count and size.
        let tables = src.tables(None).unwrap();
        assert_eq!(tables.len(), 3);
        assert_eq!(tables, dest.tables(None).unwrap());
        for info in &tables {
            let ours = src.table(&info.url).unwrap().scan().unwrap();
            let theirs = dest.table(&info.url).unwrap().scan().unwrap();
            assert_eq!(ours, theirs, "{}", info.url);
        }
        let joined = dest.table("p/runs/r/metrics_0000").unwrap().info().unwrap();
        assert_eq!(joined.foreign_table_url.as_deref(), Some("p/tables/inputs"));
        assert_eq!(dump(&src), dump(&dest));
    }
    assert_check_passes(&dest_path);
    assert_check_passes(&src_path);
}

#[test]
fn copy_to_name_clashes_follow_if_exists() {
    let (_dir, src_path) = temp_store();
    let dest_path = src_path.with_file_name("dest.runs");
    {
        let src = Store::create(&src_path).unwrap();
        let dest = Store::create(&dest_path).unwrap();
        let run = full_run(&src);
        run.copy_to(&dest, &CopyOptions::default()).unwrap();
        let before = dump(&dest);

        let raised = run.copy_to(&dest, &CopyOptions::default());
        assert!(
            matches!(raised, Err(Error::AlreadyExists { ref what }) if what == "run p/runs/r"),
            "{raised:?}"
        );
        assert_eq!(dump(&dest), before, "a refused copy changes nothing");

        let renamed = run
            .copy_to(
                &dest,
                &CopyOptions {
                    if_exists: CopyIfExists::Rename,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(renamed.url(), "p/runs/r_0000");
        // The equal input table is shared, not copied again.
        assert_eq!(renamed.input_tables().unwrap()[0], "p/tables/inputs");
        assert_eq!(dest.tables(Some("p")).unwrap().len(), 5);
        assert_eq!(
            dest.table("p/runs/r_0000/steps").unwrap().scan().unwrap(),
            src.table("p/runs/r/steps").unwrap().scan().unwrap()
        );

        run.set_description("changed").unwrap();
        let overwritten = run
            .copy_to(
                &dest,
                &CopyOptions {
                    if_exists: CopyIfExists::Overwrite,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(overwritten.url(), "p/runs/r");
        assert_eq!(overwritten.description().unwrap(), "changed");
        assert_eq!(dest.run_count().unwrap(), 2);

        let named = run
            .copy_to(
                &dest,
                &CopyOptions {
                    run_name: Some("other".into()),
                    project_name: Some("q".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(named.url(), "q/runs/other");
        assert_eq!(
            named.metrics_tables().unwrap()[1].url,
            "q/runs/other/steps",
            "metrics urls follow the new name"
        );
        // The input table keeps its project.
        assert_eq!(named.input_tables().unwrap()[0], "p/tables/inputs");
    }
    assert_check_passes(&dest_path);
}

#[test]
fn copy_to_places_a_different_input_table_under_a_new_name() {
    let (_dir, src_path) = temp_store();
    let dest_path = src_path.with_file_name("dest.runs");
    {
        let src = Store::create(&src_path).unwrap();
        let dest = Store::create(&dest_path).unwrap();
        dest.create_table("p", "inputs", &[input_batch(3)]).unwrap();
        let run = full_run(&src);
        let copy = run.copy_to(&dest, &CopyOptions::default()).unwrap();
        assert_eq!(copy.input_tables().unwrap()[0], "p/tables/inputs_0000");
        let joined = dest.table("p/runs/r/metrics_0000").unwrap().info().unwrap();
        assert_eq!(
            joined.foreign_table_url.as_deref(),
            Some("p/tables/inputs_0000")
        );
        assert_eq!(
            dest.table("p/tables/inputs").unwrap().row_count().unwrap(),
            3,
            "the table already there is left alone"
        );
        assert_eq!(
            dest.table("p/tables/inputs_0000").unwrap().scan().unwrap(),
            src.table("p/tables/inputs").unwrap().scan().unwrap()
        );
    }
    assert_check_passes(&dest_path);
}

#[test]
fn copy_to_leaves_the_destination_unchanged_when_a_source_segment_is_corrupt() {
    let (_dir, src_path) = temp_store();
    let dest_path = src_path.with_file_name("dest.runs");
    {
        let src = Store::create(&src_path).unwrap();
        full_run(&src);
    }
    // Flip one byte inside the blob's first chunk.
    let mut bytes = std::fs::read(&src_path).unwrap();
    let pattern = &blob_bytes()[..64];
    let at = bytes
        .windows(64)
        .position(|w| w == pattern)
        .expect("the blob's bytes are in the file");
    bytes[at + 10] ^= 0xff;
    std::fs::write(&src_path, &bytes).unwrap();
    {
        let src = Store::open_read_only(&src_path).unwrap();
        let dest = Store::create(&dest_path).unwrap();
        dest.init("p", Some("already-here")).unwrap();
        let before = dump(&dest);
        let info_before = dest.info().unwrap();
        let result = src
            .run("p/runs/r")
            .unwrap()
            .copy_to(&dest, &CopyOptions::default());
        assert!(
            matches!(result, Err(Error::Corrupted { ref reason, .. }) if reason.contains("checkpoint.bin")),
            "{result:?}"
        );
        assert_eq!(dump(&dest), before);
        let info_after = dest.info().unwrap();
        assert_eq!(
            (
                info_after.runs,
                info_after.tables,
                info_after.blobs,
                info_after.outputs
            ),
            (
                info_before.runs,
                info_before.tables,
                info_before.blobs,
                info_before.outputs
            )
        );
    }
    assert_check_passes(&dest_path);
}

#[test]
fn copy_to_the_same_store_is_copy() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = full_run(&store);
    let copy = run.copy_to(&store, &CopyOptions::default()).unwrap();
    assert_eq!(copy.url(), "p/runs/r_0000");
    assert_eq!(copy.parameters().unwrap(), run.parameters().unwrap());
    assert_eq!(store.tables(None).unwrap().len(), 5);
}

#[test]
fn append_metrics_is_one_commit_and_keeps_the_schema() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let mut empty = std::iter::empty();
    let report = run.append_metrics("t", &mut empty).unwrap();
    assert_eq!(report.rows_appended, 0);
    assert!(store.table("p/runs/r/t").is_err(), "no rows, no table");

    run.append_metrics("t", &mut std::iter::once(Ok(step_batch(0, 3))))
        .unwrap();
    // An error from the source after good batches appends nothing.
    let mut failing = vec![
        Ok(step_batch(3, 100_000)),
        Err(Error::InvalidInput {
            reason: "line 7: bad".into(),
        }),
    ]
    .into_iter();
    let error = run.append_metrics("t", &mut failing).unwrap_err();
    assert!(error.to_string().contains("line 7: bad"), "{error}");
    // A batch of another schema is refused whole.
    let other = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("step", DataType::Utf8, true)])),
        vec![Arc::new(StringArray::from(vec!["x"]))],
    )
    .unwrap();
    let mut mixed = vec![Ok(step_batch(3, 2)), Ok(other)].into_iter();
    assert!(matches!(
        run.append_metrics("t", &mut mixed),
        Err(Error::SchemaMismatch { .. })
    ));
    let table = store.table("p/runs/r/t").unwrap();
    assert_eq!(table.row_count().unwrap(), 3);
    assert_eq!(run.metrics_tables().unwrap().len(), 1);
    assert!(matches!(
        run.append_metrics("a/b", &mut std::iter::empty()),
        Err(Error::InvalidName { .. })
    ));
}
