//! Stale runs: a run left RUNNING (or COLLECTING, POST_PROCESSING) by a process that died.
//!
//! When a run enters one of those active statuses, the writing process records itself in the
//! `run_writers` table (`catalog::writers`), in the same transaction: its host name, the
//! kernel's boot id, its pid and the pid's start time (clock ticks since boot, from `/proc`). A
//! pid alone is not enough, since pids are reused; pid plus start time plus boot id names one
//! process for the life of the machine. Later, anyone can ask whether that process still lives:
//! on the same host and boot, `/proc/<pid>/stat` must exist with the same start time; a
//! different boot id on the same host means the machine restarted, so the writer is gone. A
//! writer on another host cannot be checked from here, and neither can one recorded where
//! `/proc` is absent: those runs are [`Liveness::Unknown`], never called stale.
//!
//! No heartbeat is written: a crashed writer is detected at once, and a live one costs
//! nothing per output value.

use std::sync::atomic::{AtomicU32, Ordering};

use redb::WriteTransaction;

use crate::catalog::{writers, Reader};
use crate::error::Result;
use crate::status::RunStatus;

pub use crate::catalog::writers::WriterRecord;

/// Whether a run's writer is still there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// The run is not in an active status (RUNNING, COLLECTING, POST_PROCESSING).
    Inactive,
    /// Active, and the process that made it so is alive.
    Alive(WriterRecord),
    /// Active, but the process that made it so is gone: the run is stale. Close it with
    /// `set_status` (e.g. CANCELLED).
    Stale(WriterRecord),
    /// Active, and whether its writer lives cannot be told from here (another host, no
    /// `/proc`, or no writer recorded, as for runs written before this was kept).
    Unknown,
}

impl Liveness {
    /// Whether the run is stale.
    pub fn is_stale(&self) -> bool {
        matches!(self, Liveness::Stale(_))
    }
}

/// Statuses that mean "a process is working on this run".
pub fn is_active(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Running | RunStatus::Collecting | RunStatus::PostProcessing
    )
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
}

fn host_name() -> String {
    read_trimmed("/proc/sys/kernel/hostname")
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat` (start time), parsed after the command name, which may
/// itself hold spaces and parentheses.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards; start time is field 22.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// The pid recorded as writer instead of this process's own; 0 for none.
static ACTING_FOR: AtomicU32 = AtomicU32::new(0);

/// From now on, runs this process moves into an active status are recorded as written by
/// process `pid` instead. The `runstore` command line names its parent (the shell script that
/// runs `runstore set-status ... running` and goes on training), since the command itself
/// exits at once.
pub fn act_for_process(pid: u32) {
    ACTING_FOR.store(pid, Ordering::Relaxed);
}

/// The process recorded as a run's writer: this one, or the one named with
/// [`act_for_process`].
pub fn this_process() -> WriterRecord {
    let pid = match ACTING_FOR.load(Ordering::Relaxed) {
        0 => std::process::id(),
        pid => pid,
    };
    WriterRecord {
        host: host_name(),
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
        pid,
        start_ticks: start_ticks(pid).unwrap_or(0),
    }
}

/// Whether the process `writer` names is alive, as far as this machine can tell.
pub fn writer_liveness(writer: &WriterRecord) -> Liveness {
    let here = this_process();
    if writer.host != here.host || writer.boot_id.is_empty() || writer.start_ticks == 0 {
        return Liveness::Unknown;
    }
    if writer.boot_id != here.boot_id {
        // Same host, another boot: every process of that boot is gone.
        return Liveness::Stale(writer.clone());
    }
    match start_ticks(writer.pid) {
        Some(ticks) if ticks == writer.start_ticks => Liveness::Alive(writer.clone()),
        _ => Liveness::Stale(writer.clone()),
    }
}

/// Records this process as the writer of run `id` (called when the run enters an active
/// status, inside that write transaction).
pub(crate) fn record_writer(txn: &WriteTransaction, id: u64) -> Result<()> {
    writers::put(txn, id, &this_process())
}

/// The recorded writer of run `id`, if any (none in stores written before writers were
/// recorded).
pub(crate) fn writer_of(txn: &impl Reader, id: u64) -> Result<Option<WriterRecord>> {
    writers::get(txn, id)
}

/// The liveness of a run with `status` whose writer record is `writer`.
pub(crate) fn liveness(status: RunStatus, writer: Option<&WriterRecord>) -> Liveness {
    if !is_active(status) {
        return Liveness::Inactive;
    }
    writer.map_or(Liveness::Unknown, writer_liveness)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_pid_or_another_boot_is_stale() {
        let me = this_process();
        if me.start_ticks == 0 || me.boot_id.is_empty() {
            // No /proc here: nothing can be told, and nothing is called stale.
            assert_eq!(writer_liveness(&me), Liveness::Unknown);
            return;
        }
        assert_eq!(writer_liveness(&me), Liveness::Alive(me.clone()));
        let reused_pid = WriterRecord {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert!(writer_liveness(&reused_pid).is_stale());
        let rebooted = WriterRecord {
            boot_id: "another-boot".into(),
            ..me.clone()
        };
        assert!(writer_liveness(&rebooted).is_stale());
        let elsewhere = WriterRecord {
            host: format!("{}-elsewhere", me.host),
            ..me.clone()
        };
        assert_eq!(writer_liveness(&elsewhere), Liveness::Unknown);
    }

    #[test]
    fn start_ticks_parses_a_command_name_with_spaces_and_parentheses() {
        // The real parser on this process; the name part is skipped by the last ')'.
        if let Some(ticks) = start_ticks(std::process::id()) {
            assert!(ticks > 0);
        }
        assert_eq!(start_ticks(u32::MAX), None);
    }

    #[test]
    fn inactive_statuses_are_never_stale() {
        let dead = WriterRecord {
            host: this_process().host,
            boot_id: "gone".into(),
            pid: 1,
            start_ticks: 1,
        };
        for status in [
            RunStatus::Completed,
            RunStatus::Empty,
            RunStatus::Paused,
            RunStatus::Cancelled,
        ] {
            assert_eq!(liveness(status, Some(&dead)), Liveness::Inactive);
        }
        assert_eq!(liveness(RunStatus::Running, None), Liveness::Unknown);
    }
}
