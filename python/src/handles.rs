//! What makes `close()` close the file while Python still holds objects of it.
//!
//! A runstore `Store`, `Run` or `Table` keeps the open file alive as long as any clone of it
//! lives, and Python objects live as long as anything refers to them (a notebook's variables,
//! a traceback). So the Python objects never own their runstore handle outright: each keeps it
//! in a [`Slot`] registered with its store handle's [`Registry`], and closing the store empties
//! every slot. With the last clone gone the file's locks are released and its descriptor is
//! closed, so another process, the CLI or a re-run notebook cell can open it at once; a stale
//! object then raises `runstore.StoreClosed` naming the file.
//!
//! Invariant: a runstore handle of this store is held only in a slot of its registry, in a
//! logger the store's `close()` closes, or on the stack of a call in progress (which clones it
//! out of its slot); so after `close()` only calls still in progress on other threads keep the
//! file open, until they return.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use pyo3::prelude::*;
use pyo3::sync::MutexExt;

/// A runstore handle a Python object holds until its store is closed.
pub(crate) struct Slot<T> {
    handle: Mutex<Option<T>>,
}

/// Something a [`Registry`] can empty.
trait Release: Send + Sync {
    /// Drops the handle held.
    fn release(&self);
}

impl<T: Send> Release for Slot<T> {
    fn release(&self) {
        let taken = self
            .handle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        drop(taken);
    }
}

impl<T: Clone> Slot<T> {
    /// A clone of the handle, or `None` once the store is closed.
    pub(crate) fn get(&self, py: Python<'_>) -> Option<T> {
        self.handle
            .lock_py_attached(py)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The slots of one store handle, and whether it was closed.
pub(crate) struct Registry {
    path: PathBuf,
    closed: AtomicBool,
    slots: Mutex<Vec<Weak<dyn Release>>>,
}

/// Slots registered before the registry drops the entries of objects Python has freed: it
/// then prunes, and doubles the bound, so registering stays amortised constant time.
const SLOTS_PRUNE_AT_MIN: usize = 64;

impl Registry {
    /// A registry for the store at `path`.
    pub(crate) fn new(path: &Path) -> Registry {
        Registry {
            path: path.to_path_buf(),
            closed: AtomicBool::new(false),
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The store file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether [`Registry::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// `runstore.StoreClosed` naming the file, if the store was closed.
    pub(crate) fn check_open(&self, py: Python<'_>) -> PyResult<()> {
        if self.is_closed() {
            return Err(self.closed_error(py));
        }
        Ok(())
    }

    /// `runstore.StoreClosed`: "store PATH is closed".
    pub(crate) fn closed_error(&self, py: Python<'_>) -> PyErr {
        crate::convert::py_error_of_class(
            py,
            "StoreClosed",
            format!(
                "store {} is closed: open it again with runstore.open()",
                self.path.display()
            ),
        )
    }

    /// Puts `handle` in a new slot of this registry; if the store is already closed the
    /// slot starts empty.
    pub(crate) fn hold<T: Clone + Send + 'static>(
        &self,
        py: Python<'_>,
        handle: T,
    ) -> Arc<Slot<T>> {
        let slot = Arc::new(Slot {
            handle: Mutex::new(Some(handle)),
        });
        let mut slots = self
            .slots
            .lock_py_attached(py)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.is_closed() {
            slot.release();
            return slot;
        }
        if slots.len() >= SLOTS_PRUNE_AT_MIN && slots.len().is_power_of_two() {
            slots.retain(|weak| weak.strong_count() > 0);
        }
        let weak: Weak<dyn Release> = Arc::downgrade(&(slot.clone() as Arc<dyn Release>));
        slots.push(weak);
        slot
    }

    /// Marks the store closed and empties every slot; returns false if it was closed
    /// already.
    pub(crate) fn close(&self, py: Python<'_>) -> bool {
        let mut slots = self
            .slots
            .lock_py_attached(py)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        for weak in slots.drain(..) {
            if let Some(slot) = weak.upgrade() {
                slot.release();
            }
        }
        true
    }
}
