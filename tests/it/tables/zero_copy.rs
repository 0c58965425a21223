//! Metrics-table tests: Zero-copy.

use super::*;

#[test]
fn table_scan_after_reopen_points_into_the_mapping_of_the_store_file() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let batch = loss_embedding_batch(0..4096);
    let url = run
        .add_metrics_data(&batch, &MetricsOptions::default())
        .unwrap()[0]
        .url
        .clone();
    // A table whose rows are all in the tail: those are decoded from redb, so they are copies,
    // which shows that the check below can tell the two apart.
    let tail_url = run
        .metrics_writer(batch.schema(), "tail", "train", &immediate())
        .unwrap()
        .close()
        .unwrap()
        .url;
    store
        .append_to_table(&tail_url, &loss_embedding_batch(0..100))
        .unwrap();
    drop((run, store));

    for read_only in [false, true] {
        let store = if read_only {
            Store::open_read_only(&path).unwrap()
        } else {
            Store::open(&path).unwrap()
        };
        let batches = store.table(&url).unwrap().scan().unwrap();
        assert_eq!(batches.len(), 1);
        let loss = batches[0].column(0).as_primitive::<Float32Type>();
        assert_eq!(loss.values()[4095], 4095.0 * 0.001);
        assert_in_file_mapping(
            loss.values().as_ptr().cast(),
            loss.len() * 4,
            &path,
            "loss values",
        );
        let embedding = batches[0].column(1).as_fixed_size_list();
        let child = embedding.values().as_primitive::<Float32Type>();
        assert_eq!(child.len(), 4096 * EMBEDDING_WIDTH as usize);
        assert_in_file_mapping(
            child.values().as_ptr().cast(),
            child.len() * 4,
            &path,
            "embedding values",
        );

        let tail = store.table(&tail_url).unwrap().scan().unwrap();
        let tail_loss = tail[0].column(0).as_primitive::<Float32Type>();
        let canonical = path.canonicalize().unwrap().to_string_lossy().into_owned();
        assert_ne!(
            mapping_path_of(tail_loss.values().as_ptr() as usize).as_deref(),
            Some(canonical.as_str()),
            "tail rows are copies"
        );
    }
}
