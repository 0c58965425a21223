//! Arrow data across the Python boundary through the Arrow C data interface (the PyCapsule
//! protocol: `__arrow_c_stream__`), without copying buffers in either direction.
//!
//! Import takes the capsule a producer (pyarrow) hands out, moves its `ArrowArrayStream` out
//! and reads record batches whose buffers stay owned by the producer (released through the
//! stream's callbacks when the last Rust reference goes). Export wraps record batches (whose
//! buffers point into the store's memory map) in a stream capsule: the consumer's arrays hold
//! `Arc`s to the Rust buffers, so the mapping lives as long as Python holds any of them.

use std::ffi::CStr;
use std::sync::Mutex;

use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{RecordBatch, RecordBatchIterator};
use arrow_schema::{ArrowError, SchemaRef};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods};

/// The capsule name the Arrow PyCapsule protocol gives a stream.
const STREAM_CAPSULE: &CStr = c"arrow_array_stream";

/// Reads every record batch of `object`, any Python object implementing
/// `__arrow_c_stream__` (a `pyarrow.Table`, `RecordBatchReader`, ...). Returns the schema and
/// the batches; their buffers are the producer's, not copies.
pub(crate) fn import_stream(object: &Bound<'_, PyAny>) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    if !object.hasattr("__arrow_c_stream__")? {
        return Err(PyTypeError::new_err(format!(
            "expected an Arrow stream (an object with __arrow_c_stream__), got {}",
            object.get_type().name()?
        )));
    }
    let capsule = object.call_method0("__arrow_c_stream__")?;
    let capsule = capsule
        .cast::<PyCapsule>()
        .map_err(|_| PyTypeError::new_err("__arrow_c_stream__ did not return a capsule"))?;
    let pointer = capsule.pointer_checked(Some(STREAM_CAPSULE))?;
    let raw = pointer.cast::<FFI_ArrowArrayStream>().as_ptr();
    // SAFETY: the capsule is named `arrow_array_stream`, so by the PyCapsule protocol its
    // pointer is a valid, initialised `ArrowArrayStream` owned by the capsule. `from_raw`
    // moves the struct out and leaves a released (empty) one behind, which the capsule's
    // destructor then skips, so the stream is released exactly once (by our reader).
    let reader = unsafe { RecordBatchStreamReader::from_raw(raw) }
        .map_err(|error| arrow_error(object.py(), error))?;
    let schema = arrow_array::RecordBatchReader::schema(&reader);
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| arrow_error(object.py(), error))?;
    Ok((schema, batches))
}

/// Record batches handed to Python as an Arrow stream (`__arrow_c_stream__`), for
/// `pyarrow.table(...)` or `pyarrow.RecordBatchReader.from_stream(...)`. The stream can be
/// taken once.
#[pyclass(name = "ArrowStream", module = "runstore._native", frozen)]
pub struct ArrowStream {
    schema: SchemaRef,
    batches: Mutex<Option<Vec<RecordBatch>>>,
}

impl ArrowStream {
    /// A stream of `batches`, all of `schema`.
    pub(crate) fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> ArrowStream {
        ArrowStream {
            schema,
            batches: Mutex::new(Some(batches)),
        }
    }
}

#[pymethods]
impl ArrowStream {
    /// Exports the batches through the Arrow C stream interface (zero copy). The optional
    /// `requested_schema` is ignored: the batches are given in their own schema.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let batches = self
            .batches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .ok_or_else(|| PyValueError::new_err("this Arrow stream was already consumed"))?;
        let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), self.schema.clone());
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        // The capsule owns the boxed stream; its destructor drops it, which calls the
        // stream's release callback unless a consumer moved the stream out (then released).
        PyCapsule::new_with_value(py, stream, STREAM_CAPSULE)
    }

    /// The number of rows in the stream (before it is consumed; 0 after).
    fn num_rows(&self) -> usize {
        self.batches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .map_or(0, |batches| batches.iter().map(RecordBatch::num_rows).sum())
    }
}

/// An Arrow import failure as `runstore.InvalidInput` (a `ValueError`).
fn arrow_error(py: Python<'_>, error: ArrowError) -> PyErr {
    super::convert::py_err(
        py,
        runstore::Error::InvalidInput {
            reason: format!("reading Arrow data: {error}"),
        },
    )
}
