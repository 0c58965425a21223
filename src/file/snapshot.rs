//! [`SnapshotBackend`]: the redb backend of a reader that must not write the file, so that a
//! read-only open and `check` work on a store a crashed writer left behind, on a read-only
//! file, and beside a live writer.
//!
//! redb recovers a file that a writer left unclean only in a writable open: it rebuilds its
//! allocator state from the last committed trees, rewrites the header and commits. A reader
//! that cannot write gets `RepairAborted` instead. This backend gives redb a writable view of
//! the file whose writes never reach it: reads come from the file (through a frozen copy of the
//! extent directory), writes land in an in-memory overlay of 4 KiB blocks, `set_len` moves an
//! in-memory length, and `sync_data` does nothing. redb then runs its own recovery (and its own
//! integrity check) entirely in memory, and reads the last durable commit, while the file's
//! bytes, length and mtime stay as they were.
//!
//! Locks: every lock redb asks for succeeds in memory (the database is opened as an
//! `ExclusiveWriter` of its private view); on the file this backend takes only what a reader
//! takes, shared: redb's protocol-generation byte, its shared-reader byte, and a pin over the
//! whole active-transaction range. It never takes the writer byte, so a writer can open the
//! store beside it, and it never asserts redb's consistency byte, so other readers do not
//! mistake the crashed file for one a live writer holds.
//!
//! Invariant (no torn reads): the pages of the commit this view reads are never rewritten
//! while it is open. The pin over the active-transaction range and the copy of redb's header
//! are taken under a shared hold of redb's header lock, which every commit holds exclusively,
//! so the header copied is the newest commit's and a writer's reclamation scan (run under the
//! same lock) sees the pin from then on: it finds the pinned range held from where its scan
//! starts and reclaims nothing freed after that, as it would for a reader of that commit. The
//! header itself is the one block a writer rewrites in place, so it is read once, into the
//! overlay. A new writer's recovery keeps every page of the last commit (those are the pages
//! its rebuilt allocator marks as used), so a crashed store's snapshot stays intact too.
//!
//! The view is frozen: it shows the commit that was newest when it was opened and does not
//! follow later commits (reopen to see them).

use std::collections::HashMap;
use std::io;
use std::ops::Bound;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use redb::{BackendError, StorageBackend};

use super::backend::{PhysicalFile, RedbBackend, REDB_WRITER_BYTE};
use super::superblock::Superblock;
use crate::error::{Error, Result};

/// Size of an overlay block: redb's page size, so a page write touches one block.
const BLOCK_BYTES: u64 = 4096;
/// redb's header (`HEADER_LOCK` and `DB_HEADER_SIZE` in redb's page manager: 64 bytes of
/// geometry and two 128-byte commit slots) lies inside the first block.
const REDB_HEADER_BYTES: u64 = 320;
const _: () = assert!(REDB_HEADER_BYTES <= BLOCK_BYTES);

// redb 4.x's lock protocol (its `src/db.rs`; the generation byte versions it). Unshifted:
// [`RedbBackend`] shifts them past the superblock like every lock redb takes.
/// Base of redb's lock bytes (its `LOCK_BASE`, where the writer byte is).
const REDB_LOCK_BASE: u64 = REDB_WRITER_BYTE;
/// Held shared by every read-only handle.
const REDB_SHARED_READER_BYTE: u64 = REDB_LOCK_BASE + 2;
/// The byte of the protocol generation redb 4.5 implements, held shared by every handle.
const REDB_PROTOCOL_GENERATION_BYTE: u64 = REDB_LOCK_BASE + 5;
/// Start of the active-transaction range: a reader of transaction `t` holds `TXN_BASE + t`.
const REDB_TXN_BASE: u64 = REDB_LOCK_BASE + 1024;

/// A copy-on-write view of the redb space of a store file (see the module docs).
#[derive(Debug)]
pub struct SnapshotBackend {
    file: Arc<PhysicalFile>,
    /// The directory as it was when the view was opened.
    directory: Superblock,
    overlay: RwLock<Overlay>,
    /// The shared locks taken on the file, released by `close`.
    held: Mutex<Vec<(Bound<u64>, Bound<u64>)>>,
}

#[derive(Debug)]
struct Overlay {
    /// redb's length as this view sees it.
    len: u64,
    /// File bytes at and past this offset read as zeros (redb shrank its length below them).
    base_end: u64,
    /// Blocks written by redb, by block index; each is [`BLOCK_BYTES`] long.
    blocks: HashMap<u64, Box<[u8]>>,
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
    /// Opens a view of `file` (opened read-only): takes a reader's locks, pins every
    /// transaction from the newest commit on, and copies redb's header and length.
    pub fn open(file: Arc<PhysicalFile>) -> Result<SnapshotBackend> {
        let backend = SnapshotBackend {
            directory: file.superblock(),
            file,
            overlay: RwLock::new(Overlay {
                len: 0,
                base_end: 0,
                blocks: HashMap::new(),
            }),
            held: Mutex::new(Vec::new()),
        };
        // On failure the locks taken so far are released by `close`, which drop calls.
        backend.take_shared(byte(REDB_PROTOCOL_GENERATION_BYTE))?;
        backend.take_shared(byte(REDB_SHARED_READER_BYTE))?;
        let header_lock = (Bound::Included(0), Bound::Excluded(BLOCK_BYTES));
        let locks = RedbBackend::new(backend.file.clone());
        locks
            .lock_shared_range(header_lock.0, header_lock.1)
            .map_err(|e| backend.io("lock redb header", backend_io(e)))?;
        let frozen = backend.freeze();
        let unlocked = locks
            .unlock_range(header_lock.0, header_lock.1)
            .map_err(|e| backend.io("unlock redb header", backend_io(e)));
        let (directory, header) = frozen?;
        unlocked?;
        let mut backend = backend;
        let len = directory.redb_len;
        backend.directory = directory;
        {
            let mut overlay = backend.overlay_mut();
            overlay.len = len;
            overlay.base_end = len;
            overlay.blocks.insert(0, header);
        }
        Ok(backend)
    }

