"""runstore: one transactional file for the runs of your ML experiments.

An offline, embedded store with 3LC's ``Run`` model, on top of the Rust core::

    import runstore

    with runstore.open("experiments.runs") as store:
        run = store.init(project_name="mnist", parameters={"lr": 0.01})
        for step in range(100):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.add_output_value({"epoch": 1, "loss": 0.01})
        run.set_status_completed()

Arrow data crosses into and out of the Rust core without copies (the Arrow C stream
interface): ``Table.to_arrow()`` returns a ``pyarrow.Table`` whose buffers point into the
store's memory map. Every error is a :class:`runstore.Error` subclass.
"""

from __future__ import annotations

import atexit
import builtins
import threading
import weakref
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from . import _bulk, _history, _native, _reduce
from ._reduce import ReduceResult
from ._errors import *  # noqa: F401,F403
from ._errors import Error, NoActiveRun, __all__ as _error_names

__version__ = _native.__version__

#: Field-metadata key of a column's role (``embedding``, ``label``, ``prediction``, ...).
ROLE_KEY: str = _native.ROLE_KEY

__all__ = [
    "open",
    "Store",
    "Run",
    "Table",
    "RunList",
    "init",
    "active_run",
    "set_active_run",
    "to_arrow_table",
    "ReduceResult",
    "ROLE_KEY",
    *_error_names,
]

_open_stores: "weakref.WeakSet[Store]" = weakref.WeakSet()
_default_lock = threading.Lock()
_default_store: Optional["Store"] = None


# --------------------------------------------------------------------------------------------
# Arrow conversion


def _arrow_from_stream(stream: Any) -> pa.Table:
    """A pyarrow Table over an object with ``__arrow_c_stream__`` (no copy).

    Goes through ``RecordBatchReader`` rather than ``pa.table()``, which imports pandas on
    first use (0.2 s) to check whether its argument is a DataFrame.
    """
    from_stream = getattr(pa.RecordBatchReader, "from_stream", None)
    if from_stream is not None:  # pyarrow >= 15
        return from_stream(stream).read_all()
    return pa.RecordBatchReader._import_from_c_capsule(stream.__arrow_c_stream__()).read_all()


def _embedding_array(matrix: np.ndarray) -> pa.Array:
    matrix = np.ascontiguousarray(matrix)
    if matrix.dtype not in (np.float32, np.float64):
        matrix = matrix.astype(np.float32)
    flat = pa.array(matrix.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])


def _matrix_column(name: str, matrix: np.ndarray) -> "tuple[Any, Optional[str]]":
    """A 2-D array as (FixedSizeList array, role): floats are an embedding; integers and
    booleans (boxes, token ids, masks) keep their type as a plain FixedSizeList, with no
    embedding role (a reduction would treat them as coordinates); anything else is refused."""
    kind = matrix.dtype.kind
    if kind == "f":
        return _embedding_array(matrix), "embedding"
    if kind in "iub":
        flat = pa.array(np.ascontiguousarray(matrix).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1]), None
    raise InvalidInput(  # noqa: F405
        f"invalid input: column {name!r} is a 2-D array of {matrix.dtype}; a 2-D column is "
        "floats (an embedding) or integers/booleans (a fixed-size list)"
    )


def _column(name: str, values: Any) -> "tuple[pa.Field, Any]":
    """One column as (field, array): numpy 2-D floats become an embedding column."""
    role = None
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        array = values
    elif isinstance(values, np.ndarray):
        if values.ndim == 2:
            array, role = _matrix_column(name, values)
        elif values.ndim == 1:
            array = pa.array(values)
        else:
            raise InvalidInput(  # noqa: F405
                f"invalid input: column {name!r} is a {values.ndim}-D array; "
                "give 1-D columns, or 2-D for an embedding"
            )
    elif hasattr(values, "__arrow_c_array__") or hasattr(values, "__arrow_c_stream__"):
        array = pa.array(values) if hasattr(values, "__arrow_c_array__") else pa.chunked_array(values)
    else:
        if hasattr(values, "to_numpy") and not isinstance(values, (list, tuple)):
            values = values.to_numpy()  # a pandas Series
            return _column(name, values)
        as_list = list(values)
        if as_list and isinstance(as_list[0], (list, tuple, np.ndarray)):
            try:
                matrix = np.asarray(as_list)
            except ValueError:
                matrix = None
            if matrix is not None and matrix.ndim == 2 and matrix.dtype.kind in "fiub":
                # Lists of floats are an embedding (float32); of integers or booleans, a
                # fixed-size list of them, as a 2-D array of that kind would be.
                if matrix.dtype.kind == "f":
                    matrix = matrix.astype(np.float32)
                return _column(name, matrix)
        array = pa.array(as_list)
    metadata = {ROLE_KEY: role} if role else None
    return pa.field(name, array.type, nullable=True, metadata=metadata), array


