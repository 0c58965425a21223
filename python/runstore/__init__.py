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
import datetime as _dt
import os
import threading
import warnings
import weakref
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from . import _active, _bulk, _guard, _history, _lifecycle, _native, _reduce, _roots
from ._active import (  # noqa: F401 - the module-level calls on the active run
    Config,
    Summary,
    add_output_value,
    config,
    finish,
    log,
    reduce_embeddings_by_foreign_table_url,
    reduce_embeddings_per_dataset,
    set_status_cancelled,
    set_status_collecting,
    set_status_completed,
    set_status_empty,
    set_status_paused,
    set_status_post_processing,
    set_status_running,
    summary,
)
from ._reduce import ReduceResult
from ._errors import *  # noqa: F401,F403
from ._errors import (
    Error,
    InvalidInput,
    InvalidType,
    NoActiveRun,
    NotFound,
    __all__ as _error_names,
)
from ._roots import default_store_path
from ._status import ACTIVE_STATUSES, STATUS_NAMES, Status

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
    "Status",
    "default_store_path",
    "add_output_value",
    "log",
    "finish",
    "config",
    "summary",
    "Config",
    "Summary",
    "set_status_running",
    "set_status_collecting",
    "set_status_post_processing",
    "set_status_completed",
    "set_status_empty",
    "set_status_paused",
    "set_status_cancelled",
    "reduce_embeddings_per_dataset",
    "reduce_embeddings_by_foreign_table_url",
    "MetricsTableWriter",
    "collect_metrics",
    "ClassificationCollector",
    "EmbeddingsCollector",
    "FunctionCollector",
    "SummaryWriter",
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


def _checked_column(name: str, values: Any) -> "tuple[pa.Field, Any]":
    """:func:`_column`, its failures raised as runstore errors naming the column."""
    try:
        if values is None or isinstance(values, (str, bytes, int, float)):
            raise InvalidType(
                f"invalid type: column {name!r} is a single {type(values).__name__}; give a "
                "list, a numpy array, a pyarrow array or a pandas Series"
            )
        return _column(name, values)
    except Error:
        raise
    except (
        TypeError, NotImplementedError, pa.ArrowTypeError, pa.ArrowNotImplementedError
    ) as error:
        kind = getattr(getattr(values, "dtype", None), "name", None) or type(values).__name__
        raise InvalidType(f"invalid type: column {name!r} ({kind}): {error}") from error
    except (ValueError, OverflowError, pa.ArrowInvalid) as error:
        raise InvalidInput(f"invalid input: column {name!r}: {error}") from error


#: Deepest type nesting handed to the Rust core, checked here first: the core refuses types
#: deeper than 32 with an error, but importing a schema nested thousands deep through the
#: Arrow C interface recurses once per level and would overflow the stack before that check.
_TYPE_DEPTH_MAX = 64


