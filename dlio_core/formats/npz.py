"""NumPy ``.npz`` archives in DLIO's layout: member ``x.npy`` (the samples, on the last axis) and
``y.npy`` (int64 zeros, one per sample).

Written like ``np.savez(path, x=x, y=[0] * n)`` but with fixed timestamps, so a rerun is
byte-identical (``np.savez`` stamps the current time). ``compression: zip`` deflates the members as
``np.savez_compressed`` would; DLIO means to do that but its enum comparison never matches, so DLIO's
files are always stored. Only stored archives have a size known before writing.

Parsing skips ``np.load`` (zip CRC checks and copies, mlcommons/storage #223): the first local header
is read at its fixed offset and, when it is ``x.npy`` stored, ``x`` is a view of the caller's buffer.
Anything else (another member first, streamed data descriptors, deflate) goes through the central
directory. CRCs are not checked: a benchmark reads to move bytes, and checking would cost a pass.

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> x = np.full((8, 8, 2), 7, np.uint8)
    >>> write_file(st, "a.npz", x) == file_size(x.shape, x.dtype)
    True
    >>> bool((parse(st.read("a.npz")) == x).all()), np.load(st.path("a.npz"))["y"].tolist()
    (True, [0, 0])
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from dlio_core.formats import _zip
from dlio_core.formats.base import FormatError, FunctionFormat, where
from dlio_core.formats.npy import byte_view, npy_header, parse_at, raw_bytes

if TYPE_CHECKING:
    from dlio_core.storage import Storage

__all__ = ["FORMAT", "parse", "write_file", "file_size", "members"]

_X, _Y = b"x.npy", b"y.npy"
_X_NAMES = (b"x.npy", b"x")
_LABEL_DTYPE = np.dtype("<i8")  # np.asarray([0] * n) on the 64-bit Linux DLIO runs on
# The first local header plus five name bytes, unpacked in one call on the fast path.
_FIRST = struct.Struct("<IBBHHHHIIIHH5s")
_U32 = struct.Struct("<I")


def _method(compression: str | None) -> int:
    c = (compression or "none").lower()
    if c == "none":
        return _zip.STORED
    if c == "zip":
        return _zip.DEFLATED
    raise FormatError(f"npz supports dataset.compression 'none' or 'zip', not {compression!r}")


def members(x: np.ndarray) -> list[tuple[bytes, list[Any]]]:
    """The ``(name, parts)`` of DLIO's archive for ``x``: ``x.npy`` then ``y.npy`` (zeros)."""
    x = np.ascontiguousarray(x)
    n = x.shape[-1] if x.ndim else 1
    y = np.zeros(n, _LABEL_DTYPE)
    return [(_X, [npy_header(x.shape, x.dtype), raw_bytes(x)]),
            (_Y, [npy_header(y.shape, y.dtype), raw_bytes(y)])]


def file_size(shape: tuple[int, ...], dtype: Any, *, compression: str | None = "none") -> int | None:
    """Exact size of the archive ``write_file`` writes for ``x`` of this shape/dtype; None when
    compressed (it depends on the data).

    Example:
        >>> file_size((64, 64, 1), "uint8")
        4594
    """
    if _method(compression) != _zip.STORED:
        return None
    dt = np.dtype(dtype)
    count = 1
    for s in shape:
        count *= int(s)
    n = int(shape[-1]) if len(shape) else 1
    xs = len(npy_header(shape, dt)) + count * dt.itemsize
    ys = len(npy_header((n,), _LABEL_DTYPE)) + n * _LABEL_DTYPE.itemsize
    return _zip.stored_size([(_X, xs), (_Y, ys)])


def write_file(storage: Storage, path: str, x: np.ndarray, *, compression: str | None = "none") -> int:
    """Write DLIO's npz for ``x`` atomically (stored, or deflated for ``compression="zip"``);
    return the bytes written."""
    method = _method(compression)
    parts = _zip.build([(name, p, method) for name, p in members(x)])
    return storage.write_atomic(path, parts)


def parse(buffer: Any, path: str | None = None) -> np.ndarray:
    """``x`` from the bytes of one whole ``.npz`` file (a view of ``buffer`` when stored).

    ``buffer`` must hold exactly the file (slice a pooled buffer to the bytes read). Raises
    ``FormatError`` naming ``path`` when the bytes are truncated or corrupt.
    """
    mv = byte_view(buffer)
    end = mv.nbytes
    # Fast path: an intact archive ends with the EOCD record and starts with x.npy stored.
    if end >= 57 and _U32.unpack_from(mv, end - 22)[0] == _zip.EOCD_SIG:
        (sig, _v, _r, flags, method, _t, _d, _crc, _cs, _us, nlen, xlen,
         name) = _FIRST.unpack_from(mv, 0)
        if sig == _zip.LOCAL_SIG and nlen == 5 and name == _X and method == _zip.STORED and not flags & 1:
            return parse_at(mv, 35 + xlen, end, path)
    return _parse_slow(mv, path)


def _parse_slow(mv: memoryview, path: str | None) -> np.ndarray:
    try:
        m = _zip.find_member(mv, _X_NAMES)
    except (_zip.ZipError, struct.error) as e:
        raise FormatError(f"{where(path)}: not a readable npz archive: {e}") from None
    if m is None:
        raise FormatError(f"{where(path)}: npz has no array 'x' (DLIO's samples)")
    if m.method == _zip.STORED:
        return parse_at(mv, m.data_offset, m.data_offset + m.compressed_size, path)
    if m.method == _zip.DEFLATED:
        try:
            raw = zlib.decompress(mv[m.data_offset:m.data_offset + m.compressed_size], -15,
                                  max(m.uncompressed_size, 1))
        except zlib.error as e:
            raise FormatError(f"{where(path)}: corrupt deflated member 'x' ({e})") from None
        if len(raw) != m.uncompressed_size:
            raise FormatError(f"{where(path)}: member 'x' inflates to {len(raw)} bytes, "
                              f"not {m.uncompressed_size}")
        rv = memoryview(raw)
        return parse_at(rv, 0, rv.nbytes, path)
    raise FormatError(f"{where(path)}: member 'x' uses zip method {m.method}; only stored and deflate are read")


FORMAT = FunctionFormat("npz", "npz", write_file, parse, file_size)
