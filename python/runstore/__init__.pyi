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
    SchemaMismatch as SchemaMismatch,
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
    DataFrame to a pyarrow Table, without copying where the input allows."""

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
    """A run: 3LC's Run."""
    def __init__(self, native: Any, store: Store) -> None: ...
    @staticmethod
    def from_url(url: str, store: Optional[Store] = None) -> Run:
        """The run at url (default store: the one opened last). Raises NotFound."""
    @staticmethod
    def from_names(run_name: str, project_name: str, store: Optional[Store] = None) -> Run:
        """The run run_name of project_name."""
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
    def status(self) -> str:
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
        """Merges parameters into the run's."""
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
        """Logs one step of scalars (streaming writer, group commit)."""
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
        if_exists: str = "raise",
        *,
        destination_url: Optional[str] = None,
    ) -> Run:
        """Copies the run; if_exists is 'raise', 'rename' or 'overwrite'."""
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
    """An open store file (a context manager)."""
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
        """Creates a run and makes it active (3LC's tlc.init)."""
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
        """Flushes loggers and closes the handle."""
    def __enter__(self) -> Store: ...
    def __exit__(self, *exc: Any) -> None: ...

def open(
    path: Any,
    *,
    read_only: bool = False,
    create: bool = True,
    shared: bool = False,
    timeout: Optional[float] = None,
) -> Store:
    """Opens (or creates) the store at path."""

def init(
    project_name: str = "default",
    run_name: Optional[str] = None,
    description: Optional[str] = None,
    parameters: Optional[Mapping[str, Any]] = None,
    if_exists: str = "rename",
) -> Run:
    """Store.init on the store opened last."""

def active_run() -> Run:
    """Store.active_run on the store opened last."""

def set_active_run(run: Union[Run, str]) -> None:
    """Store.set_active_run on the store opened last."""
