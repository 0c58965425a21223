//! `Store`: the handle to an open store file, what every part of it shares (`StoreInner`), the
//! active run's slot, projects and info. The calls that return a `Run` are `run.rs`'s and
//! `Store::batch` is `batch.rs`'s: this module sits below them and imports neither. Its parts:
//! `open` (creating, opening, closing, replacing the file), `txn` (the write and read
//! transactions every change and read runs in, with panic containment and poisoning) and
//! `maintenance` (repair, backup, vacuum, redb's integrity check).
//!
//! A `Store` is a cheap handle (an `Arc`): clones share the open file, the redb database and
//! the active run. The file layer (`file`) owns the bytes; the catalog (`catalog`) owns the
//! tables; this module owns the lifecycle and the rule that every change is one redb write
//! transaction, committed two-phase (redb's `SingleWriter` and `MultiWriter` modes force it).
//!
//! A store is opened by one writing process ([`Store::open`], redb's `SingleWriter`) or shared
//! by several ([`Store::open_shared`], redb's `MultiWriter`: sweeps, where each process writes
//! its own runs). Nothing a shared writer keeps in memory between transactions says what the
//! file holds: ids, names and the column high-water mark are read inside each write
//! transaction, where redb's writer byte makes them the latest commit's.
//!
//! Invariant: a new store appears at its path only complete (built in a temporary file in the
//! same directory, synced, then linked or renamed into place), so a crash during creation
//! never leaves an unopenable file at the path.

mod open;
mod txn;

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadOnlyDatabase};

use crate::catalog;
use crate::catalog::records::SegmentRef;
use crate::error::{Error, Result};
use crate::file::mmap::Mapping;
use crate::file::{PhysicalFile, FORMAT_VERSION, SEGMENT_ALIGN};

pub(crate) use open::open_store_with;
use open::{
    file_metadata, keep_mode_and_owner, link_into_place, map_open_error, open_snapshot_db,
    open_store, open_temp_store, refuse_existing, remove_stale_temp_files, resolve_link, temp_path,
    OwnerPolicy,
};
pub(crate) use txn::{contain_panic, BatchGuard};

/// redb's page cache per open store. Catalog pages are small and hot; column bytes bypass the
/// cache entirely, so a modest cache serves even large stores.
pub const CACHE_BYTES: usize = 64 << 20;
/// Size of the chunks blobs are split into, each a column segment with its own CRC, so a
/// streaming read checks and hands out one chunk at a time.
pub const BLOB_CHUNK_BYTES: usize = 4 << 20;

enum Db {
    Write(Database),
    Read(ReadOnlyDatabase),
    /// A read-only handle of a store a writer left unclean: redb recovered it in memory over a
    /// [`SnapshotBackend`] and reads its last durable commit; nothing is written to the file
    /// and every write is refused as for `Read`.
    Snapshot(Database),
}

/// How a handle opens the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads only, beside one writer or a cohort of shared writers.
    ReadOnly,
    /// Reads only, one frozen commit recovered in memory ([`Db::Snapshot`]).
    Snapshot,
    /// The one writing process (redb's `SingleWriter`).
    Write,
    /// One of several writing processes (redb's `MultiWriter`).
    SharedWrite,
}

impl Access {
    fn writable(self) -> bool {
        matches!(self, Access::Write | Access::SharedWrite)
    }
}

struct StoreInner {
    path: PathBuf,
    file: Arc<PhysicalFile>,
    mapping: Mapping,
    /// Segments (offset, length, CRC) whose CRC this process has verified (first touch).
    verified: Mutex<HashSet<(u64, u64, u32)>>,
    db: Db,
    /// Whether other processes may write the file at the same time ([`Store::open_shared`]).
    shared: bool,
    active_run: Mutex<Option<u64>>,
    /// Set when a write transaction found the file damaged (see [`contain_panic`]): redb's
    /// in-memory state may no longer match the file, so this handle refuses further writes.
    poisoned: AtomicBool,
    /// The thread running [`Store::batch`], if any: a write from it would wait for its own
    /// commit forever, so it is refused instead.
    batch_thread: Mutex<Option<std::thread::ThreadId>>,
}

