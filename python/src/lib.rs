//! The Python extension module `runstore._native` (the crate `runstore-python`, built with
//! maturin from the root `pyproject.toml`). It binds runstore's public Rust API one to one;
//! the pure-Python package in `python/runstore/` wraps it with 3LC's names, converts numpy,
//! pandas and dicts to Arrow, and documents every call (`__init__.pyi`).
//!
//! Rules kept here: every call that reads or writes the store runs with the GIL released
//! (`Python::detach`); Arrow data crosses the boundary only through the C stream interface
//! (`arrow.rs`, the one file with `unsafe`), so scans hand Python buffers that point into the
//! store's memory map; runstore errors become the exceptions of `runstore._errors`.

mod arrow;
mod bulk;
mod convert;
mod handles;
mod writer;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use self::arrow::{import_stream, ArrowStream};
use self::convert::{from_value, to_value, IntoPyResult};
use self::handles::{Registry, Slot};
use runstore::{
    CopyIfExists, CopyOptions, Error, InitIfExists, InitOptions, Method, MetricTableInfo,
    MetricsOptions, MetricsWriter, ReduceOptions, Run, RunStatus, ScanOptions, Store, Table, Value,
    WriteDurability, WriterOptions,
};

/// The Python module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyStore>()?;
    module.add_class::<PyRun>()?;
    module.add_class::<PyTable>()?;
    module.add_class::<writer::PyTableWriter>()?;
    module.add_class::<ArrowStream>()?;
    module.add_function(wrap_pyfunction!(cli_main, module)?)?;
    module.add("ROLE_KEY", runstore::table::ROLE_KEY)?;
    module.add("STREAM_DEFAULT", runstore::table::STREAM_DEFAULT)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// Runs the `runstore` command line (`runstore::cli_main`) over `argv`, the program name
/// first, with the GIL released, and returns its exit code. The `runstore` script of a pip
/// install calls it (`runstore._cli.main`); it prints to file descriptors 1 and 2 and acts
/// for the whole process, as the binary does.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.detach(|| runstore::cli_main(argv))
}

/// A per-step logger of one run: a streaming writer over the table `<run>/steps_NNNN` with a
/// `step` column and one float column per key. A new key moves it to a new, wider table (the
/// rows written stay where they are: `Run.history` joins the tables by step); a first `log()`
/// of a handle carries on in the run's newest step table (`resume_point`).
struct Logger {
    writer: MetricsWriter,
    keys: Vec<String>,
    index: HashMap<String, usize>,
    next_step: i64,
    window: Duration,
    /// The run's status was COMPLETED when the logger was made, or was set so through this
    /// store handle since: `log()` tells Python to warn (once per run, `Shared::warned`).
    completed: bool,
}

/// What a store handle shares with the runs and tables it hands out: their loggers, and the
/// registry that empties their handles when the store is closed (`handles.rs`).
struct Shared {
    loggers: Mutex<HashMap<u64, Logger>>,
    /// Runs `log()` has already warned about for logging to a COMPLETED run. Touched only
    /// when a logger's `completed` is set, so the common `log()` never takes this lock.
    warned: Mutex<HashSet<u64>>,
    registry: Registry,
}

impl Shared {
    fn check_open(&self, py: Python<'_>) -> PyResult<()> {
        self.registry.check_open(py)
    }

    fn lock<'a>(&'a self, py: Python<'_>) -> MutexGuard<'a, HashMap<u64, Logger>> {
        self.loggers
            .lock_py_attached(py)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Closes the loggers (of `run`, or all), flushing and sealing their rows; the first
    /// error is returned after every logger was closed.
    fn close_loggers(&self, py: Python<'_>, run: Option<u64>) -> PyResult<()> {
        let taken: Vec<Logger> = {
            let mut loggers = self.lock(py);
            match run {
                Some(id) => loggers.remove(&id).into_iter().collect(),
                None => loggers.drain().map(|(_, logger)| logger).collect(),
            }
        };
        let mut first = None;
        for logger in taken {
            if let Err(error) = py.detach(|| logger.writer.close()) {
                first.get_or_insert(error);
            }
        }
        match first {
            Some(error) => Err(convert::py_err(py, error)),
            None => Ok(()),
        }
    }
}

/// An open store file.
#[pyclass(name = "Store", module = "runstore._native", frozen)]
struct PyStore {
    store: Arc<Slot<Store>>,
    read_only: bool,
    shared: Arc<Shared>,
}

impl PyStore {
    fn wrap(&self, py: Python<'_>, run: Run) -> PyRun {
        PyRun::new(py, run, &self.shared)
    }

    /// The store, or `StoreClosed` once `close()` was called.
    fn store(&self, py: Python<'_>) -> PyResult<Store> {
        self.store
            .get(py)
            .ok_or_else(|| self.shared.registry.closed_error(py))
    }
}

/// Longest `timeout=` of `runstore.open`, in seconds: a day (as the CLI's `--wait`). A
/// longer wait is a mistake, not a plan.
const OPEN_TIMEOUT_SECONDS_MAX: f64 = 86_400.0;

/// Calls `open` with the GIL released, retrying for up to `wait` while it fails with
/// `AlreadyOpen` (once when `wait` is zero), with `Store::open_waiting`'s backoff (5 ms
/// doubling to 200 ms): the same wait for a single writer's open, a shared writer's and a
/// reader's. Ctrl-C interrupts the wait (`KeyboardInterrupt`).
fn retry_while_open(
    py: Python<'_>,
    wait: Duration,
    open: impl Fn() -> runstore::Result<Store> + Sync,
) -> PyResult<Store> {
    let deadline = std::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    loop {
        let attempt = py.detach(|| match open() {
            Err(Error::AlreadyOpen { .. }) if std::time::Instant::now() < deadline => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                std::thread::sleep(pause.min(left));
                None
            }
            other => Some(other),
        });
        match attempt {
            Some(result) => return result.py(py),
            None => {
                py.check_signals()?;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
    }
}

fn init_if_exists(text: &str) -> PyResult<InitIfExists> {
    Ok(match text {
        "raise" => InitIfExists::Raise,
        "rename" => InitIfExists::Rename,
        "overwrite" => InitIfExists::Overwrite,
        "reuse" => InitIfExists::Reuse,
        other => {
            return Err(PyValueError::new_err(format!(
                "if_exists must be 'raise', 'rename', 'overwrite' or 'reuse', not {other:?}"
            )))
        }
    })
}

fn copy_if_exists(text: &str) -> PyResult<CopyIfExists> {
    Ok(match text {
        "raise" => CopyIfExists::Raise,
        "rename" => CopyIfExists::Rename,
        "overwrite" => CopyIfExists::Overwrite,
        other => {
            return Err(PyValueError::new_err(format!(
                "if_exists must be 'raise', 'rename' or 'overwrite', not {other:?}"
            )))
        }
    })
}

fn info_dict<'py>(py: Python<'py>, info: &MetricTableInfo) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("url", &info.url)?;
    dict.set_item("stream_name", &info.stream_name)?;
    dict.set_item("row_count", info.row_count)?;
    dict.set_item("file_size", info.file_size)?;
    Ok(dict)
}

