"""The active run of this process, and the module-level calls that act on it.

3LC's ``tlc.init`` makes the run it creates the active run, and module-level calls
(``tlc.add_output_value``, ``tlc.log``, ``tlc.reduce_embeddings_per_dataset``, ...) act on it.
Here the active run is per process, not per store handle: :meth:`Store.init` on any store,
:meth:`Store.set_active_run` and :func:`runstore.set_active_run` set it.

The same module-level calls are wandb's and trackio's (``import runstore as wandb``):
``log``, ``config``, ``summary`` and ``finish`` act on the active run as theirs do.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterator, List, Mapping, MutableMapping, Optional

from ._errors import NoActiveRun
from ._status import ACTIVE_STATUSES

_lock = threading.Lock()
_run: Any = None


def set_current(run: Any) -> None:
    """Makes ``run`` (a :class:`runstore.Run`, or None) the process's active run."""
    global _run
    with _lock:
        _run = run


def current_or_none() -> Any:
    """The active run, or None when there is none or its store was closed."""
    with _lock:
        run = _run
    if run is None or run.store.closed:
        return None
    return run


def current() -> Any:
    """The active run; raises :class:`NoActiveRun` when there is none."""
    run = current_or_none()
    if run is None:
        raise NoActiveRun(
            "no active run: call runstore.init(project_name=...) first (or "
            "runstore.set_active_run(run))"
        )
    return run


def clear_if(run: Any) -> None:
    """Forgets the active run if it is ``run``."""
    global _run
    with _lock:
        if _run is not None and _run == run:
            _run = None


# --------------------------------------------------------------------------------------------
# Module-level calls on the active run (3LC's, and wandb's / trackio's)


def add_output_value(output_value: Mapping[str, Any]) -> None:
    """:meth:`Run.add_output_value` on the active run (3LC's ``tlc.add_output_value``)."""
    current().add_output_value(output_value)


def log(data: Mapping[str, Any], step: Optional[int] = None) -> None:
    """:meth:`Run.log` on the active run: one step of scalars, ``step`` defaulting to the
    previous step + 1 (3LC's and wandb's ``log``)."""
    current().log(data, step=step)


def set_status_running() -> None:
    """Sets the active run's status to RUNNING."""
    current().set_status_running()


def set_status_collecting() -> None:
    """Sets the active run's status to COLLECTING."""
    current().set_status_collecting()


def set_status_post_processing() -> None:
    """Sets the active run's status to POST_PROCESSING."""
    current().set_status_post_processing()


def set_status_completed() -> None:
    """Sets the active run's status to COMPLETED."""
    current().set_status_completed()


def set_status_empty() -> None:
    """Sets the active run's status to EMPTY."""
    current().set_status_empty()


def set_status_paused() -> None:
    """Sets the active run's status to PAUSED."""
    current().set_status_paused()


def set_status_cancelled() -> None:
    """Sets the active run's status to CANCELLED."""
    current().set_status_cancelled()


def reduce_embeddings_per_dataset(
    delete_source_tables: bool = True, *, run: Any = None, **kwargs: Any
) -> Dict[str, str]:
    """:meth:`Run.reduce_embeddings_per_dataset` on ``run`` (a :class:`Run` or a run url;
    default the active run), as 3LC's module-level ``tlc.reduce_embeddings_per_dataset``."""
    return _run_of(run).reduce_embeddings_per_dataset(delete_source_tables, **kwargs)


def reduce_embeddings_by_foreign_table_url(
    foreign_table_url: Any, delete_source_tables: bool = True, *, run: Any = None, **kwargs: Any
) -> Dict[str, str]:
    """:meth:`Run.reduce_embeddings_by_foreign_table_url` on ``run`` (default the active
    run), as 3LC's module-level ``tlc.reduce_embeddings_by_foreign_table_url``."""
    return _run_of(run).reduce_embeddings_by_foreign_table_url(
        foreign_table_url, delete_source_tables, **kwargs
    )


def _run_of(run: Any) -> Any:
    if run is None:
        return current()
    if isinstance(run, str):
        from . import Run

        return Run.from_url(run)
    return run


def finish(exit_code: Optional[int] = None, quiet: Optional[bool] = None) -> None:
    """Ends the active run (wandb's and trackio's ``finish``): its logged steps are committed,
    a run still EMPTY or working (RUNNING, COLLECTING, POST_PROCESSING) becomes COMPLETED, or
    CANCELLED when ``exit_code`` is non-zero, and it stops being the active run. Without an active run this
    does nothing. ``quiet`` is accepted and ignored."""
    run = current_or_none()
    if run is None:
        return
    run.finish(exit_code=exit_code)


# --------------------------------------------------------------------------------------------
# wandb's config and summary


class _RunView(MutableMapping):
    """A dict-like view of one part of a run (the run given by ``of()``): reads come from
    :meth:`_data`, writes go through :meth:`_write`, keys are also attributes, and nothing is
    ever deleted (runs only gain and set values)."""

    __slots__ = ("_of",)
    #: What the view is called in errors.
    _what = "view"

    def __init__(self, of: Callable[[], Any]) -> None:
        object.__setattr__(self, "_of", of)

    def _data(self) -> Dict[str, Any]:
        raise NotImplementedError

    def _write(self, values: Dict[str, Any]) -> None:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._write({key: value})

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"{self._what} keys cannot be deleted: runs only gain and set values")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self._data()[key]
        except KeyError:
            raise AttributeError(f"{self._what} has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def as_dict(self) -> Dict[str, Any]:
        """The view's keys and values as a plain dict."""
        return dict(self._data())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data()!r})"


class Config(_RunView):
    """A run's parameters as wandb's ``config``: a dict-like view whose writes update the
    stored parameters at once (``config.lr = 0.01``, ``config["lr"]``, ``config.update({...})``).

    ``runstore.config`` follows the active run; ``run.config`` is that run's.
    """

    __slots__ = ()
    _what = "config"

    def _data(self) -> Dict[str, Any]:
        params = self._of().parameters
        return params if isinstance(params, dict) else {}

    def _write(self, values: Dict[str, Any]) -> None:
        self._of().set_parameters(values)

    def update(self, other: Any = (), /, allow_val_change: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        """Sets several keys in one commit (wandb's ``allow_val_change`` is accepted)."""
        values = dict(other, **kwargs)
        if values:
            self._write(values)

    def setdefaults(self, values: Mapping[str, Any]) -> None:
        """Sets the keys of ``values`` that are not set yet (wandb's ``setdefaults``)."""
        params = self._data()
        missing = {k: v for k, v in values.items() if k not in params}
        if missing:
            self._write(missing)


class Summary(_RunView):
    """A run's latest outputs as wandb's ``summary``: reading gives each key's value in the
    latest output value holding it; ``summary["best_acc"] = 0.97`` (or ``update``) adds an
    output value.

    ``runstore.summary`` follows the active run; ``run.summary`` is that run's.
    """

    __slots__ = ()
    _what = "summary"

    def _data(self) -> Dict[str, Any]:
        latest: Dict[str, Any] = {}
        values: List[Any] = self._of().output_values
        for value in values:
            if isinstance(value, dict):
                latest.update(value)
        return latest

    def _write(self, values: Dict[str, Any]) -> None:
        self._of().add_output_value(values)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        """Adds one output value holding every key given."""
        values = dict(other, **kwargs)
        if values:
            self._write(values)


#: wandb's ``config``: the active run's parameters.
config = Config(current)

#: wandb's ``summary``: the active run's latest outputs.
summary = Summary(current)
