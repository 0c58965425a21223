"""``MetricsTableWriter``: a metrics table written batch by batch (3LC's ``MetricsTableWriter``).

The 3LC guide's flow is "create a metrics table, e.g. using a MetricsTableWriter, then
``run.add_metrics_table(...)``". Here the writer streams each batch into the store file as it
comes (one commit per batch, through the Rust core's ``MetricsWriter``), so a table of any
length is written in the memory of one batch; :meth:`MetricsTableWriter.finalize` seals it and
returns the :class:`Table`. The table is attached to its run from the first batch (adding it
again with ``run.add_metrics_table`` is harmless).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import pyarrow as pa

from . import _native
from ._errors import Error, InvalidInput, RowCountMismatch, SchemaMismatch

#: Rows :meth:`MetricsTableWriter.add_row` gathers before writing them as one batch.
ROWS_PER_BATCH_DEFAULT = 10_000

EXAMPLE_ID = "example_id"


class MetricsTableWriter:
    """Writes one metrics table of ``run``, batch by batch.

    ``run`` is a :class:`Run` (default: the active run) or a run url. With
    ``foreign_table_url`` (an input :class:`Table` or its url) the table is joined to that
    input table by ``example_id``: give an ``example_id`` column (each row's input row), or
    leave it out and the rows are numbered in order from 0 (then :meth:`finalize` checks they
    cover the input table exactly). ``column_schemas`` maps a column to a pyarrow DataType or
    Field it is cast to. The table is ``<run url>/<table_writer_base_name>_NNNN``.

    Use as a context manager (``finalize`` on leaving, also after an exception, so no batch
    given is lost), or call :meth:`finalize`.
    """

    def __init__(
        self,
        run: Any = None,
        foreign_table_url: Any = None,
        column_schemas: Optional[Mapping[str, Any]] = None,
        *,
        table_writer_base_name: str = "metrics",
        stream_name: str = "",
        rows_per_batch: int = ROWS_PER_BATCH_DEFAULT,
        run_url: Optional[str] = None,
    ) -> None:
        from . import Run, _active, _url_of

        if run is None and run_url is not None:
            run = run_url
        if run is None:
            run = _active.current()
        elif isinstance(run, str):
            run = Run.from_url(run)
        if not isinstance(run, Run):
            raise InvalidInput(
                f"invalid input: run must be a runstore.Run or a run url, not {type(run).__name__}"
            )
        if rows_per_batch < 1:
            raise InvalidInput(f"invalid input: rows_per_batch must be at least 1, not {rows_per_batch}")
        self._run = run
        self._foreign = _url_of(foreign_table_url) if foreign_table_url is not None else None
        self._input_rows: Optional[int] = None
        self._seen: Optional[np.ndarray] = None
        if self._foreign is not None:
            self._input_rows = run.store.table(self._foreign).num_rows
        self._schemas = dict(column_schemas or {})
        self._base = table_writer_base_name
        self._stream = stream_name
        self._rows_per_batch = rows_per_batch
        self._pending: List[Mapping[str, Any]] = []
        self._writer: Any = None
        self._schema: Optional[pa.Schema] = None
        self._positional: Optional[bool] = None
        self._rows = 0
        self._table: Any = None

    # -- properties

    @property
    def url(self) -> Optional[str]:
        """The table's url (None until the first batch creates it)."""
        return None if self._writer is None else self._writer.url

    @property
    def rows_written(self) -> int:
        """Rows written so far (rows given to :meth:`add_row` count once their batch is
        written)."""
        return self._rows

    @property
    def finalized(self) -> bool:
        """Whether :meth:`finalize` was called."""
        return self._table is not None

    # -- writing

    def add_batch(self, metrics_batch: Any) -> None:
        """Writes a batch: a dict of columns (lists, numpy arrays; a 2-D float array is an
        embedding column), a pyarrow Table or RecordBatch, or a pandas DataFrame. Each batch
        is committed before this returns. Later batches are cast to the first batch's
        schema; a column missing or extra is :class:`SchemaMismatch`."""
        from . import to_arrow_table

        self._check_open()
        self._flush_rows()
        self._write(to_arrow_table(metrics_batch))

    def add_row(self, row: Mapping[str, Any]) -> None:
        """Adds one row (a dict of column values); rows are written ``rows_per_batch`` at a
        time, and the rest at :meth:`finalize`."""
        self._check_open()
        if not isinstance(row, Mapping):
            raise InvalidInput(f"invalid input: a row is a dict of column values, not {type(row).__name__}")
        self._pending.append(row)
        if len(self._pending) >= self._rows_per_batch:
            self._flush_rows()

    def finalize(self) -> Any:
        """Writes the rows still gathered, seals the table and returns it (a :class:`Table`).
        Calling it again returns the same table. A writer given no rows raises
        :class:`InvalidInput` (a table needs at least one column)."""
        from . import Table

        if self._table is not None:
            return self._table
        self._flush_rows()
        if self._writer is None:
            raise InvalidInput(
                f"invalid input: the metrics table writer of {self._run.url} was given no rows"
            )
        info = self._writer.close()
        self._table = Table(self._run.store._s.table(info["url"]))
        if self._positional and self._input_rows is not None and self._rows != self._input_rows:
            raise RowCountMismatch(
                f"row count mismatch: {info['url']} has {self._rows} rows numbered in order but "
                f"its input table {self._foreign} has {self._input_rows}; the rows are kept (give "
                "an example_id column to write some rows only)"
            )
        return self._table

    def __enter__(self) -> "MetricsTableWriter":
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if self._table is not None:
            return
        if kind is None:
            self.finalize()
            return
        try:
            if self._writer is not None or self._pending:
                self.finalize()
        except Error:
            pass  # the exception leaving the block is the one to see

    def __repr__(self) -> str:
        return f"MetricsTableWriter({self.url or self._run.url!r}, rows={self._rows})"

    # -- inside

    def _check_open(self) -> None:
        if self._table is not None:
            raise InvalidInput(
                f"invalid input: the metrics table writer of {self._table.url} was finalized"
            )

    def _flush_rows(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        columns: Dict[str, List[Any]] = {}
        for row in rows:
            for key in row:
                columns.setdefault(key, [])
        for key, values in columns.items():
            values.extend(row.get(key) for row in rows)
        from . import to_arrow_table

        self._write(to_arrow_table(columns))

    def _write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = self._apply_schemas(table)
        table = self._with_example_ids(table)
        if self._writer is None:
            self._schema = table.schema
            self._writer = _native.TableWriter.open(
                self._run._r,
                pa.table({f.name: pa.array([], f.type) for f in table.schema}, schema=table.schema),
                self._base,
                self._stream or None,
                self._foreign,
            )
        else:
            table = self._conform(table)
        self._writer.append(table)
        self._rows += table.num_rows

    def _apply_schemas(self, table: pa.Table) -> pa.Table:
        for name, target in self._schemas.items():
            index = table.schema.get_field_index(name)
            if index < 0:
                continue
            field = target if isinstance(target, pa.Field) else pa.field(name, target)
            field = field.with_name(name)
            try:
                column = table.column(index).cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
                raise InvalidInput(
                    f"invalid input: column {name!r} cannot be cast to {field.type}: {error}"
                ) from error
            table = table.set_column(index, field, column)
        return table

    def _with_example_ids(self, table: pa.Table) -> pa.Table:
        if self._input_rows is None:
            return table
        positional = EXAMPLE_ID not in table.schema.names
        if self._positional is None:
            self._positional = positional
        elif self._positional != positional:
            raise SchemaMismatch(
                "schema mismatch: every batch joined to an input table has an example_id column, "
                "or none has"
            )
        if positional:
            ids = np.arange(self._rows, self._rows + table.num_rows, dtype=np.int64)
            field = pa.field(EXAMPLE_ID, pa.int64(), nullable=False, metadata={_native.ROLE_KEY: "example_id"})
            return table.add_column(0, field, pa.array(ids))
        column = table.column(EXAMPLE_ID)
        if not pa.types.is_integer(column.type):
            raise InvalidInput(f"invalid input: column example_id is {column.type}; example ids are integers")
        if column.null_count:
            raise InvalidInput("invalid input: column example_id has nulls; every row needs its input row")
        ids = column.to_numpy().astype(np.int64, copy=False)
        rows = self._input_rows
        bad = (ids < 0) | (ids >= rows)
        if bad.any():
            first = int(ids[np.argmax(bad)])
            raise InvalidInput(
                f"invalid input: example_id {first} is not a row of the input table {self._foreign} "
                f"({rows} rows)"
            )
        if self._seen is None:
            self._seen = np.zeros(rows, dtype=bool)
        unique, counts = np.unique(ids, return_counts=True)
        repeated = unique[(counts > 1) | self._seen[unique]]
        if repeated.size:
            raise InvalidInput(
                f"invalid input: example_id {int(repeated[0])} appears more than once; each input "
                "row has at most one metrics row"
            )
        self._seen[unique] = True
        return table

    def _conform(self, table: pa.Table) -> pa.Table:
        schema = self._schema
        assert schema is not None
        if table.schema.names != schema.names:
            missing = [n for n in schema.names if n not in table.schema.names]
            extra = [n for n in table.schema.names if n not in schema.names]
            if missing or extra:
                raise SchemaMismatch(
                    f"schema mismatch: batch of {self.url} differs from the first batch: "
                    f"missing {missing}, extra {extra}"
                )
            table = table.select(schema.names)
        if table.schema.equals(schema):
            return table
        try:
            return table.cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
            raise SchemaMismatch(
                f"schema mismatch: batch of {self.url} cannot be cast to the first batch's "
                f"schema: {error}"
            ) from error

