//! `Store`: creating, opening and closing a store file, transactions, the active run's slot,
//! projects, info, vacuum and backup. The calls that return a `Run` are `run.rs`'s and
//! `Store::batch` is `batch.rs`'s: this module sits below them and imports neither.
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

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use redb::{
    ConcurrencyMode, Database, DatabaseError, ReadOnlyDatabase, ReadTransaction, WriteTransaction,
};

use crate::catalog;
use crate::catalog::records::SegmentRef;
use crate::error::{Error, Result};
use crate::file::mmap::Mapping;
use crate::file::{PhysicalFile, RedbBackend, SnapshotBackend, FORMAT_VERSION, SEGMENT_ALIGN};
use crate::names;

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
    /// Creates a new, empty store at `path`. Fails with [`Error::AlreadyExists`] if anything is
    /// there. The store is built in a temporary file beside `path` and linked into place.
    pub fn create(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        build_and_link(path)?;
        Store::open(path)
    }

    /// Builds a new store and renames it over `path`, replacing whatever is there. Used by the
    /// demo, which first checks that `path` is absent or a store.
    pub fn create_replacing(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        let temp = build_empty_store(path)?;
        std::fs::rename(&temp, path).map_err(|source| Error::Io {
            op: "rename new store into place",
            path: path.to_path_buf(),
            source,
        })?;
        sync_parent_dir(path)?;
        Store::open(path)
    }

    /// Opens `path` if it is a store, or creates it if nothing is there.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        match Store::create(path) {
            Err(Error::AlreadyExists { .. }) => Store::open(path),
            other => other,
        }
    }

    /// Opens an existing store for reading and writing. One process may hold a store open for
    /// writing; any number of read-only handles may follow its commits at the same time.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        open_store(path.as_ref(), Access::Write)
    }

    /// Opens an existing store for writing alongside other processes that opened it the same
    /// way: a sweep's trials, each logging its own runs into one file. Commits are serialised
    /// (each write transaction waits for the one in progress in any process) and every one
    /// starts from the latest commit of any process; read snapshots see other processes'
    /// commits as they land. Batch many rows per commit: the file sustains on the order of a
    /// thousand commits per second in total, however many processes share it.
    ///
    /// Fails with [`Error::AlreadyOpen`] while a process holds the store through
    /// [`Store::open`] (and that open fails while shared writers hold it). Read-only handles
    /// open beside either.
    ///
    /// ```no_run
    /// # fn main() -> runstore::Result<()> {
    /// use runstore::{Store, Value};
    /// // In each trial process:
    /// let store = Store::open_or_create_shared("sweep.runs")?;
    /// let run = store.init("sweep", None)?;
    /// run.add_output_value(&Value::map([("acc", Value::from(0.5))]))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn open_shared(path: impl AsRef<Path>) -> Result<Store> {
        open_store(path.as_ref(), Access::SharedWrite)
    }

    /// [`Store::open_shared`], creating the store first if nothing is at `path`. Processes
    /// racing to create it are safe: one creates it, the others open what it created.
    pub fn open_or_create_shared(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        match build_and_link(path) {
            Ok(()) | Err(Error::AlreadyExists { .. }) => Store::open_shared(path),
            Err(error) => Err(error),
        }
    }

    /// Opens an existing store for writing like [`Store::open`], but while another handle or
    /// process has it open for writing, waits for it to close, up to `timeout`; then fails
    /// with [`Error::AlreadyOpen`] as `open` does at once. Polls with backoff (5 ms doubling
    /// to 200 ms).
    pub fn open_waiting(path: impl AsRef<Path>, timeout: std::time::Duration) -> Result<Store> {
        let path = path.as_ref();
        let deadline = std::time::Instant::now() + timeout;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            match Store::open(path) {
                Err(Error::AlreadyOpen { .. }) if std::time::Instant::now() < deadline => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    /// Opens an existing store read-only, alongside one writer or any number of shared writers
    /// ([`Store::open_shared`]) in other processes; each new read sees their latest commit.
    /// Nothing is ever written to the file, so it may be read-only (or on read-only media).
    ///
    /// A store whose writer stopped without closing it (killed, power loss, full disk) opens
    /// too: redb's recovery runs in memory only and the handle reads the last durable commit
    /// ([`Store::needs_recovery`] says so). Such a handle shows that one commit: it does not
    /// follow commits a writer makes after it opened (open again to see them), and a writer's
    /// later commits never reuse the pages it reads. The file stays marked for recovery until
    /// a writer opens it ([`Store::repair`]).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        match open_store(path, Access::ReadOnly) {
            Err(Error::NeedsRepair { .. }) => open_store(path, Access::Snapshot),
            other => other,
        }
    }

    /// Checks whether `path` holds a runstore store (a valid superblock slot), without opening
    /// the database.
    pub fn probe(path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file = crate::file::open_store_file(path, false)?;
        PhysicalFile::open(path, file, false).map(|_| ())
    }

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

    /// Closes this handle and reports what closing the file costs, which dropping it cannot:
    /// a writer records a clean shutdown in the file, and a failure to write it (a full disk)
    /// is returned here. Other clones of this handle keep the store open; then this only
    /// drops the clone.
    pub fn close(self) -> Result<()> {
        let path = self.inner.path.clone();
        let Ok(inner) = Arc::try_unwrap(self.inner) else {
            return Ok(());
        };
        let result = match inner.db {
            Db::Write(db) | Db::Snapshot(db) => db.close(),
            Db::Read(db) => db.close(),
        };
        result.map_err(|e| Error::db("close", e).at_path(&path))
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

    /// Runs `f` in one write transaction and commits it; if `f` fails, nothing is changed.
    pub(crate) fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&WriteTransaction) -> Result<T>,
    ) -> Result<T> {
        let db = match &self.inner.db {
            Db::Write(db) => db,
            Db::Read(_) | Db::Snapshot(_) => return Err(Error::ReadOnly),
        };
        if self.inner.poisoned.load(AtomicOrdering::Acquire) {
            return Err(Error::Corrupted {
                offset: 0,
                reason: format!(
                    "{op}: an earlier write through this handle found the catalog damaged; \
                     run `runstore check` and reopen"
                ),
            });
        }
        if self.in_batch() {
            return Err(Error::InvalidInput {
                reason: format!(
                    "{op}: this thread is inside Store::batch; make the change through the batch"
                ),
            });
        }
        let result = contain_panic(op, || {
            let txn = db.begin_write().map_err(|e| Error::db(op, e))?;
            match f(&txn) {
                Ok(value) => {
                    txn.commit().map_err(|e| Error::db(op, e))?;
                    Ok(value)
                }
                Err(error) => {
                    // The transaction's changes are discarded; an error while discarding them
                    // is secondary to the one being returned.
                    let _ = txn.abort();
                    Err(error)
                }
            }
        });
        if let Err(Error::Corrupted { .. }) = &result {
            self.inner.poisoned.store(true, AtomicOrdering::Release);
        }
        result.map_err(|error| error.at_path(&self.inner.path))
    }

    /// Runs `f` in one read transaction (a consistent snapshot of one commit).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        contain_panic("read", || {
            let txn = match &self.inner.db {
                Db::Write(db) | Db::Snapshot(db) => catalog::begin_read(db)?,
                Db::Read(db) => catalog::begin_read(db)?,
            };
            f(&txn)
        })
        .map_err(|error| error.at_path(&self.inner.path))
    }

    fn lock_batch_thread(&self) -> std::sync::MutexGuard<'_, Option<std::thread::ThreadId>> {
        self.inner
            .batch_thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn in_batch(&self) -> bool {
        *self.lock_batch_thread() == Some(std::thread::current().id())
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

    /// Replaces this store with a new one that `build` fills: the new store is built in a
    /// temporary file beside the store file (beside the file a symbolic link points to; the
    /// link stays), then renamed over it while this handle holds the write lock, so no
    /// commit of another process can land in the old file and be lost (none can open it for
    /// writing meanwhile). The new file keeps the old one's mode and owner. On error nothing
    /// is replaced and the temporary file is removed. The handle must be a writer's
    /// ([`Store::open`]; else [`Error::ReadOnly`]); it is consumed because it refers to the
    /// old file afterwards: open `path` again to use the new store. Used by `runstore demo`
    /// to regenerate its own store.
    pub fn replace_with<E: From<Error>>(
        self,
        build: impl FnOnce(&Store) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        if !matches!(self.inner.db, Db::Write(_)) || self.inner.shared {
            return Err(Error::ReadOnly.into());
        }
        let path = &resolve_link(self.path())?;
        let temp = temp_path(path, "replacing");
        let built = open_temp_store(&temp).map_err(E::from).and_then(|target| {
            build(&target)?;
            target.file().sync()?;
            Ok(())
        });
        if let Err(error) = built {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
        self.rename_over(&temp, path, "rename new store into place")?;
        Ok(())
    }

    /// Renames the finished store `temp` over `path` (this writer handle's file), giving it
    /// the old file's mode and owner first, while holding the write lock so no commit can
    /// land in the old file after it was copied. Removes `temp` on failure.
    fn rename_over(&self, temp: &Path, path: &Path, op: &'static str) -> Result<()> {
        let renamed = (|| {
            let like = file_metadata(path)?;
            keep_mode_and_owner(temp, &like, OwnerPolicy::Required)?;
            let db = match &self.inner.db {
                Db::Write(db) => db,
                Db::Read(_) | Db::Snapshot(_) => return Err(Error::ReadOnly),
            };
            let guard = db
                .begin_write()
                .map_err(|e| Error::db("replace store", e))?;
            let renamed = std::fs::rename(temp, path).map_err(|source| Error::Io {
                op,
                path: path.to_path_buf(),
                source,
            });
            let _ = guard.abort();
            renamed
        })();
        if renamed.is_err() {
            let _ = std::fs::remove_file(temp);
        }
        renamed?;
        sync_parent_dir(path)
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

/// Marks the current thread as inside `Store::batch` for as long as it lives.
pub(crate) struct BatchGuard<'a> {
    store: &'a Store,
}

impl<'a> BatchGuard<'a> {
    /// Marks the current thread until the guard drops.
    pub(crate) fn enter(store: &'a Store) -> BatchGuard<'a> {
        *store.lock_batch_thread() = Some(std::thread::current().id());
        BatchGuard { store }
    }
}

impl Drop for BatchGuard<'_> {
    fn drop(&mut self) {
        *self.store.lock_batch_thread() = None;
    }
}

/// redb's settings for a handle of `access`. A read-only handle uses `SingleWriter`: redb's
/// read-only opens take the same shared reader byte in both multi-process modes, so it opens
/// beside a single writer and beside shared writers alike.
///
/// A snapshot handle is redb's exclusive writer of its private in-memory view: every lock redb
/// asks for is granted by [`SnapshotBackend`] without touching the file, and redb never looks
/// for other processes' commits.
fn redb_builder(access: Access) -> redb::Builder {
    let mut builder = redb::Builder::new();
    builder.set_concurrency_mode(match access {
        Access::ReadOnly | Access::Write => ConcurrencyMode::SingleWriter,
        Access::SharedWrite => ConcurrencyMode::MultiWriter,
        Access::Snapshot => ConcurrencyMode::ExclusiveWriter,
    });
    builder.set_cache_size(CACHE_BYTES);
    builder
}

fn map_open_error(path: &Path, error: DatabaseError) -> Error {
    match error {
        DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen {
            path: path.to_path_buf(),
        },
        DatabaseError::RepairAborted => Error::NeedsRepair {
            path: path.to_path_buf(),
        },
        other => Error::db("open", other),
    }
}

fn open_db(path: &Path, physical: &Arc<PhysicalFile>, access: Access) -> Result<Db> {
    let backend = RedbBackend::new(physical.clone());
    Ok(match access {
        Access::Write | Access::SharedWrite => Db::Write(
            redb_builder(access)
                .create_with_backend(backend)
                .map_err(|e| map_open_error(path, e))?,
        ),
        Access::ReadOnly => Db::Read(
            redb_builder(access)
                .open_read_only_with_backend(backend)
                .map_err(|e| map_open_error(path, e))?,
        ),
        Access::Snapshot => Db::Snapshot(open_snapshot_db(path, physical.clone())?.0),
    })
}

/// Opens redb over a [`SnapshotBackend`] of `physical` (opened read-only): redb recovers a
/// store a writer left unclean in memory only. Also returns whether it did.
fn open_snapshot_db(
    path: &Path,
    physical: Arc<PhysicalFile>,
) -> Result<(Database, Arc<AtomicBool>)> {
    let backend = SnapshotBackend::open(physical)?;
    let recovered = Arc::new(AtomicBool::new(false));
    let mut builder = redb_builder(Access::Snapshot);
    let flag = recovered.clone();
    builder.set_repair_callback(move |_| flag.store(true, AtomicOrdering::Relaxed));
    let db = builder
        .create_with_backend(backend)
        .map_err(|e| map_open_error(path, e))?;
    Ok((db, recovered))
}

/// Runs `f`, turning a panic inside it into [`Error::Corrupted`].
///
/// redb trusts the pages it reads: a damaged page (a flipped byte in a length or a type tag)
/// can make it index out of bounds or reach `unreachable!`, which are panics, not undefined
/// behaviour. Reads verify checksums only in `check`, because verifying every page on every
/// read would cost what the catalog costs. So the calls into redb run inside this guard, and
/// such a panic becomes a `Corrupted` error naming the operation; a write that hit one poisons
/// its handle. The process's panic hook still runs (the CLI's hook keeps quiet about panics
/// inside redb that this guard turns into errors).
pub(crate) fn contain_panic<T>(op: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(Error::Corrupted {
                offset: 0,
                reason: format!(
                    "{op}: the catalog is damaged (reading it failed: {message}); \
                     run `runstore check`"
                ),
            })
        }
    }
}

