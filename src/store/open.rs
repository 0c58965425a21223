//! Opening and closing a store file: `Store::create`/`open`/`open_shared`/`open_read_only`,
//! `probe`, `close` and `replace_with`, redb's settings for each kind of handle, the temporary
//! files a new store is built in (and the stale ones a killed process left), and linking or
//! renaming a finished file into place with the old file's mode and owner.
//!
//! Invariant: a new store appears at its path only complete (built in a temporary file in the
//! same directory, synced, then linked or renamed into place), so a crash during creation
//! never leaves an unopenable file at the path.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

use redb::{ConcurrencyMode, Database, DatabaseError};

use super::{contain_panic, Access, Db, Store, CACHE_BYTES};
use crate::catalog;
use crate::error::{DbResultExt, Error, Location, Result};
use crate::file::mmap::Mapping;
use crate::file::{PhysicalFile, RedbBackend, SnapshotBackend};
use crate::names;

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
        result.db_at("close", &path)
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
    pub(super) fn rename_over(&self, temp: &Path, path: &Path, op: &'static str) -> Result<()> {
        let renamed = (|| {
            let like = file_metadata(path)?;
            keep_mode_and_owner(temp, &like, OwnerPolicy::Required)?;
            let db = match &self.inner.db {
                Db::Write(db) => db,
                Db::Read(_) | Db::Snapshot(_) => return Err(Error::ReadOnly),
            };
            let guard = db.begin_write().db_at("replace store", &self.inner.path)?;
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

pub(super) fn map_open_error(path: &Path, error: DatabaseError) -> Error {
    match error {
        DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen {
            path: path.to_path_buf(),
            holder: crate::file::holder::writer_holder(path),
        },
        DatabaseError::RepairAborted => Error::NeedsRepair {
            path: path.to_path_buf(),
        },
        other => Error::db_at("open", path, other),
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
pub(super) fn open_snapshot_db(
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

pub(super) fn open_store(path: &Path, access: Access) -> Result<Store> {
    open_store_access(path, access, |backend| backend)
}

/// Opens the store at `path` for writing (`writable`) or reading, with its file backend
/// wrapped by `wrap` (the fault injector of `crate::fault`).
#[cfg(feature = "fault")]
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
            at: Location::Catalog,
            reason: "the store has no catalog".into(),
        });
    }
    let db = contain_panic("open", || open_db(path, &physical, access))
        .map_err(|error| error.at_path(path))?;
    let store = Store::from_parts(path, physical, mapping, db, access == Access::SharedWrite);
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
pub(super) fn remove_stale_temp_files(path: &Path) {
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
pub(super) fn temp_path(path: &Path, purpose: &str) -> PathBuf {
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
pub(super) fn open_temp_store(temp: &Path) -> Result<Store> {
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
    let mapping = Mapping::open(temp)?;
    let store = Store::from_parts(temp, physical, mapping, Db::Write(db), false);
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

/// Fails with [`Error::AlreadyExists`] when anything is at `path`, a dangling symbolic link
/// included.
pub(super) fn refuse_existing(path: &Path) -> Result<()> {
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
pub(super) fn file_metadata(path: &Path) -> Result<std::fs::Metadata> {
    std::fs::metadata(path).map_err(|source| Error::Io {
        op: "stat",
        path: path.to_path_buf(),
        source,
    })
}

/// The file a symbolic link at `path` points to (resolved to its final target), so that a
/// rewrite replaces that file and keeps the link; any other path as it is.
pub(super) fn resolve_link(path: &Path) -> Result<PathBuf> {
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
pub(super) enum OwnerPolicy {
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
pub(super) fn keep_mode_and_owner(
    path: &Path,
    like: &std::fs::Metadata,
    owner: OwnerPolicy,
) -> Result<()> {
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
pub(super) fn keep_mode_and_owner(
    path: &Path,
    like: &std::fs::Metadata,
    _owner: OwnerPolicy,
) -> Result<()> {
    std::fs::set_permissions(path, like.permissions()).map_err(|source| Error::Io {
        op: "give the new file the store's permissions",
        path: path.to_path_buf(),
        source,
    })
}

/// Hard-links the finished file `temp` to `dest` and syncs the folder. A link never replaces
/// an existing file: a `dest` that appeared meanwhile is left alone and the call fails with
/// [`Error::AlreadyExists`]. The caller removes `temp`.
pub(super) fn link_into_place(temp: &Path, dest: &Path, op: &'static str) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An I/O error redb meets while opening or checking a store (`check` runs redb's
    /// integrity check through this mapping) names the store file.
    #[test]
    fn open_io_errors_name_the_file() {
        let path = Path::new("/stores/exp.runs");
        let failed = redb::StorageError::Io(io::Error::other("disk gone"));
        match map_open_error(path, DatabaseError::Storage(failed)) {
            Error::Io {
                op, path: named, ..
            } => {
                assert_eq!(op, "open");
                assert_eq!(named, path);
            }
            other => panic!("expected Io, got {other:?}"),
        }
    }
}