fn stream_of(schema: SchemaRef, batches: Vec<RecordBatch>) -> ArrowStream {
    ArrowStream::new(schema, batches)
}

#[pymethods]
impl PyStore {
    /// Opens (or creates) the store at `path`. See `runstore.open`.
    #[staticmethod]
    #[pyo3(signature = (path, read_only=false, create=true, shared=false, timeout=None))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        read_only: bool,
        create: bool,
        shared: bool,
        timeout: Option<f64>,
    ) -> PyResult<PyStore> {
        let wait = match timeout {
            None => Duration::ZERO,
            Some(seconds) if (0.0..=OPEN_TIMEOUT_SECONDS_MAX).contains(&seconds) => {
                Duration::from_secs_f64(seconds)
            }
            Some(seconds) => {
                return Err(convert::py_error_of_class(
                    py,
                    "InvalidInput",
                    format!(
                        "invalid input: timeout={seconds} opening {}: give seconds from 0 to \
                         {OPEN_TIMEOUT_SECONDS_MAX}, or None to fail at once",
                        path.display()
                    ),
                ))
            }
        };
        let store = retry_while_open(py, wait, || match (read_only, shared, create) {
            (true, _, _) => Store::open_read_only(&path),
            (false, true, true) => Store::open_or_create_shared(&path),
            (false, true, false) => Store::open_shared(&path),
            (false, false, true) => Store::open_or_create(&path),
            (false, false, false) => Store::open(&path),
        })?;
        let shared = Arc::new(Shared {
            loggers: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashSet::new()),
            registry: Registry::new(store.path()),
        });
        Ok(PyStore {
            read_only: store.is_read_only(),
            store: shared.registry.hold(py, store),
            shared,
        })
    }

    /// The store file's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.shared.registry.path().to_path_buf()
    }

    /// Whether the store was opened read-only.
    #[getter]
    fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.registry.is_closed()
    }

    /// Creates a run and makes it the active run.
    #[pyo3(signature = (project_name, run_name=None, description=None, parameters=None, if_exists="rename"))]
    fn init(
        &self,
        py: Python<'_>,
        project_name: String,
        run_name: Option<String>,
        description: Option<String>,
        parameters: Option<Bound<'_, PyAny>>,
        if_exists: &str,
    ) -> PyResult<PyRun> {
        let options = InitOptions {
            description,
            parameters: parameters.map(|p| to_value(&p)).transpose()?,
            if_exists: init_if_exists(if_exists)?,
        };
        let store = &self.store(py)?;
        let run = py
            .detach(|| store.init_with(&project_name, run_name.as_deref(), &options))
            .py(py)?;
        Ok(self.wrap(py, run))
    }

    /// The active run.
    fn active_run(&self, py: Python<'_>) -> PyResult<PyRun> {
        let store = &self.store(py)?;
        let run = py.detach(|| store.active_run()).py(py)?;
        Ok(self.wrap(py, run))
    }

    /// Makes `run` (a Run or a run url) the active run.
    fn set_active_run(&self, py: Python<'_>, run: &Bound<'_, PyAny>) -> PyResult<()> {
        let store = &self.store(py)?;
        if let Ok(url) = run.cast::<PyString>() {
            let url = url.to_cow()?.into_owned();
            return py.detach(|| store.set_active_run_url(&url)).py(py);
        }
        let run = run
            .cast::<PyRun>()
            .map_err(|_| PyTypeError::new_err("set_active_run takes a Run or a run url"))?;
        let run = run.get().run(py)?;
        py.detach(|| store.set_active_run(&run)).py(py)
    }

    /// The run at `url` (`<project>/runs/<name>`).
    fn run(&self, py: Python<'_>, url: String) -> PyResult<PyRun> {
        let store = &self.store(py)?;
        let run = py.detach(|| store.run(&url)).py(py)?;
        Ok(self.wrap(py, run))
    }

    /// The run `run_name` of `project_name`.
    fn run_by_names(
        &self,
        py: Python<'_>,
        run_name: String,
        project_name: String,
    ) -> PyResult<PyRun> {
        let store = &self.store(py)?;
        let run = py
            .detach(|| store.run_by_names(&run_name, &project_name))
            .py(py)?;
        Ok(self.wrap(py, run))
    }

    /// Runs selected by a query (all arguments optional).
    #[pyo3(signature = (project=None, filter=None, order_by=None, limit=None, offset=None))]
    fn runs(
        &self,
        py: Python<'_>,
        project: Option<String>,
        filter: Option<String>,
        order_by: Option<String>,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> PyResult<Vec<PyRun>> {
        let store = &self.store(py)?;
        let runs = py
            .detach(|| query(store, project, filter, order_by, limit, offset)?.run())
            .py(py)?;
        Ok(runs.into_iter().map(|run| self.wrap(py, run)).collect())
    }

    /// The cross-run table of a query: `project`, `name`, `url`, then one column per key.
    #[pyo3(signature = (columns, project=None, filter=None, order_by=None, limit=None, offset=None))]
    #[allow(clippy::too_many_arguments)]
    fn runs_values(
        &self,
        py: Python<'_>,
        columns: Vec<String>,
        project: Option<String>,
        filter: Option<String>,
        order_by: Option<String>,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> PyResult<ArrowStream> {
        let store = &self.store(py)?;
        let batch = py
            .detach(|| {
                let keys: Vec<&str> = columns.iter().map(String::as_str).collect();
                query(store, project, filter, order_by, limit, offset)?.values(&keys)
            })
            .py(py)?;
        Ok(stream_of(batch.schema(), vec![batch]))
    }

    /// The table at `url`.
    fn table(&self, py: Python<'_>, url: String) -> PyResult<PyTable> {
        let store = &self.store(py)?;
        let table = py.detach(|| store.table(&url)).py(py)?;
        Ok(PyTable::new(py, table, &self.shared))
    }

    /// Facts about every table (of `project`).
    #[pyo3(signature = (project=None))]
    fn tables<'py>(
        &self,
        py: Python<'py>,
        project: Option<String>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let store = &self.store(py)?;
        let infos = py.detach(|| store.tables(project.as_deref())).py(py)?;
        infos.iter().map(|info| table_info_dict(py, info)).collect()
    }

    /// Stores an Arrow stream as the input table `<project>/tables/<name>`.
    fn create_table(
        &self,
        py: Python<'_>,
        project: String,
        name: String,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<PyTable> {
        let store = &self.store(py)?;
        let (_, batches) = import_stream(data)?;
        let table = py
            .detach(|| store.create_table(&project, &name, &batches))
            .py(py)?;
        Ok(PyTable::new(py, table, &self.shared))
    }

    /// Projects with their run counts: a list of dicts.
    fn projects<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let store = &self.store(py)?;
        let projects = py.detach(|| store.projects()).py(py)?;
        projects
            .iter()
            .map(|p| {
                let dict = PyDict::new(py);
                dict.set_item("name", &p.name)?;
                dict.set_item("created_us", p.created_us)?;
                dict.set_item("run_count", p.run_count)?;
                Ok(dict)
            })
            .collect()
    }

    /// Deletes the run at `url` with its tables and blobs.
    fn delete_run(&self, py: Python<'_>, url: String) -> PyResult<()> {
        let store = &self.store(py)?;
        if let Ok(run) = py.detach(|| store.run(&url)) {
            self.shared.close_loggers(py, Some(run.id()))?;
        }
        py.detach(|| store.delete_run(&url)).py(py)
    }

    /// Commits and seals every logger's rows.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.check_open(py)?;
        let mut loggers = self.shared.lock(py);
        for logger in loggers.values_mut() {
            let writer = &mut logger.writer;
            py.detach(|| writer.flush()).py(py)?;
        }
        Ok(())
    }

    /// Flushes and closes every logger, then closes the file (idempotent): its locks are
    /// released and its descriptor closed, whatever Run or Table objects of it are still
    /// alive (their later use raises `StoreClosed`). A call still in progress on another
    /// thread keeps the file open until it returns. The first error of closing a logger or
    /// the file (a writer records a clean shutdown in it) is raised after both were closed.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let store = self.store.get(py);
        if !self.shared.registry.close(py) {
            return Ok(());
        }
        let loggers = self.shared.close_loggers(py, None);
        let file = match store {
            Some(store) => py.detach(|| store.close()).py(py),
            None => Ok(()),
        };
        loggers.and(file)
    }

    fn __repr__(&self) -> String {
        format!(
            "Store({:?}{})",
            self.shared.registry.path(),
            if self.read_only {
                ", read_only=True"
            } else {
                ""
            }
        )
    }
}

