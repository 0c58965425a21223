//! A real store with bytes overwritten where the fuzzer says: open, list, query, read outputs,
//! tables and blobs, and check return errors or data, never a panic or a hang.
//!
//! Input: a sequence of edits `[offset: u32 LE][len: u8][len bytes]`, each overwriting the
//! pristine store's bytes at `offset % file length`. The pristine store (runs with parameters
//! and outputs, a metrics table with sealed chunks and a tail, a blob) is built once per
//! process, so small inputs reach every structure of a real file.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use runstore::{Store, Value};

fn pristine() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("seed.runs");
        let store = Store::create(&path).expect("create");
        for (name, lr) in [("a", 0.1), ("b", 0.01)] {
            let run = store.init("p", Some(name)).expect("init");
            run.set_parameters(&Value::map([
                ("lr", Value::Float(lr)),
                ("opt", Value::map([("name", Value::Str("adam".into()))])),
            ]))
            .expect("params");
            for epoch in 0..3 {
                run.add_output_value(&Value::map([
                    ("epoch", Value::Int(epoch)),
                    ("acc", Value::Float(lr * epoch as f64)),
                ]))
                .expect("output");
            }
            let ids: Vec<i64> = (0..64).collect();
            let loss: Vec<f32> = (0..64).map(|i| i as f32 / 64.0).collect();
            let batch = runstore::batch_from_columns(vec![
                (
                    "example_id".into(),
                    std::sync::Arc::new(arrow_array::Int64Array::from(ids)) as _,
                ),
                (
                    "loss".into(),
                    std::sync::Arc::new(arrow_array::Float32Array::from(loss)) as _,
                ),
            ])
            .expect("batch");
            run.add_metrics_data(&batch, &Default::default())
                .expect("metrics");
            run.put_bulk("weights.bin", &[7u8; 300]).expect("blob");
        }
        drop(store);
        std::fs::read(&path).expect("read store")
    })
}


/// libFuzzer's panic hook aborts on every panic, even one that is caught. runstore catches
/// redb's own panics on damaged files (`store::contain_panic`) and returns
/// `Error::Corrupted`, so a panic raised inside redb's sources is let through to that catch;
/// any other panic still aborts and is a finding.
fn let_contained_redb_panics_unwind() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_some_and(|location| location.file().contains("/redb-"))
            {
                return;
            }
            fuzzer_hook(info);
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_contained_redb_panics_unwind();
    let mut bytes = pristine().to_vec();
    let mut rest = data;
    while rest.len() >= 5 {
        let offset = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let len = rest[4] as usize;
        rest = &rest[5..];
        let take = len.min(rest.len());
        let at = offset % bytes.len();
        for (i, b) in rest[..take].iter().enumerate() {
            if at + i < bytes.len() {
                bytes[at + i] = *b;
            }
        }
        rest = &rest[take..];
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("fuzz.runs");
    std::fs::write(&path, &bytes).expect("write input");
    if let Ok(store) = Store::open_read_only(&path) {
        let _ = store.info();
        if let Ok(query) = store
            .query_runs()
            .query("params.lr < 0.05 AND outputs.acc >= 0 ORDER BY outputs.acc.max DESC")
        {
            let _ = query.run();
        }
        if let Ok(runs) = store.runs(None) {
            for run in runs {
                let _ = run.info();
                let _ = run.parameters();
                let _ = run.output_values();
                if let Ok(tables) = run.metrics_table_handles() {
                    for table in tables {
                        let _ = table.query().batches();
                    }
                }
                let _ = run.bulk_bytes("weights.bin");
            }
        }
    }
    let _ = runstore::check(&path);
});
