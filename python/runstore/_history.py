"""One per-step history per run, whatever ``Run.log`` did on disk.

``Run.log`` writes to the metrics table ``<run url>/steps_NNNN`` (a ``step`` column, one
float column per key) and moves to a new, wider table when a key appears for the first time
(train loss per step, then validation metrics per epoch). This module reads those tables
back as one: :func:`history` joins them by step, :func:`scalars` gives one key's points,
:func:`step_tables` finds them. What it leaves to others: the writing (the native logger,
which carries on in the newest step table after a reopen), and every table that is not a
step table (``run.metrics_tables``).

The join is the Rust library's (``Run::history``, so the command line and the viewer can read
the same history); this module flushes the handle's logger first and shapes the result. The
rule it keeps: a step appears once, in step order; each key holds the last value logged for
it at that step (a later ``log`` at the same step wins; a key not logged at a step is null,
and a logged NaN stays NaN).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._errors import InvalidInput

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


def _flush(run: "Run") -> None:
    # Rows of this handle's logger wait up to its commit window: make them readable first.
    if run._r.log_table_url() is not None:
        run._r.flush_log()


def history(run: "Run", keys: Optional[Sequence[str]] = None) -> pa.Table:
    """See :meth:`runstore.Run.history` (the join is the Rust library's ``Run::history``)."""
    if isinstance(keys, str):
        keys = [keys]
    if keys is not None:
        keys = list(keys)
        for key in keys:
            if not isinstance(key, str):
                raise InvalidInput(f"history() keys are strings; got {type(key).__name__}")
    _flush(run)
    from . import _arrow_from_stream

    return _arrow_from_stream(run._r.history(keys))


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


