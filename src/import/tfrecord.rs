//! TFRecord framing, the container of TensorBoard's event files: each record is
//!
//! ```text
//! u64 LE  length
//! u32 LE  masked CRC-32C of the 8 length bytes
//! length  bytes of data (one serialized `Event`)
//! u32 LE  masked CRC-32C of the data
//! ```
//!
//! A mask is `((crc >> 15) | (crc << 17)) + 0xa282ead8` (wrapping). Nothing of a record is
//! believed before its CRC holds: a length whose CRC fails ends the file (where the next record
//! starts is unknown), a payload whose CRC fails is skipped (its length was checked, so the
//! next record is found), and a file that ends inside a record ends the records.

/// The CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) lookup table.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = CRC32C_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TensorFlow's masked CRC-32C of `bytes`, as TFRecord stores it.
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    let crc = crc32c(bytes);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// Largest record the reader accepts: an event is a few bytes to a few megabytes (an image
/// summary); a length above this is a damaged header, not a record to allocate for.
pub const RECORD_BYTES_MAX: u64 = 256 << 20;

/// Why reading records stopped before the end of the bytes, or a record that was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramingProblem {
    /// Byte offset of the record's header.
    pub offset: u64,
    /// What is wrong, as a phrase.
    pub reason: String,
    /// Whether reading went on past it (a payload whose CRC failed) or stopped there.
    pub skipped_only: bool,
}

/// The records of one TFRecord file's bytes: the payloads whose CRCs hold, in order, and what
/// was wrong with the rest.
#[derive(Debug, Default)]
pub struct Records<'a> {
    /// Payloads (one serialized `Event` each) with the byte offset of their record.
    pub records: Vec<(u64, &'a [u8])>,
    /// Records skipped and where reading stopped, in file order.
    pub problems: Vec<FramingProblem>,
}

/// Splits `bytes` into records, checking both CRCs of each. Never panics, whatever the bytes.
pub fn read_records(bytes: &[u8]) -> Records<'_> {
    let mut out = Records::default();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let offset = pos as u64;
        let stop = |reason: String| FramingProblem {
            offset,
            reason,
            skipped_only: false,
        };
        let rest = &bytes[pos..];
        if rest.len() < 12 {
            out.problems.push(stop(format!(
                "the file ends inside a record header ({} of 12 bytes)",
                rest.len()
            )));
            break;
        }
        let (len_bytes, after) = rest.split_at(8);
        let len_crc = u32::from_le_bytes([after[0], after[1], after[2], after[3]]);
        if masked_crc32c(len_bytes) != len_crc {
            out.problems
                .push(stop("the record length fails its CRC".to_string()));
            break;
        }
        let mut len_array = [0u8; 8];
        len_array.copy_from_slice(len_bytes);
        let len = u64::from_le_bytes(len_array);
        if len > RECORD_BYTES_MAX {
            out.problems.push(stop(format!(
                "a record of {len} bytes is longer than {RECORD_BYTES_MAX}"
            )));
            break;
        }
        // Both fit in usize: len is at most RECORD_BYTES_MAX.
        let len = len as usize;
        let data_start: usize = 12;
        let Some(needed) = data_start.checked_add(len).and_then(|n| n.checked_add(4)) else {
            out.problems.push(stop("a record length overflows".into()));
            break;
        };
        if rest.len() < needed {
            out.problems.push(stop(format!(
                "the file ends inside a record ({} of {needed} bytes)",
                rest.len()
            )));
            break;
        }
        let data = &rest[data_start..data_start + len];
        let crc_bytes = &rest[data_start + len..needed];
        let data_crc = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        if masked_crc32c(data) == data_crc {
            out.records.push((offset, data));
        } else {
            out.problems.push(FramingProblem {
                offset,
                reason: "the record's data fails its CRC (skipped)".into(),
                skipped_only: true,
            });
        }
        pos += needed;
    }
    out
}

/// Frames `payload` as one record (for tests and fixtures written in Rust).
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 16);
    let len = (payload.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc32c(payload).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C catalogue's check value for "123456789".
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn framed_records_read_back_and_damage_is_reported_where_it_is() {
        let mut file = frame(b"first");
        file.extend(frame(b"second"));
        file.extend(frame(b"third"));
        let read = read_records(&file);
        let payloads: Vec<&[u8]> = read.records.iter().map(|(_, d)| *d).collect();
        assert_eq!(payloads, [&b"first"[..], b"second", b"third"]);
        assert!(read.problems.is_empty());

        // A flipped payload byte: that record is skipped, the next still read.
        let second_at = frame(b"first").len();
        let mut flipped = file.clone();
        flipped[second_at + 12] ^= 0x40;
        let read = read_records(&flipped);
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.problems.len(), 1);
        assert!(read.problems[0].skipped_only);
        assert_eq!(read.problems[0].offset, second_at as u64);

        // A flipped length byte: reading stops there.
        let mut bad_len = file.clone();
        bad_len[second_at] ^= 1;
        let read = read_records(&bad_len);
        assert_eq!(read.records.len(), 1);
        assert!(!read.problems[0].skipped_only);

        // Truncated at every length: never a panic, only whole records.
        for cut in 0..file.len() {
            let read = read_records(&file[..cut]);
            assert!(read.records.len() <= 3);
            assert_eq!(
                read.problems.len(),
                usize::from(cut != 0 && !matches!(cut, 21 | 43))
            );
        }
    }
}
