//! Fault injection for crash tests: a storage backend that fails a chosen operation, and the
//! file a power cut would leave behind.
//!
//! [`open_with_faults`] opens a store whose every write, length change and sync goes through
//! a [`FaultPlan`]: the `n`-th of those operations fails with `EIO` or `ENOSPC`, and (for a
//! dead disk) so does every later one. The backend also remembers what the disk has made
//! durable: the file as it stood at the last successful sync, plus every write since. A
//! [`FaultHandle`] turns that into the bytes a power cut at this moment could leave
//! ([`FaultHandle::power_loss_image`]): the durable file with a random subset of the 512-byte
//! sectors written since the last sync, which is what a disk with a volatile write cache may
//! persist. Tests write that image back, reopen the store and compare it with what was
//! acknowledged (`tests/it/power_loss.rs`).
//!
//! Reads never fail and see every write, as the page cache does until the power goes.
//! Nothing here is used by a store opened the ordinary way.

use std::fmt;
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::StorageBackend;

use crate::error::Result;
use crate::store::Store;

/// Sector size a disk writes atomically; a power cut keeps or loses whole sectors.
pub const SECTOR_BYTES: u64 = 512;

/// The error an injected fault returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// An I/O error (`EIO`): the disk failed.
    Io,
    /// No space left on the device (`ENOSPC`).
    NoSpace,
}

impl FaultKind {
    fn error(self) -> io::Error {
        match self {
            FaultKind::Io => io::Error::from_raw_os_error(libc_eio()),
            FaultKind::NoSpace => io::Error::from_raw_os_error(libc_enospc()),
        }
    }
}

// The two errno values, spelled out so the library needs no libc dependency (Linux numbering,
// which every platform runstore targets shares for these two).
const fn libc_eio() -> i32 {
    5
}

const fn libc_enospc() -> i32 {
    28
}

/// When and how the backend fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultPlan {
    /// The mutating operation (write, length change or sync, counted from 0 across the
    /// handle's life) that fails; `None` never fails, which counts operations for a dry run.
    pub fail_at: Option<u64>,
    /// The error it fails with.
    pub kind: FaultKind,
    /// Whether every later mutating operation fails too (a dead disk) or only that one (space
    /// came back).
    pub sticky: bool,
}

impl FaultPlan {
    /// A plan that never fails.
    pub fn never() -> FaultPlan {
        FaultPlan {
            fail_at: None,
            kind: FaultKind::Io,
            sticky: true,
        }
    }
}

enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

struct State {
    plan: FaultPlan,
    /// Faults are injected only once the store is open (opening writes too).
    armed: bool,
    operations: u64,
    failures: u64,
    /// The file's bytes as of the last successful sync.
    durable: Vec<u8>,
    /// Mutations since then, in order.
    pending: Vec<Pending>,
}

/// What a test holds to steer and inspect a fault-injecting store.
#[derive(Clone)]
pub struct FaultHandle {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("FaultHandle")
            .field("plan", &state.plan)
            .field("operations", &state.operations)
            .field("failures", &state.failures)
            .field("pending", &state.pending.len())
            .finish()
    }
}

impl FaultHandle {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a test's own assertion; the state
        // is plain data and stays usable.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Mutating operations seen so far (failed ones included).
    pub fn operations(&self) -> u64 {
        self.lock().operations
    }

    /// How many operations have failed.
    pub fn failures(&self) -> u64 {
        self.lock().failures
    }

    /// Stops injecting faults (space came back, the disk was replaced).
    pub fn heal(&self) {
        let mut state = self.lock();
        state.plan.fail_at = None;
        state.plan.sticky = false;
    }

    /// Mutations since the last successful sync.
    pub fn pending_writes(&self) -> usize {
        self.lock().pending.len()
    }

