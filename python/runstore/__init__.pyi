"""Type stubs of runstore (see __init__.py for the full docstrings)."""

import os
from typing import Any, BinaryIO, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa

from ._errors import (
    AlreadyExists as AlreadyExists,
    AlreadyOpen as AlreadyOpen,
    Corrupted as Corrupted,
    DatabaseError as DatabaseError,
    Error as Error,
    InvalidInput as InvalidInput,
    InvalidType as InvalidType,
    InvalidName as InvalidName,
    InvalidQuery as InvalidQuery,
    InvalidStatus as InvalidStatus,
    InvalidUrl as InvalidUrl,
    InvalidValue as InvalidValue,
    IoError as IoError,
    NeedsRepair as NeedsRepair,
    NeedsUpgrade as NeedsUpgrade,
    NoActiveRun as NoActiveRun,
    NotAStore as NotAStore,
    NotFound as NotFound,
    ReadOnly as ReadOnly,
    RowCountMismatch as RowCountMismatch,
    RunCompletedWarning as RunCompletedWarning,
    SchemaMismatch as SchemaMismatch,
    StoreClosed as StoreClosed,
    UnsupportedVersion as UnsupportedVersion,
)

__version__: str
ROLE_KEY: str

TableData = Union[
    pa.Table, pa.RecordBatch, pa.RecordBatchReader, Mapping[str, Any], Any
]

def to_arrow_table(data: TableData) -> pa.Table:
    """Converts a dict of columns (lists, 1-D numpy arrays, 2-D float arrays as embeddings,
    2-D integer/boolean arrays as fixed-size lists without the embedding role, pyarrow
    arrays, pandas Series), a pyarrow Table/RecordBatch/RecordBatchReader or a pandas
    DataFrame to a pyarrow Table, without copying where the input allows. Raises InvalidType
    or InvalidInput naming the column that cannot be converted."""

class Table:
    """A stored table; reads are zero-copy views of the store's memory map."""
    @property
    def url(self) -> str:
        """The table's url."""
    @property
    def num_rows(self) -> int:
        """Rows in the table."""
    def __len__(self) -> int: ...
    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema (roles in field metadata)."""
    def info(self) -> Dict[str, Any]:
        """url, stream_name, row_count, file_size, foreign_table_url, created_us, chunk_count."""
    def to_arrow(
        self,
        columns: Optional[Sequence[str]] = None,
        start: Optional[int] = None,
        end: Optional[int] = None,
    ) -> pa.Table:
        """Rows [start, end) of columns as a pyarrow Table whose buffers point into the
        mapping."""
    def to_pandas(self, columns: Optional[Sequence[str]] = None, **kwargs: Any) -> Any:
        """The table as a pandas DataFrame."""
    def to_numpy(
        self, column: str, start: Optional[int] = None, end: Optional[int] = None
    ) -> np.ndarray:
        """One column as numpy (an embedding column as a 2-D array)."""

class ReduceResult(Dict[str, str]):
    """{source url: reduced url}, with the reducers used and the tables deleted."""
    reducers: List[Dict[str, Any]]
    deleted: List[str]
    @property
    def explained_variance_ratio(self) -> Dict[str, List[float]]:
        """PCA's explained variance ratio per reduced column."""

class Scalars(Tuple[np.ndarray, np.ndarray]):
    """One logged key's points: steps (int64) and values (float64)."""
    @property
    def steps(self) -> np.ndarray: ...
    @property
    def values(self) -> np.ndarray: ...

