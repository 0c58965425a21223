//! The physical file: both superblock slots, the extent directory, and the redb
//! `StorageBackend` that maps redb's logical space onto redb extents.
//!
//! [`PhysicalFile`] owns the one storage backend (normally redb's [`FileBackend`]; in tests a
//! fault-injecting wrapper, `crate::fault`) through which every byte of the store is read and
//! written and every lock is taken (OFD locks on Linux). [`RedbBackend`] is what redb sees:
//! a file of `redb_len` bytes whose pages land in the redb extents, and whose byte-range locks
//! are shifted by [`LOCK_SHIFT`] so they never cover the superblock. Column bytes are appended
//! through [`PhysicalFile::append_column`] and read through [`PhysicalFile::read_column`].
//!
//! Invariants:
//! - The in-memory directory is always one that is durable on disk: a new slot is written and
//!   synced before the directory that describes it is installed.
//! - A slot is only written after re-reading both slots and finding the generation this process
//!   holds still the newest on disk; otherwise the write is refused (another process moved the
//!   directory and this one missed it), never silently lost.
//! - After any failed write or sync the file is poisoned: every later write fails until the
//!   store is reopened (the page cache may hold bytes the disk does not).
//! - A handle that shares writing with other processes (redb's `MultiWriter`, see
//!   [`PhysicalFile::share_writes`]) re-reads the directory whenever redb takes its writer byte,
//!   whenever redb asks for the length, before a column append, and on a read miss. Every slot
//!   write of every process happens under that byte, so the directory a writer holds is the one
//!   on disk for as long as it holds the byte.

use std::fs::File;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

use super::superblock::{
    peek_generation, Extent, ExtentKind, SlotError, Superblock, EXTENT_ALIGN, LOCK_SHIFT,
    PEEK_BYTES, SLOT_BYTES, SLOT_COUNT,
};
use crate::error::{DatabaseError, Error, Location, Result};

/// Smallest redb extent. redb's initial layout is a few hundred KiB; 1 MiB keeps the directory
/// short for small stores without wasting much of a sparse file.
pub const REDB_EXTENT_BYTES_MIN: u64 = 1 << 20;
/// Smallest column extent.
pub const COLUMN_EXTENT_BYTES_MIN: u64 = 1 << 20;
/// Largest column extent the growth policy asks for (a segment larger than this gets an extent
/// of its own size). 64 MiB keeps 8 sweep writers far from the 2,046-slot directory limit.
pub const COLUMN_EXTENT_BYTES_MAX: u64 = 64 << 20;
/// Column segments start on this boundary so Arrow buffers mapped from them are aligned.
pub const SEGMENT_ALIGN: u64 = 64;
/// Byte-range lock (below [`LOCK_SHIFT`], so never one of redb's) taken while a slot is written.
const SUPERBLOCK_LOCK_BYTE: u64 = LOCK_SHIFT / 2;
/// redb's writer byte (its `LOCK_BASE`, before [`LOCK_SHIFT`] is added): the lock a redb write
/// transaction holds in `MultiWriter` mode, and under which redb calls every `set_len`. Taking
/// it is when a shared writer re-reads the directory. Part of redb 4.x's locking protocol
/// (`WRITER_BYTE` in redb's `src/db.rs`), which redb versions with a protocol generation byte.
pub(super) const REDB_WRITER_BYTE: u64 = 1 << 62;

const _: () = assert!(REDB_WRITER_BYTE.checked_add(LOCK_SHIFT).is_some());

const _: () = assert!(REDB_EXTENT_BYTES_MIN.is_multiple_of(EXTENT_ALIGN));
const _: () = assert!(COLUMN_EXTENT_BYTES_MIN.is_multiple_of(EXTENT_ALIGN));
const _: () = assert!(EXTENT_ALIGN.is_multiple_of(SEGMENT_ALIGN));

/// Rounds `value` up to a multiple of `align` (a power of two), or `None` on overflow.
pub fn align_up(value: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    Some(value.checked_add(align - 1)? & !(align - 1))
}

