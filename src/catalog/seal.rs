//! Sealed catalog values: every value in every catalog table carries a CRC-32 of the table's
//! name, the entry's key and the value, so a flipped bit anywhere in a value, or a value that
//! ended up under another key or in another table, is reported as `Error::Corrupted` when it is
//! read instead of being believed.
//!
//! redb checksums its pages, but verifies them only in its integrity check and repair, not
//! on reads; a byte flipped on disk would otherwise reach a query as a different number.
//!
//! [`Sealed`] is the redb value type of every catalog table. Its bytes are the payload then
//! the 4-byte little-endian CRC (crc32fast, IEEE) of
//! `table name ‖ 0x00 ‖ key length (u32 LE) ‖ key bytes (redb's encoding) ‖ payload`.
//! The payload is only reachable through [`SealedBytes::open`], which checks it.

use std::borrow::Borrow;

use redb::{Key, ReadableTable, TableHandle, TypeName};

use crate::error::{DbResultExt, Error, Location, Result};

/// The redb value type of catalog tables: a payload sealed with a CRC bound to its table and
/// key (see the module documentation).
#[derive(Debug)]
pub enum Sealed {}

/// A sealed value as stored: payload and CRC. Read the payload with [`SealedBytes::open`].
#[derive(Debug, Clone, Copy)]
pub struct SealedBytes<'a>(&'a [u8]);

/// Length of the seal after the payload.
pub const SEAL_BYTES: usize = 4;

impl redb::Value for Sealed {
    type SelfType<'a> = SealedBytes<'a>;
    type AsBytes<'a> = &'a [u8];

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> SealedBytes<'a>
    where
        Self: 'a,
    {
        SealedBytes(data)
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a SealedBytes<'b>) -> &'a [u8]
    where
        Self: 'b,
    {
        value.0
    }

    fn type_name() -> TypeName {
        TypeName::new("runstore::Sealed")
    }
}

fn crc(table: &str, key: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = prefix_hasher(table, key.len(), key);
    hasher.update(payload);
    hasher.finalize()
}

/// The CRC state after the table name, the key length and `key_prefix` (the start of a key
/// of `key_len` bytes).
fn prefix_hasher(table: &str, key_len: usize, key_prefix: &[u8]) -> crc32fast::Hasher {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(table.as_bytes());
    hasher.update(&[0]);
    // Keys are redb-encoded catalog keys: far below 4 GiB.
    hasher.update(&u32::try_from(key_len).unwrap_or(u32::MAX).to_le_bytes());
    hasher.update(key_prefix);
    hasher
}

/// `payload` sealed for `key` in table `table`: the bytes to store.
pub fn seal(table: &str, key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + SEAL_BYTES);
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc(table, key, payload).to_le_bytes());
    out
}

impl<'a> SealedBytes<'a> {
    /// Stored bytes (payload and seal), e.g. from [`seal`].
    pub fn new(bytes: &'a [u8]) -> SealedBytes<'a> {
        SealedBytes(bytes)
    }

    /// The stored bytes, seal included (for copying an entry under the same key).
    pub fn raw(&self) -> &'a [u8] {
        self.0
    }

    /// The payload, after checking the seal against the table and key it was read from.
    ///
    /// # Errors
    ///
    /// `Error::Corrupted` naming the table when the bytes are too short or the CRC differs.
    pub fn open(&self, table: &str, key: &[u8]) -> Result<&'a [u8]> {
        let corrupted = |what: &str| Error::Corrupted {
            at: Location::Record {
                table: table.to_string(),
                key: shown_key(key),
            },
            reason: what.to_string(),
        };
        let split = self
            .0
            .len()
            .checked_sub(SEAL_BYTES)
            .ok_or_else(|| corrupted("value shorter than its seal"))?;
        let (payload, stored) = self.0.split_at(split);
        let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
        if stored != crc(table, key, payload) {
            return Err(corrupted("value does not match its checksum"));
        }
        Ok(payload)
    }
}

/// A key's bytes for an error message: hex, at most 32 bytes.
fn shown_key(key: &[u8]) -> String {
    let mut out: String = key.iter().take(32).map(|b| format!("{b:02x}")).collect();
    if key.len() > 32 {
        out.push_str("...");
    }
    out
}

/// redb's encoding of a key.
pub fn key_bytes<'k, K: Key + 'static>(key: &K::SelfType<'k>) -> Vec<u8> {
    K::as_bytes(key).as_ref().to_vec()
}