class Run:
    """A run: 3LC's Run. A context manager: entering sets an EMPTY run RUNNING; leaving
    commits logged rows and marks an in-progress run COMPLETED, or CANCELLED with the
    exception's type appended to its description when an exception leaves."""
    def __init__(self, native: Any, store: Store) -> None: ...
    def __enter__(self) -> Run:
        """Sets an EMPTY run RUNNING."""
    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        """Commits logged rows; COMPLETED if RUNNING/COLLECTING/POST_PROCESSING, or CANCELLED
        ("... (cancelled by ValueError)" in the description) when an exception leaves."""
    @staticmethod
    def from_url(url: Any, store: Optional[Store] = None) -> Run:
        """The run at url: 'exp.runs/<project>/runs/<name>' (a store path, then the run url),
        or '<project>/runs/<name>' in store, else the store opened last, else the default
        store. Raises NotFound, InvalidUrl."""
    @staticmethod
    def from_names(
        run_name: Optional[str] = None,
        project_name: Optional[str] = None,
        root_url: Any = None,
        store: Optional[Store] = None,
    ) -> Run:
        """The run run_name of project_name in the store at root_url (else store, else the
        store opened last, else the default store)."""
    @property
    def store(self) -> Store:
        """The store of the run."""
    @property
    def name(self) -> str:
        """The name of the run."""
    @property
    def project(self) -> str:
        """The project of the run."""
    @property
    def url(self) -> str:
        """<project>/runs/<name>."""
    @property
    def bulk_data_url(self) -> str:
        """The url the run's blobs live under."""
    @property
    def description(self) -> str:
        """The description."""
    @property
    def status(self) -> Status:
        """3LC's float status code (1.0 COMPLETED ... 7.0 CANCELLED); equals its name too."""
    @property
    def status_name(self) -> str:
        """The status name (RUNNING, COMPLETED, ...)."""
    @property
    def status_code(self) -> int:
        """3LC's status code, 1 to 7."""
    @property
    def created_us(self) -> int:
        """Creation time, microseconds since the epoch."""
    @property
    def last_modified_us(self) -> int:
        """Last change, microseconds since the epoch."""
    @property
    def created(self) -> str:
        """Creation time, ISO 8601 in UTC."""
    @property
    def last_modified(self) -> str:
        """Last change, ISO 8601 in UTC."""
    @property
    def constants(self) -> Dict[str, Any]:
        """3LC's constants: parameters, inputs, outputs."""
    @property
    def init_parameters(self) -> Dict[str, Any]:
        """3LC's Run constructor arguments describing this run."""
    @property
    def config(self) -> Config:
        """wandb's run.config: the parameters; writes update them."""
    @property
    def summary(self) -> Summary:
        """wandb's run.summary: the latest value of each output key; writes add outputs."""
    def finish(self, exit_code: Optional[int] = None) -> None:
        """Commits logged steps; RUNNING becomes COMPLETED (CANCELLED with a non-zero
        exit_code); stops being the active run."""
    @property
    def parameters(self) -> Dict[str, Any]:
        """The parameters."""
    @property
    def input_tables(self) -> List[str]:
        """Input table urls."""
    @property
    def input_values(self) -> List[Any]:
        """Input values."""
    @property
    def output_values(self) -> List[Any]:
        """Output values."""
    @property
    def metrics_tables(self) -> List[Table]:
        """The run's metrics tables."""
    @property
    def metrics_infos(self) -> List[Dict[str, Any]]:
        """Metric table infos: url, stream_name, row_count, file_size."""
    def set_parameters(self, parameters: Mapping[str, Any]) -> None:
        """Sets top-level keys as dict.update: a nested dict given replaces the stored one
        whole; keys not given are kept."""
    def set_description(self, description: str) -> None:
        """Sets the description."""
    def add_input_table(self, input_table: Union[Table, str]) -> None:
        """Adds an input table."""
    def add_input_value(self, input_value: Mapping[str, Any]) -> None:
        """Adds an input value (kept once)."""
    def add_output_value(self, output_value: Mapping[str, Any]) -> None:
        """Appends an output value."""
    def add_output_values(self, output_values: Sequence[Mapping[str, Any]]) -> None:
        """Appends output values in one commit."""
    def add_metrics_data(
        self,
        metrics: TableData,
        override_column_schemas: Optional[Mapping[str, Union[pa.Field, pa.DataType]]] = None,
        input_table_url: Optional[Union[str, Table]] = None,
        table_writer_base_name: str = "metrics",
        stream_name: str = "",
    ) -> List[Dict[str, Any]]:
        """Writes metrics as a new table of the run; returns the table infos. Raises
        RowCountMismatch (ValueError) and NotFound (FileNotFoundError)."""
    def append_metrics(self, table_name: str, data: TableData) -> Dict[str, Any]:
        """Appends rows to <run url>/<table_name> in one commit."""
    def update_metrics(self, metric_infos: Optional[Sequence[Mapping[str, Any]]] = None) -> None:
        """Adds metric table infos not yet present."""
    def add_metrics_table(self, metrics_table: Union[Table, str]) -> None:
        """Adds a stored table to the run's metrics."""
    def log(self, values: Mapping[str, float], step: Optional[int] = None) -> None:
        """Logs one step of scalars (streaming writer, group commit); warns once
        (RunCompletedWarning) when the run is COMPLETED."""
    @property
    def log_table(self) -> Optional[Table]:
        """The step table log() writes to, or the run's newest (where log() carries on)."""
    def history(self, keys: Optional[Sequence[str]] = None) -> pa.Table:
        """Everything log() wrote, one row per step (ascending), one float64 column per key,
        joined by step over the run's step tables; a never-logged key raises NotFound."""
    def scalars(self, key: str) -> Scalars:
        """One logged key's (steps, values) as numpy arrays, only where it was logged."""
    def flush_log(self) -> None:
        """Commits and seals the logged rows."""
    def close_log(self) -> None:
        """Commits the logged rows and closes the logger (log() then carries on)."""
    def set_status(self, status: Union[int, float, str]) -> None:
        """Sets the status by code or name."""
    def set_status_running(self) -> None:
        """Sets the status to RUNNING."""
    def set_status_collecting(self) -> None:
        """Sets the status to COLLECTING."""
    def set_status_post_processing(self) -> None:
        """Sets the status to POST_PROCESSING."""
    def set_status_completed(self) -> None:
        """Sets the status to COMPLETED."""
    def set_status_empty(self) -> None:
        """Sets the status to EMPTY."""
    def set_status_paused(self) -> None:
        """Sets the status to PAUSED."""
    def set_status_cancelled(self) -> None:
        """Sets the status to CANCELLED."""
    def copy(
        self,
        run_name: Optional[str] = None,
        project_name: Optional[str] = None,
        root_url: Any = None,
        if_exists: str = "raise",
        *,
        destination_url: Optional[str] = None,
    ) -> Run:
        """Copies the run (into the store at root_url, created if missing); names and
        root_url take precedence over destination_url; if_exists is 'raise', 'rename' or
        'overwrite'."""
    def delete(self) -> None:
        """Deletes the run."""
    def reduce_embeddings_per_dataset(
        self,
        delete_source_tables: bool = True,
        *,
        method: str = "umap",
        n_components: int = 2,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        seed: int = 0,
        retain_source_embedding_column: bool = False,
        columns: Optional[Sequence[str]] = None,
    ) -> ReduceResult:
        """Reduces embeddings per input table; returns {source url: reduced url} with
        .reducers (PCA's explained variance) and .deleted. An unknown column raises
        InvalidInput; a kept source stays listed; reductions are reduced again only when
        named."""
    def reduce_embeddings_by_foreign_table_url(
        self,
        foreign_table_url: Union[str, Table],
        delete_source_tables: bool = True,
        *,
        method: str = "umap",
        n_components: int = 2,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        seed: int = 0,
        retain_source_embedding_column: bool = False,
        columns: Optional[Sequence[str]] = None,
    ) -> ReduceResult:
        """Reduces with the reducer of foreign_table_url; returns {source url: reduced url}
        with .reducers and .deleted."""
    def put_bulk(
        self, name: str, data: Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", BinaryIO, np.ndarray]
    ) -> int:
        """Stores a blob from bytes, a path or binary file (streamed) or a numpy array (.npy,
        dtype and shape kept); ``name`` may hold folders ("ckpt/epoch-3/model.pt")."""
    def bulk(self, name: str) -> bytes:
        """A blob's bytes."""
    def bulk_array(self, name: str) -> np.ndarray:
        """The numpy array put_bulk stored as the blob ``name``."""
    def bulk_list(self) -> List[Tuple[str, int]]:
        """(name, length) of each blob the user stored (not the stored reducers)."""
    def reducer_list(self) -> List[Dict[str, Any]]:
        """The stored embedding reducers: name, method, column, foreign_table_url, fitted_on,
        n_components, dim, seed, explained_variance_ratio (PCA)."""

