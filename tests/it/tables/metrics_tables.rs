//! Metrics-table tests: metrics_tables, update_metrics, add_metrics_table.

use super::*;

fn external_info(url: &str, stream_name: &str) -> MetricTableInfo {
    MetricTableInfo {
        url: url.into(),
        stream_name: stream_name.into(),
        row_count: 5,
        file_size: 100,
    }
}

#[test]
fn run_metrics_tables_lists_written_tables_with_live_counts() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let infos = run
        .add_metrics_data(&id_value_batch(0..10), &MetricsOptions::default())
        .unwrap();
    assert_eq!(run.metrics_tables().unwrap(), infos);
    assert_eq!(
        infos[0].file_size,
        store
            .table(&infos[0].url)
            .unwrap()
            .info()
            .unwrap()
            .file_size
    );
    let mut writer = run
        .metrics_writer(id_value_schema(), "steps", "train", &immediate())
        .unwrap();
    let listed = run.metrics_tables().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (
            listed[1].url.as_str(),
            listed[1].stream_name.as_str(),
            listed[1].row_count
        ),
        ("p/runs/r/steps_0000", "train", 0)
    );
    writer.append(&id_value_batch(0..7)).unwrap();
    let listed = run.metrics_tables().unwrap();
    assert_eq!(listed[1].row_count, 7, "the listing follows the writer");
    let info = writer.close().unwrap();
    assert_eq!(run.metrics_tables().unwrap()[1].file_size, info.file_size);
    let handles: Vec<String> = run
        .metrics_table_handles()
        .unwrap()
        .iter()
        .map(|t| t.url().to_string())
        .collect();
    assert_eq!(handles, ["p/runs/r/metrics_0000", "p/runs/r/steps_0000"]);
    let expected = run.metrics_tables().unwrap();
    drop((run, store));
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(
        store.run("p/runs/r").unwrap().metrics_tables().unwrap(),
        expected
    );
}

#[test]
fn run_update_metrics_adds_each_url_once_and_checks_store_urls() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let other = store.init("p", Some("other")).unwrap();
    let other_info = other
        .add_metrics_data(&id_value_batch(0..4), &MetricsOptions::default())
        .unwrap()
        .remove(0);

    let external = external_info("s3://bucket/metrics/epoch_1.parquet", "val");
    run.update_metrics(std::slice::from_ref(&external)).unwrap();
    assert_eq!(run.metrics_tables().unwrap(), vec![external.clone()]);
    run.update_metrics(&[external.clone(), external.clone()])
        .unwrap();
    assert_eq!(run.metrics_tables().unwrap(), vec![external.clone()]);
    run.update_metrics(std::slice::from_ref(&other_info))
        .unwrap();
    run.update_metrics(std::slice::from_ref(&other_info))
        .unwrap();
    let expected = vec![external.clone(), other_info.clone()];
    assert_eq!(run.metrics_tables().unwrap(), expected);

    // A url of the store's form must name a stored table; the whole call then fails.
    let fresh = external_info("/data/other.parquet", "val");
    for missing in ["p/runs/r/nope_0000", "p/tables/nope"] {
        let err = run
            .update_metrics(&[fresh.clone(), external_info(missing, "val")])
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{missing}: {err:?}");
    }
    let err = run
        .update_metrics(&[fresh.clone(), external_info("s3://bucket/x", "")])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(run.metrics_tables().unwrap(), expected);
    run.update_metrics(std::slice::from_ref(&fresh)).unwrap();
    assert_eq!(run.metrics_tables().unwrap().len(), 3);
}

#[test]
fn run_add_metrics_table_attaches_a_stored_table_once() {
    let (_dir, _path, store) = new_store();
    let input = store
        .create_table("p", "inputs", &[input_batch(3)])
        .unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let other = store.init("p", Some("other")).unwrap();
    let url = other
        .add_metrics_data(&id_value_batch(0..4), &MetricsOptions::default())
        .unwrap()[0]
        .url
        .clone();
    run.add_metrics_table(&url).unwrap();
    run.add_metrics_table(&url).unwrap();
    let listed = run.metrics_tables().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].url.as_str(),
            listed[0].stream_name.as_str(),
            listed[0].row_count
        ),
        (url.as_str(), STREAM_DEFAULT, 4)
    );
    store.append_to_table(&url, &id_value_batch(4..6)).unwrap();
    assert_eq!(run.metrics_tables().unwrap()[0].row_count, 6);

    run.add_metrics_table(input.url()).unwrap();
    assert_eq!(run.metrics_tables().unwrap().len(), 2);
    let err = run.add_metrics_table("p/runs/other/nope_0000").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(run.metrics_tables().unwrap().len(), 2);
}
