"""The exceptions runstore raises.

Every failure of the Rust core arrives as an instance of one of these classes, carrying the
Rust error's message. All derive from :class:`Error`; where 3LC (or Python convention) raises a
built-in exception, the class derives from that too, so ``except FileNotFoundError`` or
``except ValueError`` keep working. Errors Python or pyarrow raise on a user's input (a column
of mixed types, columns of different lengths, an argument of the wrong type) are turned into
these too (:class:`InvalidType`, :class:`InvalidInput`), the original kept as ``__cause__``.
:class:`RunCompletedWarning` is the one warning.
"""

from __future__ import annotations

__all__ = [
    "Error",
    "NotFound",
    "AlreadyExists",
    "InvalidName",
    "InvalidUrl",
    "InvalidInput",
    "InvalidType",
    "InvalidStatus",
    "InvalidQuery",
    "InvalidValue",
    "RowCountMismatch",
    "SchemaMismatch",
    "NoActiveRun",
    "ReadOnly",
    "AlreadyOpen",
    "StoreClosed",
    "Corrupted",
    "NotAStore",
    "UnsupportedVersion",
    "NeedsRepair",
    "NeedsUpgrade",
    "IoError",
    "DatabaseError",
    "RunCompletedWarning",
]


class Error(Exception):
    """Base class of every runstore error."""


class NotFound(Error, FileNotFoundError, KeyError):
    """A project, run, table or blob does not exist (also a ``FileNotFoundError`` and a
    ``KeyError``)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class AlreadyExists(Error, FileExistsError):
    """The target exists and the call was asked not to replace it."""


class InvalidName(Error, ValueError):
    """A project, run, table or blob name breaks the naming rules."""


class InvalidUrl(Error, ValueError):
    """A url is not of the form the call wants (``<project>/runs/<run>``, ...)."""


class InvalidInput(Error, ValueError):
    """An argument is out of range or malformed."""


class InvalidType(Error, TypeError):
    """An argument, column or value of a type runstore cannot take (a string where a number
    goes, a ``set`` as a value, a complex numpy column); also a ``TypeError``. The message
    names the store, the run or table and the column."""


class InvalidStatus(Error, ValueError):
    """A status code outside 3LC's seven."""


class InvalidQuery(Error, ValueError):
    """A filter, sort key or column key does not parse."""


class InvalidValue(Error, ValueError):
    """A value could not be encoded or decoded."""


class RowCountMismatch(Error, ValueError):
    """Metrics data does not have one row per row of its input table."""


class SchemaMismatch(Error, ValueError):
    """Data does not fit a table's schema."""


class NoActiveRun(Error, RuntimeError):
    """No active run: call ``init()`` or ``set_active_run()`` first."""


class ReadOnly(Error, PermissionError):
    """A write on a store opened read-only."""


class AlreadyOpen(Error, BlockingIOError):
    """Another process (or another handle of this one) holds the store open for writing. The
    message names it ("by this process", "by process 4242", or "by another process" where the
    system cannot tell) and says what to do: ``read_only=True``, ``shared=True`` or
    ``timeout=``."""


class StoreClosed(Error, ValueError):
    """A Store, Run or Table object was used after its store was closed (``close()`` or the
    end of its ``with`` block); the message names the file. Open it again with
    :func:`runstore.open`. Also a ``ValueError``, as Python's closed files raise."""


class Corrupted(Error):
    """Bytes of the store failed a check (checksum, bounds, structure)."""


class NotAStore(Error, ValueError):
    """The file was not written by runstore."""


class UnsupportedVersion(Error):
    """The store was written in a format this build cannot read."""


class NeedsRepair(Error):
    """A writer crashed; open the store once for writing before opening it read-only."""


class NeedsUpgrade(Error):
    """An older store: open it once for writing to upgrade it."""


class IoError(Error, OSError):
    """An operating-system I/O call failed (full disk, EIO, ...)."""


class DatabaseError(Error):
    """The underlying database reported an error."""


class RunCompletedWarning(UserWarning):
    """:meth:`Run.log` wrote to a run whose status is COMPLETED (set through this store
    handle, or found when the logger started), e.g. after its ``with`` block ended. Given
    once per run; the rows are logged all the same. Call ``set_status_running()`` first
    when a run goes on."""