/// The store's file and its extent directory, shared by redb's backend and the column writer.
#[derive(Debug)]
pub struct PhysicalFile {
    inner: Box<dyn StorageBackend>,
    path: PathBuf,
    writable: bool,
    /// Whether other processes may write the file at the same time (redb's `MultiWriter`).
    shared: bool,
    directory: Mutex<Superblock>,
    poisoned: AtomicBool,
    /// Number of times the directory was re-read from disk because another process moved it.
    refreshes: AtomicU64,
}

impl PhysicalFile {
    /// Writes the superblocks of a new, empty store into `file`, which must be empty.
    pub fn create(path: &Path, file: File) -> Result<PhysicalFile> {
        PhysicalFile::create_on(path, file_backend(file)?)
    }

    /// [`PhysicalFile::create`] over any storage backend (a fault-injecting one in tests).
    pub fn create_on(path: &Path, inner: Box<dyn StorageBackend>) -> Result<PhysicalFile> {
        let physical = PhysicalFile {
            inner,
            path: path.to_path_buf(),
            writable: true,
            shared: false,
            directory: Mutex::new(Superblock::empty()),
            poisoned: AtomicBool::new(false),
            refreshes: AtomicU64::new(0),
        };
        let len = physical.inner.len().map_err(|e| physical.io("stat", e))?;
        if len != 0 {
            return Err(Error::AlreadyExists {
                what: format!("file {}", path.display()),
            });
        }
        // Both slots are written, generations 0 and 1, so either alone opens.
        for generation in 0..SLOT_COUNT {
            let mut superblock = Superblock::empty();
            superblock.generation = generation;
            physical
                .inner
                .write(superblock.slot_index() * SLOT_BYTES, &superblock.encode())
                .map_err(|e| physical.io("write superblock", e))?;
            *physical.lock_directory() = superblock;
        }
        physical
            .inner
            .sync_data()
            .map_err(|e| physical.io("sync superblock", e))?;
        Ok(physical)
    }

    /// Opens an existing store's file and reads its directory.
    pub fn open(path: &Path, file: File, writable: bool) -> Result<PhysicalFile> {
        PhysicalFile::open_on(path, file_backend(file)?, writable)
    }

    /// [`PhysicalFile::open`] over any storage backend (a fault-injecting one in tests).
    pub fn open_on(
        path: &Path,
        inner: Box<dyn StorageBackend>,
        writable: bool,
    ) -> Result<PhysicalFile> {
        let physical = PhysicalFile {
            inner,
            path: path.to_path_buf(),
            writable,
            shared: false,
            directory: Mutex::new(Superblock::empty()),
            poisoned: AtomicBool::new(false),
            refreshes: AtomicU64::new(0),
        };
        let superblock = physical.read_directory()?;
        let file_len = physical.inner.len().map_err(|e| physical.io("stat", e))?;
        if file_len < superblock.physical_end() {
            return Err(Error::Corrupted {
                at: Location::Offset(file_len),
                reason: format!(
                    "file is {file_len} bytes but its extents end at {}",
                    superblock.physical_end()
                ),
            });
        }
        *physical.lock_directory() = superblock;
        Ok(physical)
    }

    /// Marks this handle as one of several processes writing the file at the same time (redb's
    /// `MultiWriter`): from now on it re-reads the directory where another writer may have
    /// moved it (see the module docs). Call before handing the file to redb.
    pub fn share_writes(mut self) -> PhysicalFile {
        self.shared = true;
        self
    }

    /// Whether other processes may move the directory while this handle has the file open: it
    /// reads only, or it shares writing.
    fn follows_others(&self) -> bool {
        !self.writable || self.shared
    }

    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A copy of the current directory.
    pub fn superblock(&self) -> Superblock {
        self.lock_directory().clone()
    }

    /// The physical length of the file.
    pub fn physical_len(&self) -> Result<u64> {
        self.inner.len().map_err(|e| self.io("stat", e))
    }