class RunList(List[Run]):
    """Runs a query selected."""
    def __init__(self, runs: Iterable[Run], store: Store, query: Dict[str, Any]) -> None: ...
    def to_arrow(self, columns: Optional[Sequence[str]] = None) -> pa.Table:
        """project, name, url, then one column per key (default: status, params, outputs)."""

class Store:
    """An open store file (a context manager: an exception leaving the block marks the runs
    init() started on it and still in progress CANCELLED, then the store closes)."""
    def __init__(self, native: Any) -> None: ...
    @property
    def path(self) -> str:
        """The file's path."""
    @property
    def read_only(self) -> bool:
        """Opened read-only."""
    @property
    def closed(self) -> bool:
        """close() was called."""
    def init(
        self,
        project_name: str = "default",
        run_name: Optional[str] = None,
        description: Optional[str] = None,
        parameters: Optional[Mapping[str, Any]] = None,
        if_exists: str = "rename",
    ) -> Run:
        """Creates an EMPTY run and makes it active (3LC's tlc.init); use it as a context
        manager to run it for the block."""
    def active_run(self) -> Run:
        """The active run; raises NoActiveRun."""
    def set_active_run(self, run: Union[Run, str]) -> None:
        """Makes run the active run."""
    def run(self, url: str) -> Run:
        """The run at url."""
    def run_by_names(self, run_name: str, project_name: str) -> Run:
        """The run run_name of project_name."""
    def runs(
        self,
        filter: Optional[str] = None,
        order_by: Optional[str] = None,
        limit: Optional[int] = None,
        *,
        project: Optional[str] = None,
        offset: Optional[int] = None,
    ) -> RunList:
        """Runs selected by a filter, sorted, limited; a key no run has raises InvalidQuery."""
    def table(self, url: str) -> Table:
        """The table at url."""
    def tables(self, project: Optional[str] = None) -> List[Dict[str, Any]]:
        """Facts about every table."""
    def create_table(self, project: str, name: str, data: TableData) -> Table:
        """Stores data as the input table <project>/tables/<name>."""
    def projects(self) -> List[Dict[str, Any]]:
        """Projects with run counts."""
    def delete_run(self, url: str) -> None:
        """Deletes the run at url."""
    def flush(self) -> None:
        """Commits every logger's rows."""
    def close(self) -> None:
        """Flushes loggers and closes the file (its lock too), whatever Run and Table
        objects of it live on; their later use raises StoreClosed."""
    def __enter__(self) -> Store: ...
    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        """Cancels the in-progress runs init() started if an exception leaves; closes."""

