"""MLflow's fluent tracking API over a store: ``import runstore.mlflow as mlflow``.

The common subset of ``mlflow``'s module-level calls, mapped onto runstore's model:

=====================================  ==================================================
MLflow                                 runstore
=====================================  ==================================================
tracking uri (``set_tracking_uri``)    a store file (default: the default store)
experiment (``set_experiment``)        a project
run (``start_run`` / ``end_run``)      a run; its ``run_id`` is the run url
``log_param(s)``                       parameters
``log_metric(s)`` with ``step``        per-step scalars (:meth:`Run.log`); at ``end_run``
                                       the latest value of each metric becomes an output
                                       value, which ``search_runs`` reads as ``metrics.*``
``set_tag(s)``                         the parameter map ``tags``
status FINISHED / FAILED / KILLED      COMPLETED / CANCELLED / CANCELLED
``search_runs(filter_string,           :meth:`Store.runs`, as a pandas DataFrame with
order_by)``                            MLflow's column names
=====================================  ==================================================

Parameter values keep their types (MLflow turns them into strings). A run written here reads
back through ``runstore.Run``, the CLI and the viewer, and the other way round.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import _active, _lifecycle
from ._errors import InvalidInput
from ._roots import default_store_path

__all__ = [
    "set_tracking_uri",
    "get_tracking_uri",
    "set_experiment",
    "start_run",
    "end_run",
    "active_run",
    "log_param",
    "log_params",
    "log_metric",
    "log_metrics",
    "set_tag",
    "set_tags",
    "search_runs",
    "ActiveRun",
]

#: MLflow's run statuses and runstore's.
_END_STATUS = {"FINISHED": "COMPLETED", "FAILED": "CANCELLED", "KILLED": "CANCELLED"}
_MLFLOW_STATUS = {
    "COMPLETED": "FINISHED",
    "CANCELLED": "KILLED",
    "RUNNING": "RUNNING",
    "COLLECTING": "RUNNING",
    "POST_PROCESSING": "RUNNING",
    "EMPTY": "SCHEDULED",
    "PAUSED": "SCHEDULED",
}

_lock = threading.Lock()
_tracking_uri: Optional[str] = None
_experiment: str = "Default"
_stack: List["ActiveRun"] = []


def set_tracking_uri(uri: Any) -> None:
    """Sets the store file runs go to (a path, or ``file:`` followed by one)."""
    global _tracking_uri
    text = str(uri)
    for prefix in ("file://", "file:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    with _lock:
        _tracking_uri = text or None


def get_tracking_uri() -> str:
    """The store file runs go to: the one set, else the default store."""
    with _lock:
        return _tracking_uri or default_store_path()


def _store() -> Any:
    from . import _store_at

    return _store_at(get_tracking_uri(), create=True)


class Experiment:
    """An experiment: a project of the store (``name``; ``experiment_id`` is the name)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.experiment_id = name

    def __repr__(self) -> str:
        return f"<Experiment: name={self.name!r}>"


def set_experiment(experiment_name: Optional[str] = None, experiment_id: Optional[str] = None) -> Experiment:
    """Makes ``experiment_name`` (a project) the experiment of the runs started next."""
    global _experiment
    name = experiment_name or experiment_id
    if not name:
        raise InvalidInput("invalid input: set_experiment needs experiment_name")
    with _lock:
        _experiment = str(name)
    return Experiment(str(name))


