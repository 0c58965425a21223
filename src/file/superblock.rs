//! The superblock: the two fixed slots at the start of the file and the extent directory they
//! hold.
//!
//! This module owns the bytes of a slot (encode, decode, validate) and nothing else: it does no
//! I/O. The invariant it keeps is that a decoded [`Superblock`] is internally consistent: redb
//! extents tile redb's logical space `[0, capacity)` in order, no two extents overlap, every
//! extent lies past the slots, and `redb_len <= redb_dirty_len <= capacity`. Anything else read
//! from disk is rejected with the reason, never trusted.

use std::fmt;

/// The first eight bytes of both slots of every store.
pub const MAGIC: [u8; 8] = *b"RUNSTORE";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes in one superblock slot. 64 KiB holds 2,046 extent records, which the growth policy
/// (geometric for redb, 64 MiB steps for columns) does not exhaust below many terabytes.
pub const SLOT_BYTES: u64 = 64 * 1024;
/// Number of superblock slots; a commit writes the slot the current generation does not use.
pub const SLOT_COUNT: u64 = 2;
/// Physical offset of the first extent.
pub const DATA_START: u64 = SLOT_BYTES * SLOT_COUNT;
/// Bytes of the fixed header at the start of a slot.
pub const HEADER_BYTES: usize = 64;
/// Bytes of one extent record.
pub const EXTENT_RECORD_BYTES: usize = 32;
/// Most extents one slot can describe.
pub const EXTENT_COUNT_MAX: usize = (SLOT_BYTES as usize - HEADER_BYTES) / EXTENT_RECORD_BYTES;
/// redb's byte-range locks are shifted by this constant so that they never cover the
/// superblock or data; part of the format because every process must agree on it.
pub const LOCK_SHIFT: u64 = 1 << 56;
/// Every extent starts and ends on this boundary, so column segments can be 64-byte aligned
/// and redb's 4 KiB pages never straddle a page of the host.
pub const EXTENT_ALIGN: u64 = 4096;

const _: () = assert!(HEADER_BYTES + EXTENT_COUNT_MAX * EXTENT_RECORD_BYTES <= SLOT_BYTES as usize);
const _: () = assert!(DATA_START.is_multiple_of(EXTENT_ALIGN));
const _: () = assert!(EXTENT_COUNT_MAX == 2046);

// Header field offsets. Kept together so the layout reads as one table (docs/FORMAT.md).
const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 8;
const OFF_SLOT_BYTES: usize = 12;
const OFF_GENERATION: usize = 16;
const OFF_REDB_LEN: usize = 24;
const OFF_REDB_DIRTY_LEN: usize = 32;
const OFF_LOCK_SHIFT: usize = 40;
const OFF_EXTENT_COUNT: usize = 48;
const OFF_CRC: usize = 60;

/// What an extent holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentKind {
    /// A slice of redb's logical address space.
    Redb,
    /// Column segment bytes, addressed by physical offset.
    Column,
}

impl ExtentKind {
    fn code(self) -> u8 {
        match self {
            ExtentKind::Redb => 1,
            ExtentKind::Column => 2,
        }
    }

    fn from_code(code: u8) -> Option<ExtentKind> {
        match code {
            1 => Some(ExtentKind::Redb),
            2 => Some(ExtentKind::Column),
            _ => None,
        }
    }
}

/// One contiguous physical range of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// What the extent holds.
    pub kind: ExtentKind,
    /// Offset of its first byte in the file.
    pub physical_offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// For a redb extent, the logical offset its first byte has in redb's space; 0 for columns.
    pub logical_offset: u64,
}

impl Extent {
    /// One past the extent's last physical byte.
    pub fn physical_end(&self) -> u64 {
        self.physical_offset + self.len
    }
}

/// The decoded contents of one slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Increases by one per slot write; the valid slot with the larger generation is current.
    pub generation: u64,
    /// The length redb last set (what `StorageBackend::len` returns).
    pub redb_len: u64,
    /// Logical bytes at or past this offset have never been written since they were allocated
    /// and read as zeros; below it, a grow must zero what it exposes.
    pub redb_dirty_len: u64,
    /// The extent directory, in allocation order.
    pub extents: Vec<Extent>,
}

/// Why a slot's bytes were not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotError {
    /// The magic is absent: this slot was never written by runstore.
    NotMagic,
    /// Written by a format version this build does not know.
    Version(u32),
    /// The slot claims to be ours but fails a check.
    Invalid(String),
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotError::NotMagic => write!(f, "no runstore magic"),
            SlotError::Version(v) => write!(f, "unknown format version {v}"),
            SlotError::Invalid(reason) => write!(f, "{reason}"),
        }
    }
}

impl Superblock {
    /// The superblock of a new, empty store.
    pub fn empty() -> Superblock {
        Superblock {
            generation: 0,
            redb_len: 0,
            redb_dirty_len: 0,
            extents: Vec::new(),
        }
    }

    /// Total logical capacity of the redb extents.
    pub fn redb_capacity(&self) -> u64 {
        self.redb_extents().map(|e| e.len).sum()
    }