/// An open store file. Clone it freely: clones share one open file.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

impl Store {
    /// A handle over the store file `file` at `path` (its column bytes mapped by `mapping`)
    /// and redb's `db` over it; `shared` when other processes may write it too. The one place
    /// a [`StoreInner`] is built.
    fn from_parts(
        path: &Path,
        file: Arc<PhysicalFile>,
        mapping: Mapping,
        db: Db,
        shared: bool,
    ) -> Store {
        Store {
            inner: Arc::new(StoreInner {
                path: path.to_path_buf(),
                mapping,
                verified: Mutex::new(HashSet::new()),
                file,
                db,
                shared,
                active_run: Mutex::new(None),
                poisoned: AtomicBool::new(false),
                batch_thread: Mutex::new(None),
            }),
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("read_only", &self.is_read_only())
            .field("shared", &self.is_shared())
            .finish()
    }
}

/// A project and its run count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectInfo {
    /// The project's name.
    pub name: String,
    /// When its first run was created, microseconds since the Unix epoch, UTC.
    pub created_us: i64,
    /// Number of runs in it.
    pub run_count: u64,
}

/// Facts about a store file, as `runstore info` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    /// The file.
    pub path: PathBuf,
    /// The physical format version (superblock).
    pub format_version: u32,
    /// The catalog layout version (redb tables).
    pub catalog_version: u64,
    /// Physical length of the file in bytes.
    pub file_bytes: u64,
    /// Bytes redb uses (its logical length).
    pub redb_bytes: u64,
    /// Bytes allocated to column extents.
    pub column_extent_bytes: u64,
    /// Bytes of committed column segments (up to the high-water mark, including garbage left by
    /// deleted runs until vacuum).
    pub column_used_bytes: u64,
    /// Entries in the extent directory.
    pub extent_count: usize,
    /// Generation of the current superblock slot.
    pub superblock_generation: u64,
    /// Number of projects.
    pub projects: u64,
    /// Number of runs.
    pub runs: u64,
    /// Number of output values across all runs.
    pub outputs: u64,
    /// Number of input values across all runs.
    pub inputs: u64,
    /// Number of bulk blobs across all runs.
    pub blobs: u64,
    /// Number of tables (metrics and input).
    pub tables: u64,
}

/// What `vacuum` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VacuumReport {
    /// File size before.
    pub bytes_before: u64,
    /// File size after.
    pub bytes_after: u64,
    /// Runs copied.
    pub runs: u64,
}

impl Store {
    /// Recovers the store at `path` if its last writer stopped without closing it, and closes
    /// it cleanly: afterwards every open works without recovery. Returns whether recovery was
    /// needed. Fails (and says why) when it cannot write the file, e.g. on a full disk: then
    /// the store is as before, still readable with [`Store::open_read_only`].
    pub fn repair(path: impl AsRef<Path>) -> Result<bool> {
        let path = path.as_ref();
        let needed = match open_store(path, Access::ReadOnly) {
            Ok(_) | Err(Error::NeedsUpgrade { .. }) => false,
            Err(Error::NeedsRepair { .. }) => true,
            Err(error) => return Err(error),
        };
        Store::open(path)?.close()?;
        // The close reported success; make sure the file says so too.
        drop(open_store(path, Access::ReadOnly)?);
        Ok(needed)
    }

