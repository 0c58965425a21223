//! `TableWriter`: a metrics table streamed into the store batch by batch (the native half of
//! Python's `runstore.MetricsTableWriter` and `runstore.collect_metrics`).
//!
//! The writer is runstore's `MetricsWriter` with immediate durability: each `append` commits
//! one chunk, so a table of any length is written in the memory of one batch. Like runs and
//! tables, the writer lives in a slot of its store's registry: closing the store drops it,
//! which commits and seals what it was given (dropping a `MetricsWriter` flushes it).

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyDict;

use super::arrow::import_stream;
use super::convert::IntoPyResult;
use super::handles::Slot;
use super::{table_info_dict, PyRun, Shared};
use runstore::{MetricsOptions, MetricsWriter, WriteDurability, WriterOptions};

/// The writer, shared between its slot and calls in progress; `None` once closed.
type Held = Arc<Mutex<Option<MetricsWriter>>>;

/// A metrics table being written; see `runstore.MetricsTableWriter`.
#[pyclass(name = "TableWriter", module = "runstore._native", frozen)]
pub(crate) struct PyTableWriter {
    writer: Arc<Slot<Held>>,
    url: String,
    shared: Arc<Shared>,
}

impl PyTableWriter {
    /// The writer, or `StoreClosed` once the store was closed.
    fn held(&self, py: Python<'_>) -> PyResult<Held> {
        self.writer
            .get(py)
            .ok_or_else(|| self.shared.registry.closed_error(py))
    }

    /// `InvalidInput` saying the writer was closed.
    fn finished(&self, py: Python<'_>) -> PyErr {
        super::convert::py_error_of_class(
            py,
            "InvalidInput",
            format!(
                "the metrics table writer of {} was finalized already",
                self.url
            ),
        )
    }
}

#[pymethods]
impl PyTableWriter {
    /// Creates the metrics table `<run url>/<base_name>_NNNN` with the schema of `schema` (an
    /// Arrow stream; its rows are ignored), attached to `run`, joined to `input_table_url`
    /// when given (the schema then needs an integer `example_id` column).
    #[staticmethod]
    #[pyo3(signature = (run, schema, base_name="metrics", stream_name=None, input_table_url=None))]
    fn open(
        py: Python<'_>,
        run: PyRef<'_, PyRun>,
        schema: &Bound<'_, PyAny>,
        base_name: &str,
        stream_name: Option<String>,
        input_table_url: Option<String>,
    ) -> PyResult<PyTableWriter> {
        let handle = run.run(py)?;
        let (schema, _) = import_stream(schema)?;
        let mut options = MetricsOptions {
            input_table_url: input_table_url.filter(|url| !url.is_empty()),
            table_writer_base_name: base_name.to_string(),
            ..MetricsOptions::default()
        };
        if let Some(stream_name) = stream_name.filter(|s| !s.is_empty()) {
            options.stream_name = stream_name;
        }
        let writer_options = WriterOptions {
            durability: WriteDurability::Immediate,
        };
        let writer = py
            .detach(|| handle.open_metrics_writer(schema, &options, &writer_options))
            .py(py)?;
        let url = writer.url().to_string();
        let held: Held = Arc::new(Mutex::new(Some(writer)));
        Ok(PyTableWriter {
            writer: run.shared.registry.hold(py, held),
            url,
            shared: run.shared.clone(),
        })
    }

    /// The url of the table being written.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// Appends the batches of an Arrow stream (each committed before this returns).
    fn append(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let held = self.held(py)?;
        let (_, batches) = import_stream(data)?;
        let mut guard = held
            .lock_py_attached(py)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let writer = guard.as_mut().ok_or_else(|| self.finished(py))?;
        py.detach(|| {
            for batch in &batches {
                writer.append(batch)?;
            }
            Ok(())
        })
        .py(py)
    }

    /// Commits and seals what was appended, closes the writer and returns the table's info
    /// (a dict).
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let held = self.held(py)?;
        let writer = held
            .lock_py_attached(py)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .ok_or_else(|| self.finished(py))?;
        let info = py.detach(|| writer.close()).py(py)?;
        table_info_dict(py, &info)
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        match self.writer.get(py) {
            None => true,
            Some(held) => held
                .lock_py_attached(py)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .is_none(),
        }
    }

    fn __repr__(&self) -> String {
        format!("TableWriter({:?})", self.url)
    }
}
