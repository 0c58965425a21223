"""How a run ends when a ``with`` block around it ends.

A run's ``with`` block (``with store.init(...) as run:``) runs the run: entering sets an EMPTY
run (a new one, as 3LC makes them) RUNNING; left normally, the run becomes COMPLETED if it is
still in progress (RUNNING, COLLECTING or POST_PROCESSING); left by an exception, it becomes
CANCELLED (3LC has no FAILED status) and its description records the exception's type. A store's
``with`` block left by an exception does the same to every run :meth:`Store.init` started on
that handle that is still in progress, so a crash in training code never leaves runs RUNNING
forever. Left normally, a store's block changes no status.

The exception's type goes where a user and the CLI already look, the description:
``"cancelled by ValueError"``, or ``"<description> (cancelled by ValueError)"`` after an
existing one (``runstore show`` prints it, ``runstore runs --json`` and ``--csv`` carry it).
A type outside ``builtins`` is named with its module (``torch.cuda.OutOfMemoryError``). The
message is left out: it can be long, and it can hold data that has no place in a store.

``sys.exit()`` with code 0 or None counts as leaving normally. A run of a store opened
read-only is only read: its ``with`` block changes nothing (it may be another process's run,
RUNNING there). Marking the runs never
replaces the exception that is leaving the block: if it fails (the store was closed first,
the run was deleted), a :class:`RuntimeWarning` says which run was left as it was and why.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Iterable, Optional, Type

from ._errors import NotFound

if TYPE_CHECKING:  # pragma: no cover
    from . import Run, Store

#: The statuses of a run still in progress: the ones a ``with`` block ends.
ACTIVE_STATUSES = ("RUNNING", "COLLECTING", "POST_PROCESSING")


def exception_name(exc_type: Type[BaseException]) -> str:
    """``ValueError`` for a builtin type, ``module.QualName`` for any other."""
    module = getattr(exc_type, "__module__", "") or ""
    name = getattr(exc_type, "__qualname__", None) or exc_type.__name__
    return name if module == "builtins" else f"{module}.{name}"


def cancelled_description(description: str, exc_type: Type[BaseException]) -> str:
    """``description`` with the note that ``exc_type`` cancelled the run."""
    note = f"cancelled by {exception_name(exc_type)}"
    return f"{description} ({note})" if description else note


def is_failure(exc_type: Optional[Type[BaseException]], exc: Optional[BaseException]) -> bool:
    """Whether a block left with ``exc`` failed: any exception but ``SystemExit(0)``."""
    if exc_type is None:
        return False
    if issubclass(exc_type, SystemExit):
        code = getattr(exc, "code", None)
        return code not in (0, None)
    return True


def cancel(run: "Run", exc_type: Type[BaseException]) -> None:
    """Marks ``run`` CANCELLED by ``exc_type`` if it is in progress; commits its logged rows
    first. Never raises: a failure becomes a :class:`RuntimeWarning`."""
    try:
        run.close_log()
        if run.status in ACTIVE_STATUSES:
            run.set_description(cancelled_description(run.description, exc_type))
            run.set_status_cancelled()
    except Exception as error:  # noqa: BLE001 - the leaving exception must win
        warnings.warn(
            f"run {run.url} of store {run.store.path} was left as it was, not marked "
            f"CANCELLED after {exception_name(exc_type)}: {error}",
            RuntimeWarning,
            stacklevel=4,
        )


def start_run(run: "Run") -> None:
    """The start of ``with run:``: an EMPTY run becomes RUNNING; any other keeps its status."""
    if not run.store.read_only and run.status == "EMPTY":
        run.set_status_running()


def end_run(
    run: "Run", exc_type: Optional[Type[BaseException]], exc: Optional[BaseException]
) -> None:
    """The end of ``with run:``: commits the logged rows, then COMPLETED (left normally) or
    CANCELLED (left by an exception) if the run is still in progress."""
    if run.store.read_only:
        return
    if is_failure(exc_type, exc):
        assert exc_type is not None
        cancel(run, exc_type)
        return
    run.close_log()
    if run.status in ACTIVE_STATUSES:
        run.set_status_completed()


def cancel_started(
    store: "Store",
    urls: Iterable[str],
    exc_type: Optional[Type[BaseException]],
    exc: Optional[BaseException],
) -> None:
    """The end of ``with store:``: when an exception leaves it, every run in ``urls`` (the
    runs :meth:`Store.init` started on ``store``) still in progress becomes CANCELLED."""
    if not is_failure(exc_type, exc) or store.closed or store.read_only:
        return
    assert exc_type is not None
    for url in urls:
        try:
            run = store.run(url)
        except NotFound:  # deleted since: nothing left to mark
            continue
        except Exception as error:  # noqa: BLE001 - the leaving exception must win
            warnings.warn(
                f"run {url} of store {store.path} was left as it was, not marked CANCELLED "
                f"after {exception_name(exc_type)}: {error}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        cancel(run, exc_type)
