"""Parquet row groups read once, handed out to every batch that needs them.

A row group is the unit parquet is read in, and a batch rarely lines up with one: dlrm's batch of
16,384 rows spans three row groups of 6,144; flux's 288-row files are one row group of 623 MB that
six batches of 48 share. Without reuse each batch would read its row groups again (the fork's iterable
reader reads each row group once). So what a reader got for a row group (the selected chunks' bytes,
or in decode mode the decoded columns) stays in :data:`GROUPS` until every row of the group has been
handed out once, then goes. A row asked for again (the next epoch, or a repeated read) is a miss: the
group is read from storage again, so no epoch is served from memory what it did not read itself.

The cache is bounded (``DL_DRIVER_PARQUET_CACHE_BYTES``, default 2 GiB; least recently used groups go
first, a group larger than the bound is not kept), shared by the reader threads of a process, and a
group being read by one thread is waited for by another that needs it rather than read twice.

Example:
    >>> cache = GroupCache(max_bytes=100)
    >>> key = ("s", "f", 1, ("a",), False, 0)
    >>> got = cache.take(key, [0, 1], rows=4, load=lambda: (b"data", 4))
    >>> got, cache.take(key, [2, 3], rows=4, load=lambda: (b"again", 5))   # the rest: no second load
    ((b'data', 4), (b'data', 0))
    >>> cache.take(key, [0], rows=4, load=lambda: (b"again", 5))           # all handed out: read again
    (b'again', 5)
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, Sequence

import numpy as np

__all__ = ["GroupCache", "GROUPS"]


class _Entry:
    __slots__ = ("value", "nbytes", "served", "left")

    def __init__(self, value: Any, nbytes: int, rows: int) -> None:
        self.value, self.nbytes = value, nbytes
        self.served = np.zeros(rows, bool)
        self.left = rows


class GroupCache:
    """Row groups by key, each kept until all its rows were taken once (see the module)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._loading: dict[Hashable, threading.Event] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def take(self, key: Hashable, rows_wanted: Sequence[int], rows: int,
             load: Callable[[], tuple[Any, int]]) -> tuple[Any, int]:
        """``(value, bytes_read)`` of group ``key`` (``rows`` rows) for rows ``rows_wanted`` of it:
        from the cache (0 bytes read) when those rows were not taken from it yet, else from ``load()``
        (which returns the value and the bytes it read; its value is kept for the group's other rows)."""
        wanted = np.asarray(rows_wanted, np.int64)
        while True:
            with self._lock:
                entry = self._items.get(key)
                if entry is not None and not entry.served[wanted].any():
                    self._mark(key, entry, wanted)
                    return entry.value, 0
                if entry is not None:  # a row again: a new pass over the group
                    self._drop(key)
                pending = self._loading.get(key)
                if pending is None:
                    self._loading[key] = threading.Event()
                    break
            pending.wait()  # another thread is reading this group: use what it read
        try:
            value, nbytes = load()
        except BaseException:
            with self._lock:
                self._loading.pop(key).set()
            raise
        with self._lock:
            entry = _Entry(value, _nbytes(value), rows)
            if entry.nbytes <= self.max_bytes:
                self._items[key] = entry
                self._bytes += entry.nbytes
                self._mark(key, entry, wanted)
                while self._bytes > self.max_bytes and len(self._items) > 1:
                    self._drop(next(iter(self._items)))
            self._loading.pop(key).set()
        return value, nbytes

    def _mark(self, key: Hashable, entry: _Entry, wanted: np.ndarray) -> None:
        entry.served[wanted] = True  # no sort or unique: counting the served flags is cheaper per batch
        entry.left = len(entry.served) - int(np.count_nonzero(entry.served))
        if entry.left <= 0:
            self._drop(key)
        else:
            self._items.move_to_end(key)

    def _drop(self, key: Hashable) -> None:
        entry = self._items.pop(key, None)
        if entry is not None:
            self._bytes -= entry.nbytes

    def clear(self) -> None:
        """Forget every group (tests)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes


def _nbytes(value: Any) -> int:
    if isinstance(getattr(value, "nbytes", None), int):  # arrays, and decoded groups that say their size
        return int(value.nbytes)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 64


GROUPS = GroupCache(int(os.environ.get("DL_DRIVER_PARQUET_CACHE_BYTES", 2 << 30)))
