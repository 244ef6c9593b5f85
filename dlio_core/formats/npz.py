"""NumPy ``.npz`` archives in DLIO's layout: member ``x.npy`` (the samples, on the last axis) and
``y.npy`` (int64 zeros, one per sample).

Written like ``np.savez(path, x=x, y=[0] * n)`` but with fixed timestamps, so a rerun is
byte-identical (``np.savez`` stamps the current time). ``compression: zip`` deflates the members as
``np.savez_compressed`` would; DLIO means to do that but its enum comparison never matches, so DLIO's
files are always stored. Only stored archives have a size known before writing.

Parsing skips ``np.load`` (zip CRC checks and copies, mlcommons/storage #223): the first local header
is read at its fixed offset and, when it is ``x.npy`` stored, ``x`` is a view of the caller's buffer.
Anything else (another member first, streamed data descriptors, deflate) goes through the central
directory. CRCs are not checked: a benchmark reads to move bytes, and checking would cost a pass;
``DL_DRIVER_VERIFY_CHECKSUMS=1`` checks the CRC-32 of ``x`` and ``y`` against the central directory
first (a flipped bit is then a ``FormatError`` naming the file and the member).

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dlio_core.formats import _zip
from dlio_core.formats.base import FormatError, verify_checksums, where
from dlio_core.formats.npy import (BufferParsers, CachingFormat, _array, _header_at, byte_view, npy_header,
                                   parse_at, raw_bytes)

if TYPE_CHECKING:
    from collections.abc import Callable

    from dlio_core.storage import Storage

__all__ = ["FORMAT", "NpzFormat", "Parser", "SharedParse", "parse", "write_file", "file_size", "members", "check_crcs"]

_X, _Y = b"x.npy", b"y.npy"
_X_NAMES = (b"x.npy", b"x")
_LABEL_DTYPE = np.dtype("<i8")  # np.asarray([0] * n) on the 64-bit Linux DLIO runs on
# The first local header plus five name bytes, unpacked in one call on the fast path.
_FIRST = struct.Struct("<IBBHHHHIIIHH5s")
_U32 = struct.Struct("<I")
# Signature, flags and method of the first local header; _HEAD_OK is what the parser's cache accepts.
_HEAD = struct.Struct("<I2xHH")
_HEAD_OK = (_zip.LOCAL_SIG, 0, _zip.STORED)
_LOCAL_SIG_BYTES, _EOCD_SIG_BYTES = _U32.pack(_zip.LOCAL_SIG), _U32.pack(_zip.EOCD_SIG)
_ZIP64_SIZES = struct.Struct("<HHQQ")  # the zip64 extra field: id 1, length, uncompressed, compressed


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
    return [(_X, [npy_header(x.shape, x.dtype), raw_bytes(x)]), (_Y, _labels(x.shape[-1] if x.ndim else 1)[0])]


_LABELS: dict[int, tuple[list[Any], int]] = {}


def _labels(n: int) -> tuple[list[Any], int]:
    """``y.npy``'s parts (``n`` int64 zeros) and their CRC-32, made once per ``n`` (a dataset has a few)."""
    got = _LABELS.get(n)
    if got is None:
        y = np.zeros(n, _LABEL_DTYPE)
        y.flags.writeable = False
        parts = [npy_header(y.shape, y.dtype), raw_bytes(y)]
        if len(_LABELS) >= 64:
            _LABELS.clear()
        got = _LABELS[n] = (parts, zlib.crc32(parts[1], zlib.crc32(parts[0])))
    return got


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


def write_file(storage: Storage, path: str, x: np.ndarray, *, compression: str | None = "none",
               data_crc32: Callable[[int], int] | None = None) -> int:
    """Write DLIO's npz for ``x`` atomically (stored, or deflated for ``compression="zip"``);
    return the bytes written. ``data_crc32(start)``, when given, is the CRC-32 of ``x``'s bytes
    continued from ``start`` (the generator knows it without reading them: see
    ``dlio_core.content.content_crc32``)."""
    method = _method(compression)
    x = np.ascontiguousarray(x)
    x_parts = [npy_header(x.shape, x.dtype), raw_bytes(x)]
    y_parts, y_crc = _labels(x.shape[-1] if x.ndim else 1)  # y's CRC made once with its bytes
    crcs = [None if data_crc32 is None else data_crc32(zlib.crc32(x_parts[0])), y_crc]
    return storage.write_atomic(path, _zip.build([(_X, x_parts, method), (_Y, y_parts, method)], crcs=crcs))