def open(
    path: Any,
    *,
    read_only: bool = False,
    create: bool = True,
    shared: bool = False,
    timeout: Optional[float] = None,
) -> Store:
    """Opens (or creates) the store at path; timeout (seconds) waits for another writer
    (single or shared) to close; AlreadyOpen names the holder and what to do."""

def init(
    project_name: Optional[str] = None,
    run_name: Optional[str] = None,
    description: Optional[str] = None,
    parameters: Optional[Mapping[str, Any]] = None,
    if_exists: str = "rename",
    root_url: Any = None,
    *,
    project: Optional[str] = None,
    name: Optional[str] = None,
    config: Any = None,
    dir: Any = None,
    notes: Optional[str] = None,
) -> Run:
    """Creates a run in the store at root_url (else the store opened last, else the default
    store) and makes it the process's active run; wandb's/trackio's names accepted."""

def active_run() -> Run:
    """The process's active run."""

def set_active_run(run: Union[Run, str]) -> None:
    """Makes run (a Run or a run url) the process's active run."""

def default_store_path() -> str:
    """$RUNSTORE_PATH, else ./runs.runs."""

class Status(float):
    """3LC's float status code that also equals its name."""
    @property
    def name(self) -> str: ...
    @property
    def code(self) -> int: ...

class Config(Dict[str, Any]):
    """wandb's config over a run's parameters."""
    def update(self, other: Any = ..., allow_val_change: Any = None, **kwargs: Any) -> None: ...  # type: ignore[override]
    def setdefaults(self, values: Mapping[str, Any]) -> None: ...
    def as_dict(self) -> Dict[str, Any]: ...
    def __getattr__(self, key: str) -> Any: ...

class Summary(Dict[str, Any]):
    """wandb's summary over a run's latest outputs."""
    def update(self, other: Any = ..., **kwargs: Any) -> None: ...  # type: ignore[override]
    def as_dict(self) -> Dict[str, Any]: ...
    def __getattr__(self, key: str) -> Any: ...

config: Config
summary: Summary

def add_output_value(output_value: Mapping[str, Any]) -> None:
    """Run.add_output_value on the active run."""
def log(data: Mapping[str, Any], step: Optional[int] = None) -> None:
    """Run.log on the active run."""
def finish(exit_code: Optional[int] = None, quiet: Optional[bool] = None) -> None:
    """Ends the active run (wandb's finish)."""
def set_status_running() -> None: ...
def set_status_collecting() -> None: ...
def set_status_post_processing() -> None: ...
def set_status_completed() -> None: ...
def set_status_empty() -> None: ...
def set_status_paused() -> None: ...
def set_status_cancelled() -> None: ...
def reduce_embeddings_per_dataset(
    delete_source_tables: bool = True, *, run: Any = None, **kwargs: Any
) -> Dict[str, str]:
    """Run.reduce_embeddings_per_dataset on run (default: the active run)."""