def to_arrow_table(data: Any) -> pa.Table:
    """Converts tabular data to a ``pyarrow.Table``, without copying where the input allows.

    Accepts a ``pyarrow.Table``, ``RecordBatch`` or ``RecordBatchReader``; any object with
    ``__arrow_c_stream__``; a pandas ``DataFrame``; or a mapping of column name to column,
    where a column is a list, a 1-D numpy array, a pyarrow array, a pandas Series, or a 2-D
    numpy array (or list of equal-length number lists): floats become an embedding column
    (``FixedSizeList<float32>``, or float64 as given, marked with role ``embedding``);
    integers or booleans a ``FixedSizeList`` of their type without the embedding role (a
    reduction never treats them as coordinates); other 2-D arrays raise
    :class:`InvalidInput`.
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, Mapping):
        fields = []
        arrays = []
        for name, values in data.items():
            if not isinstance(name, str):
                raise TypeError(f"column names must be strings, got {type(name).__name__}")
            field, array = _column(name, values)
            fields.append(field)
            arrays.append(array)
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    module = type(data).__module__
    if module.startswith("pandas") and hasattr(data, "columns"):
        return to_arrow_table({str(c): data[c] for c in data.columns})
    if hasattr(data, "__arrow_c_stream__"):
        return _arrow_from_stream(data)
    raise TypeError(
        f"cannot use {type(data).__name__} as a table: give a dict of columns, a pyarrow "
        "Table or RecordBatch, or a pandas DataFrame"
    )


def _override_schema(overrides: Mapping[str, Any]) -> pa.Table:
    fields = []
    for name, spec in overrides.items():
        if isinstance(spec, pa.Field):
            fields.append(spec.with_name(name))
        elif isinstance(spec, pa.DataType):
            fields.append(pa.field(name, spec))
        elif isinstance(spec, str) and spec in ("embedding", "label", "prediction", "example_id", "weight"):
            raise TypeError(
                "give an override as a pyarrow Field (to set a role, "
                f"pa.field(name, type, metadata={{runstore.ROLE_KEY: {spec!r}}}))"
            )
        else:
            raise TypeError(
                f"override_column_schemas[{name!r}] must be a pyarrow Field or DataType, "
                f"got {type(spec).__name__}"
            )
    return pa.schema(fields).empty_table()


def _url_of(table: Any) -> str:
    if isinstance(table, Table):
        return table.url
    if isinstance(table, str):
        return table
    url = getattr(table, "url", None)
    if isinstance(url, str):
        return url
    raise TypeError(f"expected a Table or a url, got {type(table).__name__}")


def _numpy_of(array: pa.Array) -> np.ndarray:
    """An Arrow array as numpy: a view of its buffer for numbers without nulls (no copy, and
    none of pyarrow's pandas machinery, whose first use imports pandas), an embedding as a
    2-D view; otherwise ``to_numpy``."""
    kind = array.type
    if pa.types.is_fixed_size_list(kind):
        width = kind.list_size
        values = array.values.slice(array.offset * width, len(array) * width)
        return _numpy_of(values).reshape(-1, width)
    if array.null_count == 0 and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        code = "f" if pa.types.is_floating(kind) else ("i" if pa.types.is_signed_integer(kind) else "u")
        dtype = np.dtype(f"<{code}{kind.bit_width // 8}")
        return np.frombuffer(
            array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize
        )
    return array.to_numpy(zero_copy_only=False)


# --------------------------------------------------------------------------------------------
# Tables


class Table:
    """A stored table: a run's metrics table or a project's input table.

    Reads are zero-copy: :meth:`to_arrow` returns a ``pyarrow.Table`` whose fixed-width
    buffers point into the store's memory map, kept alive as long as Python holds them.
    """

    __slots__ = ("_t",)

    def __init__(self, native: Any) -> None:
        self._t = native

    @property
    def url(self) -> str:
        """The table's url (``<project>/runs/<run>/<name>`` or ``<project>/tables/<name>``)."""
        return self._t.url

    @property
    def num_rows(self) -> int:
        """Rows in the table."""
        return self._t.row_count()

    def __len__(self) -> int:
        return self.num_rows

    @property
    def schema(self) -> pa.Schema:
        """The table's Arrow schema (with roles in field metadata)."""
        return _arrow_from_stream(self._t.schema_stream()).schema

    def info(self) -> Dict[str, Any]:
        """Facts: url, stream_name, row_count, file_size, foreign_table_url, created_us,
        chunk_count."""
        return self._t.info()

    def to_arrow(
        self,
        columns: Optional[Sequence[str]] = None,
        start: Optional[int] = None,
        end: Optional[int] = None,
    ) -> pa.Table:
        """The rows ``[start, end)`` (all by default) of ``columns`` (all by default) as a
        ``pyarrow.Table``, zero-copy: buffers point into the store's mapping."""
        cols = list(columns) if columns is not None else None
        return _arrow_from_stream(self._t.scan(cols, start, end))

    def to_pandas(self, columns: Optional[Sequence[str]] = None, **kwargs: Any) -> Any:
        """The table as a pandas DataFrame (needs pandas); ``kwargs`` go to
        ``pyarrow.Table.to_pandas``."""
        return self.to_arrow(columns).to_pandas(**kwargs)

    def to_numpy(
        self, column: str, start: Optional[int] = None, end: Optional[int] = None
    ) -> np.ndarray:
        """One column as a numpy array: zero-copy for a primitive column without nulls
        stored in one chunk; an embedding column becomes a 2-D array."""
        chunked = self.to_arrow([column], start, end).column(0)
        parts = [_numpy_of(chunk) for chunk in chunked.chunks]
        if not parts:
            parts = [_numpy_of(pa.array([], type=chunked.type))]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __repr__(self) -> str:
        return f"Table({self.url!r})"


# --------------------------------------------------------------------------------------------
# Runs


class Run:
    """A run: 3LC's ``Run`` (parameters, inputs, outputs, status, metrics tables, blobs).

    Get one from :meth:`Store.init`, :meth:`Store.active_run`, :meth:`Run.from_url` or
    :meth:`Run.from_names`.
    """

    __slots__ = ("_r", "_store", "__weakref__")

    def __init__(self, native: Any, store: "Store") -> None:
        self._r = native
        self._store = store

    # -- lookup

    @staticmethod
    def from_url(url: str, store: Optional["Store"] = None) -> "Run":
        """The run at ``url`` (``<project>/runs/<name>``) in ``store`` (default: the store
        opened last). Raises :class:`NotFound` (a ``FileNotFoundError``) if absent."""
        store = store if store is not None else _default()
        return store.run(url)

    @staticmethod
    def from_names(
        run_name: str, project_name: str, store: Optional["Store"] = None
    ) -> "Run":
        """The run ``run_name`` of ``project_name`` in ``store`` (default: the store opened
        last)."""
        store = store if store is not None else _default()
        return store.run_by_names(run_name, project_name)

    # -- properties

    @property
    def store(self) -> "Store":
        """The store this run lives in."""
        return self._store

    @property
    def name(self) -> str:
        """The name of the run."""
        return self._r.name

    @property
    def project(self) -> str:
        """The project of the run."""
        return self._r.project

    @property
    def url(self) -> str:
        """``<project>/runs/<name>``."""
        return self._r.url

    @property
    def bulk_data_url(self) -> str:
        """The url the run's blobs live under."""
        return self._r.bulk_data_url

    @property
    def description(self) -> str:
        """The run's description."""
        return self._r.description

    @property
    def status(self) -> str:
        """The status name: EMPTY, RUNNING, COLLECTING, POST_PROCESSING, COMPLETED, PAUSED or
        CANCELLED."""
        return self._r.status

    @property
    def status_code(self) -> int:
        """The status as 3LC's code (1 to 7)."""
        return self._r.status_code

    @property
    def created_us(self) -> int:
        """Creation time, microseconds since the Unix epoch (UTC)."""
        return self._r.created_us

    @property
    def last_modified_us(self) -> int:
        """Time of the last change, microseconds since the Unix epoch (UTC)."""
        return self._r.last_modified_us

    @property
    def parameters(self) -> Dict[str, Any]:
        """The parameters (a dict)."""
        return self._r.parameters

    @property
    def input_tables(self) -> List[str]:
        """The input tables' urls."""
        return self._r.input_tables

    @property
    def input_values(self) -> List[Any]:
        """Input values, in the order added."""
        return self._r.input_values

    @property
    def output_values(self) -> List[Any]:
        """Output values, in the order added."""
        return self._r.output_values

    @property
    def metrics_tables(self) -> List[Table]:
        """The run's metrics tables (those stored in this store)."""
        return [Table(t) for t in self._r.metrics_tables()]

    @property
    def metrics_infos(self) -> List[Dict[str, Any]]:
        """The run's metric table infos: dicts of url, stream_name, row_count, file_size."""
        return self._r.metrics_infos()

    # -- changes

    def set_parameters(self, parameters: Mapping[str, Any]) -> None:
        """Merges ``parameters`` into the run's parameters (nested dicts merge key by key)."""
        self._r.set_parameters(parameters)

    def set_description(self, description: str) -> None:
        """Sets the description."""
        self._r.set_description(description)

    def add_input_table(self, input_table: Union[Table, str]) -> None:
        """Adds an input table (a :class:`Table` or a url) to the run's inputs."""
        self._r.add_input_table(_url_of(input_table))

    def add_input_value(self, input_value: Mapping[str, Any]) -> None:
        """Adds a value to the run's inputs (a value equal to one already added is kept
        once)."""
        self._r.add_input_value(input_value)

    def add_output_value(self, output_value: Mapping[str, Any]) -> None:
        """Appends a value to the run's outputs (constant cost per call)."""
        self._r.add_output_value(output_value)

    def add_output_values(self, output_values: Sequence[Mapping[str, Any]]) -> None:
        """Appends several output values in one commit."""
        self._r.add_output_values(list(output_values))

    # -- metrics

    def add_metrics_data(
        self,
        metrics: Any,
        override_column_schemas: Optional[Mapping[str, Any]] = None,
        input_table_url: Optional[Union[str, Table]] = None,
        table_writer_base_name: str = "metrics",
        stream_name: str = "",
    ) -> List[Dict[str, Any]]:
        """Writes ``metrics`` as a new metrics table ``<run url>/<base>_NNNN`` and attaches it
        to the run; returns the written table infos.

        ``metrics`` is a dict of columns (lists, numpy arrays, a 2-D float array becomes an
        embedding column), a pyarrow Table/RecordBatch, or a pandas DataFrame.
        ``override_column_schemas`` maps a column to a pyarrow Field or DataType it is cast
        to. With ``input_table_url`` the rows must match the input table one to one (or carry
        an ``example_id`` column).

        Raises :class:`RowCountMismatch` (a ``ValueError``) when the row counts differ and
        :class:`NotFound` (a ``FileNotFoundError``) when the input table does not exist.
        """
        table = to_arrow_table(metrics)
        overrides = _override_schema(override_column_schemas) if override_column_schemas else None
        url = _url_of(input_table_url) if input_table_url is not None else None
        return self._r.add_metrics_data(
            table, overrides, url, table_writer_base_name, stream_name or None
        )

    def append_metrics(self, table_name: str, data: Any) -> Dict[str, Any]:
        """Appends rows to the metrics table ``<run url>/<table_name>`` in one commit (created,
        with the data's schema, on first use). Returns the table info with ``rows_appended``
        and ``created``."""
        return self._r.append_metrics(table_name, to_arrow_table(data))

    def update_metrics(self, metric_infos: Optional[Sequence[Mapping[str, Any]]] = None) -> None:
        """Adds metric table infos (dicts with ``url``, and optionally ``stream_name``,
        ``row_count``, ``file_size``); infos already present are not added again."""
        self._r.update_metrics([dict(i) for i in (metric_infos or [])])

    def add_metrics_table(self, metrics_table: Union[Table, str]) -> None:
        """Adds a stored table (a :class:`Table` or its url) to the run's metrics."""
        self._r.add_metrics_table(_url_of(metrics_table))

    # -- per-step logging

    def log(self, values: Mapping[str, float], step: Optional[int] = None) -> None:
        """Logs one step of scalars, e.g. ``run.log({"loss": 0.3, "acc": 0.9}, step=10)``.

        Rows go to the metrics table ``<run url>/steps_NNNN`` (a ``step`` column and one
        float column per key) through the streaming writer with group commit: the call
        returns at once and rows are durable within 100 ms; they are committed and sealed on
        :meth:`flush_log`, :meth:`close_log`, ``store.close()``, leaving a ``with`` block, or
        interpreter exit. ``step`` defaults to the previous step + 1 (from 0, or after the
        last step logged, when the run has logged before: a reopened store or a
        :meth:`close_log` carries on in the run's newest step table). A key not seen before
        starts a new table with the wider schema; a key left out is null. :meth:`history`
        and :meth:`scalars` read all of it back as one history joined by step.
        """
        self._r.log(values if type(values) is dict else dict(values), step)

    @property
    def log_table(self) -> Optional[Table]:
        """The step table :meth:`log` is writing to, or (before this handle logged) the run's
        newest step table, where the next :meth:`log` carries on; None when the run has
        never logged. Read everything logged with :meth:`history`."""
        url = self._r.log_table_url()
        if url is not None:
            return self._store.table(url)
        return _history.resumed_log_table(self)

    def history(self, keys: Optional[Sequence[str]] = None) -> pa.Table:
        """Everything :meth:`log` wrote for this run, as one ``pyarrow.Table``: a ``step``
        column (int64, one row per step, ascending), then one float64 column per key
        (``keys``, default every key logged, in the order first logged).

        :meth:`log` moves to a new, wider ``steps_NNNN`` table when a key appears, so train
        loss per step and validation metrics per epoch land in different tables; this joins
        them by step. A key not logged at a step is null (NaN in ``.to_pandas()``); when a
        step was logged more than once, each key holds its last value. Rows this handle
        logged are flushed first, so they are included. Zero-copy when the run's steps are
        in one table and increasing. A key never logged raises :class:`NotFound` naming the
        closest logged key."""
        return _history.history(self, keys)

    def scalars(self, key: str) -> "_history.Scalars":
        """One logged key's points as numpy arrays: ``steps, values = run.scalars("loss")``
        (int64 and float64, same length, step order), only the steps where ``key`` was
        logged (no padding for steps that logged other keys; a logged NaN is kept). A key
        never logged raises :class:`NotFound` naming the closest logged key."""
        return _history.scalars(self, key)

    def flush_log(self) -> None:
        """Commits and seals the rows logged so far (logging can go on)."""
        self._r.flush_log()

    def close_log(self) -> None:
        """Commits the logged rows and closes the logger (a later :meth:`log` carries on in
        the same table, after its last step)."""
        self._r.close_log()

    # -- status

    def set_status(self, status: Union[int, float, str]) -> None:
        """Sets the status from 3LC's code (1 to 7) or a name (``"completed"``)."""
        self._r.set_status(status)

    def set_status_running(self) -> None:
        """Sets the status to RUNNING."""
        self._r.set_status_running()

    def set_status_collecting(self) -> None:
        """Sets the status to COLLECTING."""
        self._r.set_status_collecting()

    def set_status_post_processing(self) -> None:
        """Sets the status to POST_PROCESSING."""
        self._r.set_status_post_processing()

    def set_status_completed(self) -> None:
        """Sets the status to COMPLETED."""
        self._r.set_status_completed()

    def set_status_empty(self) -> None:
        """Sets the status to EMPTY."""
        self._r.set_status_empty()

    def set_status_paused(self) -> None:
        """Sets the status to PAUSED."""
        self._r.set_status_paused()

    def set_status_cancelled(self) -> None:
        """Sets the status to CANCELLED."""
        self._r.set_status_cancelled()

    # -- copy, delete

    def copy(
        self,
        run_name: Optional[str] = None,
        project_name: Optional[str] = None,
        if_exists: str = "raise",
        *,
        destination_url: Optional[str] = None,
    ) -> "Run":
        """Copies the run (parameters, outputs, blobs, metrics tables; segments are shared).

        The copy goes to ``project_name/runs/run_name`` (each defaulting to the source's), or
        to ``destination_url``; with neither name nor url it goes next to the source under the
        first free ``<name>_NNNN``. ``if_exists``: ``"raise"`` (default, raises
        :class:`AlreadyExists`), ``"rename"`` or ``"overwrite"``.
        """
        return Run(
            self._r.copy(run_name, project_name, if_exists, destination_url), self._store
        )

    def delete(self) -> None:
        """Deletes the run with its metrics tables and blobs."""
        self._r.delete()

    # -- embeddings

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
        """Reduces the embedding columns of the run's metrics tables, one reducer per input
        table fitted on its newest table (3LC's ``reduce_embeddings_per_dataset``). Returns
        ``{source table url: reduced table url}`` (a :class:`ReduceResult`, whose
        ``.reducers`` and ``.explained_variance_ratio`` give PCA's explained variance).
        ``method`` is ``"umap"`` or ``"pca"``. The reduced column of ``x`` is ``x_umap`` /
        ``x_pca``; a column that is itself a reduction is reduced again only when
        ``columns`` names it. A source table kept (``delete_source_tables=False``) stays in
        :attr:`metrics_tables`, the new table after it, and is not reduced twice by the
        same method. A name in ``columns`` that no metrics table has raises
        :class:`InvalidInput` listing the run's columns."""
        return ReduceResult(self._r.reduce_embeddings_per_dataset(
            delete_source_tables,
            method,
            n_components,
            n_neighbors,
            min_dist,
            seed,
            retain_source_embedding_column,
            list(columns) if columns is not None else None,
        ))

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
        """Reduces every metrics table of the run with the reducer fitted on the newest table
        whose input table is ``foreign_table_url``. Returns ``{source url: reduced url}`` as
        a :class:`ReduceResult` (see :meth:`reduce_embeddings_per_dataset`)."""
        return ReduceResult(self._r.reduce_embeddings_by_foreign_table_url(
            _url_of(foreign_table_url),
            delete_source_tables,
            method,
            n_components,
            n_neighbors,
            min_dist,
            seed,
            retain_source_embedding_column,
            list(columns) if columns is not None else None,
        ))

    # -- blobs

    def put_bulk(self, name: str, data: Any) -> int:
        """Stores ``data`` as the blob ``name`` under the run's bulk data url, replacing one of
        that name, in one commit; returns its length in bytes.

        ``data`` is bytes (or a bytearray or memoryview); a path (``str`` or
        ``os.PathLike``), whose file is streamed without the GIL; a binary file object
        (anything with ``read(n)``), read in 4 MiB chunks, never whole; or a numpy array,
        stored in NumPy's ``.npy`` format with its dtype and shape, which
        :meth:`bulk_array` gives back (an array of Python objects is refused: it would be
        pickled). ``name`` may hold folders, ``"ckpt/epoch-3/model.pt"``; no segment may be
        empty, ``.`` or ``..``, nor start with ``/``, and names starting with ``reducer-``
        are kept for stored reducers (:class:`InvalidName`). A missing file raises
        :class:`NotFound`."""
        return _bulk.put(self, name, data)

    def bulk(self, name: str) -> bytes:
        """The blob ``name``'s bytes."""
        return self._r.bulk(name)

    def bulk_array(self, name: str) -> np.ndarray:
        """The numpy array :meth:`put_bulk` stored as the blob ``name``, with its dtype and
        shape. :class:`InvalidInput` when the blob was not stored from an array."""
        return _bulk.array(self, name)

    def bulk_list(self) -> List["tuple[str, int]"]:
        """The blobs the user stored, as ``(name, length)`` pairs (the reducers a reduction
        stored are listed by :meth:`reducer_list`)."""
        return self._r.bulk_list()

    def reducer_list(self) -> List[Dict[str, Any]]:
        """The embedding reducers stored for this run by its reductions, one dict each:
        ``name`` (its blob), ``method`` (``"pca"`` or ``"umap"``), ``column``,
        ``foreign_table_url``, ``fitted_on``, ``n_components``, ``dim``, ``seed`` and
        ``explained_variance_ratio`` (PCA's fraction of variance per component; None for
        UMAP)."""
        return self._r.reducer_list()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self._r == other._r

    def __hash__(self) -> int:
        return hash(self._r)

    def __repr__(self) -> str:
        return f"Run({self.url!r})"


def _flatten(prefix: str, value: Any, out: Dict[str, None]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, out)
    else:
        out[prefix] = None


class RunList(list):
    """The runs a query selected (a list of :class:`Run`), with :meth:`to_arrow`."""

    def __init__(self, runs: Iterable[Run], store: "Store", query: Dict[str, Any]) -> None:
        super().__init__(runs)
        self._store = store
        self._query = query

    def to_arrow(self, columns: Optional[Sequence[str]] = None) -> pa.Table:
        """The cross-run table: ``project``, ``name``, ``url``, then one column per key
        (``params.lr``, ``outputs.acc``, ``outputs.loss.min``, ``status``, ...). By default
        ``status``, every parameter (nested keys joined with dots) and every key of the runs'
        last output values. The query is run again, on one snapshot."""
        if columns is None:
            keys: Dict[str, None] = {"status": None}
            for run in self:
                params = run.parameters
                if isinstance(params, dict):
                    for key, value in params.items():
                        _flatten(f"params.{key}", value, keys)
            for run in self:
                last = run._r.last_output()
                if isinstance(last, dict):
                    for key in last:
                        keys[f"outputs.{key}"] = None
            columns = list(keys)
        stream = self._store._s.runs_values(list(columns), **self._query)
        return _arrow_from_stream(stream)


# --------------------------------------------------------------------------------------------
# Stores


class Store:
    """An open store file. Use as a context manager, or call :meth:`close`.

    Opened by :func:`runstore.open`.
    """

    __slots__ = ("_s", "__weakref__")

    def __init__(self, native: Any) -> None:
        self._s = native

    @property
    def path(self) -> str:
        """The store file's path."""
        return str(self._s.path)

    @property
    def read_only(self) -> bool:
        """Whether the store was opened read-only."""
        return self._s.read_only

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._s.closed

    def init(
        self,
        project_name: str = "default",
        run_name: Optional[str] = None,
        description: Optional[str] = None,
        parameters: Optional[Mapping[str, Any]] = None,
        if_exists: str = "rename",
    ) -> Run:
        """Creates a run in ``project_name`` (created on first use) and makes it the active
        run (3LC's ``tlc.init``). Without ``run_name`` an ``adjective-noun`` name is
        generated. ``if_exists``: ``"rename"`` (default: first free ``<name>_NNNN``),
        ``"raise"``, ``"overwrite"`` or ``"reuse"``."""
        return Run(
            self._s.init(project_name, run_name, description, parameters, if_exists), self
        )

    def active_run(self) -> Run:
        """The active run (the last one created by :meth:`init` or set with
        :meth:`set_active_run`). Raises :class:`NoActiveRun` when none."""
        return Run(self._s.active_run(), self)

    def set_active_run(self, run: Union[Run, str]) -> None:
        """Makes ``run`` (a :class:`Run` or a run url) the active run."""
        self._s.set_active_run(run._r if isinstance(run, Run) else run)

    def run(self, url: str) -> Run:
        """The run at ``url``; raises :class:`NotFound` if absent, :class:`InvalidUrl` if
        malformed."""
        return Run(self._s.run(url), self)

    def run_by_names(self, run_name: str, project_name: str) -> Run:
        """The run ``run_name`` of ``project_name``."""
        return Run(self._s.run_by_names(run_name, project_name), self)

    def runs(
        self,
        filter: Optional[str] = None,
        order_by: Optional[str] = None,
        limit: Optional[int] = None,
        *,
        project: Optional[str] = None,
        offset: Optional[int] = None,
    ) -> RunList:
        """Runs selected by ``filter`` (MLflow's search syntax plus OR, NOT and parentheses:
        ``"params.lr < 0.1 AND outputs.acc > 0.5"``), sorted by ``order_by``
        (``"outputs.acc DESC"``), at most ``limit``. ``.to_arrow()`` on the result gives their
        parameters and outputs as a ``pyarrow.Table``. A parameter or output key that no run
        of the store has (a typo: ``params.LR`` where runs have ``lr``; keys are
        case-sensitive) raises :class:`InvalidQuery` naming the closest key ("did you mean
        'lr'?"), here and in ``to_arrow(columns=...)``; a key only some runs have is fine."""
        query = dict(project=project, filter=filter, order_by=order_by, limit=limit, offset=offset)
        runs = self._s.runs(**query)
        return RunList((Run(r, self) for r in runs), self, query)

    def table(self, url: str) -> Table:
        """The table at ``url``."""
        return Table(self._s.table(url))

    def tables(self, project: Optional[str] = None) -> List[Dict[str, Any]]:
        """Facts about every table (of ``project``)."""
        return self._s.tables(project)

    def create_table(self, project: str, name: str, data: Any) -> Table:
        """Stores ``data`` (anything :func:`to_arrow_table` takes) as the input table
        ``<project>/tables/<name>``."""
        return Table(self._s.create_table(project, name, to_arrow_table(data)))

    def projects(self) -> List[Dict[str, Any]]:
        """Projects: dicts of name, created_us, run_count."""
        return self._s.projects()

    def delete_run(self, url: str) -> None:
        """Deletes the run at ``url`` with its tables and blobs."""
        self._s.delete_run(url)

    def flush(self) -> None:
        """Commits and seals the rows every :meth:`Run.log` logger holds."""
        self._s.flush()

    def close(self) -> None:
        """Flushes and closes every logger and this handle (idempotent)."""
        global _default_store
        self._s.close()
        with _default_lock:
            if _default_store is self:
                _default_store = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r}{', read_only=True' if self.read_only else ''})"