class RunInfo:
    """MLflow's ``run.info``: ``run_id`` (the run url), ``run_name``, ``experiment_id``,
    ``status``, ``start_time``/``end_time`` (milliseconds), ``artifact_uri``."""

    def __init__(self, run: Any) -> None:
        self._run = run

    run_id = property(lambda self: self._run.url)
    run_uuid = run_id
    run_name = property(lambda self: self._run.name)
    experiment_id = property(lambda self: self._run.project)
    status = property(lambda self: _MLFLOW_STATUS.get(self._run.status_name, "RUNNING"))
    start_time = property(lambda self: self._run.created_us // 1000)
    end_time = property(
        lambda self: None if self.status == "RUNNING" else self._run.last_modified_us // 1000
    )
    artifact_uri = property(lambda self: f"{self._run.store.path}/{self._run.bulk_data_url}")


class RunData:
    """MLflow's ``run.data``: ``params``, ``metrics`` (latest values) and ``tags``."""

    def __init__(self, run: Any) -> None:
        self._run = run

    @property
    def params(self) -> Dict[str, Any]:
        return {k: v for k, v in self._run.parameters.items() if k != "tags"}

    @property
    def metrics(self) -> Dict[str, Any]:
        latest = dict(self._run.summary.as_dict())
        return latest

    @property
    def tags(self) -> Dict[str, Any]:
        tags = self._run.parameters.get("tags")
        return dict(tags) if isinstance(tags, dict) else {}


class ActiveRun:
    """A started run (``with mlflow.start_run() as run:``); ``run.info`` and ``run.data`` as
    MLflow's; ``run.run`` is the :class:`runstore.Run`. Leaving the ``with`` block ends it:
    FINISHED, or FAILED on an exception (CANCELLED, with the exception's type in the
    description, as a run's own ``with`` block does)."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.info = RunInfo(run)
        self.data = RunData(run)
        self._latest: Dict[str, float] = {}
        self._ended = False

    def __enter__(self) -> "ActiveRun":
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if self._ended:
            return
        if _lifecycle.is_failure(kind, error):
            _end(self, "FAILED", kind)
        else:
            _end(self, "FINISHED")

    def __repr__(self) -> str:
        return f"<ActiveRun: run_id={self.info.run_id!r}>"


def start_run(
    run_id: Optional[str] = None,
    experiment_id: Optional[str] = None,
    run_name: Optional[str] = None,
    nested: bool = False,
    tags: Optional[Mapping[str, Any]] = None,
    description: Optional[str] = None,
    log_system_metrics: Optional[bool] = None,
) -> ActiveRun:
    """Starts a run in the current experiment (or ``experiment_id``, a project name), or
    resumes the run ``run_id`` (a run url). A run already active needs ``nested=True``.
    Returns an :class:`ActiveRun` (a context manager)."""
    with _lock:
        active = list(_stack)
        experiment = experiment_id or _experiment
    if active and not nested:
        raise InvalidInput(
            f"invalid input: run {active[-1].info.run_id} is already active; call end_run() "
            "first or start_run(nested=True)"
        )
    store = _store()
    if run_id is not None:
        run = store.run(run_id)
        run.set_status_running()
        store.set_active_run(run)
    else:
        run = store.init(experiment, run_name, description)
        run.set_status_running()
    if tags:
        _merge_tags(run, tags)
    if nested and active:
        _merge_tags(run, {"mlflow.parentRunId": active[-1].info.run_id})
    started = ActiveRun(run)
    with _lock:
        _stack.append(started)
    return started


def active_run() -> Optional[ActiveRun]:
    """The run started last and not ended, or None."""
    with _lock:
        return _stack[-1] if _stack else None


def _current() -> ActiveRun:
    run = active_run()
    if run is None:
        run = start_run()
    return run


def end_run(status: str = "FINISHED") -> None:
    """Ends the active run: its logged metrics are committed, their latest values become an
    output value, and its status becomes ``status`` (``FINISHED`` → COMPLETED, ``FAILED`` or
    ``KILLED`` → CANCELLED). Without an active run this does nothing."""
    run = active_run()
    if run is not None:
        _end(run, status)


def _end(started: ActiveRun, status: str, exc_type: Any = None) -> None:
    target = _END_STATUS.get(str(status).upper())
    if target is None:
        raise InvalidInput(
            f"invalid input: end_run status is FINISHED, FAILED or KILLED, not {status!r}"
        )
    with _lock:
        if started in _stack:
            _stack.remove(started)
    started._ended = True
    run = started.run
    run.close_log()
    if started._latest:
        run.add_output_value(dict(started._latest))
    if exc_type is not None:
        _lifecycle.cancel(run, exc_type)  # CANCELLED, the exception's type in the description
    else:
        run.set_status(target)
    _active.clear_if(run)


def log_param(key: str, value: Any) -> Any:
    """Sets the parameter ``key`` of the active run (started if none); returns ``value``."""
    _current().run.set_parameters({str(key): value})
    return value


def log_params(params: Mapping[str, Any]) -> None:
    """Sets several parameters of the active run in one commit."""
    if params:
        _current().run.set_parameters({str(k): v for k, v in params.items()})


def log_metric(
    key: str,
    value: float,
    step: Optional[int] = None,
    timestamp: Optional[int] = None,
    run_id: Optional[str] = None,
    synchronous: Optional[bool] = None,
) -> None:
    """Logs ``value`` as the metric ``key`` at ``step`` (default: the previous step + 1)."""
    log_metrics({key: value}, step=step, run_id=run_id)


def log_metrics(
    metrics: Mapping[str, float],
    step: Optional[int] = None,
    synchronous: Optional[bool] = None,
    run_id: Optional[str] = None,
    timestamp: Optional[int] = None,
) -> None:
    """Logs several metrics at one ``step`` (one row of the run's step table)."""
    started = _current()
    if run_id is not None and run_id != started.info.run_id:
        raise InvalidInput(
            f"invalid input: log_metrics(run_id={run_id!r}) names a run that is not active "
            f"({started.info.run_id} is)"
        )
    values = {str(k): float(v) for k, v in metrics.items()}
    started.run.log(values, step=step)
    started._latest.update(values)


def set_tag(key: str, value: Any) -> None:
    """Sets the tag ``key`` of the active run (the parameter ``tags.<key>``)."""
    _merge_tags(_current().run, {str(key): value})


def set_tags(tags: Mapping[str, Any]) -> None:
    """Sets several tags of the active run."""
    _merge_tags(_current().run, tags)


def _merge_tags(run: Any, tags: Mapping[str, Any]) -> None:
    current = run.parameters.get("tags")
    merged = dict(current) if isinstance(current, dict) else {}
    merged.update({str(k): v for k, v in tags.items()})
    run.set_parameters({"tags": merged})


# --------------------------------------------------------------------------------------------
# search_runs

#: An identifier prefix MLflow has and runstore spells otherwise.
_PREFIX = re.compile(r"(?<![\w.`\"'])(tags|tag)\.", re.IGNORECASE)


def _translate(text: str) -> str:
    """An MLflow filter or order key in runstore's language: ``tags.x`` is the parameter
    ``params.tags.x`` and ``tags.mlflow.runName`` the run's name (outside quoted strings)."""
    out: List[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c in "'\"`":
            end = i + 1
            while end < len(text):
                if text[end] == c:
                    if end + 1 < len(text) and text[end + 1] == c:
                        end += 2
                        continue
                    break
                end += 1
            out.append(text[i : end + 1])
            i = end + 1
            continue
        j = i
        while j < len(text) and text[j] not in "'\"`":
            j += 1
        chunk = text[i:j]
        chunk = re.sub(r"(?<![\w.])tags\.[`\"]?mlflow\.runName[`\"]?", "name", chunk, flags=re.IGNORECASE)
        chunk = _PREFIX.sub("params.tags.", chunk)
        out.append(chunk)
        i = j
    return "".join(out)


def search_runs(
    experiment_ids: Optional[Sequence[str]] = None,
    filter_string: str = "",
    run_view_type: Any = None,
    max_results: int = 100_000,
    order_by: Optional[Sequence[str]] = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Optional[Sequence[str]] = None,
) -> Any:
    """The runs of the experiments (default: the current one; ``search_all_experiments`` for
    all) that ``filter_string`` selects, sorted by ``order_by`` (a list of ``"metrics.acc
    DESC"``-style keys), as a pandas DataFrame with MLflow's columns: ``run_id``,
    ``experiment_id``, ``status``, ``artifact_uri``, ``start_time``, ``end_time``, then
    ``metrics.*``, ``params.*``, ``tags.*`` and ``tags.mlflow.runName``. ``output_format="list"``
    gives a list of :class:`ActiveRun`-like objects (``.info``, ``.data``) instead."""
    import pandas as pd

    store = _store()
    names: List[Optional[str]]
    if search_all_experiments:
        names = [None]
    else:
        names = list(experiment_names or experiment_ids or [_experiment])
    order = ", ".join(_translate(key) for key in (order_by or [])) or None
    where = _translate(filter_string) if filter_string else None
    runs: List[Any] = []
    for name in names:
        runs.extend(store.runs(filter=where, order_by=order, project=name, limit=max_results))
    if order is None or len(names) > 1:
        runs.sort(key=lambda r: -r.created_us)
    runs = runs[:max_results]
    if output_format == "list":
        return [_Found(run) for run in runs]
    if output_format != "pandas":
        raise InvalidInput(f"invalid input: output_format is 'pandas' or 'list', not {output_format!r}")
    rows = []
    for run in runs:
        info, data = RunInfo(run), RunData(run)
        row: Dict[str, Any] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "status": info.status,
            "artifact_uri": info.artifact_uri,
            "start_time": pd.Timestamp(run.created_us, unit="us", tz="UTC"),
            "end_time": None
            if info.end_time is None
            else pd.Timestamp(run.last_modified_us, unit="us", tz="UTC"),
        }
        for key, value in data.metrics.items():
            row[f"metrics.{key}"] = value
        for key, value in data.params.items():
            row[f"params.{key}"] = value
        for key, value in data.tags.items():
            row[f"tags.{key}"] = value
        row["tags.mlflow.runName"] = run.name
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(
            columns=["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
        )
    return frame


class _Found:
    """A run ``search_runs(output_format="list")`` found: ``.info`` and ``.data``."""

    def __init__(self, run: Any) -> None:
        self.info = RunInfo(run)
        self.data = RunData(run)

