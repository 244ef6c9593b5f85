"""File content for generation: incompressible, dedup-safe, a pure function of a key, made fast.

``sample_array`` makes the array one file holds (DLIO's samples-last layout, or sample-major bytes
for formats that write sample after sample); ``thread_buffer`` gives each writer thread one reused
buffer to make it in.

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

_BLOCK_WORDS = 2048  # 16 KiB: one random block per file, each 16 KiB of the file stamped apart
_ROW_BLOCKS = 4


def sample_array(shape: tuple[int, ...], dtype: Any, key: tuple[int, ...], *, samples_first: bool = False,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Incompressible content for one file, a pure function of ``key`` (and ``samples_first``).

    Integer types: a file of up to 16 KiB is raw PCG64 output; in a larger one each 16 KiB is one
    random 16 KiB block of the file XOR a random 64-bit stamp of its own (the stamp of a 64 KiB row
    XOR one of four block stamps): one streaming pass (10-30 GB/s here, where PCG64 makes about
    1 GB/s), still incompressible (zlib, bz2 and lzma gain nothing: no two 16 KiB pieces agree in
    any 8-byte word) and dedup-safe (no two 4 KiB blocks alike, in a file or across files).
    Floats are uniform in [0, 1) as DLIO's ``gen_random_tensor`` makes them (no NaNs); bools are
    random bits.

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
    bitgen = np.random.PCG64(np.random.SeedSequence(list(key)))
    count = math.prod(stored)
    if dt.kind == "f":
        g = np.random.Generator(bitgen)
        src = np.float32 if dt.itemsize <= 4 else np.float64
        arr = g.random(size=count, dtype=src).astype(dt, copy=False).reshape(stored)
    else:
        nbytes = count * dt.itemsize
        if out is not None and out.nbytes >= nbytes and out.dtype == np.uint8 and out.flags.c_contiguous:
            raw = out.reshape(-1)[:nbytes]
        else:
            raw = np.empty(nbytes, np.uint8)
        _fill_random(raw, bitgen)
        arr = (raw & 1).view(np.bool_) if dt.kind == "b" else raw.view(dt)
        arr = arr.reshape(stored)
    return np.moveaxis(arr, 0, -1) if stored is not shape else arr


def _draws(bitgen: np.random.PCG64, nbytes: int) -> tuple[np.ndarray, np.ndarray, bytes] | None:
    """The random parts of an ``nbytes`` file past one block: its 64 KiB row (four stamped copies
    of the block), the row stamps (one more than whole rows, for the partial row) and the tail
    bytes after the last whole word; None for a file of one block or less."""
    words, tail = divmod(nbytes, 8)
    if words <= _BLOCK_WORDS:
        return None
    # 64 KiB rows: numpy XORs rows that wide at tens of GB/s, 16 KiB ones at a fifth of that.
    row = np.bitwise_xor(bitgen.random_raw(_BLOCK_WORDS), bitgen.random_raw(_ROW_BLOCKS)[:, None]).reshape(-1)
    stamps = bitgen.random_raw(words // row.size + 1)
    return row, stamps, bitgen.random_raw(1).tobytes()[:tail] if tail else b""


def _fill_random(raw: np.ndarray, bitgen: np.random.PCG64) -> None:
    """Fill the uint8 array ``raw`` as ``sample_array`` describes (the bytes of 64-bit words)."""
    drawn = _draws(bitgen, raw.nbytes)
    if drawn is None:
        raw[:] = bitgen.random_raw(raw.nbytes // 8 + 1).view(np.uint8)[:raw.nbytes]
        return
    row, stamps, tail = drawn
    words = raw.nbytes // 8
    rows, rest = divmod(words, row.size)
    body = raw[:words * 8].view(np.uint64)
    np.bitwise_xor(row, stamps[:rows, None], out=body[:rows * row.size].reshape(rows, row.size))
    np.bitwise_xor(row[:rest], stamps[rows], out=body[rows * row.size:])
    raw[words * 8:] = np.frombuffer(tail, np.uint8)


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


_ROW_BYTES = _BLOCK_WORDS * _ROW_BLOCKS * 8
_crc_tables: tuple[list[list[int]], list[int]] | None = None


def _crc_basis() -> tuple[list[list[int]], list[int]]:
    """What ``content_crc32`` needs, made once (about 6 MiB of CRC-32): byte tables for carrying a
    CRC over 64 KiB of zeros, and the CRC part each stamp bit adds to a row.

    zlib's CRC-32 is affine in (data, start) together, so the CRC of ``row ^ stamp`` continued from
    ``c`` is ``crc(row, 0) ^ M(c) ^ sum(bits of stamp)``: ``M`` carries ``c`` over the row's length.
    """
    global _crc_tables
    if _crc_tables is None:
        zeros = bytes(_ROW_BYTES)
        k = zlib.crc32(zeros)
        columns = [zlib.crc32(zeros, 1 << i) ^ k for i in range(32)]
        tables = []
        for t in range(4):
            table = [0] * 256
            for v in range(1, 256):
                low = v & -v
                table[v] = table[v ^ low] ^ columns[8 * t + low.bit_length() - 1]
            tables.append(table)
        bits = [zlib.crc32(np.full(_ROW_BYTES // 8, 1 << b, np.uint64)) ^ k for b in range(64)]
        _crc_tables = (tables, bits)
    return _crc_tables


def content_crc32(nbytes: int, key: tuple[int, ...], start: int = 0) -> int:
    """``zlib.crc32`` of the ``nbytes`` bytes ``sample_array`` makes for ``key`` (an integer dtype, as
    they lie in its buffer), continued from ``start``, without making them: a few Python steps per
    64 KiB row instead of a pass over every byte (zip's CRC-32 ran at 1.6 GB/s here, slower than
    the write itself).

    Example:
        >>> a = sample_array((300, 300, 3), "uint8", (10, 0, 7))
        >>> content_crc32(a.nbytes, (10, 0, 7), 5) == zlib.crc32(a.tobytes(), 5)
        True
    """
    bitgen = np.random.PCG64(np.random.SeedSequence(list(key)))
    drawn = _draws(bitgen, nbytes)
    if drawn is None:
        return zlib.crc32(bitgen.random_raw(nbytes // 8 + 1).view(np.uint8)[:nbytes], start)
    row, stamps, tail = drawn
    (t0, t1, t2, t3), bits = _crc_basis()
    rows, rest = divmod(nbytes // 8, row.size)
    shifts = np.arange(64, dtype=np.uint64)
    set_bits = ((stamps[:rows, None] >> shifts) & np.uint64(1)).astype(bool)
    stamp_parts = np.bitwise_xor.reduce(np.where(set_bits, np.asarray(bits, np.uint64), np.uint64(0)), axis=1)
    base = zlib.crc32(row)
    c = start
    for part in stamp_parts.tolist():
        c = t0[c & 255] ^ t1[(c >> 8) & 255] ^ t2[(c >> 16) & 255] ^ t3[c >> 24] ^ base ^ part
    c = zlib.crc32(np.bitwise_xor(row[:rest], stamps[rows]), c)
    return zlib.crc32(tail, c)
