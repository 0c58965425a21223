"""One per-step history per run, whatever ``Run.log`` did on disk.

``Run.log`` writes to the metrics table ``<run url>/steps_NNNN`` (a ``step`` column, one
float column per key) and moves to a new, wider table when a key appears for the first time
(train loss per step, then validation metrics per epoch). This module reads those tables
back as one: :func:`history` joins them by step, :func:`scalars` gives one key's points,
:func:`step_tables` finds them. What it leaves to others: the writing (the native logger,
which carries on in the newest step table after a reopen), and every table that is not a
step table (``run.metrics_tables``).

The rule it keeps: a step appears once, in step order; each key holds the last value logged
for it at that step (a later ``log`` at the same step wins; a key not logged at a step is
null, and a logged NaN stays NaN).
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._errors import InvalidInput, NotFound

if TYPE_CHECKING:  # pragma: no cover
    from . import Run, Table

_STEP_TABLE = re.compile(r"/steps_([0-9]+)$")


class Scalars(NamedTuple):
    """One logged key's points: ``steps`` (int64) and ``values`` (float64), numpy arrays of
    the same length in step order, holding only the steps where the key was logged. Unpacks
    as ``steps, values = run.scalars("loss")``."""

    steps: np.ndarray
    values: np.ndarray


def _is_step_schema(schema: pa.Schema) -> bool:
    if len(schema) == 0 or schema.field(0).name != "step":
        return False
    if schema.field(0).type != pa.int64():
        return False
    return all(field.type == pa.float64() for field in list(schema)[1:])


def step_tables(run: "Run") -> List["Table"]:
    """The run's step tables (``steps_NNNN`` with a logger's schema), oldest first."""
    found = []
    for table in run.metrics_tables:
        match = _STEP_TABLE.search(table.url)
        if match is not None and _is_step_schema(table.schema):
            found.append((int(match.group(1)), table))
    found.sort(key=lambda item: item[0])
    return [table for _, table in found]


def logged_keys(tables: Sequence["Table"]) -> List[str]:
    """The keys of ``tables``, in the order they were first logged."""
    keys: dict = {}
    for table in tables:
        for name in table.schema.names[1:]:
            keys[name] = None
    return list(keys)


def _flush(run: "Run") -> None:
    # Rows of this handle's logger wait up to its commit window: make them readable first.
    if run._r.log_table_url() is not None:
        run._r.flush_log()


def history(run: "Run", keys: Optional[Sequence[str]] = None) -> pa.Table:
    """See :meth:`runstore.Run.history`."""
    if isinstance(keys, str):
        keys = [keys]
    _flush(run)
    tables = step_tables(run)
    known = logged_keys(tables)
    if keys is None:
        wanted = known
    else:
        wanted = []
        for key in keys:
            if not isinstance(key, str):
                raise InvalidInput(f"history() keys are strings; got {type(key).__name__}")
            if key == "step":
                continue
            if key not in known:
                raise NotFound(_unknown_key_message(run, key, known))
            if key not in wanted:
                wanted.append(key)
    schema = pa.schema(
        [pa.field("step", pa.int64(), nullable=False)]
        + [pa.field(key, pa.float64()) for key in wanted]
    )
    parts = []
    for table in tables:
        names = set(table.schema.names)
        if keys is not None and not any(key in names for key in wanted):
            continue  # holds none of the keys asked for: none of its steps belong
        read = table.to_arrow(["step"] + [key for key in wanted if key in names])
        columns = [read.column("step")] + [
            read.column(key) if key in names else pa.nulls(read.num_rows, pa.float64())
            for key in wanted
        ]
        parts.append(pa.Table.from_arrays(columns, schema=schema))
    if not parts:
        return schema.empty_table()
    combined = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
    steps = combined.column("step")
    if len(steps) < 2 or pc.all(pc.greater(steps[1:], steps[:-1])).as_py():
        # Already one row per step, in order (the usual case): no copy.
        return combined
    grouped = combined.group_by("step", use_threads=False).aggregate(
        [(key, "last") for key in wanted]
    )
    joined = pa.Table.from_arrays(
        [grouped.column("step")] + [grouped.column(f"{key}_last") for key in wanted],
        schema=schema,
    )
    return joined.sort_by("step")


def scalars(run: "Run", key: str) -> Scalars:
    """See :meth:`runstore.Run.scalars`."""
    if not isinstance(key, str):
        raise InvalidInput(f"scalars() takes one key, a string; got {type(key).__name__}")
    table = history(run, [key])
    column = table.column(key)
    if column.null_count:
        table = table.filter(pc.is_valid(column))
    steps = table.column("step").to_numpy()
    values = table.column(key).to_numpy()
    return Scalars(np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64))


def resumed_log_table(run: "Run") -> Optional["Table"]:
    """The step table a first ``log()`` of this handle would carry on in: the newest."""
    tables = step_tables(run)
    return tables[-1] if tables else None


def _unknown_key_message(run: "Run", key: str, known: Sequence[str]) -> str:
    if not known:
        return f"run {run.url} has logged nothing: no key {key!r}"
    close = [k for k in known if k.lower() == key.lower()]
    close = close or difflib.get_close_matches(key, known, n=1)
    close = close or sorted((k for k in known if k.startswith(key)), key=len)[:1]
    hint = f" (did you mean {close[0]!r}?)" if close else f" (logged keys: {', '.join(known[:20])})"
    return f"run {run.url} has no logged key {key!r}{hint}"