fn open_store(path: &Path, access: Access) -> Result<Store> {
    open_store_access(path, access, |backend| backend)
}

/// Opens the store at `path` for writing (`writable`) or reading, with its file backend
/// wrapped by `wrap` (the fault injector of `crate::fault`).
pub(crate) fn open_store_with(
    path: &Path,
    writable: bool,
    wrap: impl FnOnce(Box<dyn redb::StorageBackend>) -> Box<dyn redb::StorageBackend>,
) -> Result<Store> {
    let access = if writable {
        Access::Write
    } else {
        Access::ReadOnly
    };
    open_store_access(path, access, wrap)
}

/// Opens the store at `path` as `access` asks, with its file backend wrapped by `wrap`
/// (`open_store` passes it through unchanged).
pub(crate) fn open_store_access(
    path: &Path,
    access: Access,
    wrap: impl FnOnce(Box<dyn redb::StorageBackend>) -> Box<dyn redb::StorageBackend>,
) -> Result<Store> {
    let writable = access.writable();
    let file = crate::file::open_store_file(path, writable)?;
    let mapping = Mapping::open_matching(path, &file)?;
    let backend = wrap(crate::file::backend::file_backend(file)?);
    let mut physical = PhysicalFile::open_on(path, backend, writable)?;
    if access == Access::SharedWrite {
        physical = physical.share_writes();
    }
    let physical = Arc::new(physical);
    if physical.superblock().redb_len == 0 {
        return Err(Error::Corrupted {
            offset: 0,
            reason: "the store has no catalog".into(),
        });
    }
    let db = contain_panic("open", || open_db(path, &physical, access))
        .map_err(|error| error.at_path(path))?;
    let store = Store {
        inner: Arc::new(StoreInner {
            path: path.to_path_buf(),
            mapping,
            verified: Mutex::new(HashSet::new()),
            file: physical,
            db,
            shared: access == Access::SharedWrite,
            active_run: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            batch_thread: Mutex::new(None),
        }),
    };
    if writable {
        remove_stale_temp_files(path);
    }
    let version = store.read(catalog::stored_version)?;
    if !(catalog::CATALOG_VERSION_MIN..=catalog::CATALOG_VERSION).contains(&version) {
        return Err(Error::UnsupportedCatalogVersion {
            path: path.to_path_buf(),
            found: version,
            supported: catalog::CATALOG_VERSION,
        });
    }
    if version < catalog::CATALOG_VERSION {
        if !writable {
            return Err(Error::NeedsUpgrade {
                path: path.to_path_buf(),
                found: version,
            });
        }
        // An older layout: upgrade it in one commit (a crash leaves it at the old version,
        // and the next writable open upgrades again).
        store.write("upgrade catalog", |txn| catalog::upgrade(txn).map(|_| ()))?;
    }
    Ok(store)
}