    /// How often the directory was re-read because another process changed it.
    #[cfg(test)]
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Flushes written bytes to the disk.
    pub fn sync(&self) -> Result<()> {
        self.check_poisoned().map_err(|e| self.io("sync", e))?;
        self.inner.sync_data().map_err(|e| {
            self.poison();
            self.io("sync", e)
        })
    }

    /// Reads `out.len()` bytes at physical `offset`, which must lie inside the file.
    pub fn read_physical(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        self.inner.read(offset, out).map_err(|e| self.io("read", e))
    }

    /// Appends `bytes` as one column segment past the committed high-water mark `col_hwm` and
    /// returns the segment's physical offset (aligned to [`SEGMENT_ALIGN`]). The caller records
    /// the offset and the new mark (`offset + len`) in the same write transaction; until that
    /// commits the bytes are garbage that the next append overwrites.
    pub fn append_column(&self, col_hwm: u64, bytes: &[u8]) -> Result<u64> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        self.check_poisoned()
            .map_err(|e| self.io("append column", e))?;
        if self.shared {
            // The caller holds redb's writer byte (it is inside a write transaction), so what
            // this reads stays the directory on disk until the append is done.
            self.refresh()
                .map_err(|e| self.io("refresh directory", e))?;
        }
        let len = bytes.len() as u64;
        let mut directory = self.lock_directory();
        let start = align_up(col_hwm, SEGMENT_ALIGN).ok_or_else(|| Error::Corrupted {
            at: Location::Offset(col_hwm),
            reason: "column high-water mark overflows".into(),
        })?;
        let end = start.checked_add(len).ok_or_else(|| Error::InvalidInput {
            reason: format!("a column segment of {len} bytes is too large"),
        })?;
        // The extent the high-water mark is in (a mark of 0 means none yet).
        let current = (col_hwm != 0)
            .then(|| {
                directory.extents.iter().position(|extent| {
                    extent.kind == ExtentKind::Column
                        && start >= extent.physical_offset
                        && start <= extent.physical_end()
                })
            })
            .flatten();
        let physical_end = directory.physical_end();
        let wanted = (physical_end / 8).clamp(COLUMN_EXTENT_BYTES_MIN, COLUMN_EXTENT_BYTES_MAX);
        let offset = match current {
            Some(index) if end <= directory.extents[index].physical_end() => start,
            Some(index) if directory.extents[index].physical_end() == physical_end => {
                // The current extent ends the file: grow it in place rather than leave its
                // unused rest behind and start another.
                let extent = directory.extents[index];
                let grow = (end - extent.physical_end()).max(wanted);
                let grow = align_up(grow, EXTENT_ALIGN).ok_or_else(|| Error::InvalidInput {
                    reason: format!("a column segment of {len} bytes is too large"),
                })?;
                let mut next = directory.clone();
                next.extents[index].len += grow;
                self.grow_and_install(&mut directory, next)
                    .map_err(|e| self.io("grow column extent", e))?;
                start
            }
            _ => {
                let size =
                    align_up(len.max(wanted), EXTENT_ALIGN).ok_or_else(|| Error::InvalidInput {
                        reason: format!("a column segment of {len} bytes is too large"),
                    })?;
                let mut next = directory.clone();
                next.extents.push(Extent {
                    kind: ExtentKind::Column,
                    physical_offset: physical_end,
                    len: size,
                    logical_offset: 0,
                });
                self.grow_and_install(&mut directory, next)
                    .map_err(|e| self.io("allocate column extent", e))?;
                physical_end
            }
        };
        if len > 0 {
            self.inner.write(offset, bytes).map_err(|e| {
                self.poison();
                self.io("write column segment", e)
            })?;
        }
        Ok(offset)
    }

    /// Reads a column segment's bytes at physical `offset`. The range must lie inside one column
    /// extent; one that does not is reported as corruption (the caller read the offset from a
    /// record).
    pub fn read_column(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        self.check_column_range(offset, out.len() as u64)?;
        self.read_physical(offset, out)
    }

    /// Checks that `[offset, offset + len)` lies inside one column extent (re-reading the
    /// directory once if another process may have added the extent). A range outside every
    /// column extent is reported as corruption: the caller read it from a record, and mapping
    /// it could expose bytes redb rewrites.
    pub fn check_column_range(&self, offset: u64, len: u64) -> Result<()> {
        let inside = |directory: &Superblock| {
            directory.column_extents().any(|extent| {
                offset >= extent.physical_offset
                    && offset
                        .checked_add(len)
                        .is_some_and(|end| end <= extent.physical_end())
            })
        };
        if !inside(&self.lock_directory()) {
            self.refresh()
                .map_err(|e| self.io("refresh directory", e))?;
            if !inside(&self.lock_directory()) {
                return Err(Error::Corrupted {
                    at: Location::Offset(offset),
                    reason: format!(
                        "column segment of {len} bytes lies outside every column extent"
                    ),
                });
            }
        }
        Ok(())
    }

    fn lock_directory(&self) -> MutexGuard<'_, Superblock> {
        // A panic while the lock was held leaves a directory that was either installed whole or
        // not at all (installation is one assignment), so the poisoned value is still valid.
        self.directory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn io(&self, op: &'static str, source: io::Error) -> Error {
        Error::Io {
            op,
            path: self.path.clone(),
            source,
        }
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    fn check_poisoned(&self) -> io::Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(io::Error::other(
                "an earlier write or sync failed; reopen the store before writing again",
            ));
        }
        Ok(())
    }

    /// Reads both slots and returns the newest valid one.
    fn read_directory(&self) -> Result<Superblock> {
        let file_len = self.inner.len().map_err(|e| self.io("stat", e))?;
        let mut slots = Vec::with_capacity(SLOT_COUNT as usize);
        for index in 0..SLOT_COUNT {
            let start = index * SLOT_BYTES;
            let available = file_len.saturating_sub(start).min(SLOT_BYTES);
            let mut buf = vec![0u8; available as usize];
            if available > 0 {
                self.inner
                    .read(start, &mut buf)
                    .map_err(|e| self.io("read superblock", e))?;
            }
            slots.push(Superblock::decode(&buf));
        }
        choose_slot(&self.path, slots)
    }

    /// Re-reads the directory from disk and installs it when another process wrote a newer one.
    /// Returns whether it changed.
    pub fn refresh(&self) -> io::Result<bool> {
        // Cheap path first: the generation fields of both slot headers. Only when one of them
        // is newer than what this process holds is the whole directory read and validated.
        let held = self.lock_directory().generation;
        let mut newer = false;
        for index in 0..SLOT_COUNT {
            let mut header = [0u8; PEEK_BYTES];
            match self.inner.read(index * SLOT_BYTES, &mut header) {
                Ok(()) => newer |= peek_generation(&header).is_some_and(|g| g > held),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => newer = true,
                Err(e) => return Err(e),
            }
        }
        if !newer {
            return Ok(false);
        }
        let on_disk = self.read_directory().map_err(io::Error::other)?;
        let mut directory = self.lock_directory();
        if on_disk.generation > directory.generation {
            *directory = on_disk;
            self.refreshes.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        Ok(false)
    }

    /// Makes room for every extent of `next` past the current physical end, syncs, then writes
    /// `next` into the free slot and installs it.
    fn grow_and_install(
        &self,
        directory: &mut MutexGuard<'_, Superblock>,
        mut next: Superblock,
    ) -> io::Result<()> {
        let physical_len = self.inner.len()?;
        let needed = next.physical_end();
        if needed > physical_len {
            self.inner.set_len(needed).inspect_err(|_| self.poison())?;
            self.inner.sync_data().inspect_err(|_| self.poison())?;
        }
        next.generation = directory.generation + 1;
        self.install(directory, next)
    }

    /// Writes `next` to the slot its generation selects, syncs, and installs it in memory.
    fn install(
        &self,
        directory: &mut MutexGuard<'_, Superblock>,
        next: Superblock,
    ) -> io::Result<()> {
        self.check_poisoned()?;
        assert_eq!(next.generation, directory.generation + 1);
        let lock = (
            Bound::Included(SUPERBLOCK_LOCK_BYTE),
            Bound::Included(SUPERBLOCK_LOCK_BYTE),
        );
        self.inner
            .lock_range(lock.0, lock.1)
            .map_err(backend_to_io)?;
        let result = (|| {
            let on_disk = self.read_directory().map_err(io::Error::other)?;
            if on_disk.generation != directory.generation {
                return Err(io::Error::other(format!(
                    "the extent directory on disk is at generation {} but this process holds {}; \
                     refusing to overwrite it",
                    on_disk.generation, directory.generation
                )));
            }
            let slot = next.encode();
            self.inner
                .write(next.slot_index() * SLOT_BYTES, &slot)
                .inspect_err(|_| self.poison())?;
            self.inner.sync_data().inspect_err(|_| self.poison())?;
            Ok(())
        })();
        self.inner
            .unlock_range(lock.0, lock.1)
            .map_err(backend_to_io)?;
        result?;
        **directory = next;
        Ok(())
    }

    /// Reads redb's logical bytes `[offset, offset + out.len())` as `directory` places them.
    /// Extents are only ever added, never moved, so an older directory maps the bytes it covers
    /// to the same places as the newest one ([`super::snapshot`] reads through a frozen copy).
    pub(super) fn read_logical_in(
        &self,
        directory: &Superblock,
        offset: u64,
        out: &mut [u8],
    ) -> io::Result<()> {
        let mut done = 0usize;
        for (physical, piece_len) in Self::map_logical(directory, offset, out.len() as u64)? {
            let piece_len = piece_len as usize;
            self.inner
                .read(physical, &mut out[done..done + piece_len])?;
            done += piece_len;
        }
        Ok(())
    }

    /// Maps the logical range `[offset, offset + len)` of redb's space to physical pieces.
    fn map_logical(directory: &Superblock, offset: u64, len: u64) -> io::Result<Vec<(u64, u64)>> {
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= directory.redb_len)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "redb range {offset}+{len} lies past its length {}",
                        directory.redb_len
                    ),
                )
            })?;
        let mut pieces = Vec::with_capacity(1);
        let mut at = offset;
        for extent in directory.redb_extents() {
            if at >= end {
                break;
            }
            let extent_end = extent.logical_offset + extent.len;
            if at >= extent_end {
                continue;
            }
            let piece_end = end.min(extent_end);
            pieces.push((
                extent.physical_offset + (at - extent.logical_offset),
                piece_end - at,
            ));
            at = piece_end;
        }
        assert_eq!(at, end, "redb extents do not cover redb_len");
        Ok(pieces)
    }

    fn write_zeros_logical(&self, directory: &Superblock, from: u64, to: u64) -> io::Result<()> {
        const CHUNK: u64 = 1 << 20;
        let zeros = vec![0u8; CHUNK as usize];
        let mut at = from;
        while at < to {
            let step = (to - at).min(CHUNK);
            // Zeroing happens before redb_len moves, so map against the capacity instead.
            let mut view = directory.clone();
            view.redb_len = view.redb_capacity();
            for (physical, len) in Self::map_logical(&view, at, step)? {
                self.inner
                    .write(physical, &zeros[..len as usize])
                    .inspect_err(|_| self.poison())?;
            }
            at += step;
        }
        Ok(())
    }

    fn redb_set_len(&self, len: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the store is open read-only",
            ));
        }
        self.check_poisoned()?;
        let mut directory = self.lock_directory();
        if len == directory.redb_len {
            return Ok(());
        }
        let mut next = directory.clone();
        let capacity = next.redb_capacity();
        if len > capacity {
            let needed = len - capacity;
            let size = align_up(
                needed.max(capacity / 2).max(REDB_EXTENT_BYTES_MIN),
                EXTENT_ALIGN,
            )
            .ok_or_else(|| io::Error::other("redb length overflows"))?;
            let physical_end = next.physical_end();
            next.extents.push(Extent {
                kind: ExtentKind::Redb,
                physical_offset: physical_end,
                len: size,
                logical_offset: capacity,
            });
            let physical_len = self.inner.len()?;
            if next.physical_end() > physical_len {
                self.inner
                    .set_len(next.physical_end())
                    .inspect_err(|_| self.poison())?;
                self.inner.sync_data().inspect_err(|_| self.poison())?;
            }
        }
        if len > directory.redb_len {
            // redb expects new bytes to read as zeros. Bytes it wrote before an earlier shrink
            // are still there below the dirty length, so clear them; above it, the file is
            // sparse and already zero.
            let zero_end = len.min(next.redb_dirty_len);
            if zero_end > directory.redb_len {
                self.write_zeros_logical(&next, directory.redb_len, zero_end)?;
                self.inner.sync_data().inspect_err(|_| self.poison())?;
            }
            next.redb_dirty_len = next.redb_dirty_len.max(len);
        }
        next.redb_len = len;
        next.generation = directory.generation + 1;
        self.install(&mut directory, next)
    }
}