    /// The bytes a power cut now could leave: the durable file, then each 512-byte sector of
    /// each write since the last sync kept or lost by a coin flip seeded with `seed`
    /// (reproducible), and each length change kept or lost likewise.
    pub fn power_loss_image(&self, seed: u64) -> Vec<u8> {
        let state = self.lock();
        let mut rng = SplitMix(seed);
        let mut image = state.durable.clone();
        for pending in &state.pending {
            match pending {
                Pending::SetLen(len) => {
                    if rng.coin() {
                        image.resize(usize::try_from(*len).unwrap_or(usize::MAX), 0);
                    }
                }
                Pending::Write { offset, data } => {
                    let mut at = *offset;
                    let end = offset + data.len() as u64;
                    while at < end {
                        let sector_end = ((at / SECTOR_BYTES) + 1) * SECTOR_BYTES;
                        let piece_end = sector_end.min(end);
                        if rng.coin() {
                            let from = (at - offset) as usize;
                            let to = (piece_end - offset) as usize;
                            if image.len() < piece_end as usize {
                                image.resize(piece_end as usize, 0);
                            }
                            image[at as usize..piece_end as usize].copy_from_slice(&data[from..to]);
                        }
                        at = piece_end;
                    }
                }
            }
        }
        image
    }

    /// Writes [`FaultHandle::power_loss_image`] over the file at `path` (which no handle may
    /// have open), as if the machine had lost power and rebooted.
    pub fn apply_power_loss(&self, path: &Path, seed: u64) -> io::Result<()> {
        std::fs::write(path, self.power_loss_image(seed))
    }
}

/// splitmix64: small, seeded, good enough for coin flips.
struct SplitMix(u64);

impl SplitMix {
    fn coin(&mut self) -> bool {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) & 1 == 1
    }
}

/// The fault-injecting backend around the real one.
struct FaultyStorage {
    inner: Box<dyn StorageBackend>,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultyStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStorage").finish_non_exhaustive()
    }
}

impl FaultyStorage {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Counts one mutating operation and fails it if the plan says so.
    fn tick(&self) -> io::Result<()> {
        let mut state = self.lock();
        if !state.armed {
            return Ok(());
        }
        let index = state.operations;
        state.operations += 1;
        let fail = match state.plan.fail_at {
            Some(at) => index == at || (state.plan.sticky && index > at),
            None => false,
        };
        if fail {
            state.failures += 1;
            return Err(state.plan.kind.error());
        }
        Ok(())
    }
}

impl StorageBackend for FaultyStorage {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.tick()?;
        self.inner.set_len(len)?;
        self.lock().pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.tick()?;
        self.inner.sync_data()?;
        let mut state = self.lock();
        let pending = std::mem::take(&mut state.pending);
        for mutation in pending {
            match mutation {
                Pending::SetLen(len) => state
                    .durable
                    .resize(usize::try_from(len).unwrap_or(usize::MAX), 0),
                Pending::Write { offset, data } => {
                    let end = offset as usize + data.len();
                    if state.durable.len() < end {
                        state.durable.resize(end, 0);
                    }
                    state.durable[offset as usize..end].copy_from_slice(&data);
                }
            }
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.tick()?;
        self.inner.write(offset, data)?;
        self.lock().pending.push(Pending::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, redb::BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, redb::BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), redb::BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), redb::BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), redb::BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, redb::BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

/// Opens the existing store at `path` for writing through a backend that follows `plan`,
/// counting operations from the end of the open (which writes too, and never fails here).
/// The file's current bytes count as durable.
pub fn open_with_faults(path: impl AsRef<Path>, plan: FaultPlan) -> Result<(Store, FaultHandle)> {
    let path = path.as_ref();
    let durable = std::fs::read(path).map_err(|source| crate::Error::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let state = Arc::new(Mutex::new(State {
        plan,
        armed: false,
        operations: 0,
        failures: 0,
        durable,
        pending: Vec::new(),
    }));
    let handle = FaultHandle {
        state: state.clone(),
    };
    let store = crate::store::open_store_with(path, true, move |inner| {
        Box::new(FaultyStorage { inner, state })
    })?;
    handle.lock().armed = true;
    Ok((store, handle))
}