fn query(
    store: &Store,
    project: Option<String>,
    filter: Option<String>,
    order_by: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
) -> runstore::Result<runstore::RunQuery> {
    let mut query = store.query_runs();
    if let Some(project) = project {
        query = query.project(&project);
    }
    if let Some(filter) = filter {
        query = query.filter(&filter)?;
    }
    if let Some(order_by) = order_by {
        query = query.order_by(&order_by)?;
    }
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    if let Some(offset) = offset {
        query = query.offset(offset);
    }
    Ok(query)
}

fn table_info_dict<'py>(
    py: Python<'py>,
    info: &runstore::TableInfo,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("url", &info.url)?;
    dict.set_item("stream_name", &info.stream_name)?;
    dict.set_item("row_count", info.row_count)?;
    dict.set_item("file_size", info.file_size)?;
    dict.set_item("foreign_table_url", info.foreign_table_url.as_deref())?;
    dict.set_item("created_us", info.created_us)?;
    dict.set_item("chunk_count", info.chunk_count)?;
    Ok(dict)
}

/// A run: 3LC's `Run`.
#[pyclass(name = "Run", module = "runstore._native", frozen)]
struct PyRun {
    run: Arc<Slot<Run>>,
    id: u64,
    project: String,
    name: String,
    shared: Arc<Shared>,
}

impl PyRun {
    /// A Python object over `run`, whose handle `shared`'s `close()` drops.
    fn new(py: Python<'_>, run: Run, shared: &Arc<Shared>) -> PyRun {
        PyRun {
            id: run.id(),
            project: run.project().to_string(),
            name: run.name().to_string(),
            run: shared.registry.hold(py, run),
            shared: shared.clone(),
        }
    }

    fn wrap(&self, py: Python<'_>, run: Run) -> PyRun {
        PyRun::new(py, run, &self.shared)
    }

    /// The run, or `StoreClosed` once its store was closed.
    fn run(&self, py: Python<'_>) -> PyResult<Run> {
        self.run
            .get(py)
            .ok_or_else(|| self.shared.registry.closed_error(py))
    }

    /// `<project>/runs/<name>`.
    fn run_url(&self) -> String {
        format!("{}/runs/{}", self.project, self.name)
    }

