//! Everything that touches the bytes of the file: the superblock slots, the extent directory,
//! the redb backend, and the column segment writer and reader.
//!
//! Nothing outside this module reads or writes the file except through redb (which runs on
//! [`RedbBackend`] or, for a reader that must not write, [`SnapshotBackend`]), the column
//! calls of [`PhysicalFile`] and `copy_prefix` (a backup's byte copy of the whole file).
//! Every open of a store's path goes through `open_store_file`, which refuses anything but a
//! regular file before it can block on it.

pub mod backend;
pub(crate) mod holder;
pub mod mmap;
pub(crate) mod segments;
pub mod snapshot;
pub mod superblock;

use std::fs::{File, FileType, OpenOptions};
use std::io;
use std::path::Path;

pub use backend::{PhysicalFile, RedbBackend, SEGMENT_ALIGN};
pub(crate) use segments::Segments;
pub use snapshot::SnapshotBackend;
pub use superblock::{Superblock, FORMAT_VERSION};

use crate::error::{Error, Result};

/// Opens the store file at `path` to read (and to write with `writable`), refusing anything
/// that is not a regular file: a FIFO would block the open (or the first read) forever, and a
/// directory or device is no store. The path is checked before the open (following symlinks),
/// the open itself does not block (`O_NONBLOCK`, which regular files ignore) in case the path
/// was swapped meanwhile, and the file opened is checked again.
pub(crate) fn open_store_file(path: &Path, writable: bool) -> Result<File> {
    let metadata = std::fs::metadata(path).map_err(|source| open_error(path, source))?;
    require_regular(path, metadata.file_type())?;
    let mut options = OpenOptions::new();
    options.read(true).write(writable);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options
        .open(path)
        .map_err(|source| open_error(path, source))?;
    let metadata = file.metadata().map_err(|source| Error::Io {
        op: "stat",
        path: path.to_path_buf(),
        source,
    })?;
    require_regular(path, metadata.file_type())?;
    Ok(file)
}

/// Copies the first `len` bytes of the file at `source` into a new file at `dest` (which must
/// not exist) and syncs it; returns the bytes copied. A `source` shorter than `len` fails:
/// the file shrank while copying. A backup's byte-for-byte copy of a store file, made while
/// its writer holds the write lock.
pub(crate) fn copy_prefix(source: &Path, dest: &Path, len: u64) -> Result<u64> {
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

fn require_regular(path: &Path, file_type: FileType) -> Result<()> {
    if file_type.is_file() {
        return Ok(());
    }
    let kind = file_kind(file_type);
    Err(Error::InvalidInput {
        reason: format!(
            "{} is {kind}, not a store: a store is a regular file",
            path.display()
        ),
    })
}

/// What a file that is not a regular file is, for an error message.
#[cfg(unix)]
fn file_kind(file_type: FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// What a file that is not a regular file is, for an error message.
#[cfg(not(unix))]
fn file_kind(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// The error of a failed open of a store's path: [`Error::NotFound`] when nothing is there.
pub(crate) fn open_error(path: &Path, source: io::Error) -> Error {
    if source.kind() == io::ErrorKind::NotFound {
        Error::not_found(format!("store {}", path.display()))
    } else {
        Error::Io {
            op: "open",
            path: path.to_path_buf(),
            source,
        }
    }
}
