//! The records kept in redb values, archived with rkyv.
//!
//! Records are validated with bytecheck before any field is believed: a value that fails
//! validation is [`Error::Corrupted`]. redb hands out value slices with no alignment promise,
//! so [`decode`] copies the bytes into an aligned buffer first (records are small: a run record
//! is a few hundred bytes; parameters, inputs and outputs are not rkyv records at all).

use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::error::{Error, Location, Result};

/// A run's catalog record (everything but parameters, inputs, outputs and blobs, which have
/// tables of their own so that appending to them never rewrites this record's neighbours).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The project the run belongs to.
    pub project: String,
    /// The run's name, unique within its project.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Creation time, microseconds since the Unix epoch, UTC.
    pub created_us: i64,
    /// Time of the last change, microseconds since the Unix epoch, UTC.
    pub last_modified_us: i64,
    /// 3LC status code, 1 to 7.
    pub status: u8,
    /// Input tables: store urls (`<project>/tables/<t>`) or external references, as given.
    pub input_tables: Vec<String>,
    /// Number of input values (rows of the inputs table for this run).
    pub input_count: u64,
    /// Number of output values (rows of the outputs table for this run); the next output's
    /// sequence number.
    pub output_count: u64,
    /// Metrics tables attached to the run.
    pub metrics: Vec<MetricTableRecord>,
}

/// A metrics table attached to a run (3LC's `MetricTableInfo`).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct MetricTableRecord {
    /// The table's url.
    pub url: String,
    /// The stream the table belongs to.
    pub stream_name: String,
    /// Rows in the table.
    pub row_count: u64,
    /// Bytes the table occupies.
    pub file_size: u64,
}

/// A reference to one immutable column segment.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRef {
    /// Physical offset of the first byte, a multiple of 64.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// CRC32 (Castagnoli-free IEEE, as crc32fast computes it) of the bytes.
    pub crc32: u32,
}

/// A named binary blob under a run's bulk data url, stored as column segments.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct BlobRecord {
    /// Total length in bytes.
    pub len: u64,
    /// The segments, in order; their lengths add up to `len`.
    pub chunks: Vec<SegmentRef>,
    /// When the blob was written, microseconds since the Unix epoch, UTC.
    pub created_us: i64,
}

/// One `ArrayData` node of a column chunk (see `table::layout`).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Number of slots.
    pub len: u64,
    /// Number of nulls (0 when there is no validity bitmap).
    pub null_count: u64,
    /// The validity bitmap, when there are nulls.
    pub validity: Option<SegmentRef>,
    /// The node's buffers in Arrow's order (e.g. offsets then values).
    pub buffers: Vec<SegmentRef>,
    /// How many child nodes follow (pre-order).
    pub child_count: u32,
}

/// A sealed run of rows: every column's nodes, in schema order, pre-order within a column.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    /// Rows in the chunk.
    pub rows: u64,
    /// The nodes of all columns, column after column.
    pub nodes: Vec<NodeRecord>,
}

/// A table: a metrics table of a run, or an input table of a project.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TableRecord {
    /// `<project>/runs/<run>/<name>` or `<project>/tables/<name>`.
    pub url: String,
    /// The owning run's id, or 0 for a project's input table.
    pub run_id: u64,
    /// The stored columns' Arrow schema, as JSON (arrow-schema's serde form).
    pub schema_json: String,
    /// The input table these rows are joined to by `example_id` (empty if none); presented as
    /// a constant column, never stored per row.
    pub foreign_table_url: String,
    /// The stream the table belongs to (3LC's `stream_name`).
    pub stream_name: String,
    /// Sealed chunks, in row order.
    pub chunks: Vec<ChunkRecord>,
    /// Rows in sealed chunks.
    pub sealed_rows: u64,
    /// Rows in the tail (unsealed entries in the `tail` table).
    pub tail_rows: u64,
    /// Bytes of the tail entries.
    pub tail_bytes: u64,
    /// The sequence number the next tail entry gets.
    pub tail_next: u64,
    /// Creation time, microseconds since the Unix epoch, UTC.
    pub created_us: i64,
}

/// Rows appended since the last seal, as one entry of the `tail` table.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TailRecord {
    /// Rows in the entry.
    pub rows: u64,
    /// The nodes of all columns; their refs are offsets into `data`.
    pub nodes: Vec<NodeRecord>,
    /// The buffers' bytes, each starting on a 64-byte boundary.
    pub data: Vec<u8>,
}

/// Archives a record.
pub fn encode<T>(record: &T) -> Vec<u8>
where
    T: for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
{
    // Serialising plain owned data into a growable buffer has no failure mode but allocation.
    match rkyv::to_bytes::<rancor::Error>(record) {
        Ok(bytes) => bytes.to_vec(),
        Err(error) => panic!("archiving an in-memory record failed: {error}"),
    }
}

/// Validates and deserialises a record; `what` names it in the error.
pub fn decode<T>(bytes: &[u8], what: &str) -> Result<T>
where
    T: Archive,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
        + Deserialize<T, rkyv::api::high::HighDeserializer<rancor::Error>>,
{
    let mut aligned = AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    rkyv::from_bytes::<T, rancor::Error>(&aligned).map_err(|error| Error::Corrupted {
        at: Location::Catalog,
        reason: format!("{what}: record fails validation: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_record() -> RunRecord {
        RunRecord {
            project: "p".into(),
            name: "r".into(),
            description: "d".into(),
            created_us: 1,
            last_modified_us: 2,
            status: 2,
            input_tables: vec!["p/tables/t".into()],
            input_count: 0,
            output_count: 5,
            metrics: vec![MetricTableRecord {
                url: "p/runs/r/metrics_0000".into(),
                stream_name: "default_stream".into(),
                row_count: 10,
                file_size: 100,
            }],
        }
    }

    #[test]
    fn run_record_round_trips() {
        let record = run_record();
        let bytes = encode(&record);
        assert_eq!(decode::<RunRecord>(&bytes, "run").unwrap(), record);
        // Unaligned input is fine too.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        assert_eq!(decode::<RunRecord>(&shifted[1..], "run").unwrap(), record);
    }

    #[test]
    fn run_record_rejects_garbage_without_panicking() {
        let bytes = encode(&run_record());
        for cut in 0..bytes.len() {
            let _ = decode::<RunRecord>(&bytes[..cut], "run");
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0xff;
            let _ = decode::<RunRecord>(&bad, "run");
        }
        assert!(matches!(
            decode::<RunRecord>(&[1, 2, 3], "run"),
            Err(Error::Corrupted { .. })
        ));
    }
}