    fn set(&self, py: Python<'_>, status: RunStatus) -> PyResult<()> {
        let run = self.run(py)?;
        py.detach(|| run.set_status(status)).py(py)?;
        if let Some(logger) = self.shared.lock(py).get_mut(&self.id) {
            logger.completed = status == RunStatus::Completed;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn reduce_options(
        method: &str,
        n_components: usize,
        n_neighbors: usize,
        min_dist: f64,
        seed: u64,
        delete_source_tables: bool,
        retain_source_embedding_column: bool,
        columns: Option<Vec<String>>,
    ) -> PyResult<ReduceOptions> {
        let method = match method {
            "umap" => Method::Umap,
            "pca" => Method::Pca,
            other => {
                return Err(PyValueError::new_err(format!(
                    "method must be 'umap' or 'pca', not {other:?}"
                )))
            }
        };
        Ok(ReduceOptions {
            method,
            n_components,
            n_neighbors,
            min_dist,
            seed,
            delete_source_tables,
            retain_source_embedding_column,
            columns,
            progress: None,
        })
    }
}

/// A reduction's report: `({source url: new url}, [reducer dict, ...], [deleted url, ...])`,
/// each reducer dict with name, method, column, foreign_table_url, fitted_on, fitted_now and
/// explained_variance_ratio (PCA's, else None).
type ReportTuple<'py> = (Bound<'py, PyDict>, Vec<Bound<'py, PyDict>>, Vec<String>);

fn report_dict<'py>(
    py: Python<'py>,
    report: &runstore::ReduceReport,
) -> PyResult<ReportTuple<'py>> {
    let dict = PyDict::new(py);
    for (source, reduced) in &report.tables {
        dict.set_item(source, reduced)?;
    }
    let reducers = report
        .reducers
        .iter()
        .map(|summary| {
            let reducer = PyDict::new(py);
            reducer.set_item("name", &summary.name)?;
            reducer.set_item("method", summary.method.suffix())?;
            reducer.set_item("column", &summary.column)?;
            reducer.set_item("foreign_table_url", &summary.foreign_table_url)?;
            reducer.set_item("fitted_on", &summary.fitted_on)?;
            reducer.set_item("fitted_now", summary.fitted_now)?;
            reducer.set_item(
                "explained_variance_ratio",
                summary.explained_variance_ratio.clone(),
            )?;
            Ok(reducer)
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok((dict, reducers, report.deleted.clone()))
}

/// The number of a step table's url (`<run url>/steps_NNNN`, what `log()` creates), or `None`
/// for any other table.
fn step_table_number(url: &str) -> Option<u64> {
    let (_, name) = url.rsplit_once('/')?;
    let digits = name.strip_prefix("steps_")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The keys of a table with a logger's schema (`step` Int64, then Float64 columns), or `None`
/// when the table has another schema (a user's table that happens to be named `steps_NNNN`).
fn logger_keys(schema: &Schema) -> Option<Vec<String>> {
    let (step, rest) = schema.fields().split_first()?;
    if step.name() != "step" || step.data_type() != &DataType::Int64 {
        return None;
    }
    rest.iter()
        .map(|field| (field.data_type() == &DataType::Float64).then(|| field.name().clone()))
        .collect()
}

/// Where a first `log()` of a run in this handle carries on: the run's newest step table (the
/// one `log()` wrote last, in this session before `close_log()` or in an earlier one) with its
/// keys, and the step after the largest logged in any step table. So reopening a store neither
/// restarts the steps at 0 (which would overwrite history joined by step) nor starts a table
/// per session. `None` when the run has no step table.
fn resume_point(run: &Run) -> runstore::Result<Option<(String, Vec<String>, i64)>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::Array;
    let mut newest: Option<(u64, String, Vec<String>)> = None;
    let mut next_step = 0i64;
    for table in run.metrics_table_handles()? {
        let Some(number) = step_table_number(table.url()) else {
            continue;
        };
        let Some(keys) = logger_keys(table.schema()?.as_ref()) else {
            continue;
        };
        let last = table
            .query()
            .columns(&["step"])
            .order_by("step", true)
            .limit(1)
            .batches()?;
        for batch in &last {
            let steps = batch.column(0).as_primitive::<Int64Type>();
            if !steps.is_empty() && steps.is_valid(0) {
                next_step = next_step.max(steps.value(0).saturating_add(1));
            }
        }
        if newest.as_ref().is_none_or(|(n, _, _)| number > *n) {
            newest = Some((number, table.url().to_string(), keys));
        }
    }
    Ok(newest.map(|(_, url, keys)| (url, keys, next_step)))
}

/// A logger's writer options: group commit over `window`, or each row committed when zero.
fn logger_options(window: Duration) -> WriterOptions {
    WriterOptions {
        durability: if window.is_zero() {
            WriteDurability::Immediate
        } else {
            WriteDurability::Group { window }
        },
    }
}

/// The schema of a logger's table: `step` (Int64) then one nullable Float64 per key.
fn logger_schema(keys: &[String]) -> SchemaRef {
    let mut fields = vec![Field::new("step", DataType::Int64, false)];
    fields.extend(
        keys.iter()
            .map(|key| Field::new(key, DataType::Float64, true)),
    );
    Arc::new(Schema::new(fields))
}

#[pymethods]
impl PyRun {
    /// The run's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The run's project.
    #[getter]
    fn project(&self) -> &str {
        &self.project
    }

    /// `<project>/runs/<name>`.
    #[getter]
    fn url(&self) -> String {
        self.run_url()
    }

    /// The url blobs of this run live under.
    #[getter]
    fn bulk_data_url(&self) -> String {
        format!("{}/bulk_data", self.run_url())
    }

    /// The run's description.
    #[getter]
    fn description(&self, py: Python<'_>) -> PyResult<String> {
        let run = self.run(py)?;
        py.detach(|| run.description()).py(py)
    }

    /// The status name (`"RUNNING"`, ...).
    #[getter]
    fn status(&self, py: Python<'_>) -> PyResult<String> {
        let run = self.run(py)?;
        Ok(py.detach(|| run.status()).py(py)?.name().to_string())
    }

    /// The status as 3LC's code (1 to 7).
    #[getter]
    fn status_code(&self, py: Python<'_>) -> PyResult<u8> {
        let run = self.run(py)?;
        Ok(py.detach(|| run.status()).py(py)?.code())
    }

    /// Creation time, microseconds since the Unix epoch.
    #[getter]
    fn created_us(&self, py: Python<'_>) -> PyResult<i64> {
        let run = self.run(py)?;
        py.detach(|| run.created()).py(py)
    }

    /// Time of the last change, microseconds since the Unix epoch.
    #[getter]
    fn last_modified_us(&self, py: Python<'_>) -> PyResult<i64> {
        let run = self.run(py)?;
        py.detach(|| run.last_modified()).py(py)
    }

    /// The parameters (a dict).
    #[getter]
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let run = self.run(py)?;
        let value = py.detach(|| run.parameters()).py(py)?;
        from_value(py, &value)
    }

    /// Input tables (urls).
    #[getter]
    fn input_tables(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let run = self.run(py)?;
        py.detach(|| run.input_tables()).py(py)
    }

    /// Input values, in the order added.
    #[getter]
    fn input_values<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let run = self.run(py)?;
        let values = py.detach(|| run.input_values()).py(py)?;
        values.iter().map(|v| from_value(py, v)).collect()
    }

