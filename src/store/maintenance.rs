//! Keeping a store file healthy and safe: `Store::repair` (a clean close after a writer that
//! stopped without one), `Store::backup_to` (a consistent copy, byte for byte or logical),
//! `Store::vacuum` (rewriting the live contents into a compact file) and
//! `Store::check_database` (redb's integrity check, in memory). The catalog's own checks are
//! `check.rs`'s.

use std::io;
use std::path::Path;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;

use super::open::{
    file_metadata, keep_mode_and_owner, link_into_place, map_open_error, open_snapshot_db,
    open_store, open_temp_store, refuse_existing, remove_stale_temp_files, resolve_link, temp_path,
    OwnerPolicy,
};
use super::{contain_panic, Access, Db, Store};
use crate::error::{DbResultExt, Error, Result};
use crate::file::PhysicalFile;

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
            let txn = db.begin_write().db_at("backup", self.path())?;
            let result = crate::file::copy_prefix(self.path(), &temp, self.file().physical_len()?);
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

    /// Copies everything live into the empty store `target` in one commit (`vacuum`);
    /// returns the number of runs copied.
    fn copy_all_to(&self, target: &Store) -> Result<u64> {
        self.read(|from| {
            target.write("vacuum", |to| {
                crate::vacuum::copy_all(from, to, self.file(), target.file())
            })
        })
    }

    /// The logical backup of [`Store::backup_to`] from one read snapshot; `like` is the
    /// store file's metadata (mode and owner to keep).
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
