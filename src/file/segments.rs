//! Committed column segments handed out as zero-copy Arrow buffers over the file's mapping:
//! each one checked to be 64-byte aligned and inside a column extent, and its CRC verified the
//! first time this process touches it (the set of verified segments lives here, so a hot
//! segment is hashed once per process, not once per read).
//!
//! What a segment is (a `SegmentRef` in a catalog record) is the catalog's; this module takes
//! its offset, length and CRC as numbers, so it sits below the catalog. The mapping and the
//! unsafe buffer construction are `mmap.rs`'s; the directory of column extents is
//! `PhysicalFile`'s.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Location, Result};
use crate::file::mmap::Mapping;
use crate::file::{PhysicalFile, SEGMENT_ALIGN};

/// The committed column segments of one open store: the file (for its extent directory), the
/// read-only mapping of it, and the segments this process has verified.
#[derive(Debug)]
pub(crate) struct Segments {
    file: Arc<PhysicalFile>,
    mapping: Mapping,
    /// Segments (offset, length, CRC) whose CRC this process has verified (first touch).
    verified: Mutex<HashSet<(u64, u64, u32)>>,
}

impl Segments {
    /// The segments of `file`, read through `mapping` (a mapping of the same file), none
    /// verified yet.
    pub(crate) fn new(file: Arc<PhysicalFile>, mapping: Mapping) -> Segments {
        Segments {
            file,
            mapping,
            verified: Mutex::new(HashSet::new()),
        }
    }

    /// A zero-copy buffer over the committed segment of `len` bytes at `offset` whose CRC is
    /// `crc32`: bounds and alignment checked, inside a column extent, and its CRC verified on
    /// first touch in this process. `what` names the table and column in errors.
    pub(crate) fn buffer(
        &self,
        offset: u64,
        len: u64,
        crc32: u32,
        what: &str,
    ) -> Result<arrow_buffer::Buffer> {
        let corrupted = |reason: String| Error::Corrupted {
            at: Location::Offset(offset),
            reason: format!("{what}: {reason}"),
        };
        if !offset.is_multiple_of(SEGMENT_ALIGN) {
            return Err(corrupted("segment is not 64-byte aligned".into()));
        }
        if len == 0 {
            return Ok(arrow_buffer::Buffer::from_vec(Vec::<u8>::new()));
        }
        self.file
            .check_column_range(offset, len)
            .map_err(|e| corrupted(e.to_string()))?;
        let end = offset
            .checked_add(len)
            .ok_or_else(|| corrupted("segment length overflows".into()))?;
        let map = self.mapping.covering(end)?;
        let verified = self
            .verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&(offset, len, crc32));
        if !verified {
            let bytes = crate::file::mmap::bytes(&map, offset, len)?;
            let crc = crc32fast::hash(bytes);
            if crc != crc32 {
                return Err(corrupted(format!(
                    "segment of {} bytes fails its checksum (stored {:#010x}, computed {crc:#010x})",
                    len, crc32
                )));
            }
            self.verified
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert((offset, len, crc32));
        }
        crate::file::mmap::buffer(&map, offset, len)
    }
}
