//! The read-only memory mapping of the store file, and zero-copy Arrow buffers over it.
//!
//! This is the library's one file with `unsafe` (it holds both the mapping and the buffer
//! construction; the crate denies `unsafe_code` everywhere else); the Python crate's `unsafe`
//! is in `python/src/`. Everything here is bounds-checked before a pointer is formed, and
//! segment checksums are verified by the caller (`segments.rs`) before a buffer over the bytes is
//! handed out.
//!
//! # The mapping contract
//!
//! A memory map of a file is only sound while nobody changes or truncates the mapped bytes.
//! runstore keeps that contract for the bytes it maps: it maps only committed column segments,
//! which are never overwritten (new segments go past the committed high-water mark) and it
//! never truncates a store file (shrinking is logical; space comes back only through
//! `vacuum`, which writes a new file and renames it, leaving the old inode intact for anyone
//! who has it mapped). Another *program* truncating or rewriting the file while it is mapped
//! breaks the contract: reads of the removed pages raise SIGBUS and the process dies. This is
//! the same trade ripgrep makes for its mmap searcher: the store is a file the user owns, and
//! the alternative (copying every column into the heap) costs an order of magnitude in scan
//! time (DESIGN.md: 5.4 ms against 72 ms for 40 MB).
#![allow(unsafe_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use arrow_buffer::Buffer;
use memmap2::Mmap;

use crate::error::{Error, Location, Result};

/// A growing read-only view of the store file. Each remap covers the whole file as it is at
/// that moment; earlier maps stay alive as long as arrays built over them do.
#[derive(Debug)]
pub struct Mapping {
    file: File,
    path: PathBuf,
    current: Mutex<Option<Arc<Mmap>>>,
}

impl Mapping {
    /// Opens a read-only handle to `path` for mapping (a regular file only, see
    /// `open_store_file`). It is a separate open file description from the one that
    /// holds the store's locks, and never takes a lock itself.
    pub fn open(path: &Path) -> Result<Mapping> {
        let file = super::open_store_file(path, false)?;
        Ok(Mapping {
            file,
            path: path.to_path_buf(),
            current: Mutex::new(None),
        })
    }

    /// [`Mapping::open`], refusing a file at `path` other than `store` (the store's own open
    /// file): a store renamed over the path in between (`vacuum` does) would otherwise be mapped
    /// in place of the one being read.
    pub fn open_matching(path: &Path, store: &File) -> Result<Mapping> {
        let mapping = Mapping::open(path)?;
        let stat = |file: &File| {
            file.metadata()
                .map(|m| file_identity(&m))
                .map_err(|source| Error::Io {
                    op: "stat for mapping",
                    path: path.to_path_buf(),
                    source,
                })
        };
        if stat(&mapping.file)? != stat(store)? {
            return Err(Error::Io {
                op: "open for mapping",
                path: path.to_path_buf(),
                source: std::io::Error::other(
                    "another file was put at this path while the store was being opened; \
                     open it again",
                ),
            });
        }
        Ok(mapping)
    }

    /// A map covering at least `[0, end)`, remapping when the current one is shorter.
    pub fn covering(&self, end: u64) -> Result<Arc<Mmap>> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(map) = current.as_ref() {
            if map.len() as u64 >= end {
                return Ok(map.clone());
            }
        }
        let file_len = self
            .file
            .metadata()
            .map_err(|source| Error::Io {
                op: "stat for mapping",
                path: self.path.clone(),
                source,
            })?
            .len();
        if file_len < end {
            return Err(Error::Corrupted {
                at: Location::Offset(end),
                reason: format!("a segment ends at byte {end} but the file has {file_len} bytes"),
            });
        }
        // SAFETY: the map is read-only and covers committed bytes that runstore never
        // rewrites or truncates (see the module docs for the contract and its one failure
        // mode, SIGBUS if another program truncates the file). `file` stays open for the
        // life of the `Mapping`; the map itself keeps the pages valid after that.
        let map = unsafe { Mmap::map(&self.file) }.map_err(|source| Error::Io {
            op: "map",
            path: self.path.clone(),
            source,
        })?;
        let map = Arc::new(map);
        *current = Some(map.clone());
        Ok(map)
    }
}

/// What tells two open files apart: device and inode where there are inodes.
#[cfg(unix)]
fn file_identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

/// What tells two open files apart; without inodes, nothing (every file matches).
#[cfg(not(unix))]
fn file_identity(_metadata: &std::fs::Metadata) {}

/// The mapped bytes `[offset, offset + len)`, bounds-checked.
pub fn bytes(map: &Mmap, offset: u64, len: u64) -> Result<&[u8]> {
    let range = checked_range(map, offset, len)?;
    Ok(&map[range])
}