/// Picks the current slot: the valid one with the larger generation.
/// redb's file backend over `file`, boxed.
pub fn file_backend(file: File) -> Result<Box<dyn StorageBackend>> {
    let backend = FileBackend::new(file).map_err(|source| Error::Database {
        op: "open file backend",
        source: DatabaseError::new(source),
    })?;
    Ok(Box::new(backend))
}

fn choose_slot(
    path: &Path,
    slots: Vec<std::result::Result<Superblock, SlotError>>,
) -> Result<Superblock> {
    let mut best: Option<Superblock> = None;
    let mut version = None;
    let mut invalid = None;
    for (index, slot) in slots.into_iter().enumerate() {
        match slot {
            Ok(superblock) => {
                if best
                    .as_ref()
                    .is_none_or(|b| superblock.generation > b.generation)
                {
                    best = Some(superblock);
                }
            }
            Err(SlotError::NotMagic) => {}
            Err(SlotError::Version(found)) => version = Some(found),
            Err(SlotError::Invalid(reason)) => invalid = Some((index as u64 * SLOT_BYTES, reason)),
        }
    }
    if let Some(superblock) = best {
        return Ok(superblock);
    }
    if let Some(found) = version {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            supported: super::superblock::FORMAT_VERSION,
        });
    }
    if let Some((offset, reason)) = invalid {
        return Err(Error::Corrupted {
            at: Location::Offset(offset),
            reason: format!("no valid superblock slot: {reason}"),
        });
    }
    Err(Error::NotAStore {
        path: path.to_path_buf(),
    })
}