/// Inserts `payload` under `key`, sealed; returns the previous payload, checked.
///
/// # Errors
///
/// A redb error, or `Error::Corrupted` if the previous value's seal is broken.
pub fn put<'k, K: Key + 'static>(
    table: &mut redb::Table<'_, K, Sealed>,
    key: impl Borrow<K::SelfType<'k>>,
    payload: &[u8],
) -> Result<Option<Vec<u8>>> {
    let op = "write catalog";
    let key_bytes = key_bytes::<K>(key.borrow());
    let name = table.name().to_string();
    let sealed = seal(&name, &key_bytes, payload);
    let old = table.insert(key, SealedBytes(&sealed)).db(op)?;
    match old {
        Some(old) => Ok(Some(old.value().open(&name, &key_bytes)?.to_vec())),
        None => Ok(None),
    }
}

/// The payload under `key`, checked.
///
/// # Errors
///
/// A redb error, or `Error::Corrupted` if the seal is broken.
pub fn get<'k, K: Key + 'static, T: ReadableTable<K, Sealed> + TableHandle>(
    table: &T,
    key: impl Borrow<K::SelfType<'k>>,
) -> Result<Option<Vec<u8>>> {
    let key_bytes = key_bytes::<K>(key.borrow());
    let guard = table.get(key).db("read catalog")?;
    match guard {
        Some(guard) => Ok(Some(guard.value().open(table.name(), &key_bytes)?.to_vec())),
        None => Ok(None),
    }
}

/// `read` applied to the payload under `key`, checked, in place (no copy of the payload).
///
/// # Errors
///
/// A redb error, `Error::Corrupted` if the seal is broken, or `read`'s error.
pub fn read<'k, K: Key + 'static, T: ReadableTable<K, Sealed> + TableHandle, R>(
    table: &T,
    key: impl Borrow<K::SelfType<'k>>,
    read: impl FnOnce(&[u8]) -> Result<R>,
) -> Result<Option<R>> {
    let key_bytes = key_bytes::<K>(key.borrow());
    let guard = table.get(key).db("read catalog")?;
    match guard {
        Some(guard) => read(guard.value().open(table.name(), &key_bytes)?).map(Some),
        None => Ok(None),
    }
}

/// The payload of an entry from a range or iteration, checked against its key.
///
/// # Errors
///
/// `Error::Corrupted` if the seal is broken.
pub fn open_entry<'a, K: Key + 'static>(
    table: &str,
    key: &redb::AccessGuard<'_, K>,
    value: &'a redb::AccessGuard<'_, Sealed>,
) -> Result<&'a [u8]> {
    let key_bytes = key_bytes::<K>(&key.value());
    value.value().open(table, &key_bytes)
}

/// The `u64` payload (an id) of an entry from a range or iteration, checked.
///
/// # Errors
///
/// `Error::Corrupted` if the seal is broken or the payload is not 8 bytes.
pub fn open_u64_entry<K: Key + 'static>(
    table: &str,
    key: &redb::AccessGuard<'_, K>,
    value: &redb::AccessGuard<'_, Sealed>,
) -> Result<u64> {
    u64_payload(open_entry(table, key, value)?, table)
}

/// A `u64` payload (ids, counters).
pub fn u64_payload(bytes: &[u8], what: &str) -> Result<u64> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_le_bytes)
        .map_err(|_| Error::Corrupted {
            at: Location::Catalog,
            reason: format!("{what}: {} bytes where 8 were expected", bytes.len()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_binds_table_key_and_payload() {
        let bytes = seal("runs", &7u64.to_le_bytes(), b"record");
        let sealed = SealedBytes::new(&bytes);
        assert_eq!(sealed.open("runs", &7u64.to_le_bytes()).unwrap(), b"record");
        assert!(sealed.open("runs", &8u64.to_le_bytes()).is_err());
        assert!(sealed.open("params", &7u64.to_le_bytes()).is_err());
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[i] ^= 1 << bit;
                assert!(
                    SealedBytes::new(&flipped)
                        .open("runs", &7u64.to_le_bytes())
                        .is_err(),
                    "flip of bit {bit} of byte {i} went unnoticed"
                );
            }
        }
        assert!(SealedBytes::new(&bytes[..3]).open("runs", &[]).is_err());
        assert_eq!(u64_payload(&5u64.to_le_bytes(), "id").unwrap(), 5);
        assert!(u64_payload(&[1, 2], "id").is_err());
    }
}
