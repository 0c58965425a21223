//! Arbitrary bytes as catalog values: archived records, sealed values, key-index entries and
//! paths. Validation rejects them or they decode, never a panic or undefined behaviour.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runstore::fuzz::{
    decode, decode_param, decode_path, seal, BlobRecord, OutputStats, RunRecord, SealedBytes,
};

fuzz_target!(|data: &[u8]| {
    let _ = decode::<RunRecord>(data, "run record");
    let _ = decode::<BlobRecord>(data, "blob record");
    let _ = SealedBytes::new(data).open("runs", &7u64.to_le_bytes());
    let _ = OutputStats::decode(data);
    let _ = decode_param(data);
    let _ = decode_path(data);
    // A sealed copy opens to the same bytes.
    let sealed = seal("outputs", data, data);
    assert_eq!(SealedBytes::new(&sealed).open("outputs", data).ok(), Some(data));
});
