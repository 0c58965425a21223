"""A run's blobs from Python: what ``Run.put_bulk`` accepts and how an array comes back.

``put_bulk`` takes bytes, a path (``str`` or ``os.PathLike``: the file is streamed by the
native side, never read whole into memory), a binary file object (read in chunks of
:data:`CHUNK_BYTES` while the GIL is released between them), or a numpy array, stored in
NumPy's ``.npy`` format (a header holding the dtype, the shape and the memory order, then the
array's bytes) so :func:`bulk_array` gives the same array back and any ``.npy`` reader reads
the blob. What it leaves to others: name rules (the Rust library: ``/`` separates folders,
no empty, ``.`` or ``..`` segment, no leading ``/``) and the storage itself.

The rule it keeps: a blob holds exactly the bytes given (for an array, the ``.npy`` bytes
``numpy.save`` would write, header included); nothing is pickled.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    from . import Run

#: Bytes asked of a file object per ``read`` call (the store's blob segment size).
CHUNK_BYTES = 4 << 20

_NPY_MAGIC = b"\x93NUMPY"


class _ArrayReader:
    """A binary file object over an array's ``.npy`` bytes: the header, then the array's
    memory, handed out in slices (the array is never copied whole)."""

    def __init__(self, array: np.ndarray) -> None:
        info = np.lib.format.header_data_from_array_1_0(array)
        header = io.BytesIO()
        try:
            np.lib.format.write_array_header_1_0(header, info)
        except ValueError:  # a header past 64 KiB (a very wide structured dtype)
            header = io.BytesIO()
            np.lib.format.write_array_header_2_0(header, info)
        # A Fortran-ordered array is stored as its memory is (the header says so); its
        # transpose is C-contiguous over the same bytes.
        memory = array.T if info["fortran_order"] else array
        raw = memory.reshape(-1).view(np.uint8)
        self._parts = [memoryview(header.getvalue()), memoryview(raw)]
        self._part = 0
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while self._part < len(self._parts) and (size < 0 or len(out) < size):
            part = self._parts[self._part]
            left = len(part) - self._at
            take = left if size < 0 else min(size - len(out), left)
            out += part[self._at : self._at + take]
            self._at += take
            if self._at == len(part):
                self._part += 1
                self._at = 0
        return bytes(out)


def _array_source(name: str, array: np.ndarray) -> _ArrayReader:
    if array.dtype.hasobject:
        raise InvalidInput(
            f"invalid input: blob {name!r}: a numpy array of dtype {array.dtype} holds Python "
            "objects, which would have to be pickled; give numbers, fixed-width strings or bytes"
        )
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)  # a strided view: its elements, in order
    return _ArrayReader(array)


def put(run: "Run", name: str, data: Any) -> int:
    """See :meth:`runstore.Run.put_bulk`."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return run._r.put_bulk(name, bytes(data))
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        return run._r.put_bulk_file(name, path)
    if isinstance(data, np.ndarray):
        return run._r.put_bulk_reader(name, _array_source(name, data), CHUNK_BYTES)
    if hasattr(data, "read"):
        if isinstance(data, io.TextIOBase):
            raise InvalidInput(
                f"invalid input: blob {name!r}: a file opened in text mode; open it in binary mode ('rb')"
            )
        return run._r.put_bulk_reader(name, data, CHUNK_BYTES)
    raise InvalidInput(
        f"invalid input: blob {name!r}: cannot store a {type(data).__name__}; give bytes, a "
        "path, a binary file object or a numpy array"
    )


def array(run: "Run", name: str) -> np.ndarray:
    """See :meth:`runstore.Run.bulk_array`."""
    data = run._r.bulk(name)
    if not data.startswith(_NPY_MAGIC):
        raise InvalidInput(
            f"invalid input: blob {name!r} of run {run.url} was not stored from a numpy array "
            "(it has no .npy header); read its bytes with run.bulk(name)"
        )
    return np.load(io.BytesIO(data), allow_pickle=False)