def reduce_embeddings_by_foreign_table_url(
    foreign_table_url: Any, delete_source_tables: bool = True, *, run: Any = None, **kwargs: Any
) -> Dict[str, str]:
    """Run.reduce_embeddings_by_foreign_table_url on run (default: the active run)."""

class MetricsTableWriter:
    """A metrics table streamed batch by batch (3LC's MetricsTableWriter)."""
    def __init__(
        self,
        run: Any = None,
        foreign_table_url: Any = None,
        column_schemas: Optional[Mapping[str, Any]] = None,
        *,
        table_writer_base_name: str = "metrics",
        stream_name: str = "",
        rows_per_batch: int = 10000,
        run_url: Optional[str] = None,
    ) -> None: ...
    @property
    def url(self) -> Optional[str]: ...
    @property
    def rows_written(self) -> int: ...
    @property
    def finalized(self) -> bool: ...
    def add_batch(self, metrics_batch: TableData) -> None: ...
    def add_row(self, row: Mapping[str, Any]) -> None: ...
    def finalize(self) -> Table: ...
    def __enter__(self) -> MetricsTableWriter: ...
    def __exit__(self, *exc: Any) -> None: ...

class ClassificationCollector:
    """loss, predicted, confidence, correct, top-k from logits and labels (numpy)."""
    def __init__(
        self,
        label_column: str = "label",
        logits_key: Optional[str] = None,
        top_k: Sequence[int] = (),
        probabilities: bool = False,
        prefix: str = "",
    ) -> None: ...
    def __call__(self, batch: Dict[str, np.ndarray], predictions: Any) -> Dict[str, np.ndarray]: ...

class EmbeddingsCollector:
    """A model output as an embedding column."""
    def __init__(self, key: Optional[str] = None, column: str = "embedding") -> None: ...
    def __call__(self, batch: Dict[str, np.ndarray], predictions: Any) -> Dict[str, np.ndarray]: ...

class FunctionCollector:
    """Any fn(batch, predictions) -> {column: values} as a collector."""
    def __init__(self, fn: Any, needs_predictions: bool = True) -> None: ...
    def __call__(self, batch: Dict[str, np.ndarray], predictions: Any) -> Mapping[str, Any]: ...

def collect_metrics(
    table: Any,
    collectors: Any,
    predictor: Any = None,
    batch_size: int = 1024,
    run: Any = None,
    split: str = "",
    stream_name: str = "",
    *,
    columns: Optional[Sequence[str]] = None,
    progress: Optional[bool] = None,
    table_writer_base_name: Optional[str] = None,
) -> Table:
    """Runs predictor and collectors over table in batches into one metrics table joined by
    example_id (streamed); returns it."""

class SummaryWriter:
    """TensorBoard's SummaryWriter over a store: one run per writer."""
    run: Run
    def __init__(
        self,
        log_dir: Any = None,
        comment: str = "",
        purge_step: Optional[int] = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
        *,
        store: Any = None,
        project_name: str = "default",
        run_name: Optional[str] = None,
    ) -> None: ...
    def get_logdir(self) -> str: ...
    def add_scalar(self, tag: str, scalar_value: Any, global_step: Optional[int] = None,
                   walltime: Optional[float] = None, new_style: bool = False,
                   double_precision: bool = False) -> None: ...
    def add_scalars(self, main_tag: str, tag_scalar_dict: Mapping[str, Any],
                    global_step: Optional[int] = None, walltime: Optional[float] = None) -> None: ...
    def add_hparams(self, hparam_dict: Mapping[str, Any], metric_dict: Mapping[str, Any],
                    hparam_domain_discrete: Any = None, run_name: Optional[str] = None,
                    global_step: Optional[int] = None) -> None: ...
    def add_text(self, tag: str, text_string: str, global_step: Optional[int] = None,
                 walltime: Optional[float] = None) -> None: ...
    def add_histogram(self, tag: str, values: Any, global_step: Optional[int] = None,
                      bins: Any = "tensorflow", walltime: Optional[float] = None,
                      max_bins: Optional[int] = None) -> None: ...
    def add_embedding(self, mat: Any, metadata: Optional[Sequence[Any]] = None,
                      label_img: Any = None, global_step: Optional[int] = None,
                      tag: str = "default", metadata_header: Optional[Sequence[str]] = None) -> Any: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> SummaryWriter: ...
    def __exit__(self, *exc: Any) -> None: ...

from . import mlflow as mlflow