    /// Under the header lock: pins the transaction range, then reads the newest directory and
    /// redb's first block.
    fn freeze(&self) -> Result<(Superblock, Box<[u8]>)> {
        self.take_shared((Bound::Included(REDB_TXN_BASE), Bound::Unbounded))?;
        self.file
            .refresh()
            .map_err(|e| self.io("refresh directory", e))?;
        let directory = self.file.superblock();
        if directory.redb_len < REDB_HEADER_BYTES {
            return Err(Error::Corrupted {
                offset: 0,
                reason: format!("the catalog is {} bytes long", directory.redb_len),
            });
        }
        let mut header = vec![0u8; BLOCK_BYTES as usize].into_boxed_slice();
        let copied = BLOCK_BYTES.min(directory.redb_len) as usize;
        self.file
            .read_logical_in(&directory, 0, &mut header[..copied])
            .map_err(|e| self.io("read redb header", e))?;
        Ok((directory, header))
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

    fn overlay(&self) -> RwLockReadGuard<'_, Overlay> {
        // Every change to the overlay completes before its guard drops (no call that can panic
        // runs between a block's insertion and its fill), so a poisoned overlay is whole.
        self.overlay
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn overlay_mut(&self) -> RwLockWriteGuard<'_, Overlay> {
        self.overlay
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

    /// Reads file bytes `[offset, offset + out.len())` as of the frozen directory, zeros at and
    /// past `base_end`.
    fn read_base(&self, base_end: u64, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let from_file = base_end.saturating_sub(offset).min(out.len() as u64) as usize;
        if from_file > 0 {
            self.file
                .read_logical_in(&self.directory, offset, &mut out[..from_file])?;
        }
        out[from_file..].fill(0);
        Ok(())
    }
}

impl Overlay {
    fn block(&self, offset: u64) -> Option<&[u8]> {
        self.blocks.get(&(offset / BLOCK_BYTES)).map(|b| &b[..])
    }
}

/// The block index and the offset inside it.
fn split(offset: u64) -> (u64, usize) {
    (offset / BLOCK_BYTES, (offset % BLOCK_BYTES) as usize)
}

fn past_end(offset: u64, len: u64, end: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("redb range {offset}+{len} lies past its length {end}"),
    )
}

impl StorageBackend for SnapshotBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.overlay().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let overlay = self.overlay();
        let len = out.len() as u64;
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= overlay.len)
            .ok_or_else(|| past_end(offset, len, overlay.len))?;
        let mut at = offset;
        while at < end {
            let done = (at - offset) as usize;
            let (_, inside) = split(at);
            if let Some(block) = overlay.block(at) {
                let step = (BLOCK_BYTES - inside as u64).min(end - at) as usize;
                out[done..done + step].copy_from_slice(&block[inside..inside + step]);
                at += step as u64;
                continue;
            }
            // A run of blocks redb has not written: one read from the file.
            let mut run_end = (at - inside as u64 + BLOCK_BYTES).min(end);
            while run_end < end && overlay.block(run_end).is_none() {
                run_end = (run_end + BLOCK_BYTES).min(end);
            }
            let step = (run_end - at) as usize;
            self.read_base(overlay.base_end, at, &mut out[done..done + step])?;
            at = run_end;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut overlay = self.overlay_mut();
        if len < overlay.len {
            // Bytes past the new length read as zeros if redb grows again, as in a file.
            overlay.base_end = overlay.base_end.min(len);
            // The block the new end falls in keeps its bytes below the end.
            let (last, inside) = split(len);
            overlay
                .blocks
                .retain(|index, _| *index < last || (*index == last && inside > 0));
            if let Some(block) = overlay.blocks.get_mut(&last) {
                block[inside..].fill(0);
            }
        }
        overlay.len = len;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        // Nothing reaches the file, so there is nothing to make durable.
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut overlay = self.overlay_mut();
        let len = data.len() as u64;
        let end = offset
            .checked_add(len)
            .ok_or_else(|| past_end(offset, len, overlay.len))?;
        let mut at = offset;
        while at < end {
            let (index, inside) = split(at);
            let step = (BLOCK_BYTES - inside as u64).min(end - at) as usize;
            if !overlay.blocks.contains_key(&index) {
                let mut block = vec![0u8; BLOCK_BYTES as usize].into_boxed_slice();
                let block_start = index * BLOCK_BYTES;
                let visible = overlay.len.min(overlay.base_end);
                self.read_base(visible, block_start, &mut block)?;
                overlay.blocks.insert(index, block);
            }
            let done = (at - offset) as usize;
            if let Some(block) = overlay.blocks.get_mut(&index) {
                block[inside..inside + step].copy_from_slice(&data[done..done + step]);
            }
            at += step as u64;
        }
        overlay.len = overlay.len.max(end);
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
