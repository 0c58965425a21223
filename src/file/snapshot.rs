//! [`SnapshotBackend`]: the redb backend of a reader that must not write the file, so that a
//! read-only open and `check` work on a store a crashed writer left behind, on a read-only
//! file, and beside a live writer.
//!
//! redb recovers a file that a writer left unclean only in a writable open: it rebuilds its
//! allocator state from the last committed trees, rewrites the header and commits. A reader
//! that cannot write gets `RepairAborted` instead. This backend gives redb a writable view of
//! the file whose writes never reach it: when it opens, it copies redb's whole space (through
//! the extent directory) into memory, and from then on redb reads and writes that copy only;
//! `set_len` resizes the copy and `sync_data` does nothing. redb then runs its own recovery
//! (and its own integrity check) entirely in memory and reads the last durable commit, while
//! the file's bytes, length and mtime stay as they were.
//!
//! Locks: every lock redb asks for succeeds in memory (the database is opened as an
//! `ExclusiveWriter` of its private copy); on the file this backend takes only what a reader
//! takes, shared: redb's protocol-generation byte and its shared-reader byte. It never takes
//! the writer byte, so a writer can open the store beside it, and it never asserts redb's
//! consistency byte, so other readers do not mistake the crashed file for one a live writer
//! holds.
//!
//! Invariant (no torn copy): the copy is one commit, whole. It is taken under a shared hold of
//! redb's header lock, which a writer holds exclusively for each header write, so no commit is
//! published while the copy is made: the header copied names the newest commit, whose pages a
//! two-phase commit flushed before publishing it, and none of its pages can be freed (that
//! takes a later commit's header write). A copy is needed, not a pin on the commit's
//! transaction: a writer frees the system-tree pages a commit replaced as soon as that commit
//! is published (redb's readers never read the system tree), while the recovery and the
//! integrity check this view runs read the system tree of the commit it copied. The cost is
//! memory: the view holds redb's space (the catalog; column segments stay in the file), read
//! once, and a writer's next commit waits for that read.
//!
//! The view is frozen: it shows the commit that was newest when it was opened and does not
//! follow later commits (reopen to see them).

use std::io;
use std::ops::Bound;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use redb::{BackendError, StorageBackend};

use super::backend::{PhysicalFile, RedbBackend, REDB_WRITER_BYTE};
use crate::error::{Error, Location, Result};

/// redb's header (`HEADER_LOCK` and `DB_HEADER_SIZE` in redb's page manager: 64 bytes of
/// geometry and two 128-byte commit slots): the range a writer locks to write it.
const REDB_HEADER_BYTES: u64 = 320;

// redb 4.x's lock protocol (its `src/db.rs`; the generation byte versions it). Unshifted:
// [`RedbBackend`] shifts them past the superblock like every lock redb takes.
/// Base of redb's lock bytes (its `LOCK_BASE`, where the writer byte is).
const REDB_LOCK_BASE: u64 = REDB_WRITER_BYTE;
/// Held shared by every read-only handle.
const REDB_SHARED_READER_BYTE: u64 = REDB_LOCK_BASE + 2;
/// The byte of the protocol generation redb 4.5 implements, held shared by every handle.
const REDB_PROTOCOL_GENERATION_BYTE: u64 = REDB_LOCK_BASE + 5;

/// Bytes read from the file per call while the copy is made.
const COPY_CHUNK: usize = 4 << 20;

/// An in-memory copy of the redb space of a store file (see the module docs).
#[derive(Debug)]
pub struct SnapshotBackend {
    file: Arc<PhysicalFile>,
    /// redb's space as this view sees it: the copied commit, then whatever redb wrote.
    image: RwLock<Vec<u8>>,
    /// The shared locks taken on the file, released by `close`.
    held: Mutex<Vec<(Bound<u64>, Bound<u64>)>>,
}

fn byte(offset: u64) -> (Bound<u64>, Bound<u64>) {
    (Bound::Included(offset), Bound::Included(offset))
}

fn backend_io(error: BackendError) -> io::Error {
    match error {
        BackendError::Io(error) => error,
        other => io::Error::other(other.to_string()),
    }
}

impl SnapshotBackend {
    /// Opens a view of `file` (opened read-only): takes a reader's locks and copies redb's
    /// space as of the newest commit.
    pub fn open(file: Arc<PhysicalFile>) -> Result<SnapshotBackend> {
        let backend = SnapshotBackend {
            file,
            image: RwLock::new(Vec::new()),
            held: Mutex::new(Vec::new()),
        };
        // On failure the locks taken so far are released by `close`, which drop calls.
        backend.take_shared(byte(REDB_PROTOCOL_GENERATION_BYTE))?;
        backend.take_shared(byte(REDB_SHARED_READER_BYTE))?;
        let header_lock = (Bound::Included(0), Bound::Excluded(REDB_HEADER_BYTES));
        let locks = RedbBackend::new(backend.file.clone());
        locks
            .lock_shared_range(header_lock.0, header_lock.1)
            .map_err(|e| backend.io("lock redb header", backend_io(e)))?;
        let copied = backend.copy();
        let unlocked = locks
            .unlock_range(header_lock.0, header_lock.1)
            .map_err(|e| backend.io("unlock redb header", backend_io(e)));
        let image = copied?;
        unlocked?;
        *backend.image_mut() = image;
        Ok(backend)
    }

