"""NumPy ``.npy`` files, written exactly as ``np.save`` writes them and parsed without ``eval``.

DLIO's npy generator calls ``np.save`` on one array shaped ``(d1, d2, num_samples)``. Writing goes
through ``numpy.lib.format``'s header writer, so our files are byte-identical to ``np.save``'s. Parsing
is on the read hot path: the header is looked up in a small cache (datasets repeat a handful of
shapes), parsed with ``ast.literal_eval`` only on a miss, and the data is a zero-copy view.

Example:
    >>> import numpy as np
    >>> x = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    >>> raw = npy_header(x.shape, x.dtype) + x.tobytes()
    >>> bool((parse(raw) == x).all())
    True
"""

from __future__ import annotations

import ast
import io
import struct
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib import format as npformat

from dlio_core.formats.base import FormatError, FunctionFormat, where

if TYPE_CHECKING:
    from dlio_core.storage import Storage

__all__ = ["FORMAT", "CachingFormat", "Parser", "npy_header", "parse", "parse_at", "write_file", "file_size"]

_MAGIC = b"\x93NUMPY"
_PRE = struct.Struct("<6sBBH")  # magic, major, minor, v1 header length
_U32 = struct.Struct("<I")
# header bytes -> (dtype, shape, element count, fortran_order, data bytes)
_HeaderInfo = tuple[np.dtype, tuple[int, ...], int, bool, int]
_CACHE: dict[bytes, _HeaderInfo] = {}
_CACHE_MAX = 4096


def byte_view(buffer: Any) -> memoryview:
    """A flat unsigned-byte memoryview of any C-contiguous buffer (no copy)."""
    mv = buffer if isinstance(buffer, memoryview) else memoryview(buffer)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def npy_header(shape: tuple[int, ...], dtype: Any) -> bytes:
    """The header ``np.save`` writes for a C-ordered array (magic, version, padded dict).

    Example:
        >>> len(npy_header((64, 64, 1), np.uint8))
        128
    """
    key = (tuple(int(s) for s in shape), np.dtype(dtype))
    header = _HEADERS.get(key)
    if header is None:  # datasets repeat a few shapes: numpy's header writer costs 25 us a file
        header = _build_header(*key)
        if len(_HEADERS) >= _CACHE_MAX:
            _HEADERS.clear()
        _HEADERS[key] = header
    return header


_HEADERS: dict[tuple[tuple[int, ...], np.dtype], bytes] = {}


def _build_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    d = {"descr": npformat.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    bio = io.BytesIO()
    try:
        npformat.write_array_header_1_0(bio, d)
    except ValueError:  # header longer than 65535 bytes: np.save moves to version 2.0 too
        bio = io.BytesIO()
        npformat.write_array_header_2_0(bio, d)
    return bio.getvalue()


def _parse_header(key: bytes, major: int, path: str | None) -> _HeaderInfo:
    text_bytes = key[4:] if major == 1 else key[6:]  # after version and length fields
    try:
        text = text_bytes.decode("utf8" if major >= 3 else "latin1")
        with warnings.catch_warnings():  # corrupt headers may hold bad escapes; the error says enough
            warnings.simplefilter("ignore")
            d = ast.literal_eval(text)
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as e:
        raise FormatError(f"{where(path)}: corrupt npy header ({e.__class__.__name__})") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise FormatError(f"{where(path)}: npy header is not a descr/fortran_order/shape dict: {text.strip()!r}")
    shape, fortran = d["shape"], d["fortran_order"]
    if (not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape)
            or not isinstance(fortran, bool)):
        raise FormatError(f"{where(path)}: bad shape or fortran_order in npy header: {text.strip()!r}")
    try:
        dtype = npformat.descr_to_dtype(d["descr"])
    except Exception as e:  # noqa: BLE001 - numpy parses comma strings with ast: SyntaxError too
        raise FormatError(f"{where(path)}: unknown dtype {d['descr']!r} in npy header ({e})") from None
    if dtype.hasobject:
        raise FormatError(f"{where(path)}: npy holds Python objects (pickled); only plain arrays are read")
    if dtype.itemsize == 0:  # numpy cannot view bytes as elements of no size
        raise FormatError(f"{where(path)}: npy dtype {d['descr']!r} has elements of 0 bytes")
    count = 1
    for s in shape:
        count *= s
    return dtype, shape, count, fortran, count * dtype.itemsize


def _header_at(mv: memoryview, off: int, end: int, path: str | None) -> tuple[int, _HeaderInfo]:
    """Where the data of the npy at ``mv[off:end]`` starts, and what its header says (validated)."""
    try:
        magic, major, _minor, hlen = _PRE.unpack_from(mv, off)
    except struct.error:
        raise FormatError(f"{where(path)}: truncated npy (no room for the header)") from None
    if magic != _MAGIC:
        raise FormatError(f"{where(path)}: not an npy array (bad magic {bytes(magic)!r})")
    if major == 1:
        hend = off + 10 + hlen
    elif major in (2, 3):
        if off + 12 > end:
            raise FormatError(f"{where(path)}: truncated npy header")
        hend = off + 12 + _U32.unpack_from(mv, off + 8)[0]
    else:
        raise FormatError(f"{where(path)}: unsupported npy version {major}.{_minor}")
    if hend > end:
        raise FormatError(f"{where(path)}: truncated npy header ({end - off} of {hend - off} bytes)")
    key = bytes(mv[off + 6:hend])
    info = _CACHE.get(key)
    if info is None:
        info = _parse_header(key, major, path)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = info
    if hend + info[4] > end:
        raise FormatError(f"{where(path)}: truncated npy data: {end - hend} of {info[4]} bytes "
                          f"for shape {info[1]} {info[0]}")
    return hend, info