    /// Output values, in the order added.
    #[getter]
    fn output_values<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let run = self.run(py)?;
        let values = py.detach(|| run.output_values()).py(py)?;
        values.iter().map(|v| from_value(py, v)).collect()
    }

    /// The last output value, or None.
    fn last_output<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let run = self.run(py)?;
        let value = py.detach(|| run.last_output()).py(py)?;
        value.map(|v| from_value(py, &v)).transpose()
    }

    /// Merges `parameters` (a dict) into the run's parameters.
    fn set_parameters(&self, py: Python<'_>, parameters: &Bound<'_, PyAny>) -> PyResult<()> {
        let run = self.run(py)?;
        let value = to_value(parameters)?;
        py.detach(|| run.set_parameters(&value)).py(py)
    }

    /// Sets the description.
    fn set_description(&self, py: Python<'_>, description: String) -> PyResult<()> {
        let run = self.run(py)?;
        py.detach(|| run.set_description(&description)).py(py)
    }

    /// Adds an input table (a url).
    fn add_input_table(&self, py: Python<'_>, table: String) -> PyResult<()> {
        let run = self.run(py)?;
        py.detach(|| run.add_input_table(&table)).py(py)
    }

    /// Adds an input value (kept once if equal to one already added).
    fn add_input_value(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let run = self.run(py)?;
        let value = to_value(value)?;
        py.detach(|| run.add_input_value(&value)).py(py)
    }

    /// Appends an output value.
    fn add_output_value(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let run = self.run(py)?;
        let value = to_value(value)?;
        py.detach(|| run.add_output_value(&value)).py(py)
    }

    /// Appends several output values in one commit.
    fn add_output_values(&self, py: Python<'_>, values: &Bound<'_, PyList>) -> PyResult<()> {
        let run = self.run(py)?;
        let values = values
            .iter()
            .map(|v| to_value(&v))
            .collect::<PyResult<Vec<_>>>()?;
        py.detach(|| run.add_output_values(&values)).py(py)
    }

    /// Sets the status from 3LC's code (1 to 7) or a name (`"completed"`).
    fn set_status(&self, py: Python<'_>, status: &Bound<'_, PyAny>) -> PyResult<()> {
        let status = if let Ok(name) = status.cast::<PyString>() {
            RunStatus::parse(&name.to_cow()?).py(py)?
        } else {
            RunStatus::from_code(status.extract::<f64>()?).py(py)?
        };
        self.set(py, status)
    }

    /// Sets the status to RUNNING.
    fn set_status_running(&self, py: Python<'_>) -> PyResult<()> {
        self.set(py, RunStatus::Running)
    }

    /// Sets the status to COLLECTING.
    fn set_status_collecting(&self, py: Python<'_>) -> PyResult<()> {
        self.set(py, RunStatus::Collecting)
    }

    /// Sets the status to POST_PROCESSING.
    fn set_status_post_processing(&self, py: Python<'_>) -> PyResult<()> {
        self.set(py, RunStatus::PostProcessing)
    }

    /// Sets the status to COMPLETED.
    fn set_status_completed(&self, py: Python<'_>) -> PyResult<()> {
        self.set(py, RunStatus::Completed)
    }

    /// Sets the status to EMPTY.
    fn set_status_empty(&self, py: Python<'_>) -> PyResult<()> {
        self.set(py, RunStatus::Empty)
    }

    /// Sets the status to PAUSED.
    fn set_status_paused(&self, py: Python<'_>) -> PyResult<()> {
        self.set(py, RunStatus::Paused)
    }

    /// Sets the status to CANCELLED.
    fn set_status_cancelled(&self, py: Python<'_>) -> PyResult<()> {
        self.set(py, RunStatus::Cancelled)
    }

    /// Deletes the run with its tables and blobs (its logger is closed first).
    fn delete(&self, py: Python<'_>) -> PyResult<()> {
        let run = self.run(py)?;
        self.shared.close_loggers(py, Some(run.id()))?;
        py.detach(|| run.delete()).py(py)
    }

    /// Copies the run; see `Run.copy`.
    /// With `dest` (another store handle) the copy goes into that store (`Run::copy_to`).
    #[pyo3(signature = (run_name=None, project_name=None, if_exists="raise", destination_url=None, dest=None))]
    fn copy(
        &self,
        py: Python<'_>,
        run_name: Option<String>,
        project_name: Option<String>,
        if_exists: &str,
        destination_url: Option<String>,
        dest: Option<PyRef<'_, PyStore>>,
    ) -> PyResult<PyRun> {
        let run = self.run(py)?;
        let options = CopyOptions {
            run_name,
            project_name,
            destination_url,
            if_exists: copy_if_exists(if_exists)?,
        };
        // The copy takes committed rows: flush this run's logger first.
        {
            let mut loggers = self.shared.lock(py);
            if let Some(logger) = loggers.get_mut(&run.id()) {
                let writer = &mut logger.writer;
                py.detach(|| writer.flush()).py(py)?;
            }
        }
        if let Some(dest) = dest {
            let store = dest.store(py)?;
            let copy = py.detach(|| run.copy_to(&store, &options)).py(py)?;
            return Ok(dest.wrap(py, copy));
        }
        let copy = py.detach(|| run.copy(&options)).py(py)?;
        Ok(self.wrap(py, copy))
    }

    /// Writes an Arrow stream as a new metrics table; returns the table infos (dicts).
    #[pyo3(signature = (data, overrides=None, input_table_url=None, table_writer_base_name="metrics", stream_name=None))]
    fn add_metrics_data<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        overrides: Option<Bound<'py, PyAny>>,
        input_table_url: Option<String>,
        table_writer_base_name: &str,
        stream_name: Option<String>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let run = self.run(py)?;
        let (schema, batches) = import_stream(data)?;
        let mut options = MetricsOptions {
            input_table_url,
            table_writer_base_name: table_writer_base_name.to_string(),
            ..MetricsOptions::default()
        };
        if let Some(stream_name) = stream_name.filter(|s| !s.is_empty()) {
            options.stream_name = stream_name;
        }
        if let Some(overrides) = overrides {
            let (override_schema, _) = import_stream(&overrides)?;
            for field in override_schema.fields() {
                options
                    .override_column_schemas
                    .insert(field.name().clone(), field.as_ref().clone());
            }
        }
        let infos = py
            .detach(|| {
                let batch = concat(&schema, &batches)?;
                run.add_metrics_data(&batch, &options)
            })
            .py(py)?;
        infos.iter().map(|info| info_dict(py, info)).collect()
    }

    /// Appends an Arrow stream to the metrics table `<run url>/<table_name>` in one commit
    /// (created on first use); returns the table's info and the rows appended.
    fn append_metrics<'py>(
        &self,
        py: Python<'py>,
        table_name: String,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let run = self.run(py)?;
        let (_, batches) = import_stream(data)?;
        let report = py
            .detach(|| run.append_metrics(&table_name, &mut batches.into_iter().map(Ok)))
            .py(py)?;
        let dict = info_dict(py, &report.table)?;
        dict.set_item("rows_appended", report.rows_appended)?;
        dict.set_item("created", report.created)?;
        Ok(dict)
    }

    /// The metrics table infos (dicts: url, stream_name, row_count, file_size).
    fn metrics_infos<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let run = self.run(py)?;
        let infos = py.detach(|| run.metrics_tables()).py(py)?;
        infos.iter().map(|info| info_dict(py, info)).collect()
    }

    /// The metrics tables stored in this store, as Table objects.
    fn metrics_tables(&self, py: Python<'_>) -> PyResult<Vec<PyTable>> {
        let run = self.run(py)?;
        let tables = py.detach(|| run.metrics_table_handles()).py(py)?;
        Ok(tables
            .into_iter()
            .map(|table| PyTable::new(py, table, &self.shared))
            .collect())
    }

    /// Adds metric table infos (dicts with url, and optionally stream_name, row_count,
    /// file_size); infos already present are not added again.
    fn update_metrics(&self, py: Python<'_>, infos: Vec<Bound<'_, PyDict>>) -> PyResult<()> {
        let run = self.run(py)?;
        let mut parsed = Vec::with_capacity(infos.len());
        for info in infos {
            let get = |key: &str| info.get_item(key);
            let url: String = get("url")?
                .ok_or_else(|| PyValueError::new_err("a metric table info needs a 'url'"))?
                .extract()?;
            let stream_name = match get("stream_name")? {
                Some(s) if !s.is_none() => s.extract::<String>()?,
                _ => runstore::table::STREAM_DEFAULT.to_string(),
            };
            let row_count = match get("row_count")? {
                Some(v) if !v.is_none() => v.extract()?,
                _ => 0,
            };
            let file_size = match get("file_size")? {
                Some(v) if !v.is_none() => v.extract()?,
                _ => 0,
            };
            parsed.push(MetricTableInfo {
                url,
                stream_name: if stream_name.is_empty() {
                    runstore::table::STREAM_DEFAULT.to_string()
                } else {
                    stream_name
                },
                row_count,
                file_size,
            });
        }
        py.detach(|| run.update_metrics(&parsed)).py(py)
    }

    /// Adds the stored table at `url` to the run's metrics.
    fn add_metrics_table(&self, py: Python<'_>, url: String) -> PyResult<()> {
        let run = self.run(py)?;
        py.detach(|| run.add_metrics_table(&url)).py(py)
    }

    /// Reduces embeddings per dataset; returns the report (`report_dict`).
    #[pyo3(signature = (delete_source_tables, method, n_components, n_neighbors, min_dist, seed, retain_source_embedding_column, columns))]
    #[allow(clippy::too_many_arguments)]
    fn reduce_embeddings_per_dataset<'py>(
        &self,
        py: Python<'py>,
        delete_source_tables: bool,
        method: &str,
        n_components: usize,
        n_neighbors: usize,
        min_dist: f64,
        seed: u64,
        retain_source_embedding_column: bool,
        columns: Option<Vec<String>>,
    ) -> PyResult<ReportTuple<'py>> {
        let run = self.run(py)?;
        let options = PyRun::reduce_options(
            method,
            n_components,
            n_neighbors,
            min_dist,
            seed,
            delete_source_tables,
            retain_source_embedding_column,
            columns,
        )?;
        let report = py
            .detach(|| run.reduce_embeddings_per_dataset(&options))
            .py(py)?;
        report_dict(py, &report)
    }

    /// Reduces embeddings with the reducer fitted on the tables of `foreign_table_url`.
    #[pyo3(signature = (foreign_table_url, delete_source_tables, method, n_components, n_neighbors, min_dist, seed, retain_source_embedding_column, columns))]
    #[allow(clippy::too_many_arguments)]
    fn reduce_embeddings_by_foreign_table_url<'py>(
        &self,
        py: Python<'py>,
        foreign_table_url: String,
        delete_source_tables: bool,
        method: &str,
        n_components: usize,
        n_neighbors: usize,
        min_dist: f64,
        seed: u64,
        retain_source_embedding_column: bool,
        columns: Option<Vec<String>>,
    ) -> PyResult<ReportTuple<'py>> {
        let run = self.run(py)?;
        let options = PyRun::reduce_options(
            method,
            n_components,
            n_neighbors,
            min_dist,
            seed,
            delete_source_tables,
            retain_source_embedding_column,
            columns,
        )?;
        let report = py
            .detach(|| run.reduce_embeddings_by_foreign_table_url(&foreign_table_url, &options))
            .py(py)?;
        report_dict(py, &report)
    }

    /// Logs one step of scalars (see `Run.log`). Returns true the first time (for this run
    /// and store handle) the run it logs to is COMPLETED: `Run.log` then warns. The row is
    /// logged either way.
    #[pyo3(signature = (values, step=None, window_ms=100.0))]
    fn log(
        &self,
        py: Python<'_>,
        values: &Bound<'_, PyDict>,
        step: Option<i64>,
        window_ms: f64,
    ) -> PyResult<bool> {
        self.shared.check_open(py)?;
        let window = Duration::from_secs_f64(window_ms.max(0.0) / 1000.0);
        let mut loggers = self.shared.lock(py);
        let id = self.id;
        if let std::collections::hash_map::Entry::Vacant(vacant) = loggers.entry(id) {
            // The first call of this handle: carry on in the run's step table, if it has one.
            let run = self.run(py)?;
            let resumed = py
                .detach(|| -> runstore::Result<Option<Logger>> {
                    let Some((url, keys, next_step)) = resume_point(&run)? else {
                        return Ok(None);
                    };
                    let status = run.status()?;
                    let writer = MetricsWriter::open(run.store(), &url, &logger_options(window))?;
                    let index = keys
                        .iter()
                        .enumerate()
                        .map(|(i, key)| (key.clone(), i))
                        .collect();
                    Ok(Some(Logger {
                        writer,
                        keys,
                        index,
                        next_step,
                        window,
                        completed: status == RunStatus::Completed,
                    }))
                })
                .py(py)?;
            if let Some(logger) = resumed {
                vacant.insert(logger);
            }
        }
        // Read the values first (with the GIL): the row in the logger's key order, and any
        // key it does not have yet.
        let mut new_keys: Vec<String> = Vec::new();
        let mut cells: Vec<(usize, f64)> = Vec::with_capacity(values.len());
        let logger = loggers.get(&id);
        for (key, value) in values.iter() {
            let key = key
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("log() keys must be strings"))?;
            let key = key.to_cow()?;
            let number: f64 = value.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "log() takes numbers; '{key}' is {}",
                    value
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            match logger.and_then(|l| l.index.get(key.as_ref())) {
                Some(&column) => cells.push((column, number)),
                None => {
                    if key == "step" {
                        return Err(PyValueError::new_err(
                            "'step' is the step column: pass it as log(..., step=N)",
                        ));
                    }
                    let column = logger.map_or(0, |l| l.keys.len()) + new_keys.len();
                    new_keys.push(key.into_owned());
                    cells.push((column, number));
                }
            }
        }
        if logger.is_none() || !new_keys.is_empty() || logger.is_some_and(|l| l.window != window) {
            // A new key (or the first call): a new table with the wider schema; the old
            // one is closed (its rows committed and sealed).
            let (mut keys, next_step) = match loggers.remove(&id) {
                Some(old) => {
                    let keys = old.keys.clone();
                    let next = old.next_step;
                    py.detach(|| old.writer.close()).py(py)?;
                    (keys, next)
                }
                None => (Vec::new(), 0),
            };
            keys.extend(new_keys);
            let schema = logger_schema(&keys);
            let options = logger_options(window);
            let run = self.run(py)?;
            let (writer, status) = py
                .detach(|| {
                    let status = run.status()?;
                    let writer = run.metrics_writer(
                        schema,
                        "steps",
                        runstore::table::STREAM_DEFAULT,
                        &options,
                    )?;
                    Ok::<_, Error>((writer, status))
                })
                .py(py)?;
            let index = keys
                .iter()
                .enumerate()
                .map(|(i, key)| (key.clone(), i))
                .collect();
            loggers.insert(
                id,
                Logger {
                    writer,
                    keys,
                    index,
                    next_step,
                    window,
                    completed: status == RunStatus::Completed,
                },
            );
        }
        let Some(logger) = loggers.get_mut(&id) else {
            return Err(convert::py_err(
                py,
                Error::InvalidInput {
                    reason: "the logger could not be created".into(),
                },
            ));
        };
        let step = step.unwrap_or(logger.next_step);
        logger.next_step = step.saturating_add(1);
        let mut row = vec![Value::Null; logger.keys.len() + 1];
        row[0] = Value::Int(step);
        for (column, number) in cells {
            row[column + 1] = Value::Float(number);
        }
        let completed = logger.completed;
        let writer = &mut logger.writer;
        py.detach(|| writer.append_row(&row)).py(py)?;
        drop(loggers);
        // The set of runs already warned about is locked only for a COMPLETED run.
        Ok(completed
            && self
                .shared
                .warned
                .lock_py_attached(py)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(id))
    }

    /// The url of the table `log()` is writing, or None.
    fn log_table_url(&self, py: Python<'_>) -> Option<String> {
        self.shared
            .lock(py)
            .get(&self.id)
            .map(|logger| logger.writer.url().to_string())
    }

    /// Commits and seals the rows logged so far (the logger stays open).
    fn flush_log(&self, py: Python<'_>) -> PyResult<()> {
        let mut loggers = self.shared.lock(py);
        if let Some(logger) = loggers.get_mut(&self.id) {
            let writer = &mut logger.writer;
            py.detach(|| writer.flush()).py(py)?;
        }
        Ok(())
    }

    /// Closes this run's logger (flushing its rows); a later `log()` carries on in the same
    /// table, after its last step.
    fn close_log(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.close_loggers(py, Some(self.id))
    }

    /// Stores `data` as the blob `name` under the run's bulk data url; returns its length.
    fn put_bulk(&self, py: Python<'_>, name: String, data: &Bound<'_, PyBytes>) -> PyResult<u64> {
        let run = self.run(py)?;
        let bytes = data.as_bytes().to_vec();
        py.detach(|| run.put_bulk(&name, &bytes)).py(py)
    }

    /// Everything the run's loggers wrote, joined by step (`Run::history`): `step`, then one
    /// float64 column per key of `keys` (default every key logged).
    #[pyo3(signature = (keys=None))]
    fn history(&self, py: Python<'_>, keys: Option<Vec<String>>) -> PyResult<ArrowStream> {
        let run = self.run(py)?;
        let batch = py
            .detach(|| {
                let refs: Option<Vec<&str>> = keys
                    .as_ref()
                    .map(|keys| keys.iter().map(String::as_str).collect());
                run.history(refs.as_deref())
            })
            .py(py)?;
        Ok(stream_of(batch.schema(), vec![batch]))
    }

    /// Streams the file at `path` into the blob `name` without the GIL; returns its length.
    fn put_bulk_file(&self, py: Python<'_>, name: String, path: PathBuf) -> PyResult<u64> {
        let run = self.run(py)?;
        py.detach(|| {
            let mut file = bulk::open_source(&path)?;
            run.put_bulk_from(&name, &mut file)
        })
        .py(py)
    }

    /// Streams the binary file object `file` into the blob `name`, `read` at most
    /// `chunk_bytes` at a time (the GIL released between reads); returns its length. An
    /// exception `read` raises is raised again as it was.
    fn put_bulk_reader(
        &self,
        py: Python<'_>,
        name: String,
        file: Py<PyAny>,
        chunk_bytes: usize,
    ) -> PyResult<u64> {
        let run = self.run(py)?;
        let mut reader = bulk::PyReader::new(file, chunk_bytes);
        let result = py.detach(|| run.put_bulk_from(&name, &mut reader));
        if let Some(error) = reader.error.take() {
            return Err(error);
        }
        result.py(py)
    }

    /// The blob `name`'s bytes.
    fn bulk<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyBytes>> {
        let run = self.run(py)?;
        let bytes = py.detach(|| run.bulk_bytes(&name)).py(py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The run's blobs the user stored (not its stored reducers): (name, length) tuples.
    fn bulk_list(&self, py: Python<'_>) -> PyResult<Vec<(String, u64)>> {
        let run = self.run(py)?;
        let list = py.detach(|| run.user_bulk_list()).py(py)?;
        Ok(list.into_iter().map(|b| (b.name, b.len)).collect())
    }

    /// The run's stored reducers, one dict each: name, method, column, foreign_table_url,
    /// fitted_on, n_components, dim (the embedding width), seed and, for PCA,
    /// explained_variance_ratio (None for UMAP).
    fn reducer_list<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let run = self.run(py)?;
        let reducers = py.detach(|| run.reducers()).py(py)?;
        reducers
            .iter()
            .map(|reducer| {
                let dict = PyDict::new(py);
                dict.set_item("name", &reducer.name)?;
                dict.set_item("method", reducer.model.method().suffix())?;
                dict.set_item("column", &reducer.column)?;
                dict.set_item("foreign_table_url", &reducer.foreign_table_url)?;
                dict.set_item("fitted_on", &reducer.fitted_on)?;
                dict.set_item("n_components", reducer.model.n_components())?;
                dict.set_item("dim", reducer.model.dim())?;
                dict.set_item("seed", reducer.seed)?;
                let explained = match &reducer.model {
                    runstore::reduce::Model::Pca(model) => {
                        Some(model.explained_variance_ratio.clone())
                    }
                    runstore::reduce::Model::Umap(_) => None,
                };
                dict.set_item("explained_variance_ratio", explained)?;
                Ok(dict)
            })
            .collect()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyRun>().is_ok_and(|other| {
            let other = other.get();
            other.id == self.id && other.shared.registry.path() == self.shared.registry.path()
        })
    }

    fn __hash__(&self) -> u64 {
        self.id
    }

    fn __repr__(&self) -> String {
        format!("Run({:?})", self.run_url())
    }
}

fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> runstore::Result<RecordBatch> {
    match batches {
        [one] => Ok(one.clone()),
        _ => {
            arrow_select::concat::concat_batches(schema, batches).map_err(|e| Error::InvalidInput {
                reason: format!("concatenating batches: {e}"),
            })
        }
    }
}

/// A stored table (metrics or input).
#[pyclass(name = "Table", module = "runstore._native", frozen)]
struct PyTable {
    table: Arc<Slot<Table>>,
    url: String,
    shared: Arc<Shared>,
}

impl PyTable {
    /// A Python object over `table`, whose handle `shared`'s `close()` drops.
    fn new(py: Python<'_>, table: Table, shared: &Arc<Shared>) -> PyTable {
        PyTable {
            url: table.url().to_string(),
            table: shared.registry.hold(py, table),
            shared: shared.clone(),
        }
    }

    /// The table, or `StoreClosed` once its store was closed.
    fn table(&self, py: Python<'_>) -> PyResult<Table> {
        self.table
            .get(py)
            .ok_or_else(|| self.shared.registry.closed_error(py))
    }
}

#[pymethods]
impl PyTable {
    /// The table's url.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// The path of the store file the table lives in.
    #[getter]
    fn store_path(&self) -> PathBuf {
        self.shared.registry.path().to_path_buf()
    }