def _check_depth(schema: pa.Schema) -> None:
    """Raises :class:`InvalidInput` naming the column whose type nests deeper than
    :data:`_TYPE_DEPTH_MAX` (an explicit stack: no recursion to overflow here either)."""
    for field in schema:
        stack = [(field.type, 1)]
        while stack:
            kind, depth = stack.pop()
            if depth > _TYPE_DEPTH_MAX:
                raise InvalidInput(
                    f"invalid input: column {field.name!r}: type nests deeper than "
                    f"{_TYPE_DEPTH_MAX} levels"
                )
            stack.extend((kind.field(i).type, depth + 1) for i in range(kind.num_fields))


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

    Raises :class:`InvalidType` or :class:`InvalidInput` naming the column that cannot be
    converted (a pandas object column of mixed types, columns of different lengths, ...).
    """
    table = _to_arrow_table(data)
    _check_depth(table.schema)
    return table


def _to_arrow_table(data: Any) -> pa.Table:
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
                raise InvalidType(
                    f"column names must be strings: {name!r} is {type(name).__name__}"
                )
            field, array = _checked_column(name, values)
            fields.append(field)
            arrays.append(array)
        lengths = {len(array) for array in arrays}
        if len(lengths) > 1:
            first = fields[0].name
            for field, array in zip(fields, arrays):
                if len(array) != len(arrays[0]):
                    raise InvalidInput(
                        f"invalid input: column {field.name!r} has {len(array)} rows but "
                        f"column {first!r} has {len(arrays[0])}: every column needs one value "
                        "per row"
                    )
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    module = type(data).__module__
    if module.startswith("pandas") and hasattr(data, "columns"):
        names = [str(c) for c in data.columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InvalidInput(
                f"invalid input: the DataFrame has more than one column named "
                f"{', '.join(map(repr, repeated))}: rename them first"
            )
        return to_arrow_table({name: data.iloc[:, i] for i, name in enumerate(names)})
    if hasattr(data, "__arrow_c_stream__"):
        return _arrow_from_stream(data)
    raise InvalidType(
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
    schema = pa.schema(fields)
    _check_depth(schema)
    return schema.empty_table()


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

    A run is a context manager that runs the run for the block (``with store.init(...) as
    run:``): entering sets an EMPTY run (as :meth:`Store.init` makes them, after 3LC) RUNNING;
    left normally, the block commits the rows :meth:`log` holds and marks the run COMPLETED
    if it is still RUNNING, COLLECTING or POST_PROCESSING (as ``wandb.finish()`` and MLflow's
    ``end_run()`` do); a PAUSED, CANCELLED or COMPLETED run keeps its status.
    Left by an exception (Ctrl-C and ``sys.exit(1)`` included, ``sys.exit(0)`` not), it
    commits the rows and marks the run CANCELLED (3LC has no FAILED), appending the
    exception's type to the description: ``"lr sweep (cancelled by ValueError)"`` (just
    ``"cancelled by ValueError"`` when there was none; ``runstore show`` prints it). The
    exception goes on; if the run cannot be marked, a ``RuntimeWarning`` says why. The block
    of a run of a store opened read-only changes nothing.
    """

    __slots__ = ("_r", "_store", "__weakref__")

    def __init__(self, native: Any, store: "Store") -> None:
        self._r = native
        self._store = store

    # -- lookup

    @staticmethod
    def from_url(url: Any, store: Optional["Store"] = None) -> "Run":
        """The run at ``url`` (3LC's ``Run.from_url``).

        The url is a store file's path followed by the run's url in it,
        ``exp.runs/my-project/runs/r1`` (that store is opened, or reused if this process has
        it open), or only ``<project>/runs/<name>``: then the run is looked up in ``store``,
        else the store opened last, else the default store (:func:`default_store_path`).
        Raises :class:`NotFound` (a ``FileNotFoundError``) if absent, :class:`InvalidUrl` if
        the url does not end in ``<project>/runs/<name>``."""
        path, run_url = _roots.split_run_url(url)
        if path is not None:
            return _store_at(path, create=False).run(run_url)
        return _store_or_default(store).run(run_url)

    @staticmethod
    def from_names(
        run_name: Optional[str] = None,
        project_name: Optional[str] = None,
        root_url: Any = None,
        store: Optional["Store"] = None,
    ) -> "Run":
        """The run ``run_name`` of ``project_name`` (3LC's ``Run.from_names``) in the store at
        ``root_url`` (a store file's path), else in ``store``, else the store opened last,
        else the default store (a :class:`Store` in third place is read as ``store``).
        ``project_name`` defaults to ``"default"``; ``run_name`` is required (3LC's default
        would be a new run's generated name, which names no run)."""
        if run_name is None:
            raise InvalidInput("invalid input: Run.from_names needs run_name")
        project_name = project_name if project_name is not None else "default"
        if isinstance(root_url, Store):  # the earlier form from_names(run, project, store)
            root_url, store = None, root_url
        if root_url is not None:
            target = _store_at(_roots.store_path_of_root(root_url), create=False)
        else:
            target = _store_or_default(store)
        return target.run_by_names(run_name, project_name)

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
    def status(self) -> Status:
        """The status as 3LC gives it: a float code (1.0 COMPLETED, 2.0 EMPTY, 3.0 RUNNING,
        4.0 COLLECTING, 5.0 POST_PROCESSING, 6.0 PAUSED, 7.0 CANCELLED). The value is a
        :class:`Status`, a ``float`` that also equals its name (``run.status ==
        "COMPLETED"``); :attr:`status_name` is the name."""
        return Status(self._r.status_code)

    @property
    def status_name(self) -> str:
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
    def created(self) -> str:
        """Creation time as 3LC gives it: an ISO 8601 string in UTC
        (``2026-12-07T09:21:58.123456+00:00``); :attr:`created_us` is the integer."""
        return _iso(self._r.created_us)

    @property
    def last_modified(self) -> str:
        """Time of the last change as an ISO 8601 string in UTC; :attr:`last_modified_us` is
        the integer."""
        return _iso(self._r.last_modified_us)

    @property
    def constants(self) -> Dict[str, Any]:
        """3LC's ``Run.constants``: ``{"parameters": ..., "inputs": [...], "outputs": [...]}``,
        where inputs are the input tables (``{"input_table_url": url}``) then the input
        values."""
        inputs: List[Any] = [{"input_table_url": url} for url in self.input_tables]
        inputs.extend(self.input_values)
        return {
            "parameters": self.parameters,
            "inputs": inputs,
            "outputs": self.output_values,
        }

    @property
    def init_parameters(self) -> Dict[str, Any]:
        """The arguments of 3LC's ``Run`` constructor that describe this run: ``url``,
        ``created``, ``last_modified``, ``description``, ``metrics`` (the metrics table
        infos), ``constants`` and ``status`` (the float code)."""
        return {
            "url": self.url,
            "created": self.created,
            "last_modified": self.last_modified,
            "description": self.description,
            "metrics": self.metrics_infos,
            "constants": self.constants,
            "status": float(self.status),
        }

    @property
    def config(self) -> Config:
        """The parameters as wandb's ``run.config`` (writes update them; see :class:`Config`)."""
        return Config(lambda: self)

    @property
    def summary(self) -> Summary:
        """The latest outputs as wandb's ``run.summary`` (see :class:`Summary`)."""
        return Summary(lambda: self)

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
        """Sets the parameters of the run (3LC's ``set_parameters``) as ``dict.update`` does:
        each top-level key given is set to its value, and a nested dict given replaces the
        stored one whole (it is not merged key by key); keys not given are kept."""
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
        path = self._store.path
        with _guard.naming(path, f"store {path}, table {self.url}/{table_name}"):
            table = to_arrow_table(data)
        return self._r.append_metrics(table_name, table)

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
        try:
            completed = self._r.log(values if type(values) is dict else dict(values), step)
        except Error as error:
            _guard.name_file(error, self._store.path, f"store {self._store.path}, run {self.url}")
            raise
        except (TypeError, ValueError, OverflowError) as error:
            context = f"store {self._store.path}, run {self.url}, log()"
            raise _guard.translate(error, context) from error
        if completed:
            warnings.warn(
                f"run {self.url} is COMPLETED (store {self._store.path}): logging to it "
                "anyway; set_status_running() first if it goes on (warned once per run)",
                RunCompletedWarning,  # noqa: F405
                stacklevel=2,
            )

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
        root_url: Any = None,
        if_exists: str = "raise",
        *,
        destination_url: Optional[str] = None,
    ) -> "Run":
        """Copies the run (parameters, outputs, blobs, metrics tables), 3LC's ``Run.copy``
        with its positional order ``copy(run_name, project_name, root_url, if_exists)``.

        The copy goes, in 3LC's order of precedence, to:

        1. ``<project_name>/runs/<run_name>`` (each defaulting to the source's) in the store
           at ``root_url`` (a store file's path; created if missing, or this store when not
           given), when any of the three is given;
        2. else ``destination_url``: ``<project>/runs/<name>`` in this store, or a store's
           path followed by the run url (``other.runs/p/runs/r``);
        3. else next to the source under the first free ``<name>_NNNN``.

        Within one store the copy shares the column segments; into another store the bytes
        are copied with their checksums checked, with the input tables the run references.
        ``if_exists``: ``"raise"`` (default, raises :class:`AlreadyExists`), ``"rename"`` or
        ``"overwrite"``. For compatibility, ``copy(name, project, "rename")`` (an
        ``if_exists`` word in the third place) is read as ``if_exists``.
        """
        if (
            isinstance(root_url, str)
            and root_url in ("raise", "rename", "overwrite")
            and if_exists == "raise"
        ):
            root_url, if_exists = None, root_url
        target: Optional[Store] = None
        if root_url is not None:
            target = _store_at(_roots.store_path_of_root(root_url), create=True)
        if run_name is not None or project_name is not None or root_url is not None:
            destination_url = None
        elif destination_url is not None:
            path, url = _roots.split_run_url(destination_url)
            destination_url = url
            if path is not None:
                target = _store_at(path, create=True)
        if target is not None and not _roots.same_file(target.path, self._store.path):
            native = self._r.copy(run_name, project_name, if_exists, destination_url, target._s)
            return Run(native, target)
        return Run(
            self._r.copy(run_name, project_name, if_exists, destination_url), self._store
        )

    def finish(self, exit_code: Optional[int] = None) -> None:
        """Ends the run as wandb's ``run.finish`` does: its logged steps are committed, and if
        it is still EMPTY or working (RUNNING, COLLECTING, POST_PROCESSING) it becomes
        COMPLETED, or CANCELLED when ``exit_code`` is non-zero (a PAUSED, COMPLETED or
        CANCELLED run keeps its status). It stops being the active run."""
        self._r.close_log()
        if self.status_name in ACTIVE_STATUSES or self.status_name == "EMPTY":
            if exit_code:
                self._r.set_status_cancelled()
            else:
                self._r.set_status_completed()
        _active.clear_if(self)

    def delete(self) -> None:
        """Deletes the run with its metrics tables and blobs."""
        self._r.delete()

    # -- embeddings

    def reduce_embeddings_per_dataset(
        self, delete_source_tables: bool = True, **kwargs: Any
    ) -> ReduceResult:
        """Reduces the embedding columns of the run's metrics tables, one reducer per input
        table fitted on its newest table (3LC's ``reduce_embeddings_per_dataset``). Returns
        ``{source table url: reduced table url}`` (a :class:`ReduceResult`, whose
        ``.reducers`` and ``.explained_variance_ratio`` give PCA's explained variance).

        Keyword arguments (the seed's ``**kwargs``; any other is a ``TypeError`` naming
        these): ``method`` (``"umap"``, default, or ``"pca"``), ``n_components`` (2),
        ``n_neighbors`` (15), ``min_dist`` (0.1), ``seed`` (0),
        ``retain_source_embedding_column`` (False) and ``columns`` (default: every embedding
        column). The reduced column of ``x`` is ``x_umap`` / ``x_pca``; a column that is
        itself a reduction is reduced again only when ``columns`` names it. A source table
        kept (``delete_source_tables=False``) stays in :attr:`metrics_tables`, the new table
        after it, and is not reduced twice by the same method. A name in ``columns`` that no
        metrics table has raises :class:`InvalidInput` listing the run's columns."""
        o = _reduce_kwargs("reduce_embeddings_per_dataset", kwargs)
        return ReduceResult(self._r.reduce_embeddings_per_dataset(delete_source_tables, *o))

    def reduce_embeddings_by_foreign_table_url(
        self,
        foreign_table_url: Union[str, Table],
        delete_source_tables: bool = True,
        **kwargs: Any,
    ) -> ReduceResult:
        """Reduces every metrics table of the run with the reducer fitted on the newest table
        whose input table is ``foreign_table_url`` (3LC's
        ``reduce_embeddings_by_foreign_table_url``). Returns ``{source url: reduced url}``
        (a :class:`ReduceResult`). Takes the keyword arguments of
        :meth:`reduce_embeddings_per_dataset`; any other is a ``TypeError`` naming them."""
        o = _reduce_kwargs("reduce_embeddings_by_foreign_table_url", kwargs)
        return ReduceResult(
            self._r.reduce_embeddings_by_foreign_table_url(
                _url_of(foreign_table_url), delete_source_tables, *o
            )
        )
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

    # -- the with block

    def __enter__(self) -> "Run":
        _lifecycle.start_run(self)
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        _lifecycle.end_run(self, exc_type, exc)

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