fn backend_to_io(error: BackendError) -> io::Error {
    match error {
        BackendError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

fn shift_bound(bound: Bound<u64>) -> std::result::Result<Bound<u64>, BackendError> {
    let shift = |x: u64| {
        x.checked_add(LOCK_SHIFT)
            .ok_or_else(|| BackendError::Io(io::Error::other("lock offset overflows")))
    };
    Ok(match bound {
        Bound::Included(x) => Bound::Included(shift(x)?),
        Bound::Excluded(x) => Bound::Excluded(shift(x)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

fn shift_range(
    start: Bound<u64>,
    end: Bound<u64>,
) -> std::result::Result<(Bound<u64>, Bound<u64>), BackendError> {
    let start = match start {
        // The whole storage becomes everything from the shift on, which leaves the superblock
        // lock and the data unlocked.
        Bound::Unbounded => Bound::Included(LOCK_SHIFT),
        bound => shift_bound(bound)?,
    };
    Ok((start, shift_bound(end)?))
}

/// What redb runs on: a view of [`PhysicalFile`] as a plain file of `redb_len` bytes.
#[derive(Debug)]
pub struct RedbBackend {
    file: std::sync::Arc<PhysicalFile>,
}

impl RedbBackend {
    /// A backend over `file`.
    pub fn new(file: std::sync::Arc<PhysicalFile>) -> RedbBackend {
        RedbBackend { file }
    }

    /// Called with redb's writer byte just taken (`start..=end`, shifted): a shared writer
    /// re-reads the directory, since the process that held the byte before may have grown redb
    /// or added column extents. If that fails the byte is released again and the error returned,
    /// so redb never writes from a directory it could not refresh.
    fn after_writer_byte(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        if !self.file.shared {
            return Ok(());
        }
        if let Err(error) = self.file.refresh() {
            // The refresh error is the one to report; a failed unlock is released with the
            // file description at close anyway.
            let _ = self.file.inner.unlock_range(start, end);
            return Err(BackendError::Io(error));
        }
        Ok(())
    }
}

/// Whether `start..=end` (unshifted) is exactly redb's writer byte.
fn is_writer_byte(start: Bound<u64>, end: Bound<u64>) -> bool {
    start == Bound::Included(REDB_WRITER_BYTE) && end == Bound::Included(REDB_WRITER_BYTE)
}

impl StorageBackend for RedbBackend {
    fn len(&self) -> io::Result<u64> {
        if self.file.follows_others() {
            // A reader follows the writers, and a shared writer starts each write transaction
            // from the length another process may have moved: redb calls this under its writer
            // byte at the start of every write transaction, and a stale answer would make its
            // allocator hand out pages past the real end (a panic, not an error).
            self.file.refresh()?;
        }
        Ok(self.file.lock_directory().redb_len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let len = out.len() as u64;
        let pieces = {
            let directory = self.file.lock_directory();
            PhysicalFile::map_logical(&directory, offset, len)
        };
        let pieces = match pieces {
            Ok(pieces) => pieces,
            Err(_) => {
                self.file.refresh()?;
                PhysicalFile::map_logical(&self.file.lock_directory(), offset, len)?
            }
        };
        let mut done = 0usize;
        for (physical, piece_len) in pieces {
            let piece_len = piece_len as usize;
            self.file
                .inner
                .read(physical, &mut out[done..done + piece_len])?;
            done += piece_len;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.redb_set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.check_poisoned()?;
        self.file
            .inner
            .sync_data()
            .inspect_err(|_| self.file.poison())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.check_poisoned()?;
        let pieces =
            PhysicalFile::map_logical(&self.file.lock_directory(), offset, data.len() as u64)?;
        let mut done = 0usize;
        for (physical, piece_len) in pieces {
            let piece_len = piece_len as usize;
            self.file
                .inner
                .write(physical, &data[done..done + piece_len])
                .inspect_err(|_| self.file.poison())?;
            done += piece_len;
        }
        Ok(())
    }

    fn close(&self) -> io::Result<()> {
        self.file.inner.close()
    }

    fn try_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        let writer_byte = is_writer_byte(start, end);
        let (start, end) = shift_range(start, end)?;
        let locked = self.file.inner.try_lock_range(start, end)?;
        if locked && writer_byte {
            self.after_writer_byte(start, end)?;
        }
        Ok(locked)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        let (start, end) = shift_range(start, end)?;
        self.file.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        let writer_byte = is_writer_byte(start, end);
        let (start, end) = shift_range(start, end)?;
        self.file.inner.lock_range(start, end)?;
        if writer_byte {
            self.after_writer_byte(start, end)?;
        }
        Ok(())
    }

    fn lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        let (start, end) = shift_range(start, end)?;
        self.file.inner.lock_shared_range(start, end)
    }

    fn unlock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        let (start, end) = shift_range(start, end)?;
        self.file.inner.unlock_range(start, end)
    }

    fn query_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        let (start, end) = shift_range(start, end)?;
        self.file.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    //! Two handles on one file stand for two processes: each has its own open file description,
    //! so its own OFD locks and its own directory in memory.

    use std::sync::Arc;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    impl Fixture {
        /// A file with fresh superblocks and a first redb extent.
        fn new() -> Fixture {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("backend.runs");
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .expect("create file");
            let physical = Arc::new(PhysicalFile::create(&path, file).expect("create"));
            RedbBackend::new(physical)
                .set_len(64 * 1024)
                .expect("first redb extent");
            Fixture { _dir: dir, path }
        }

        /// Another "process": a handle of its own on the file, shared or not.
        fn open(&self, shared: bool) -> Arc<PhysicalFile> {
            let file = File::options()
                .read(true)
                .write(true)
                .open(&self.path)
                .expect("open file");
            let physical = PhysicalFile::open(&self.path, file, true).expect("open");
            Arc::new(if shared {
                physical.share_writes()
            } else {
                physical
            })
        }
    }

    fn writer_byte() -> (Bound<u64>, Bound<u64>) {
        (
            Bound::Included(REDB_WRITER_BYTE),
            Bound::Included(REDB_WRITER_BYTE),
        )
    }

    #[test]
    fn shared_writer_rereads_the_directory_when_granted_the_writer_byte() {
        let fixture = Fixture::new();
        let first = fixture.open(true);
        let second = fixture.open(true);
        let (first_redb, second_redb) = (
            RedbBackend::new(first.clone()),
            RedbBackend::new(second.clone()),
        );
        let (start, end) = writer_byte();
        first_redb
            .lock_range(start, end)
            .expect("first takes the byte");
        first_redb.set_len(4 << 20).expect("first grows redb");
        first_redb.unlock_range(start, end).expect("first releases");
        assert!(second.superblock().generation < first.superblock().generation);

        second_redb
            .lock_range(start, end)
            .expect("second takes the byte");
        assert_eq!(second.superblock(), first.superblock());
        second_redb
            .set_len(8 << 20)
            .expect("second grows from the fresh directory");
        second_redb
            .unlock_range(start, end)
            .expect("second releases");

        assert!(first_redb
            .try_lock_range(start, end)
            .expect("first tries the byte"));
        assert_eq!(first.superblock(), second.superblock());
        first_redb.unlock_range(start, end).expect("first releases");
    }

    #[test]
    fn shared_writer_len_follows_another_process() {
        let fixture = Fixture::new();
        let (first, second) = (fixture.open(true), fixture.open(true));
        RedbBackend::new(first)
            .set_len(2 << 20)
            .expect("first grows redb");
        assert_eq!(RedbBackend::new(second).len().expect("len"), 2 << 20);
    }

    #[test]
    fn slot_write_from_a_stale_directory_is_refused() {
        let fixture = Fixture::new();
        let (first, stale) = (fixture.open(true), fixture.open(false));
        RedbBackend::new(first.clone())
            .set_len(2 << 20)
            .expect("first grows redb");
        let error = RedbBackend::new(stale.clone())
            .set_len(3 << 20)
            .expect_err("a directory another process moved must not be overwritten");
        assert!(
            error.to_string().contains("refusing to overwrite"),
            "{error}"
        );
        let on_disk = fixture.open(false).superblock();
        assert_eq!(on_disk, first.superblock());
        assert_eq!(stale.refresh_count(), 0);
    }

    #[test]
    fn shared_column_append_continues_in_another_process_extent() {
        let fixture = Fixture::new();
        let (first, second) = (fixture.open(true), fixture.open(true));
        let bytes = vec![7u8; 1000];
        let offset = first.append_column(0, &bytes).expect("first appends");
        let col_hwm = offset + bytes.len() as u64;
        let next = second
            .append_column(col_hwm, &bytes)
            .expect("second appends past the mark the first committed");
        assert_eq!(next, align_up(col_hwm, SEGMENT_ALIGN).expect("aligned"));
        assert_eq!(second.superblock().column_extents().count(), 1);
        let mut out = vec![0u8; bytes.len()];
        first.read_column(next, &mut out).expect("first reads it");
        assert_eq!(out, bytes);
    }
}
