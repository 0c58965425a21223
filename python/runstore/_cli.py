"""The ``runstore`` command of a Python install: the Rust command line, run in this process.

``pip install runstore`` (or ``pip install .`` from a checkout) puts a ``runstore`` script on
the PATH whose entry point is :func:`main` (``[project.scripts]`` in ``pyproject.toml``);
``python -m runstore`` does the same. It is the command line of the ``runstore`` binary
(``cargo install``), compiled into ``runstore._native``: every command, ``runstore ui``
included, with the same output and exit codes. Nothing here parses arguments: the Rust code
gets ``sys.argv`` whole.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Optional, Sequence

from . import _native


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line over ``argv`` (default: ``sys.argv[1:]``) and returns its exit
    code: 0 success, 1 an error (printed on stderr), 2 bad usage, 3 ``check`` found problems.

    Output goes straight to file descriptors 1 and 2, as the binary's does (Python's
    ``sys.stdout`` is flushed first). Ctrl-C stops the command as it stops the binary: the
    default SIGINT action is in place while it runs, and Python's handler is put back after.
    """
    args = ["runstore", *(sys.argv[1:] if argv is None else argv)]
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL) if on_main_thread else None
    try:
        return _native.cli_main(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
