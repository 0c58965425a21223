//! Who holds a store open for writing, as far as the operating system tells: the answer
//! [`Error::AlreadyOpen`](crate::Error::AlreadyOpen) gives, so its message can say "this
//! process" or "process 4242" instead of leaving the user to guess.
//!
//! The store's locks are OFD byte-range locks (see `backend`), which `/proc/locks` lists with
//! pid -1; but Linux lists each lock again under the descriptor holding it, in
//! `/proc/<pid>/fdinfo/<fd>` (`lock: 1: OFDLCK ADVISORY WRITE -1 fe:00:1234 START END`). So the
//! holder is the process with a descriptor of the store file (same device and inode) that
//! holds redb's writer byte or shared-writer byte (shifted by `LOCK_SHIFT`). Only processes
//! whose `/proc` entries this one may read are seen (the same user's, or all for root); where
//! there is no `/proc` the holder is [`Holder::Unknown`]. Best effort, on the error path only:
//! nothing here ever fails an open.

use std::path::Path;

use super::backend::REDB_WRITER_BYTE;
use super::superblock::LOCK_SHIFT;
use crate::error::Holder;

/// Processes looked at before the scan gives up (a busy machine: the answer is a courtesy,
/// not worth seconds of an error path that `open_waiting` may take every 200 ms).
const PROCESSES_SCANNED_MAX: usize = 100_000;

/// The process holding the store at `path` open for writing (a single writer, or one of a
/// cohort of shared writers: this process if it is one of them), or [`Holder::Unknown`].
pub(crate) fn writer_holder(path: &Path) -> Holder {
    #[cfg(target_os = "linux")]
    {
        linux::writer_holder(path).unwrap_or(Holder::Unknown)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Holder::Unknown
    }
}

/// The first byte of the writer bytes as they appear in `/proc`: redb's writer byte and, one
/// above it, its shared-writer byte, both shifted above the superblock.
const WRITER_LOCK_START: u64 = REDB_WRITER_BYTE + LOCK_SHIFT;
const _: () = assert!(WRITER_LOCK_START.checked_add(1).is_some());

/// Whether a `lock:` line of an fdinfo file (`lock:\t1: OFDLCK ADVISORY  WRITE -1
/// fe:00:1234 START END`) holds a writer byte of the file named `key` (`major:minor:inode`,
/// as the kernel prints it).
fn holds_writer_byte(line: &str, key: &str) -> bool {
    let mut fields = line.split_whitespace().skip_while(|field| *field != key);
    if fields.next().is_none() {
        return false;
    }
    let Some(start) = fields.next().and_then(|field| field.parse::<u64>().ok()) else {
        return false;
    };
    start == WRITER_LOCK_START || start == WRITER_LOCK_START + 1
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    use super::{holds_writer_byte, PROCESSES_SCANNED_MAX};
    use crate::error::Holder;

    pub(super) fn writer_holder(path: &Path) -> Option<Holder> {
        let target = std::fs::metadata(path).ok()?;
        let (dev, ino) = (target.dev(), target.ino());
        let key = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
        let own = std::process::id();
        if holds(own, dev, ino, &key) {
            return Some(Holder::ThisProcess);
        }
        let mut found = None;
        for entry in std::fs::read_dir("/proc").ok()?.take(PROCESSES_SCANNED_MAX) {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != own && holds(pid, dev, ino, &key) {
                // Of a cohort of shared writers, name the lowest pid (the answer is stable).
                found = Some(found.map_or(pid, |other: u32| other.min(pid)));
            }
        }
        found.map(|pid| Holder::Process { pid })
    }

    /// Whether process `pid` has a descriptor of the file `dev`/`ino` holding a writer byte.
    fn holds(pid: u32, dev: u64, ino: u64, key: &str) -> bool {
        let fds = Path::new("/proc").join(pid.to_string()).join("fd");
        let Ok(entries) = std::fs::read_dir(&fds) else {
            return false;
        };
        entries.flatten().any(|entry| {
            // `metadata` follows the fd's link to the open file itself.
            let same_file = std::fs::metadata(entry.path())
                .is_ok_and(|meta| meta.dev() == dev && meta.ino() == ino);
            if !same_file {
                return false;
            }
            let info = Path::new("/proc")
                .join(pid.to_string())
                .join("fdinfo")
                .join(entry.file_name());
            std::fs::read_to_string(info).is_ok_and(|text| {
                text.lines()
                    .filter(|line| line.starts_with("lock:"))
                    .any(|line| holds_writer_byte(line, key))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, key: &str, expected: bool) {
        assert_eq!(holds_writer_byte(line, key), expected, "{line}");
    }

    #[test]
    fn holder_reads_lock_lines_of_fdinfo() {
        let writer = WRITER_LOCK_START;
        check(
            &format!("lock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:77 {writer} {writer}"),
            "fe:00:77",
            true,
        );
        let shared = writer + 1;
        check(
            &format!("lock:\t2: OFDLCK ADVISORY  READ -1 fe:00:77 {shared} {shared}"),
            "fe:00:77",
            true,
        );
        let reader = writer + 2;
        check(
            &format!("lock:\t2: OFDLCK ADVISORY  READ -1 fe:00:77 {reader} {reader}"),
            "fe:00:77",
            false,
        );
        check(
            &format!("lock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:78 {writer} {writer}"),
            "fe:00:77",
            false,
        );
        check(
            "lock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:77",
            "fe:00:77",
            false,
        );
    }
}
