//! Arbitrary bytes as a table's tail entry: the archived record is validated, then every
//! column is rebuilt against a fixed schema of the types metrics tables use (integers, floats,
//! strings, a dictionary, an embedding). Never a panic, never an out-of-bounds read: errors or
//! arrays that passed Arrow validation.
#![no_main]

use arrow_buffer::Buffer;
use arrow_schema::{DataType, Field};
use libfuzzer_sys::fuzz_target;
use runstore::fuzz::{decode, rebuild, TailRecord};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = decode::<TailRecord>(data, "tail entry") else {
        return;
    };
    let types = [
        DataType::Int64,
        DataType::Float32,
        DataType::Utf8,
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, false)), 4),
        DataType::Boolean,
    ];
    let mut cursor = 0;
    for data_type in &types {
        let result = rebuild(
            data_type,
            &entry.nodes,
            &mut cursor,
            &mut |segment| {
                let start = usize::try_from(segment.offset).map_err(|_| bad())?;
                let len = usize::try_from(segment.len).map_err(|_| bad())?;
                let end = start.checked_add(len).ok_or_else(bad)?;
                let bytes = entry.data.get(start..end).ok_or_else(bad)?;
                Ok(Buffer::from_slice_ref(bytes))
            },
            "fuzz",
        );
        if let Ok(array) = result {
            // A rebuilt array is valid: touching every value must be safe.
            let _ = format!("{array:?}");
        } else {
            break;
        }
    }
});

fn bad() -> runstore::Error {
    runstore::Error::Corrupted {
        at: runstore::Location::Catalog,
        reason: "out of bounds".into(),
    }
}
