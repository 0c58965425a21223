//! Opening a store for a command: read-only opens, which never wait, and opens for writing,
//! which wait up to `--wait` for another process's writer to close.
//!
//! `--wait` is a value handed to each command that writes (zero without the flag: fail at
//! once with `Error::AlreadyOpen`); a plain writing open is `Store::open_waiting`, the other
//! opens and whole-file operations retry the same way through [`retry_while_open`].

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use runstore::Store;

/// Longest `--wait`, in seconds: a day. A longer wait is a mistake, not a plan.
const WAIT_SECONDS_MAX: f64 = 86_400.0;

/// The wait `--wait SECONDS` asks for; zero without it.
///
/// # Errors
///
/// SECONDS outside 0 to a day (or NaN).
pub(super) fn wait_from_arg(seconds: Option<f64>) -> Result<Duration> {
    let Some(seconds) = seconds else {
        return Ok(Duration::ZERO);
    };
    if !(0.0..=WAIT_SECONDS_MAX).contains(&seconds) {
        anyhow::bail!("--wait {seconds}: give a number of seconds from 0 to 86400");
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Opens a store for reading. A file a crashed writer left is read as its last durable commit,
/// recovered in memory (`Store::open_read_only`); nothing is written to it.
pub(super) fn open_read(path: &std::path::Path) -> Result<Store> {
    Store::open_read_only(path).with_context(|| format!("opening {}", path.display()))
}

/// Opens the store at `path` to write: as its one writer, or with `shared` beside other
/// processes that opened it shared; waits up to `wait` while another process holds it.
pub(super) fn open_for_writing(path: &Path, shared: bool, wait: Duration) -> Result<Store> {
    if shared {
        retry_while_open(wait, || Store::open_shared(path))
    } else {
        Store::open_waiting(path, wait)
    }
    .with_context(|| format!("opening {}", path.display()))
}

/// Calls `open` (which opens a store for writing first, and fails with
/// [`runstore::Error::AlreadyOpen`] before changing anything while another process has it
/// open), retrying for up to `wait` while it fails so (once when `wait` is zero), with the
/// backoff of `Store::open_waiting` (5 ms doubling to 200 ms).
pub(super) fn retry_while_open<T>(
    wait: Duration,
    open: impl Fn() -> runstore::Result<T>,
) -> runstore::Result<T> {
    let deadline = std::time::Instant::now() + wait;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match open() {
            Err(runstore::Error::AlreadyOpen { .. }) if std::time::Instant::now() < deadline => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            other => return other,
        }
    }
}