    /// Facts about the table (a dict).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let table = self.table(py)?;
        let info = py.detach(|| table.info()).py(py)?;
        table_info_dict(py, &info)
    }

    /// Rows in the table.
    fn row_count(&self, py: Python<'_>) -> PyResult<u64> {
        let table = self.table(py)?;
        py.detach(|| table.row_count()).py(py)
    }

    /// The schema, as an empty Arrow stream.
    fn schema_stream(&self, py: Python<'_>) -> PyResult<ArrowStream> {
        let table = self.table(py)?;
        let schema = py.detach(|| table.schema()).py(py)?;
        Ok(stream_of(schema, Vec::new()))
    }

    /// Scans `columns` (all by default) of rows `[start, end)` (all by default) into an Arrow
    /// stream whose buffers point into the store's mapping.
    #[pyo3(signature = (columns=None, start=None, end=None))]
    fn scan(
        &self,
        py: Python<'_>,
        columns: Option<Vec<String>>,
        start: Option<u64>,
        end: Option<u64>,
    ) -> PyResult<ArrowStream> {
        let table = self.table(py)?;
        let (schema, batches) = py
            .detach(|| {
                let rows = match (start, end) {
                    (None, None) => None,
                    (start, end) => {
                        let total = table.row_count()?;
                        let start = start.unwrap_or(0).min(total);
                        let end = end.unwrap_or(total).clamp(start, total);
                        Some(start..end)
                    }
                };
                let wanted = columns.clone();
                let batches = table.scan_with(&ScanOptions { columns, rows })?;
                let schema = match (batches.first(), wanted) {
                    (Some(batch), _) => batch.schema(),
                    (None, None) => table.schema()?,
                    (None, Some(wanted)) => {
                        let full = table.schema()?;
                        let fields: Vec<Field> = wanted
                            .iter()
                            .filter_map(|name| full.field_with_name(name).ok().cloned())
                            .collect();
                        Arc::new(Schema::new(fields))
                    }
                };
                Ok::<_, Error>((schema, batches))
            })
            .py(py)?;
        Ok(stream_of(schema, batches))
    }

    fn __repr__(&self) -> String {
        format!("Table({:?})", self.url)
    }
}