/// Removes temporary files a killed `create`, `vacuum`, `backup` or replacement (the demo) of
/// the file at `path` left beside it (`.<name>.creating-<pid>-<n>`, `.<name>.vacuum-<pid>-<n>`,
/// `.<name>.backup-<pid>-<n>`, `.<name>.replacing-<pid>-<n>`) whose process is gone. Only
/// where `/proc` tells which processes live (Linux); elsewhere they stay, and never block
/// anything (every temporary name is new). Best effort: a file that cannot be removed is left
/// alone, and only regular files are removed.
fn remove_stale_temp_files(path: &Path) {
    let proc_root = Path::new("/proc/self");
    if !proc_root.exists() {
        return;
    }
    let Some(file_name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{file_name}.");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let Some(rest) = TEMP_PURPOSES
            .iter()
            .find_map(|purpose| rest.strip_prefix(purpose)?.strip_prefix('-'))
        else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if is_file
            && pid != std::process::id()
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The purposes of temporary files beside a store (the `<purpose>` of
/// `.<name>.<purpose>-<pid>-<n>`), as [`temp_path`] is called with them.
const TEMP_PURPOSES: [&str; 4] = ["creating", "vacuum", "backup", "replacing"];

/// A new temporary name beside `path`: `.<name>.<purpose>-<pid>-<n>`, `n` random.
fn temp_path(path: &Path, purpose: &str) -> PathBuf {
    debug_assert!(TEMP_PURPOSES.contains(&purpose), "{purpose}");
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".into());
    let unique = names::random_seed() % 1_000_000_000;
    path.with_file_name(format!(
        ".{file_name}.{purpose}-{}-{unique}",
        std::process::id()
    ))
}

/// Creates a store file at a fresh temporary path and returns a writable handle to it.
fn open_temp_store(temp: &Path) -> Result<Store> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(temp)
        .map_err(|source| Error::Io {
            op: "create",
            path: temp.to_path_buf(),
            source,
        })?;
    let physical = Arc::new(PhysicalFile::create(temp, file)?);
    let db = redb_builder(Access::Write)
        .create_with_backend(RedbBackend::new(physical.clone()))
        .map_err(|e| map_open_error(temp, e))?;
    let store = Store {
        inner: Arc::new(StoreInner {
            path: temp.to_path_buf(),
            mapping: Mapping::open(temp)?,
            verified: Mutex::new(HashSet::new()),
            file: physical,
            db: Db::Write(db),
            shared: false,
            active_run: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            batch_thread: Mutex::new(None),
        }),
    };
    store.write("create tables", catalog::initialize)?;
    Ok(store)
}

/// Builds an empty store beside `path` and links it into place; fails with
/// [`Error::AlreadyExists`] if anything is there (also when another process won a race to
/// create it).
fn build_and_link(path: &Path) -> Result<()> {
    if path.exists() {
        return Err(Error::AlreadyExists {
            what: format!("file {}", path.display()),
        });
    }
    let temp = build_empty_store(path)?;
    // A hard link never replaces an existing file, so two racing creators cannot overwrite
    // each other; the loser gets AlreadyExists.
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists {
                what: format!("file {}", path.display()),
            })
        }
        Err(source) => {
            return Err(Error::Io {
                op: "link new store into place",
                path: path.to_path_buf(),
                source,
            })
        }
    }
    sync_parent_dir(path)
}

