//! Arbitrary bytes as a whole store file: open, list, read and check return errors or data,
//! never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runstore::Store;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("fuzz.runs");
    std::fs::write(&path, data).expect("write input");
    if let Ok(store) = Store::open_read_only(&path) {
        if let Ok(runs) = store.runs(None) {
            for run in runs {
                let _ = run.info();
                let _ = run.output_values();
            }
        }
        let _ = store.info();
    }
    let _ = runstore::check(&path);
});