def open(
    path: Any,
    *,
    read_only: bool = False,
    create: bool = True,
    shared: bool = False,
    timeout: Optional[float] = None,
) -> Store:
    """Opens the store file at ``path``, creating it unless ``create=False``.

    ``read_only=True`` opens alongside a writer in another process (each read sees its
    latest commit). ``shared=True`` lets several processes write (each its own runs).
    ``timeout`` (seconds) waits for another writer to close instead of raising
    :class:`AlreadyOpen` at once. The store becomes the default for :func:`init`,
    :meth:`Run.from_url` and friends. Use it as a context manager to close it.
    """
    global _default_store
    store = Store(
        _native.Store.open(builtins.str(path), read_only, create, shared, timeout)
    )
    _open_stores.add(store)
    with _default_lock:
        _default_store = store
    return store


def _default() -> Store:
    with _default_lock:
        store = _default_store
    if store is None:
        raise NoActiveRun("no store is open: call runstore.open(path) first")
    return store


def init(
    project_name: str = "default",
    run_name: Optional[str] = None,
    description: Optional[str] = None,
    parameters: Optional[Mapping[str, Any]] = None,
    if_exists: str = "rename",
) -> Run:
    """:meth:`Store.init` on the store opened last (3LC's ``tlc.init``)."""
    return _default().init(project_name, run_name, description, parameters, if_exists)


def active_run() -> Run:
    """:meth:`Store.active_run` on the store opened last."""
    return _default().active_run()


def set_active_run(run: Union[Run, str]) -> None:
    """:meth:`Store.set_active_run` on the store opened last."""
    _default().set_active_run(run)


@atexit.register
def _close_all() -> None:
    for store in list(_open_stores):
        try:
            store.close()
        except Exception:  # noqa: BLE001 - nothing to report to at exit
            pass