def _fast_offset(mv: memoryview, end: int) -> tuple[int, int] | None:
    """Where ``x``'s npy lies, ``(start, end)``, when the archive is intact (EOCD at the end), starts
    with ``x.npy`` stored, unencrypted, its size in the local header (no data descriptor), and ends
    before the EOCD; else None (the central directory decides)."""
    if end >= 57 and _U32.unpack_from(mv, end - 22)[0] == _zip.EOCD_SIG:
        (sig, _v, _r, flags, method, _t, _d, _crc, csize, _us, nlen, xlen,
         name) = _FIRST.unpack_from(mv, 0)
        if sig == _zip.LOCAL_SIG and nlen == 5 and name == _X and method == _zip.STORED and not flags & 9:
            off = 35 + xlen
            if csize == 0xFFFFFFFF:  # zip64: the sizes are in the extra field (np.savez always writes it)
                if xlen < 20 or end < off:
                    return None
                hid, hlen, _usize64, csize = _ZIP64_SIZES.unpack_from(mv, 35)
                if hid != 1 or hlen < 16:
                    return None
            if off + csize <= end - 22:
                return off, off + csize
    return None


def parse(buffer: Any, path: str | None = None, *, verify: bool | None = None) -> np.ndarray:
    """``x`` from the bytes of one whole ``.npz`` file (a view of ``buffer`` when stored).

    ``buffer`` must hold exactly the file (slice a pooled buffer to the bytes read). Raises
    ``FormatError`` naming ``path`` when the bytes are truncated or corrupt. ``verify`` checks the
    CRCs first; None asks ``DL_DRIVER_VERIFY_CHECKSUMS`` (an environment lookup per call: a loader
    parsing file after file takes :class:`SharedParse`, which looks once).
    """
    mv = byte_view(buffer)
    end = mv.nbytes
    if verify_checksums() if verify is None else verify:
        check_crcs(mv, path)
    # Fast path: an intact archive ends with the EOCD record and starts with x.npy stored.
    where_x = _fast_offset(mv, end)
    if where_x is not None:
        return parse_at(mv, where_x[0], where_x[1], path)
    return _parse_slow(mv, path)


class SharedParse:
    """``parse`` with ``DL_DRIVER_VERIFY_CHECKSUMS`` read once, when made; no state besides, so reader
    threads may share one (the engine's parse for kept samples, whose buffers change every batch).

    Example:
        >>> import tempfile; from dlio_core.storage import open_storage
        >>> st = open_storage(tempfile.mkdtemp())
        >>> _ = write_file(st, "a.npz", np.zeros((4, 4, 1), np.uint8))
        >>> SharedParse()(st.read("a.npz"), "a.npz").shape
        (4, 4, 1)
    """

    __slots__ = ("verify",)

    def __init__(self) -> None:
        self.verify = verify_checksums()

    def __call__(self, buffer: Any, path: str | None = None) -> np.ndarray:
        return parse(buffer, path, verify=self.verify)


@dataclass(frozen=True)
class NpzFormat(CachingFormat):
    """The npz format: a :class:`CachingFormat` that also offers ``shared_parser()`` (a
    :class:`SharedParse`), the parse the engine shares between reader threads for kept samples."""

    def shared_parser(self) -> SharedParse:
        return SharedParse()