    /// Whether this read-only handle reads a store whose last writer stopped without closing
    /// it: the file needs recovery by a writer ([`Store::repair`]), and this handle reads the
    /// last durable commit, recovered in memory, without following later commits.
    pub fn needs_recovery(&self) -> bool {
        matches!(self.inner.db, Db::Snapshot(_))
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether this handle was opened read-only.
    pub fn is_read_only(&self) -> bool {
        matches!(self.inner.db, Db::Read(_) | Db::Snapshot(_))
    }

    /// Whether this handle writes alongside other processes ([`Store::open_shared`]).
    pub fn is_shared(&self) -> bool {
        self.inner.shared
    }

    /// The current extent directory (for inspection: `runstore info`, tests).
    pub fn superblock(&self) -> crate::file::Superblock {
        self.inner.file.superblock()
    }

    pub(crate) fn file(&self) -> &PhysicalFile {
        &self.inner.file
    }

    /// A zero-copy buffer over a committed segment: bounds and alignment checked, inside a
    /// column extent, and its CRC verified on first touch in this process. `what` names the
    /// table and column in errors.
    pub(crate) fn mapped_segment(
        &self,
        segment: &SegmentRef,
        what: &str,
    ) -> Result<arrow_buffer::Buffer> {
        let corrupted = |reason: String| Error::Corrupted {
            offset: segment.offset,
            reason: format!("{what}: {reason}"),
        };
        if !segment.offset.is_multiple_of(SEGMENT_ALIGN) {
            return Err(corrupted("segment is not 64-byte aligned".into()));
        }
        if segment.len == 0 {
            return Ok(arrow_buffer::Buffer::from_vec(Vec::<u8>::new()));
        }
        self.file()
            .check_column_range(segment.offset, segment.len)
            .map_err(|e| corrupted(e.to_string()))?;
        let end = segment
            .offset
            .checked_add(segment.len)
            .ok_or_else(|| corrupted("segment length overflows".into()))?;
        let map = self.inner.mapping.covering(end)?;
        let verified = self
            .inner
            .verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&(segment.offset, segment.len, segment.crc32));
        if !verified {
            let bytes = crate::file::mmap::bytes(&map, segment.offset, segment.len)?;
            let crc = crc32fast::hash(bytes);
            if crc != segment.crc32 {
                return Err(corrupted(format!(
                    "segment of {} bytes fails its checksum (stored {:#010x}, computed {crc:#010x})",
                    segment.len, segment.crc32
                )));
            }
            self.inner
                .verified
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert((segment.offset, segment.len, segment.crc32));
        }
        crate::file::mmap::buffer(&map, segment.offset, segment.len)
    }