#: The keyword arguments of the ``reduce_*`` calls and their defaults, in the native order.
_REDUCE_DEFAULTS = (
    ("method", "umap"),
    ("n_components", 2),
    ("n_neighbors", 15),
    ("min_dist", 0.1),
    ("seed", 0),
    ("retain_source_embedding_column", False),
    ("columns", None),
)


def _reduce_kwargs(call: str, kwargs: Mapping[str, Any]) -> "tuple[Any, ...]":
    """The reduction options in the native call's order; an unknown keyword is a
    ``TypeError`` naming the accepted ones."""
    accepted = [name for name, _ in _REDUCE_DEFAULTS]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"{call}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; it "
            f"takes delete_source_tables and {', '.join(accepted)}"
        )
    values = [kwargs.get(name, default) for name, default in _REDUCE_DEFAULTS]
    if values[-1] is not None:
        if isinstance(values[-1], str):
            values[-1] = [values[-1]]
        values[-1] = list(values[-1])
    return tuple(values)


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

    Opened by :func:`runstore.open`. An exception leaving its ``with`` block marks every run
    :meth:`init` started on this handle that is still RUNNING, COLLECTING or
    POST_PROCESSING as CANCELLED, with the exception's type appended to its description (as
    a :class:`Run`'s own ``with`` block does) before the store closes; left normally, the
    block changes no run's status.
    """

    __slots__ = ("_s", "_started", "__weakref__")

    def __init__(self, native: Any) -> None:
        self._s = native
        #: Urls of the runs :meth:`init` started on this handle (an exception leaving the
        #: ``with`` block cancels those still in progress).
        self._started: Dict[str, None] = {}

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
        ``"raise"``, ``"overwrite"`` or ``"reuse"``. The run starts EMPTY, as in 3LC; use it
        as a context manager (``with store.init(...) as run:``) to run it for the block:
        RUNNING inside, then COMPLETED, or CANCELLED when an exception leaves (see
        :class:`Run`)."""
        run = Run(self._s.init(project_name, run_name, description, parameters, if_exists), self)
        self._started[run.url] = None
        _active.set_current(run)
        return run

    def active_run(self) -> Run:
        """The active run (the last one created by :meth:`init` or set with
        :meth:`set_active_run`). Raises :class:`NoActiveRun` when none."""
        return Run(self._s.active_run(), self)

    def set_active_run(self, run: Union[Run, str]) -> None:
        """Makes ``run`` (a :class:`Run` or a run url) the active run of this handle and of
        the process (what module-level calls such as :func:`runstore.log` act on)."""
        self._s.set_active_run(run._r if isinstance(run, Run) else run)
        _active.set_current(run if isinstance(run, Run) else self.run(run))

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
        with _guard.naming(self.path, f"store {self.path}, table {project}/tables/{name}"):
            table = to_arrow_table(data)
        return Table(self._s.create_table(project, name, table))

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
        """Flushes and closes every logger, then closes the file (idempotent).

        Close means closed: the write lock and the file are released now, even while
        :class:`Run` and :class:`Table` objects of this store are still alive (in variables,
        a notebook's history, a traceback), so another process, the CLI or a re-run cell can
        open the store at once. Those objects stay usable for their names and urls; anything
        that reads or writes the store raises :class:`StoreClosed` naming the file. Arrow
        tables already read stay valid."""
        global _default_store
        self._s.close()
        with _default_lock:
            if _default_store is self:
                _default_store = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        try:
            _lifecycle.cancel_started(self, list(self._started), exc_type, exc)
        finally:
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
    ``timeout`` (seconds, 0 to 86400) waits for a writer that excludes this open (another
    process's, or another handle of this one) to close, for a single writer's open and a
    shared one's alike, instead of raising :class:`AlreadyOpen` at once; Ctrl-C interrupts
    the wait. :class:`AlreadyOpen` names the holder ("this process", "process 4242", or
    "another process" where the system cannot tell) and what to do. The store becomes the default for :func:`init`,
    :meth:`Run.from_url` and friends. Use it as a context manager to close it.
    """
    global _default_store
    if not isinstance(path, (builtins.str, os.PathLike)):
        raise InvalidType(
            f"runstore.open takes a path (str or os.PathLike), not {type(path).__name__}"
        )
    try:
        native = _native.Store.open(os.fspath(path), read_only, create, shared, timeout)
    except Error as error:
        _guard.name_file(error, os.fspath(path))
        raise
    except (TypeError, ValueError, OverflowError) as error:
        raise _guard.translate(error, f"opening store {os.fspath(path)}") from error
    store = Store(native)
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


#: The keyword arguments :func:`init` takes, named in the error for any other.
_INIT_KEYWORDS = (
    "project_name",
    "run_name",
    "description",
    "parameters",
    "if_exists",
    "root_url",
    "project",
    "name",
    "config",
    "dir",
    "notes",
)


def init(
    project_name: Optional[str] = None,
    run_name: Optional[str] = None,
    description: Optional[str] = None,
    parameters: Optional[Mapping[str, Any]] = None,
    if_exists: str = "rename",
    root_url: Any = None,
    **kwargs: Any,
) -> Run:
    """Creates a run and makes it the process's active run (3LC's ``tlc.init``; also
    wandb's and trackio's ``init``, so ``import runstore as wandb`` works).

    The store: the file at ``root_url`` (opened, or created when missing; reused if this
    process has it open), else the store opened last, else the default store
    (``$RUNSTORE_PATH``, else ``./runs.runs``). Then :meth:`Store.init` with
    ``project_name`` (default ``"default"``), ``run_name`` (default: a generated
    ``adjective-noun``), ``description``, ``parameters`` and ``if_exists``.

    wandb's and trackio's names are accepted too: ``project`` (``project_name``), ``name``
    (``run_name``), ``config`` (``parameters``: a dict, or an object with ``__dict__`` such as
    argparse's namespace), ``notes`` (``description``) and ``dir`` (a directory: the store is
    ``<dir>/runs.runs``; or a store file's path). Any other keyword is a ``TypeError`` naming
    the accepted ones.
    """
    unknown = sorted(set(kwargs) - set(_INIT_KEYWORDS))
    if unknown:
        raise TypeError(
            f"init() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; it "
            f"takes {', '.join(_INIT_KEYWORDS)}"
        )

    def either(ours: Any, key: str, theirs: str) -> Any:
        other = kwargs.get(theirs)
        if ours is not None and other is not None and ours != other:
            raise InvalidInput(
                f"invalid input: init() got both {key}={ours!r} and {theirs}={other!r}; give one"
            )
        return ours if ours is not None else other

    project_name = either(project_name, "project_name", "project") or "default"
    run_name = either(run_name, "run_name", "name")
    description = either(description, "description", "notes")
    config = kwargs.get("config")
    if config is not None and not isinstance(config, Mapping):
        if hasattr(config, "__dict__"):
            config = dict(vars(config))
        else:
            raise InvalidInput(
                f"invalid input: config must be a dict (or an object with attributes), not "
                f"{type(config).__name__}"
            )
    if parameters is not None and config is not None:
        parameters = {**dict(config), **dict(parameters)}
    elif config is not None:
        parameters = dict(config)
    directory = kwargs.get("dir")
    if root_url is None and directory is not None:
        root_url = directory if str(directory).endswith(".runs") else os.path.join(
            os.fspath(directory), _roots.DEFAULT_STORE_FILE
        )
    if root_url is not None:
        store = _store_at(_roots.store_path_of_root(root_url), create=True)
    else:
        store = _store_or_default(None)
    return store.init(project_name, run_name, description, parameters, if_exists)


def active_run() -> Run:
    """The process's active run: the one the last :func:`init` or :meth:`Store.init` (on any
    store) created, or :func:`set_active_run` set. Raises :class:`NoActiveRun` when none (or
    when its store was closed)."""
    return _active.current()


def set_active_run(run: Union[Run, str]) -> None:
    """Makes ``run`` the process's active run: a :class:`Run`, or a run url (with a store
    path, ``exp.runs/p/runs/r``, or without: the store opened last)."""
    if not isinstance(run, Run):
        run = Run.from_url(run)
    run.store.set_active_run(run)


def _iso(us: int) -> str:
    """Microseconds since the Unix epoch as an ISO 8601 string in UTC."""
    seconds, micros = divmod(int(us), 1_000_000)
    moment = _dt.datetime.fromtimestamp(seconds, tz=_dt.timezone.utc)
    return moment.replace(microsecond=micros).isoformat()


def _open_store_at(path: str) -> Optional[Store]:
    """A handle this process has open on the file at ``path`` (writable ones first)."""
    found = [s for s in list(_open_stores) if not s.closed and _roots.same_file(s.path, path)]
    found.sort(key=lambda s: s.read_only)
    return found[0] if found else None


def _store_at(path: str, create: bool) -> Store:
    """The store at ``path``: a handle this process has open on it, else a new one (which
    becomes the store opened last). ``create=False`` raises :class:`NotFound` for a missing
    file instead of creating it."""
    store = _open_store_at(path)
    if store is not None:
        return store
    if not create and not os.path.exists(path):
        raise NotFound(f"not found: store {path} (no such file)")
    return open(path, create=create)


def _store_or_default(store: Optional[Store]) -> Store:
    """``store``, else the store opened last, else the default store (opened or created)."""
    if store is not None:
        return store
    with _default_lock:
        last = _default_store
    if last is not None and not last.closed:
        return last
    return _store_at(_roots.default_store_path(), create=True)


from ._collect import (  # noqa: E402 - they build on the classes above
    ClassificationCollector,
    EmbeddingsCollector,
    FunctionCollector,
    collect_metrics,
)
from ._tensorboard import SummaryWriter  # noqa: E402
from ._writer import MetricsTableWriter  # noqa: E402
from . import mlflow  # noqa: E402,F401 - runstore.mlflow


_guard.guard(Store, lambda s: (s.path, f"store {s.path}"))
_guard.guard(
    Run, lambda r: (r._store.path, f"store {r._store.path}, run {r._r.url}"), skip=("log",)
)
_guard.guard(
    Table, lambda t: (builtins.str(t._t.store_path), f"store {t._t.store_path}, table {t._t.url}")
)
_guard.guard(RunList, lambda l: (l._store.path, f"store {l._store.path}"))


@atexit.register
def _close_all() -> None:
    for store in list(_open_stores):
        try:
            store.close()
        except Exception:  # noqa: BLE001 - nothing to report to at exit
            pass