/// Builds an empty store in a temporary file beside `path`, synced, and returns its path.
fn build_empty_store(path: &Path) -> Result<PathBuf> {
    let temp = temp_path(path, "creating");
    let built = open_temp_store(&temp).and_then(|store| {
        store.file().sync()?;
        Ok(())
    });
    if let Err(error) = built {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    Ok(temp)
}

fn sync_parent_dir(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| Error::Io {
            op: "sync directory",
            path: parent.to_path_buf(),
            source,
        })
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

/// Fails with [`Error::AlreadyExists`] when anything is at `path`, a dangling symbolic link
/// included.
fn refuse_existing(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(Error::AlreadyExists {
            what: format!("file {}", path.display()),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            op: "stat",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The metadata of the file at `path` (following links).
fn file_metadata(path: &Path) -> Result<std::fs::Metadata> {
    std::fs::metadata(path).map_err(|source| Error::Io {
        op: "stat",
        path: path.to_path_buf(),
        source,
    })
}

/// The file a symbolic link at `path` points to (resolved to its final target), so that a
/// rewrite replaces that file and keeps the link; any other path as it is.
fn resolve_link(path: &Path) -> Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|source| Error::Io {
                op: "resolve symbolic link",
                path: path.to_path_buf(),
                source,
            })
        }
        _ => Ok(path.to_path_buf()),
    }
}