    /// The redb extents in logical order.
    pub fn redb_extents(&self) -> impl Iterator<Item = &Extent> {
        self.extents.iter().filter(|e| e.kind == ExtentKind::Redb)
    }

    /// The column extents in allocation order.
    pub fn column_extents(&self) -> impl Iterator<Item = &Extent> {
        self.extents.iter().filter(|e| e.kind == ExtentKind::Column)
    }

    /// One past the last physical byte any extent covers (at least [`DATA_START`]).
    pub fn physical_end(&self) -> u64 {
        self.extents
            .iter()
            .map(Extent::physical_end)
            .max()
            .unwrap_or(DATA_START)
            .max(DATA_START)
    }

    /// The slot index this generation is written to.
    pub fn slot_index(&self) -> u64 {
        self.generation % SLOT_COUNT
    }

    /// Encodes into a full slot image of [`SLOT_BYTES`] bytes.
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.extents.len() <= EXTENT_COUNT_MAX);
        assert!(self.validate().is_ok(), "encoding an invalid superblock");
        let mut slot = vec![0u8; SLOT_BYTES as usize];
        slot[OFF_MAGIC..OFF_MAGIC + 8].copy_from_slice(&MAGIC);
        put_u32(&mut slot, OFF_VERSION, FORMAT_VERSION);
        put_u32(&mut slot, OFF_SLOT_BYTES, SLOT_BYTES as u32);
        put_u64(&mut slot, OFF_GENERATION, self.generation);
        put_u64(&mut slot, OFF_REDB_LEN, self.redb_len);
        put_u64(&mut slot, OFF_REDB_DIRTY_LEN, self.redb_dirty_len);
        put_u64(&mut slot, OFF_LOCK_SHIFT, LOCK_SHIFT);
        put_u32(&mut slot, OFF_EXTENT_COUNT, self.extents.len() as u32);
        for (i, extent) in self.extents.iter().enumerate() {
            let at = HEADER_BYTES + i * EXTENT_RECORD_BYTES;
            slot[at] = extent.kind.code();
            put_u64(&mut slot, at + 8, extent.physical_offset);
            put_u64(&mut slot, at + 16, extent.len);
            put_u64(&mut slot, at + 24, extent.logical_offset);
        }
        let crc = slot_crc(&slot, self.extents.len());
        put_u32(&mut slot, OFF_CRC, crc);
        slot
    }

    /// Decodes and validates a slot image. `slot` may be shorter than [`SLOT_BYTES`] (a
    /// truncated file); that is an error, never a panic.
    pub fn decode(slot: &[u8]) -> Result<Superblock, SlotError> {
        if slot.len() < HEADER_BYTES || slot[OFF_MAGIC..OFF_MAGIC + 8] != MAGIC {
            return Err(SlotError::NotMagic);
        }
        let version = get_u32(slot, OFF_VERSION);
        if version != FORMAT_VERSION {
            return Err(SlotError::Version(version));
        }
        if slot.len() < SLOT_BYTES as usize {
            return Err(SlotError::Invalid(format!(
                "slot truncated to {} bytes",
                slot.len()
            )));
        }
        let slot_bytes = get_u32(slot, OFF_SLOT_BYTES);
        if u64::from(slot_bytes) != SLOT_BYTES {
            return Err(SlotError::Invalid(format!("slot size {slot_bytes}")));
        }
        let extent_count = get_u32(slot, OFF_EXTENT_COUNT) as usize;
        if extent_count > EXTENT_COUNT_MAX {
            return Err(SlotError::Invalid(format!("extent count {extent_count}")));
        }
        let stored_crc = get_u32(slot, OFF_CRC);
        let computed_crc = slot_crc(slot, extent_count);
        if stored_crc != computed_crc {
            return Err(SlotError::Invalid(format!(
                "checksum mismatch (stored {stored_crc:#010x}, computed {computed_crc:#010x})"
            )));
        }
        let lock_shift = get_u64(slot, OFF_LOCK_SHIFT);
        if lock_shift != LOCK_SHIFT {
            return Err(SlotError::Invalid(format!("lock shift {lock_shift:#x}")));
        }
        let mut extents = Vec::with_capacity(extent_count);
        for i in 0..extent_count {
            let at = HEADER_BYTES + i * EXTENT_RECORD_BYTES;
            let kind = ExtentKind::from_code(slot[at])
                .ok_or_else(|| SlotError::Invalid(format!("extent {i} has kind {}", slot[at])))?;
            extents.push(Extent {
                kind,
                physical_offset: get_u64(slot, at + 8),
                len: get_u64(slot, at + 16),
                logical_offset: get_u64(slot, at + 24),
            });
        }
        let superblock = Superblock {
            generation: get_u64(slot, OFF_GENERATION),
            redb_len: get_u64(slot, OFF_REDB_LEN),
            redb_dirty_len: get_u64(slot, OFF_REDB_DIRTY_LEN),
            extents,
        };
        superblock.validate().map_err(SlotError::Invalid)?;
        Ok(superblock)
    }

    /// Checks the invariants listed in the module docs.
    pub fn validate(&self) -> Result<(), String> {
        let mut logical_next = 0u64;
        let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(self.extents.len());
        for (i, extent) in self.extents.iter().enumerate() {
            if extent.len == 0 {
                return Err(format!("extent {i} is empty"));
            }
            if extent.physical_offset < DATA_START {
                return Err(format!("extent {i} overlaps the superblock"));
            }
            if extent.physical_offset % EXTENT_ALIGN != 0 || extent.len % EXTENT_ALIGN != 0 {
                return Err(format!("extent {i} is not aligned"));
            }
            let end = extent
                .physical_offset
                .checked_add(extent.len)
                .filter(|end| *end <= i64::MAX as u64)
                .ok_or_else(|| format!("extent {i} ends past the largest file"))?;
            ranges.push((extent.physical_offset, end));
            match extent.kind {
                ExtentKind::Redb => {
                    if extent.logical_offset != logical_next {
                        return Err(format!(
                            "redb extent {i} starts at logical {} instead of {logical_next}",
                            extent.logical_offset
                        ));
                    }
                    logical_next += extent.len;
                }
                ExtentKind::Column => {
                    if extent.logical_offset != 0 {
                        return Err(format!("column extent {i} has a logical offset"));
                    }
                }
            }
        }
        ranges.sort_unstable();
        if let Some(pair) = ranges.windows(2).find(|pair| pair[0].1 > pair[1].0) {
            return Err(format!(
                "extents at {} and {} overlap",
                pair[0].0, pair[1].0
            ));
        }
        if self.redb_len > self.redb_dirty_len {
            return Err(format!(
                "redb length {} exceeds its dirty length {}",
                self.redb_len, self.redb_dirty_len
            ));
        }
        if self.redb_dirty_len > logical_next {
            return Err(format!(
                "redb dirty length {} exceeds capacity {logical_next}",
                self.redb_dirty_len
            ));
        }
        Ok(())
    }
}

