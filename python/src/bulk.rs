//! Blobs from Python sources: a binary file object read chunk by chunk as a `std::io::Read`
//! for `Run::put_bulk_from`, so a checkpoint streams into the store without being held in
//! memory whole, and a path opened here, read without the GIL at all.
//!
//! The GIL is taken for one `read` call at a time and released between chunks (the caller
//! runs `put_bulk_from` inside `Python::detach`). An exception `read` raises is kept and
//! raised again, unchanged, once the store has dropped the write: the blob is then not
//! stored, as for any failed commit.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};
use runstore::Error;

use crate::convert::py_err;

/// A Python binary file object (anything whose `read(n)` returns at most `n` bytes, and
/// `b""` at the end) as a `Read`, asking at most `chunk_bytes` per call.
pub(crate) struct PyReader {
    file: Py<PyAny>,
    chunk_bytes: usize,
    /// The exception `read` raised (or the error a bad return value makes), to raise again.
    pub(crate) error: Option<PyErr>,
}

impl PyReader {
    pub(crate) fn new(file: Py<PyAny>, chunk_bytes: usize) -> PyReader {
        PyReader {
            file,
            chunk_bytes: chunk_bytes.max(1),
            error: None,
        }
    }

    /// One `read` call into `buf` (at most `buf.len()` bytes asked), with the GIL.
    fn read_once(&self, py: Python<'_>, buf: &mut [u8]) -> PyResult<usize> {
        let chunk = self.file.bind(py).call_method1("read", (buf.len(),))?;
        let invalid = |reason: String| py_err(py, Error::InvalidInput { reason });
        let copy = |data: &[u8], buf: &mut [u8]| {
            if data.len() > buf.len() {
                return Err(invalid(format!(
                    "the file object's read({}) returned {} bytes",
                    buf.len(),
                    data.len()
                )));
            }
            buf[..data.len()].copy_from_slice(data);
            Ok(data.len())
        };
        if let Ok(bytes) = chunk.cast::<PyBytes>() {
            copy(bytes.as_bytes(), buf)
        } else if let Ok(array) = chunk.cast::<PyByteArray>() {
            copy(&array.to_vec(), buf)
        } else if chunk.is_none() {
            Err(invalid(
                "the file object's read() returned None (a non-blocking file with no data \
                 ready); give a blocking binary file"
                    .to_string(),
            ))
        } else {
            Err(invalid(format!(
                "the file object's read() returned {}, not bytes: open the file in binary \
                 mode ('rb')",
                chunk.get_type().name()?
            )))
        }
    }
}

impl Read for PyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Err(io::Error::other("the file object failed before"));
        }
        let want = buf.len().min(self.chunk_bytes);
        match Python::attach(|py| self.read_once(py, &mut buf[..want])) {
            Ok(read) => Ok(read),
            Err(error) => {
                let message = error.to_string();
                self.error = Some(error);
                Err(io::Error::other(message))
            }
        }
    }
}

/// The file at `path`, opened for `put_bulk`: a missing file is `NotFound` naming it, a
/// folder is refused (each of its files is a blob of its own).
pub(crate) fn open_source(path: &Path) -> runstore::Result<File> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => Error::NotFound {
            what: format!("file {}", path.display()),
        },
        _ => Error::Io {
            op: "open bulk data source",
            path: path.to_path_buf(),
            source,
        },
    })?;
    let metadata = file.metadata().map_err(|source| Error::Io {
        op: "open bulk data source",
        path: path.to_path_buf(),
        source,
    })?;
    if metadata.is_dir() {
        return Err(Error::InvalidInput {
            reason: format!(
                "{} is a folder; store each of its files as a blob (`ckpt/epoch-3/model.pt`)",
                path.display()
            ),
        });
    }
    Ok(file)
}