    /// Under the header lock: reads the newest directory, then redb's whole space through it.
    fn copy(&self) -> Result<Vec<u8>> {
        self.file
            .refresh()
            .map_err(|e| self.io("refresh directory", e))?;
        let directory = self.file.superblock();
        if directory.redb_len < REDB_HEADER_BYTES {
            return Err(Error::Corrupted {
                at: Location::Catalog,
                reason: format!("the catalog is {} bytes long", directory.redb_len),
            });
        }
        // The directory passed its checks, so its extents lie inside the file: the length is
        // at most the file's, and a failed allocation is a clear error rather than an abort.
        let len = usize::try_from(directory.redb_len).map_err(|_| Error::InvalidInput {
            reason: format!(
                "the catalog is {} bytes long, more than this machine can address",
                directory.redb_len
            ),
        })?;
        let mut image = Vec::new();
        image.try_reserve_exact(len).map_err(|_| {
            self.io(
                "copy the catalog into memory",
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!("no memory for a {len}-byte copy of the catalog"),
                ),
            )
        })?;
        image.resize(len, 0);
        for (index, chunk) in image.chunks_mut(COPY_CHUNK).enumerate() {
            let offset = (index * COPY_CHUNK) as u64;
            self.file
                .read_logical_in(&directory, offset, chunk)
                .map_err(|e| self.io("read the catalog", e))?;
        }
        Ok(image)
    }

    /// Takes a shared lock on the (unshifted) range and remembers it for `close`.
    fn take_shared(&self, range: (Bound<u64>, Bound<u64>)) -> Result<()> {
        let locks = RedbBackend::new(self.file.clone());
        let taken = locks
            .try_lock_shared_range(range.0, range.1)
            .map_err(|e| self.io("lock", backend_io(e)))?;
        if !taken {
            // Only a process holding the whole file exclusively refuses a shared lock here.
            return Err(Error::AlreadyOpen {
                path: self.file.path().to_path_buf(),
                holder: super::holder::writer_holder(self.file.path()),
            });
        }
        self.lock_held().push(range);
        Ok(())
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, Vec<(Bound<u64>, Bound<u64>)>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn image(&self) -> RwLockReadGuard<'_, Vec<u8>> {
        // Every change to the image completes before its guard drops (a copy or a resize,
        // neither of which panics part way), so a poisoned image is whole.
        self.image
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn image_mut(&self) -> RwLockWriteGuard<'_, Vec<u8>> {
        self.image
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn io(&self, op: &'static str, source: io::Error) -> Error {
        Error::Io {
            op,
            path: self.file.path().to_path_buf(),
            source,
        }
    }
}

/// The range `[offset, offset + len)` as indices into an image of `image_len` bytes, or the
/// error redb gets for a range past the end.
fn range_in(offset: u64, len: usize, image_len: usize) -> io::Result<std::ops::Range<usize>> {
    usize::try_from(offset)
        .ok()
        .and_then(|start| Some(start..start.checked_add(len)?))
        .filter(|range| range.end <= image_len)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("redb range {offset}+{len} lies past its length {image_len}"),
            )
        })
}

impl StorageBackend for SnapshotBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.image().len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let image = self.image();
        let range = range_in(offset, out.len(), image.len())?;
        out.copy_from_slice(&image[range]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("a {len}-byte catalog does not fit in memory"),
            )
        })?;
        let mut image = self.image_mut();
        let current = image.len();
        if len > current {
            image.try_reserve_exact(len - current).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!("no memory to grow the catalog's copy to {len} bytes"),
                )
            })?;
        }
        // Bytes past the old end read as zeros, as in a file that grew.
        image.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        // Nothing reaches the file, so there is nothing to make durable.
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| io::Error::other("redb write range overflows"))?;
        if end > self.len()? {
            // A write past the end extends the file, as `pwrite` would.
            self.set_len(end)?;
        }
        let mut image = self.image_mut();
        let range = range_in(offset, data.len(), image.len())?;
        image[range].copy_from_slice(data);
        Ok(())
    }

    fn close(&self) -> io::Result<()> {
        let locks = RedbBackend::new(self.file.clone());
        let mut result = Ok(());
        for range in self.lock_held().drain(..) {
            if let Err(error) = locks.unlock_range(range.0, range.1) {
                result = result.and(Err(backend_io(error)));
            }
        }
        result
    }

    // Every lock redb asks for is this view's own: granted in memory, never taken on the file.

    fn try_lock_range(
        &self,
        _start: Bound<u64>,
        _end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        Ok(true)
    }

    fn try_lock_shared_range(
        &self,
        _start: Bound<u64>,
        _end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        Ok(true)
    }

    fn lock_range(
        &self,
        _start: Bound<u64>,
        _end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        Ok(())
    }

    fn lock_shared_range(
        &self,
        _start: Bound<u64>,
        _end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        Ok(())
    }

    fn unlock_range(
        &self,
        _start: Bound<u64>,
        _end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        Ok(())
    }

    fn query_lock_range(
        &self,
        _start: Bound<u64>,
        _end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        Ok(false)
    }
}

impl Drop for SnapshotBackend {
    fn drop(&mut self) {
        // Releases the file locks of a view redb never closed (an open that failed); an error
        // here has nobody to go to, and the locks go with the file description anyway.
        let _ = self.close();
    }
}
