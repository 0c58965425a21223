//! Arbitrary bytes as a superblock slot: never a panic, and an accepted slot re-encodes to a
//! slot that decodes to the same directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runstore::fuzz::Superblock;

fuzz_target!(|data: &[u8]| {
    if let Ok(superblock) = Superblock::decode(data) {
        let again = Superblock::decode(&superblock.encode()).expect("re-encoded slot decodes");
        assert_eq!(again, superblock);
    }
});
