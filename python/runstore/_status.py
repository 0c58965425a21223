"""A run's status as 3LC gives it: a float code (``run.status == 1.0`` is COMPLETED).

:class:`Status` is that float, which also compares equal to its name (``run.status ==
"COMPLETED"``, any case), as ``run.status`` returned the name before it returned the code;
``status.name`` (and ``run.status_name``) is the name.
"""

from __future__ import annotations

from typing import Any, Dict

#: 3LC's codes and their names.
STATUS_NAMES: Dict[int, str] = {
    1: "COMPLETED",
    2: "EMPTY",
    3: "RUNNING",
    4: "COLLECTING",
    5: "POST_PROCESSING",
    6: "PAUSED",
    7: "CANCELLED",
}

#: The statuses a run is still working in: what leaving a ``with`` block with an exception
#: ends, and what :func:`runstore.finish` completes.
ACTIVE_STATUSES = ("RUNNING", "COLLECTING", "POST_PROCESSING")


class Status(float):
    """3LC's float status code (1.0 to 7.0) that also equals its name."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """The upper-case name: ``COMPLETED``, ``RUNNING``, ..."""
        return STATUS_NAMES.get(int(self), f"UNKNOWN_{float(self)}")

    @property
    def code(self) -> int:
        """The code as an int (1 to 7)."""
        return int(self)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, str):
            return self.name == other.strip().upper().replace(" ", "_")
        return float(self) == other

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return float.__hash__(self)

    def __repr__(self) -> str:
        return f"{float(self)!r}"

    def __str__(self) -> str:
        return f"{float(self)!r}"
