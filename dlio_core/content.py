"""File content for generation: incompressible, dedup-safe, a pure function of a key, made fast.

``sample_array`` makes the array one file holds (DLIO's samples-last layout, or sample-major bytes
for formats that write sample after sample); ``thread_buffer`` gives each writer thread one reused
buffer to make it in; ``content_crc32`` gives the CRC-32 of those bytes without a pass over them.

Example:
    >>> sample_array((2, 2, 3), "uint8", (10, 0, 0)).shape
    (2, 2, 3)
"""

from __future__ import annotations

import math
import threading
import zlib
from typing import Any

import numpy as np

__all__ = ["sample_array", "thread_buffer", "content_crc32"]

_ROW_WORDS = 8192    # 64 KiB: each row of a file is the base row XOR a 64-bit stamp of its own
_PIECE_WORDS = 512   # 4 KiB: the CRC of a partial last row is carried over its whole pieces
_MASK = (1 << 64) - 1
_PCG_INC = 0xDA3E39CB94B95BDB  # the stamps' PCG64 stream (odd); a file's key sets its 128-bit state
_BASE_KEY = [0x646C, 0x62617365]  # the base row's seed (fixed: the base is the same in every process)
_base: np.ndarray | None = None
_local = threading.local()  # one PCG64 per thread, its state set per file (a pure function of the key)


def sample_array(shape: tuple[int, ...], dtype: Any, key: tuple[int, ...], *, samples_first: bool = False,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Incompressible content for one file, a pure function of ``key`` (and ``samples_first``).

    Integer types: the file's bytes are 64 KiB rows, each the one random 64 KiB base row (made once
    per process from a fixed seed) XOR a random 64-bit stamp of its own; the stamps come from PCG64
    at a state hashed from ``key``. One streaming pass (tens of GB/s), with a few microseconds of
    set-up per file (PCG64 seeded through ``SeedSequence`` cost 10 us, a 16 KiB block of it 17 more).
    No two 4 KiB blocks agree, in a file or across files (each 8-byte word differs by the XOR of two
    stamps), so the content is dedup-safe; zlib, bz2 and lzma gain nothing on a file. Floats are
    uniform in [0, 1) as DLIO's ``gen_random_tensor`` makes them (no NaNs, raw PCG64 seeded from
    ``key``); bools are random bits.

    ``samples_first`` fills the bytes in sample-major order (sample ``i`` contiguous) and returns the
    samples-last view of them, for formats that write sample after sample (no transposing copy).
    ``out``, a uint8 buffer of at least the array's bytes, is filled and viewed instead of
    allocating (a writer thread reuses one: no page faults per file).

    Example:
        >>> a = sample_array((4, 4, 1), "uint8", (10, 0, 3))
        >>> a.shape, bool((a == sample_array((4, 4, 1), "uint8", (10, 0, 3))).all())
        ((4, 4, 1), True)
        >>> b = sample_array((300, 300, 2), "uint8", (10, 0, 3), samples_first=True)
        >>> b.shape, b[..., 1].flags.c_contiguous, bool((b[..., 0] == b[..., 1]).all())
        ((300, 300, 2), True, False)
    """
    dt = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    stored = (shape[-1], *shape[:-1]) if samples_first and shape else shape
    count = math.prod(stored)
    if dt.kind == "f":
        g = np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key))))
        src = np.float32 if dt.itemsize <= 4 else np.float64
        arr = g.random(size=count, dtype=src).astype(dt, copy=False).reshape(stored)
    else:
        nbytes = count * dt.itemsize
        if out is not None and out.nbytes >= nbytes and out.dtype == np.uint8 and out.flags.c_contiguous:
            raw = out.reshape(-1)[:nbytes]
        else:
            raw = np.empty(nbytes, np.uint8)
        _fill(raw, key)
        arr = (raw & 1).view(np.bool_) if dt.kind == "b" else raw.view(dt)
        arr = arr.reshape(stored)
    return np.moveaxis(arr, 0, -1) if stored is not shape else arr


def _base_row() -> np.ndarray:
    """The 64 KiB random row every file is made from (read-only; identical in every process)."""
    global _base
    if _base is None:
        base = np.random.PCG64(np.random.SeedSequence(_BASE_KEY)).random_raw(_ROW_WORDS)
        base.flags.writeable = False
        _base = base
    return _base


def _mix64(z: int) -> int:
    """SplitMix64's finaliser: a bijection of 64-bit integers that scatters every input bit."""
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _stamps(key: tuple[int, ...], count: int) -> np.ndarray:
    """``count`` 64-bit stamps of the file ``key``: PCG64 output from a 128-bit state hashed from the
    key (setting the state of this thread's generator costs about 2 us; seeding one costs 10). The
    thread's last stamps are kept: ``content_crc32`` asks for those the fill just used."""
    last = getattr(_local, "last", None)
    if last is not None and last[0] == key and last[1] == count:
        return last[2]
    h = 0x243F6A8885A308D3
    for k in key:
        h = _mix64(h ^ (int(k) & _MASK))
    bitgen = getattr(_local, "bitgen", None)
    if bitgen is None:
        bitgen = _local.bitgen = np.random.PCG64(0)
    bitgen.state = {"bit_generator": "PCG64", "state": {"state": (h << 64) | _mix64(h ^ _MASK), "inc": _PCG_INC},
                    "has_uint32": 0, "uinteger": 0}
    stamps = bitgen.random_raw(count)
    stamps.flags.writeable = False
    _local.last = (tuple(key), count, stamps)
    return stamps


