"""Roots and urls: where a run lives, as 3LC's urls say it.

In 3LC a run lives at ``<root>/<project>/runs/<run>`` and every call takes urls. Here a root is
a store file, so a full run url is the store's path followed by the run's url inside it:
``exp.runs/my-project/runs/r1``. A run url without a store path (``my-project/runs/r1``) means
the store opened last, or else the default store.

The default store is the file named by the environment variable ``RUNSTORE_PATH``, else
``./runs.runs`` (:func:`default_store_path`).
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

from ._errors import InvalidUrl

#: The environment variable naming the default store file.
ENV_STORE_PATH = "RUNSTORE_PATH"

#: The default store file when ``RUNSTORE_PATH`` is unset.
DEFAULT_STORE_FILE = "runs.runs"


def default_store_path() -> str:
    """The default store's path: ``$RUNSTORE_PATH``, else ``./runs.runs``."""
    return os.environ.get(ENV_STORE_PATH) or DEFAULT_STORE_FILE


def _fspath(value: object, what: str) -> str:
    try:
        return os.fspath(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidUrl(
            f"invalid url: {what} must be a string or a path, not {type(value).__name__}"
        ) from None


def split_run_url(url: object) -> Tuple[Optional[str], str]:
    """Splits a run url into ``(store path or None, "<project>/runs/<run>")``.

    ``exp.runs/p/runs/r`` gives ``("exp.runs", "p/runs/r")``; ``p/runs/r`` gives
    ``(None, "p/runs/r")``. Raises :class:`InvalidUrl` when the url does not end in
    ``<project>/runs/<run>``.
    """
    text = _fspath(url, "a run url")
    if text.startswith("file://"):
        text = text[len("file://") :]
    trimmed = text.rstrip("/")
    parts = trimmed.split("/")
    if len(parts) < 3 or parts[-2] != "runs" or not parts[-1] or not parts[-3]:
        raise InvalidUrl(
            f"invalid url: {text!r} is not a run url: expected [STORE/]<project>/runs/<run>, "
            "e.g. 'exp.runs/my-project/runs/r1'"
        )
    run_url = "/".join(parts[-3:])
    prefix = "/".join(parts[:-3])
    if not prefix:
        return (None, run_url)
    return (prefix, run_url)


def store_path_of_root(root_url: object) -> str:
    """The store file a 3LC ``root_url`` names: the path itself (``exp.runs``); a directory
    (an existing one, or a path ending in ``/``) holds its store as ``<dir>/runs.runs``."""
    text = _fspath(root_url, "root_url")
    if text.startswith("file://"):
        text = text[len("file://") :]
    if not text:
        raise InvalidUrl("invalid url: root_url is empty; give a store file such as 'exp.runs'")
    if text.endswith("/") or os.path.isdir(text):
        return os.path.join(text, DEFAULT_STORE_FILE)
    return text


def same_file(a: str, b: str) -> bool:
    """Whether two paths name the same file (existing or not)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)
