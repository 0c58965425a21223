//! Arbitrary bytes as a whole store file: open, list, read and check return errors or data,
//! never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runstore::Store;


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