/// Bytes of a slot [`peek_generation`] needs.
pub const PEEK_BYTES: usize = OFF_GENERATION + 8;

/// The generation a slot header claims, without validating the slot (`None` without the
/// magic). Used to notice cheaply that another process wrote a newer slot; the slot is then
/// decoded in full before anything in it is believed.
pub fn peek_generation(header: &[u8]) -> Option<u64> {
    if header.len() < PEEK_BYTES || header[OFF_MAGIC..OFF_MAGIC + 8] != MAGIC {
        return None;
    }
    Some(get_u64(header, OFF_GENERATION))
}

fn slot_crc(slot: &[u8], extent_count: usize) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&slot[..OFF_CRC]);
    hasher.update(&slot[HEADER_BYTES..HEADER_BYTES + extent_count * EXTENT_RECORD_BYTES]);
    hasher.finalize()
}

fn put_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(buf: &mut [u8], at: usize, value: u64) {
    buf[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(bytes)
}

fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Superblock {
        Superblock {
            generation: 7,
            redb_len: 8192,
            redb_dirty_len: 12288,
            extents: vec![
                Extent {
                    kind: ExtentKind::Redb,
                    physical_offset: DATA_START,
                    len: 16384,
                    logical_offset: 0,
                },
                Extent {
                    kind: ExtentKind::Column,
                    physical_offset: DATA_START + 16384,
                    len: 4096,
                    logical_offset: 0,
                },
            ],
        }
    }

    #[test]
    fn superblock_round_trips() {
        let superblock = sample();
        let slot = superblock.encode();
        assert_eq!(slot.len() as u64, SLOT_BYTES);
        assert_eq!(Superblock::decode(&slot), Ok(superblock));
    }

    #[test]
    fn superblock_rejects_every_flipped_header_or_extent_byte() {
        let slot = sample().encode();
        let covered = HEADER_BYTES + 2 * EXTENT_RECORD_BYTES;
        for at in 0..covered {
            let mut bad = slot.clone();
            bad[at] ^= 0x40;
            assert!(Superblock::decode(&bad).is_err(), "flip at {at} accepted");
        }
    }

    #[test]
    fn superblock_rejects_foreign_and_future_files() {
        assert_eq!(
            Superblock::decode(b"SQLite format 3\0"),
            Err(SlotError::NotMagic)
        );
        assert_eq!(Superblock::decode(&[]), Err(SlotError::NotMagic));
        let mut slot = sample().encode();
        slot[OFF_VERSION..OFF_VERSION + 4].copy_from_slice(&9u32.to_le_bytes());
        assert_eq!(Superblock::decode(&slot), Err(SlotError::Version(9)));
        let truncated = &sample().encode()[..100];
        assert!(matches!(
            Superblock::decode(truncated),
            Err(SlotError::Invalid(_))
        ));
    }

    #[test]
    fn superblock_rejects_overlapping_extents() {
        let mut superblock = sample();
        superblock.extents[1].physical_offset = DATA_START + 4096;
        assert!(superblock.validate().unwrap_err().contains("overlap"));
    }

    #[test]
    fn superblock_rejects_length_past_capacity() {
        let mut superblock = sample();
        superblock.redb_len = 1 << 20;
        assert!(superblock.validate().is_err());
    }
}
