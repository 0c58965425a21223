//! The transaction core: every change to a store is one redb write transaction
//! (`Store::write`) and every read one read transaction over one commit (`Store::read`); a
//! panic inside redb (a damaged page) becomes an error (`contain_panic`), and a write that hit
//! one poisons its handle. `BatchGuard` marks the thread inside `Store::batch`, whose own
//! writes are refused.

use std::sync::atomic::Ordering as AtomicOrdering;

use redb::{ReadTransaction, WriteTransaction};

use super::{Db, Store};
use crate::catalog;
use crate::error::{DbResultExt, Error, Location, Result};

impl Store {
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
                at: Location::Catalog,
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
            let txn = db.begin_write().db(op)?;
            match f(&txn) {
                Ok(value) => {
                    txn.commit().db(op)?;
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
                at: Location::Catalog,
                reason: format!(
                    "{op}: the catalog is damaged (reading it failed: {message}); \
                     run `runstore check`"
                ),
            })
        }
    }
}
