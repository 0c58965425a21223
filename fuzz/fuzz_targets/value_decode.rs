//! Arbitrary bytes into `Value::decode`: never a panic, and whatever decodes re-encodes to the
//! same bytes (the encoding is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use runstore::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = Value::decode(data) {
        assert_eq!(value.encode(), data);
    }
});