class Parser(BufferParsers):
    """``parse`` for a thread that reads file after file into the same buffers: same results and
    errors, but when a buffer parsed before takes the fast path again with the same ``x`` header
    bytes, the same array object (a view of that buffer) comes back after a few comparisons.

    Example:
        >>> import tempfile; from dlio_core.storage import open_storage
        >>> st = open_storage(tempfile.mkdtemp())
        >>> _ = write_file(st, "a.npz", np.zeros((4, 4, 1), np.uint8))
        >>> buf = memoryview(bytearray(st.read("a.npz"))); p = Parser()
        >>> p(buf, "a.npz") is p(buf, "a.npz")
        True
    """

    __slots__ = ("_verify",)

    def __init__(self) -> None:
        super().__init__()
        # Read once per parser (a reader thread's, kept across epochs), not per file: looking the
        # variable up cost more than the cached parse of a 4 KiB file (1-4 us against 0.6 us).
        self._verify = verify_checksums()

    def __call__(self, buffer: Any, path: str | None = None) -> np.ndarray:
        if self._verify:
            check_crcs(byte_view(buffer), path)
        seen = self._seen.get(id(buffer))
        # Same buffer: the fast path applies again, with x at the same place and the same header, when
        # the EOCD signature, the local header's signature, flags (all clear) and method, and its bytes
        # from the sizes to the end of x's npy header (all but the time, date and CRC) are unchanged.
        # That is stricter than parse; a file that fails it takes the full parse below.
        if (seen is not None and seen[0] is buffer and _U32.unpack_from(buffer, seen[1])[0] == _zip.EOCD_SIG
                and _HEAD.unpack_from(buffer, 0) == _HEAD_OK and bytes(buffer[18:seen[2]]) == seen[3]):
            return seen[4]
        mv = byte_view(buffer)
        end = mv.nbytes
        where_x = _fast_offset(mv, end)
        if where_x is None:
            return _parse_slow(mv, path)
        hend, info = _header_at(mv, where_x[0], where_x[1], path)
        x = _array(mv, hend, info)
        if mv is buffer and _HEAD.unpack_from(mv, 0) == _HEAD_OK:
            self._remember(buffer, (buffer, end - 22, hend, bytes(mv[18:hend]), x))
        return x

    def header_spans(self, buffer: Any) -> tuple[tuple, np.ndarray] | None:
        # The same bytes the cached check above compares: the local header's signature, its flags and
        # method (all clear: 4 zero bytes at 6), its bytes from 18 to the end of x's npy header, and the
        # EOCD signature. None with checksums on: every file's CRCs must then be checked.
        seen = self._seen.get(id(buffer))
        if self._verify or seen is None or seen[0] is not buffer:
            return None
        return (0, _LOCAL_SIG_BYTES, 6, bytes(4), 18, seen[3], seen[1], _EOCD_SIG_BYTES), seen[4]


def check_crcs(mv: memoryview, path: str | None) -> None:
    """``FormatError`` naming ``path`` unless members ``x`` and ``y`` match their central directory
    CRC-32 (deflated members are inflated to check them).

    Example:
        >>> import io; b = io.BytesIO(); np.savez(b, x=np.zeros((2, 2, 1), np.uint8), y=[0])
        >>> data = bytearray(b.getvalue()); check_crcs(memoryview(data), "a.npz")
        >>> data[_fast_offset(memoryview(data), len(data))[1] - 1] ^= 1
        >>> check_crcs(memoryview(data), "a.npz")
        Traceback (most recent call last):
        ...
        dlio_core.formats.base.FormatError: a.npz: member x.npy fails its CRC-32 check (stored 0x2fff1755, read 0x58f827c3): the file is damaged
    """
    for names in (_X_NAMES, (_Y, b"y")):
        try:
            m = _zip.find_member(mv, names)
        except (_zip.ZipError, struct.error) as e:
            raise FormatError(f"{where(path)}: not a readable npz archive: {e}") from None
        if m is None:
            continue
        data = mv[m.data_offset:m.data_offset + m.compressed_size]
        if m.method == _zip.DEFLATED:
            try:
                data = zlib.decompress(data, -15)
            except zlib.error as e:
                raise FormatError(f"{where(path)}: corrupt deflated member {names[0].decode()} ({e})") from None
        crc = zlib.crc32(data)
        if crc != m.crc:
            raise FormatError(f"{where(path)}: member {names[0].decode()} fails its CRC-32 check (stored "
                              f"{m.crc:#010x}, read {crc:#010x}): the file is damaged")


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


FORMAT = NpzFormat("npz", "npz", write_file, parse, file_size, Parser)
