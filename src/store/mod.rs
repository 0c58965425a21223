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

mod maintenance;
mod open;
mod txn;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadOnlyDatabase};

use crate::catalog::records::SegmentRef;
use crate::catalog::{self, CatalogTableStats};
use crate::error::Result;
use crate::file::mmap::Mapping;
use crate::file::{PhysicalFile, Segments, FORMAT_VERSION};

pub use maintenance::VacuumReport;
#[cfg(feature = "fault")]
pub(crate) use open::open_store_with;
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
    /// The committed column segments, mapped and verified on first touch.
    segments: Segments,
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
                segments: Segments::new(Arc::clone(&file), mapping),
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

impl Store {
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
        self.inner
            .segments
            .buffer(segment.offset, segment.len, segment.crc32, what)
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

    /// Storage figures of every catalog table (entries, pages, stored, metadata and
    /// fragmented bytes), in name order: where the catalog's bytes go. It walks every page of
    /// the catalog, so it costs a read of the whole catalog; `runstore info --tables` prints it.
    pub fn catalog_stats(&self) -> Result<Vec<CatalogTableStats>> {
        self.read(catalog::table_stats)
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
}
