"""``SummaryWriter``: TensorBoard's writer (``torch.utils.tensorboard``) over a store.

``from runstore import SummaryWriter`` in place of ``from torch.utils.tensorboard import
SummaryWriter``: each writer is one run, ``global_step`` is the ``step`` column, and what
TensorBoard keeps in event files goes where the rest of runstore reads it:

- ``add_scalar`` / ``add_scalars``: per-step scalars (:meth:`Run.log`), read back with
  ``run.history()``, ``runstore scan`` and the viewer's charts;
- ``add_hparams``: parameters, and the metrics as an output value;
- ``add_text``: rows ``(step, tag, text)`` of the run's table ``text``;
- ``add_histogram``: rows ``(step, tag, values, count, min, max, mean)`` of the table
  ``histograms`` (``values``, the raw values, is the table column);
- ``add_embedding``: a metrics table with an ``embedding`` column (role embedding, ready
  for ``reduce_embeddings_per_dataset``), the metadata columns and ``step``/``tag``.

Where the run goes: ``SummaryWriter("runs/exp1")`` is the run ``exp1`` of the store
``runs.runs`` (so ``tensorboard --logdir runs`` becomes ``runstore ui runs.runs``);
``SummaryWriter("exp.runs")`` a new run of that store; no ``log_dir`` a run named as
TensorBoard names its directory (``Dec07_09-21-58_host``) in the default store. ``store=``
and ``run_name=``/``project_name=`` say it outright.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from . import _active
from ._errors import InvalidInput
from ._roots import default_store_path


def _scalar(value: Any, what: str) -> float:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        return float(np.asarray(value).reshape(()))
    except (TypeError, ValueError):
        raise InvalidInput(
            f"invalid input: {what} takes one number, not {type(value).__name__}"
        ) from None


def _array(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


class SummaryWriter:
    """TensorBoard's ``SummaryWriter`` writing one run of a store (see the module's doc).

    ``purge_step``, ``max_queue``, ``flush_secs``, ``filename_suffix`` and ``walltime``
    arguments are accepted and have no effect: values are committed by the store's group
    commit (durable within 100 ms), not by a queue of event files.
    """

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
    ) -> None:
        from . import Store, _store_at

        path: Optional[str] = None
        name = run_name
        if store is None:
            if log_dir is None:
                stamp = _dt.datetime.now().strftime("%b%d_%H-%M-%S")
                path = default_store_path()
                name = name or f"{stamp}_{socket.gethostname()}{comment}"
            else:
                text = os.fspath(log_dir).rstrip("/")
                if text.endswith(".runs"):
                    path = text
                else:
                    parent, leaf = os.path.split(text)
                    path = f"{parent}.runs" if parent else default_store_path()
                    name = name or f"{leaf}{comment}"
            store = _store_at(path, create=True)
        elif not isinstance(store, Store):
            store = _store_at(os.fspath(store), create=True)
        self._store = store
        self.run = store.init(project_name, name or None)
        self.run.set_status_running()
        self._step: Optional[int] = None
        self._values: Dict[str, float] = {}
        self._closed = False

    # -- TensorBoard's calls

    def get_logdir(self) -> str:
        """Where the writer writes: ``<store path>/<run url>``."""
        return f"{self._store.path}/{self.run.url}"

    def add_scalar(
        self,
        tag: str,
        scalar_value: Any,
        global_step: Optional[int] = None,
        walltime: Optional[float] = None,
        new_style: bool = False,
        double_precision: bool = False,
    ) -> None:
        """Logs ``scalar_value`` as the column ``tag`` at ``global_step`` (values of one step
        are written as one row)."""
        self._check_open()
        self._put({str(tag): _scalar(scalar_value, "add_scalar")}, global_step)

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: Mapping[str, Any],
        global_step: Optional[int] = None,
        walltime: Optional[float] = None,
    ) -> None:
        """Logs each ``tag: value`` as the column ``<main_tag>/<tag>`` at ``global_step``."""
        self._check_open()
        values = {
            f"{main_tag}/{tag}": _scalar(value, "add_scalars")
            for tag, value in tag_scalar_dict.items()
        }
        self._put(values, global_step)

    def add_hparams(
        self,
        hparam_dict: Mapping[str, Any],
        metric_dict: Mapping[str, Any],
        hparam_domain_discrete: Optional[Mapping[str, Sequence[Any]]] = None,
        run_name: Optional[str] = None,
        global_step: Optional[int] = None,
    ) -> None:
        """Sets ``hparam_dict`` as the run's parameters and adds ``metric_dict`` as an output
        value (with ``step`` when ``global_step`` is given)."""
        self._check_open()
        if hparam_dict:
            self.run.set_parameters(dict(hparam_dict))
        metrics: Dict[str, Any] = {k: _scalar(v, "add_hparams") for k, v in metric_dict.items()}
        if global_step is not None:
            metrics["step"] = int(global_step)
        if metrics:
            self.run.add_output_value(metrics)

    def add_text(
        self,
        tag: str,
        text_string: str,
        global_step: Optional[int] = None,
        walltime: Optional[float] = None,
    ) -> None:
        """Appends ``(step, tag, text)`` to the run's table ``text``."""
        self._check_open()
        self.run.append_metrics(
            "text",
            {"step": [self._step_of(global_step)], "tag": [str(tag)], "text": [str(text_string)]},
        )

    def add_histogram(
        self,
        tag: str,
        values: Any,
        global_step: Optional[int] = None,
        bins: Any = "tensorflow",
        walltime: Optional[float] = None,
        max_bins: Optional[int] = None,
    ) -> None:
        """Appends the raw ``values`` (flattened, float64) as one row of the run's table
        ``histograms``: ``step``, ``tag``, ``values`` (a list column), ``count``, ``min``,
        ``max``, ``mean``. Bins are not precomputed: any binning can be drawn from the
        values."""
        self._check_open()
        import pyarrow as pa

        flat = _array(values).astype(np.float64, copy=False).reshape(-1)
        if flat.size == 0:
            raise InvalidInput(f"invalid input: add_histogram({tag!r}) was given no values")
        self.run.append_metrics(
            "histograms",
            pa.table(
                {
                    "step": pa.array([self._step_of(global_step)], pa.int64()),
                    "tag": pa.array([str(tag)]),
                    "values": pa.array([flat], pa.list_(pa.float64())),
                    "count": pa.array([flat.size], pa.int64()),
                    "min": pa.array([float(flat.min())]),
                    "max": pa.array([float(flat.max())]),
                    "mean": pa.array([float(flat.mean())]),
                }
            ),
        )

    def add_embedding(
        self,
        mat: Any,
        metadata: Optional[Sequence[Any]] = None,
        label_img: Any = None,
        global_step: Optional[int] = None,
        tag: str = "default",
        metadata_header: Optional[Sequence[str]] = None,
    ) -> Any:
        """Writes ``mat`` (rows x width) as a metrics table ``<run>/embeddings_NNNN``: the
        ``embedding`` column, the ``metadata`` (one label per row as ``label``, or rows of
        values named by ``metadata_header``), ``step`` and ``tag``. Returns the table's info.
        ``label_img`` is not stored (images are not kept)."""
        self._check_open()
        matrix = _array(mat).astype(np.float32, copy=False)
        if matrix.ndim != 2 or matrix.shape[0] == 0:
            raise InvalidInput(
                f"invalid input: add_embedding takes a (rows, width) matrix, got shape {matrix.shape}"
            )
        rows = matrix.shape[0]
        columns: Dict[str, Any] = {}
        if metadata is not None:
            metadata = list(metadata)
            if len(metadata) != rows:
                raise InvalidInput(
                    f"invalid input: add_embedding got {len(metadata)} metadata rows for {rows} "
                    "embedding rows"
                )
            if metadata_header is not None:
                header = [str(h) for h in metadata_header]
                for i, name in enumerate(header):
                    columns[name] = [row[i] for row in metadata]
            else:
                columns["label"] = metadata
        columns["embedding"] = matrix
        columns["step"] = np.full(rows, self._step_of(global_step), dtype=np.int64)
        columns["tag"] = [str(tag)] * rows
        return self.run.add_metrics_data(columns, table_writer_base_name="embeddings")[0]

    def flush(self) -> None:
        """Writes the step being gathered and commits every logged row."""
        self._write_step()
        self.run.flush_log()

    def close(self) -> None:
        """Flushes, closes the run's logger and, if the run is still RUNNING, marks it
        COMPLETED (idempotent)."""
        if self._closed:
            return
        self._write_step()
        self._closed = True
        self.run.finish()

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is None:
            self.close()
            return
        from . import _lifecycle

        self._write_step()
        self._closed = True
        if _lifecycle.is_failure(kind, error):
            _lifecycle.cancel(self.run, kind)  # CANCELLED, the exception's type recorded
            _active.clear_if(self.run)
        else:
            self.run.finish()

    def __repr__(self) -> str:
        return f"SummaryWriter({self.get_logdir()!r})"

    # -- inside

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInput(f"invalid input: the SummaryWriter of {self.get_logdir()} is closed")

    def _step_of(self, global_step: Optional[int]) -> int:
        if global_step is not None:
            return int(global_step)
        return self._step if self._step is not None else 0

    def _put(self, values: Dict[str, float], global_step: Optional[int]) -> None:
        if global_step is None:
            self._write_step()
            self.run.log(values)
            return
        step = int(global_step)
        if self._step is not None and step != self._step:
            self._write_step()
        self._step = step
        self._values.update(values)

    def _write_step(self) -> None:
        if self._values:
            values, self._values = self._values, {}
            self.run.log(values, step=self._step)

