"""Reading the byte spans of some samples of one file into one buffer, a read per run of spans that
lie back to back in the file (for the ranged readers of indexed binary files and parquet).

Example:
    >>> data = bytes(range(10))
    >>> calls = []
    >>> def fetch(buf, offset):
    ...     calls.append((offset, len(buf))); memoryview(buf)[:] = data[offset:offset + len(buf)]; return len(buf)
    >>> buf, starts, n = gather([(2, 3), (5, 1), (8, 2)], fetch, "f")
    >>> bytes(buf), starts, n, calls
    (b'\\x02\\x03\\x04\\x05\\x08\\t', [0, 3, 4, 6], 6, [(2, 4), (8, 2)])
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from dlio_core.formats.base import FormatError

__all__ = ["gather", "coalesce", "fill", "check_wanted"]


def check_wanted(uniq: Sequence[int], count: int, path: str, what: str = "the index lists") -> None:
    """``FormatError`` naming ``path`` unless the sorted sample numbers ``uniq`` are all below ``count``."""
    if uniq and (uniq[0] < 0 or uniq[-1] >= count):
        bad = uniq[-1] if uniq[-1] >= count else uniq[0]
        raise FormatError(f"{path}: sample {bad} asked for, but {what} {count} sample(s)")


def coalesce(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """``(first, end, offset, length)`` for each run of spans ``first..end-1`` that follow each other in
    the file: one read each.

    Example:
        >>> coalesce([(0, 4), (4, 2), (10, 1)])
        [(0, 2, 0, 6), (2, 3, 10, 1)]
    """
    out = []
    k = 0
    while k < len(spans):
        e = k + 1
        end = spans[k][0] + spans[k][1]
        while e < len(spans) and spans[e][0] == end:
            end += spans[e][1]
            e += 1
        out.append((k, e, spans[k][0], end - spans[k][0]))
        k = e
    return out


def fill(view: Any, at: int, fetch: Callable[[Any, int], int], path: str) -> int:
    """``fetch(view, at)``, a ``FormatError`` naming ``path`` when it gets fewer bytes than ``view`` holds."""
    want = len(view)
    got = fetch(view, at) if want else 0
    if got != want:
        raise FormatError(f"{path}: read {got} of {want} bytes at byte {at} "
                          f"(file truncated or changed since it was listed)")
    return got


def gather(spans: Sequence[tuple[int, int]], fetch: Callable[[Any, int], int],
           path: str) -> tuple[np.ndarray, list[int], int]:
    """``(buffer, starts, bytes_read)``: span ``k`` (``(offset, length)`` in the file) is
    ``buffer[starts[k]:starts[k + 1]]``. ``fetch(view, offset)`` fills ``view`` from the file at
    ``offset`` and returns the bytes it got; spans that follow each other in the file are fetched
    together. A short fetch is a ``FormatError`` naming ``path``.
    """
    starts = [0]
    for _, n in spans:
        starts.append(starts[-1] + n)
    buf = np.empty(starts[-1], dtype=np.uint8)
    nbytes = 0
    for first, end, at, _length in coalesce(spans):
        nbytes += fill(buf[starts[first]:starts[end]], at, fetch, path)
    return buf, starts, nbytes