def _fill(raw: np.ndarray, key: tuple[int, ...]) -> None:
    """Fill the uint8 array ``raw`` as ``sample_array`` describes (the bytes of 64-bit words)."""
    base = _base_row()
    words, tail = divmod(raw.nbytes, 8)
    rows, rest = divmod(words, _ROW_WORDS)
    stamps = _stamps(key, rows + (1 if rest or tail else 0))
    body = raw[:words * 8].view(np.uint64)
    np.bitwise_xor(base, stamps[:rows, None], out=body[:rows * _ROW_WORDS].reshape(rows, _ROW_WORDS))
    if rest:
        np.bitwise_xor(base[:rest], stamps[rows], out=body[rows * _ROW_WORDS:])
    if tail:
        raw[words * 8:] = np.bitwise_xor(base[rest:rest + 1], stamps[rows]).view(np.uint8)[:tail]


def thread_buffer(buffers: threading.local, nbytes: int) -> np.ndarray:
    """This thread's uint8 buffer (kept on ``buffers``) of at least ``nbytes``, grown when a larger file comes.

    Example:
        >>> import threading
        >>> local = threading.local()
        >>> thread_buffer(local, 10) is thread_buffer(local, 8), thread_buffer(local, 20).nbytes
        (True, 20)
    """
    buf = getattr(buffers, "raw", None)
    if buf is None or buf.nbytes < nbytes:
        buf = buffers.raw = np.empty(nbytes, np.uint8)
    return buf


class _CrcSpan:
    """zlib's CRC-32 carried over one span (a 64 KiB row or a 4 KiB piece) of the base XOR a stamp.

    zlib's CRC-32 is affine in (data, start) together, so the CRC of ``base_span ^ stamp`` continued
    from ``c`` is ``crc(base_span, 0) ^ M(c) ^ L(stamp)``: ``M`` carries ``c`` over the span's length
    (four byte tables), ``L`` is the CRC part the stamp's bits add (eight byte tables, one per stamp byte).
    """

    def __init__(self, words: int) -> None:
        zeros = bytes(8 * words)
        k = zlib.crc32(zeros)
        columns = [zlib.crc32(zeros, 1 << i) ^ k for i in range(32)]
        self.carry = [_byte_tables(columns[8 * t:8 * t + 8]) for t in range(4)]
        bits = [zlib.crc32(np.full(words, 1 << b, np.uint64)) ^ k for b in range(64)]
        self.stamp = np.array([_byte_tables(bits[8 * t:8 * t + 8]) for t in range(8)], np.uint32)

    def stamp_parts(self, stamps: np.ndarray) -> list[int]:
        """``L(stamp)`` for each stamp."""
        octets = (stamps if _LITTLE else stamps.astype("<u8")).view(np.uint8).reshape(-1, 8)
        return np.bitwise_xor.reduce(self.stamp[_EIGHT, octets], axis=1).tolist()