/// Whether a file that takes another's place must also take its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OwnerPolicy {
    /// The owner must be kept (the file replaces the store at its path): failing to set it
    /// fails the call.
    Required,
    /// Kept where the caller may give files away (a backup: a copy made by an unprivileged
    /// user belongs to that user, as with `cp -p`).
    IfPermitted,
}

/// Gives the file at `path` (a temporary file this process created) the permission bits of
/// `like` and, when they differ, its owner and group (which needs privilege to give away).
#[cfg(unix)]
fn keep_mode_and_owner(path: &Path, like: &std::fs::Metadata, owner: OwnerPolicy) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let io_err = |op: &'static str| {
        move |source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let file = File::open(path).map_err(io_err("open"))?;
    let current = file.metadata().map_err(io_err("stat"))?;
    if (current.uid(), current.gid()) != (like.uid(), like.gid()) {
        match std::os::unix::fs::fchown(&file, Some(like.uid()), Some(like.gid())) {
            Ok(()) => {}
            Err(_) if owner == OwnerPolicy::IfPermitted => {}
            Err(source) => {
                return Err(Error::Io {
                    op: "give the new file the store's owner",
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
    // After the owner: changing the owner clears set-user-id and set-group-id bits.
    let mode = like.permissions().mode() & 0o7777;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_err("give the new file the store's mode"))?;
    file.sync_all().map_err(io_err("sync"))
}

/// Without Unix modes and owners there is nothing to keep but the read-only flag.
#[cfg(not(unix))]
fn keep_mode_and_owner(path: &Path, like: &std::fs::Metadata, _owner: OwnerPolicy) -> Result<()> {
    std::fs::set_permissions(path, like.permissions()).map_err(|source| Error::Io {
        op: "give the new file the store's permissions",
        path: path.to_path_buf(),
        source,
    })
}

/// Hard-links the finished file `temp` to `dest` and syncs the folder. A link never replaces
/// an existing file: a `dest` that appeared meanwhile is left alone and the call fails with
/// [`Error::AlreadyExists`]. The caller removes `temp`.
fn link_into_place(temp: &Path, dest: &Path, op: &'static str) -> Result<()> {
    std::fs::hard_link(temp, dest).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            Error::AlreadyExists {
                what: format!("file {}", dest.display()),
            }
        } else {
            Error::Io {
                op,
                path: dest.to_path_buf(),
                source,
            }
        }
    })?;
    sync_parent_dir(dest)
}