fn checked_range(map: &[u8], offset: u64, len: u64) -> Result<std::ops::Range<usize>> {
    let end = offset.checked_add(len).ok_or_else(|| Error::Corrupted {
        at: Location::Offset(offset),
        reason: format!("segment length {len} overflows"),
    })?;
    if end > map.len() as u64 {
        return Err(Error::Corrupted {
            at: Location::Offset(offset),
            reason: format!(
                "segment of {len} bytes ends past the mapped {} bytes",
                map.len()
            ),
        });
    }
    // Both fit in the map's usize length, checked above.
    Ok(offset as usize..end as usize)
}

/// An Arrow buffer over the mapped bytes `[offset, offset + len)`, without copying. The buffer
/// keeps `map` alive.
pub fn buffer(map: &Arc<Mmap>, offset: u64, len: u64) -> Result<Buffer> {
    buffer_in(map, offset, len)
}

/// An Arrow buffer over `owner`'s bytes `[offset, offset + len)`, without copying; the buffer
/// keeps `owner` alive. [`buffer`] is this over a mapping; unit tests (and Miri, which cannot
/// map files) use heap bytes.
pub fn buffer_in<T>(owner: &Arc<T>, offset: u64, len: u64) -> Result<Buffer>
where
    T: std::ops::Deref<Target = [u8]> + arrow_buffer::alloc::Allocation + 'static,
{
    let bytes: &[u8] = owner;
    let range = checked_range(bytes, offset, len)?;
    if range.is_empty() {
        return Ok(Buffer::from_vec(Vec::<u8>::new()));
    }
    let slice = &bytes[range];
    let ptr = NonNull::from(slice).cast::<u8>();
    let keep_alive: Arc<dyn arrow_buffer::alloc::Allocation> = owner.clone();
    // SAFETY: `ptr` and `slice.len()` come from a slice of `owner`'s bytes, bounds-checked just
    // above, so the pointer is valid for reads of that many bytes. `keep_alive` is the same
    // `Arc`, so the bytes outlive the buffer: `T` derefs to bytes it owns (a map, a vector)
    // that stay where they are while it lives. The bytes are immutable for that life (module
    // docs: committed segments are never rewritten; a map is read-only; a shared `Arc` hands
    // out no `&mut`).
    Ok(unsafe { Buffer::from_custom_allocation(ptr, slice.len(), keep_alive) })
}

#[cfg(test)]
mod tests {
    //! The buffer construction over heap bytes, so that Miri (which cannot map files) checks
    //! the unsafe block and the arrays Arrow builds over it:
    //! `cargo +nightly miri test --lib file::mmap`.

    use std::sync::Arc;

    use arrow_array::{Float32Array, Int64Array};
    use arrow_buffer::ScalarBuffer;

    use super::*;

    /// Heap bytes aligned to 64, as segments are in the file.
    #[derive(Debug)]
    struct Aligned(Vec<u64>);

    impl std::ops::Deref for Aligned {
        type Target = [u8];

        fn deref(&self) -> &[u8] {
            bytemuck::cast_slice(&self.0)
        }
    }

    fn owner() -> Arc<Aligned> {
        Arc::new(Aligned((0..64u64).collect()))
    }

    #[test]
    fn buffers_over_owned_bytes_read_the_right_values_and_keep_the_owner_alive() {
        let owner = owner();
        let buffer = buffer_in(&owner, 8 * 3, 8 * 10).unwrap();
        drop(owner);
        let values = Int64Array::new(ScalarBuffer::new(buffer, 0, 10), None);
        assert_eq!(values.values().as_ref(), &(3..13).collect::<Vec<i64>>()[..]);
        let sliced = values.slice(2, 3);
        assert_eq!(sliced.values().as_ref(), &[5, 6, 7]);
    }

    #[test]
    fn buffers_reinterpret_bytes_as_other_types_within_bounds() {
        let owner = owner();
        let buffer = buffer_in(&owner, 0, 16).unwrap();
        let floats = Float32Array::new(ScalarBuffer::new(buffer, 0, 4), None);
        assert_eq!(floats.len(), 4);
        let _ = floats.iter().map(|v| v.unwrap_or(0.0)).sum::<f32>();
    }

    #[test]
    fn out_of_bounds_and_overflowing_ranges_are_corruption_not_pointers() {
        let owner = owner();
        let total = owner.len() as u64;
        assert!(matches!(
            buffer_in(&owner, total - 4, 8),
            Err(Error::Corrupted { .. })
        ));
        assert!(matches!(
            buffer_in(&owner, u64::MAX - 2, 8),
            Err(Error::Corrupted { .. })
        ));
        assert!(matches!(
            buffer_in(&owner, total + 1, 0),
            Err(Error::Corrupted { .. })
        ));
        assert_eq!(buffer_in(&owner, total, 0).unwrap().len(), 0);
    }
}