_LITTLE = np.dtype(np.uint64).byteorder == "<" or (np.dtype(np.uint64).byteorder == "=" and np.little_endian)
_EIGHT = np.arange(8)


def _byte_tables(columns: list[int]) -> list[int]:
    """The 256 XOR-combinations of 8 linear images (index bit ``b`` selects ``columns[b]``)."""
    table = [0] * 256
    for v in range(1, 256):
        low = v & -v
        table[v] = table[v ^ low] ^ columns[low.bit_length() - 1]
    return table


_crc_lock = threading.Lock()
_crc_spans: tuple[_CrcSpan, int] | None = None


def _crc_basis() -> tuple[_CrcSpan, int]:
    """Made once (about 6 MiB of CRC-32): the row carrier and the base row's CRC."""
    global _crc_spans
    with _crc_lock:
        if _crc_spans is None:
            _crc_spans = (_CrcSpan(_ROW_WORDS), zlib.crc32(_base_row()))
    return _crc_spans


_pieces_spans: dict[int, tuple[_CrcSpan, int]] = {}


def _pieces_span(pieces: int) -> tuple[_CrcSpan, int]:
    """The carrier over the first ``pieces`` 4 KiB pieces of a row, and the base's CRC over them (one
    step where a step per piece cost 0.7 us each; under 16 lengths, about 4 ms each to make)."""
    found = _pieces_spans.get(pieces)
    if found is None:
        with _crc_lock:
            found = _pieces_spans.get(pieces)
            if found is None:
                span = _CrcSpan(pieces * _PIECE_WORDS)
                found = _pieces_spans[pieces] = (span, zlib.crc32(_base_row()[:pieces * _PIECE_WORDS]))
    return found


def content_crc32(nbytes: int, key: tuple[int, ...], start: int = 0) -> int:
    """``zlib.crc32`` of the ``nbytes`` bytes ``sample_array`` makes for ``key`` (an integer dtype, as
    they lie in its buffer), continued from ``start``, without making them: a few Python steps per
    64 KiB row instead of a pass over every byte (zip's CRC-32 runs at 1.6 GB/s here, slower than
    the write itself).

    Example:
        >>> a = sample_array((300, 300, 3), "uint8", (10, 0, 7))
        >>> content_crc32(a.nbytes, (10, 0, 7), 5) == zlib.crc32(a.tobytes(), 5)
        True
    """
    row, row_crc = _crc_basis()
    words, tail = divmod(nbytes, 8)
    rows, rest = divmod(words, _ROW_WORDS)
    stamps = _stamps(key, rows + (1 if rest or tail else 0))
    t0, t1, t2, t3 = row.carry
    c = start
    for part in row.stamp_parts(stamps[:rows]):
        c = t0[c & 255] ^ t1[(c >> 8) & 255] ^ t2[(c >> 16) & 255] ^ t3[c >> 24] ^ row_crc ^ part
    if not (rest or tail):
        return c
    pieces, left = divmod(rest, _PIECE_WORDS)
    if pieces:  # the whole pieces of the last row as one span (a file's are all alike: made once per length)
        span, span_crc = _pieces_span(pieces)
        (part,) = span.stamp_parts(stamps[rows:rows + 1])
        t0, t1, t2, t3 = span.carry
        c = t0[c & 255] ^ t1[(c >> 8) & 255] ^ t2[(c >> 16) & 255] ^ t3[c >> 24] ^ span_crc ^ part
    start_word = pieces * _PIECE_WORDS
    last = np.bitwise_xor(_base_row()[start_word:start_word + left + (1 if tail else 0)], stamps[rows])
    return zlib.crc32(last.view(np.uint8)[:left * 8 + tail], c)
