//! Arbitrary bytes as archived catalog records: validation rejects them or they decode, never
//! a panic or undefined behaviour.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runstore::catalog::records::{decode, BlobRecord, RunRecord};

fuzz_target!(|data: &[u8]| {
    let _ = decode::<RunRecord>(data, "run record");
    let _ = decode::<BlobRecord>(data, "blob record");
});