    pub(crate) fn same_store(&self, other: &Store) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The handle's active run id, locked.
    pub(crate) fn lock_active(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.inner
            .active_run
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every project with its run count, by name.
    pub fn projects(&self) -> Result<Vec<ProjectInfo>> {
        self.read(|txn| {
            let mut out = Vec::new();
            for (name, created) in catalog::runs::projects(txn, "list projects", "project")? {
                let created_us = created as i64;
                let run_count = catalog::runs::project_run_count(txn, &name)?;
                out.push(ProjectInfo {
                    name,
                    created_us,
                    run_count,
                });
            }
            Ok(out)
        })
    }

    /// Number of runs in the store.
    pub fn run_count(&self) -> Result<u64> {
        self.read(|txn| catalog::count_rows(txn, catalog::RUNS))
    }

    /// Counts and sizes, as `runstore info` prints them.
    pub fn info(&self) -> Result<StoreInfo> {
        let superblock = self.file().superblock();
        let file_bytes = self.file().physical_len()?;
        self.read(|txn| {
            let col_hwm = catalog::meta_get(txn, catalog::META_COL_HWM)?;
            let column_used_bytes = superblock
                .column_extents()
                .map(|extent| {
                    col_hwm
                        .min(extent.physical_end())
                        .saturating_sub(extent.physical_offset)
                })
                .sum();
            Ok(StoreInfo {
                path: self.path().to_path_buf(),
                format_version: FORMAT_VERSION,
                catalog_version: catalog::meta_get(txn, catalog::META_CATALOG_VERSION)?,
                file_bytes,
                redb_bytes: superblock.redb_len,
                column_extent_bytes: superblock.column_extents().map(|e| e.len).sum(),
                column_used_bytes,
                extent_count: superblock.extents.len(),
                superblock_generation: superblock.generation,
                projects: catalog::count_rows(txn, catalog::PROJECTS)?,
                runs: catalog::count_rows(txn, catalog::RUNS)?,
                outputs: catalog::count_rows(txn, catalog::OUTPUTS)?,
                inputs: catalog::count_rows(txn, catalog::INPUTS)?,
                blobs: catalog::count_rows(txn, catalog::BLOBS)?,
                tables: catalog::count_rows(txn, catalog::TABLES)?,
            })
        })
    }

    /// Writes a consistent copy of the store to `dest`, which must not exist; returns its
    /// size in bytes. A plain `cp` of a file being written is not a backup.
    ///
    /// On a read-write handle the file is copied byte for byte while this handle holds the
    /// write lock, so no commit lands half-copied. On a read-only handle (another process is
    /// writing, which holds the lock for as long as it has the store open) the copy is
    /// logical: everything live in one read snapshot is copied into a new store, as `vacuum`
    /// does, while the writer goes on committing; the copy is compact and holds exactly the
    /// commit the snapshot saw. Either way the copy is built in a temporary file in `dest`'s
    /// folder and hard-linked into place only complete (a link never replaces a file, so an
    /// existing `dest` is never overwritten), it opens read-only and passes `check`, and it
    /// has the store's mode and, where the caller may set it, its owner. A failed backup
    /// removes its temporary file; one a killed backup left is removed by the next backup to
    /// the same `dest` (or never blocks it: every temporary name is new).
    ///
    /// An existing `dest` fails as it always did: [`Error::AlreadyExists`] on a read-only
    /// handle, [`Error::Io`] of kind [`io::ErrorKind::AlreadyExists`] on a read-write one.
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<u64> {
        let dest = dest.as_ref();
        let like = file_metadata(self.path())?;
        let db = match &self.inner.db {
            Db::Write(db) => db,
            Db::Read(_) | Db::Snapshot(_) => {
                refuse_existing(dest)?;
                remove_stale_temp_files(dest);
                return self.backup_snapshot(dest, &like);
            }
        };
        let exists_as_io = |error| match error {
            Error::AlreadyExists { .. } => Error::Io {
                op: "create",
                path: dest.to_path_buf(),
                source: io::Error::from(io::ErrorKind::AlreadyExists),
            },
            other => other,
        };
        refuse_existing(dest).map_err(exists_as_io)?;
        remove_stale_temp_files(dest);
        let temp = temp_path(dest, "backup");
        let published = (|| {
            let txn = db.begin_write().map_err(|e| Error::db("backup", e))?;
            let result = copy_file_prefix(self.path(), &temp, self.file().physical_len()?);
            let _ = txn.abort();
            let bytes = result?;
            // The copy carries redb's "a writer has it open" mark; one writable open recovers
            // and closes it cleanly, so the backup opens read-only like any closed store.
            drop(open_store(&temp, Access::Write)?);
            keep_mode_and_owner(&temp, &like, OwnerPolicy::IfPermitted)?;
            link_into_place(&temp, dest, "link backup into place").map_err(exists_as_io)?;
            Ok(bytes)
        })();
        let _ = std::fs::remove_file(&temp);
        published
    }

    /// The logical backup of [`Store::backup_to`] from one read snapshot; `like` is the
    /// store file's metadata (mode and owner to keep).
    /// Copies everything live into the empty store `target` in one commit (`vacuum`);
    /// returns the number of runs copied.
    fn copy_all_to(&self, target: &Store) -> Result<u64> {
        self.read(|from| {
            target.write("vacuum", |to| {
                crate::vacuum::copy_all(from, to, self.file(), target.file())
            })
        })
    }

    fn backup_snapshot(&self, dest: &Path, like: &std::fs::Metadata) -> Result<u64> {
        let temp = temp_path(dest, "backup");
        let built = open_temp_store(&temp).and_then(|target| {
            self.copy_all_to(&target)?;
            target.file().sync()?;
            target.file().physical_len()
        });
        let published = built.and_then(|bytes| {
            keep_mode_and_owner(&temp, like, OwnerPolicy::IfPermitted)?;
            link_into_place(&temp, dest, "link backup into place")?;
            Ok(bytes)
        });
        let _ = std::fs::remove_file(&temp);
        published
    }

    /// Rewrites the live contents of the store at `path` into a new file and renames it into
    /// place, reclaiming the space of deleted runs and of redb pages freed over time. Column
    /// segments shared by copied runs are copied once. Readers that hold the old file open keep
    /// reading the old file; the writer lock is held throughout, so no commit is lost.
    ///
    /// When `path` is a symbolic link, the file it points to is vacuumed and the link stays.
    /// The new file keeps the old one's mode and owner; when the owner cannot be kept (a
    /// caller who may not give files away), nothing is replaced and the error says so.
    pub fn vacuum(path: impl AsRef<Path>) -> Result<VacuumReport> {
        // Opened by the name given (errors name it), then the file a link points to is the one
        // replaced, so the link stays.
        let source = Store::open(path.as_ref())?;
        let path = &resolve_link(path.as_ref())?;
        let bytes_before = source.file().physical_len()?;
        let temp = temp_path(path, "vacuum");
        let copied = open_temp_store(&temp).and_then(|target| {
            let runs = source.copy_all_to(&target)?;
            target.file().sync()?;
            Ok(runs)
        });
        let runs = match copied {
            Ok(runs) => runs,
            Err(error) => {
                let _ = std::fs::remove_file(&temp);
                return Err(error);
            }
        };
        source.rename_over(&temp, path, "rename vacuumed store into place")?;
        let bytes_after = file_metadata(path)?.len();
        Ok(VacuumReport {
            bytes_before,
            bytes_after,
            runs,
        })
    }

    /// Runs redb's integrity check (verifies every page checksum of the committed trees) on
    /// the newest commit of the store at `path`, without writing to the file: redb's recovery
    /// and check run in memory (`SnapshotBackend`), so the file may be read-only and a writer
    /// may have it open meanwhile (the commit checked is the newest when this opened it).
    /// Returns whether redb had to recover or repair anything: a store whose writer stopped
    /// without closing it, or still has it open, always needs recovery.
    pub fn check_database(path: impl AsRef<Path>) -> Result<bool> {
        let path = path.as_ref();
        let file = crate::file::open_store_file(path, false)?;
        let physical = Arc::new(PhysicalFile::open(path, file, false)?);
        contain_panic("check", || {
            let (mut db, recovered) = open_snapshot_db(path, physical)?;
            let clean = db.check_integrity().map_err(|e| map_open_error(path, e))?;
            let recovered = recovered.load(AtomicOrdering::Relaxed);
            Ok(recovered || !clean)
        })
    }
}

fn copy_file_prefix(source: &Path, dest: &Path, len: u64) -> Result<u64> {
    use std::io::{Read, Write};
    let io_err = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { op, path, source }
    };
    let mut input = File::open(source).map_err(io_err("open", source))?;
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(io_err("create", dest))?;
    let copied =
        io::copy(&mut (&mut input).take(len), &mut output).map_err(io_err("copy", dest))?;
    output.flush().map_err(io_err("flush", dest))?;
    output.sync_all().map_err(io_err("sync", dest))?;
    if copied != len {
        return Err(Error::Io {
            op: "copy",
            path: source.to_path_buf(),
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while copying"),
        });
    }
    Ok(copied)
}