def _array(mv: memoryview, hend: int, info: _HeaderInfo) -> np.ndarray:
    dtype, shape, count, fortran, _nbytes = info
    arr = np.frombuffer(mv, dtype=dtype, count=count, offset=hend)
    if fortran:
        return arr.reshape(shape[::-1]).T
    return arr.reshape(shape)


def parse_at(mv: memoryview, off: int, end: int, path: str | None = None) -> np.ndarray:
    """The array stored as npy in ``mv[off:end]``, as a view of ``mv``.

    Example:
        >>> raw = memoryview(b"junk" + npy_header((3,), np.uint8) + b"abc")
        >>> parse_at(raw, 4, len(raw)).tobytes()
        b'abc'
    """
    hend, info = _header_at(mv, off, end, path)
    return _array(mv, hend, info)


def parse(buffer: Any, path: str | None = None) -> np.ndarray:
    """The array in a whole ``.npy`` file held in ``buffer`` (bytes, memoryview, uint8 array).

    Example:
        >>> parse(npy_header((2,), np.int16) + b"\\x01\\x00\\x02\\x00").tolist()
        [1, 2]
    """
    mv = byte_view(buffer)
    return parse_at(mv, 0, mv.nbytes, path)


class BufferParsers:
    """Base of the per-thread parsers the engine uses (see :class:`Parser`): remembers, for each of a
    few reused buffers (the same ``memoryview`` object), the bytes that decided the last parse and the
    array it gave, so a file whose deciding bytes are the same is validated without building a new
    array. Holding the buffer keeps its ``id`` unique; the table is small and cleared when full.
    """

    __slots__ = ("_seen",)
    _MAX = 64

    def __init__(self) -> None:
        self._seen: dict[int, tuple] = {}

    def _remember(self, buffer: memoryview, entry: tuple) -> None:
        if len(self._seen) >= self._MAX:
            self._seen.clear()
        self._seen[id(buffer)] = entry

    def header_spans(self, buffer: Any) -> tuple[tuple, np.ndarray] | None:
        """``(spans, x)`` when ``buffer``'s last parse is remembered: ``spans`` the ``(offset, bytes,
        ...)`` that decided it (while ``buffer`` holds exactly those bytes there, parsing it again gives
        ``x``, the same view), for checking a batch of buffers in one call (the engine's
        ``_Scratch.parse_batch``); None when not remembered or when each parse must run in full.
        """
        return None


class Parser(BufferParsers):
    """``parse`` for a thread that reads file after file into the same buffers: same results and
    errors, but a buffer parsed before whose header bytes (magic, version, length, header text) are
    unchanged gives back the same array object, a view of that buffer, after one byte comparison.

    Example:
        >>> raw = npy_header((2, 2), np.uint8) + bytes(4)
        >>> buf = memoryview(bytearray(raw)); p = Parser()
        >>> a = p(buf, "f.npy"); buf[-1] = 9
        >>> b = p(buf, "g.npy"); (b is a, int(b[1, 1]))
        (True, 9)
    """

    __slots__ = ()

    def __call__(self, buffer: Any, path: str | None = None) -> np.ndarray:
        seen = self._seen.get(id(buffer))
        if seen is not None and seen[0] is buffer and bytes(buffer[:seen[1]]) == seen[2]:
            return seen[3]
        mv = byte_view(buffer)
        hend, info = _header_at(mv, 0, mv.nbytes, path)
        x = _array(mv, hend, info)
        if mv is buffer:
            self._remember(buffer, (buffer, hend, bytes(mv[:hend]), x))
        return x

    def header_spans(self, buffer: Any) -> tuple[tuple, np.ndarray] | None:
        seen = self._seen.get(id(buffer))
        if seen is None or seen[0] is not buffer:
            return None
        return (0, seen[2]), seen[3]


def file_size(shape: tuple[int, ...], dtype: Any, *, compression: str | None = "none") -> int:
    """Exact size of the file ``write_file`` writes for an array of this shape and dtype.

    Example:
        >>> file_size((64, 64, 1), "uint8")
        4224
    """
    n = np.dtype(dtype).itemsize
    for s in shape:
        n *= int(s)
    return len(npy_header(shape, dtype)) + n


def raw_bytes(x: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, without copying."""
    return memoryview(x.reshape(-1).view(np.uint8))


def write_file(storage: Storage, path: str, x: np.ndarray, *, compression: str | None = "none") -> int:
    """Write ``x`` as ``np.save`` would, atomically; return the bytes written.

    DLIO ignores ``dataset.compression`` for npy; so do we (callers warn once per dataset).

    Example:
        >>> import tempfile; from dlio_core.storage import open_storage
        >>> st = open_storage(tempfile.mkdtemp())
        >>> write_file(st, "a.npy", np.zeros((4, 4, 2), np.uint8))
        160
        >>> np.load(st.path("a.npy")).shape
        (4, 4, 2)
    """
    x = np.ascontiguousarray(x)
    return storage.write_atomic(path, [npy_header(x.shape, x.dtype), raw_bytes(x)])


@dataclass(frozen=True)
class CachingFormat(FunctionFormat):
    """A :class:`FunctionFormat` that also offers ``parser()``: a new per-thread parser (``parse`` with a
    cache for reused buffers). The engine calls it once per reader thread when it reuses its buffers."""

    parser_class: type = Parser

    def parser(self) -> Any:
        return self.parser_class()


FORMAT = CachingFormat("npy", "npy", write_file, parse, file_size, Parser)
