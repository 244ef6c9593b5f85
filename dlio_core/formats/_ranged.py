"""Helpers for formats read by byte ranges (hdf5, tfrecord): a per-process layout cache, runs of
adjacent samples, and a read-only file object over a storage that counts what it reads.

The engine opens one reader per (batch, file); what a reader learns about a file's layout (TFRecord
offsets, HDF5 dataset offsets) is kept in a bounded cache keyed by storage, path and size, so it is
read once per process, not once per batch. A changed file has another size and misses the cache.

Example:
    >>> cache = LayoutCache(max_weight=10)
    >>> cache.put(("s", "a", 1), "layout-a", weight=6); cache.put(("s", "b", 1), "layout-b", weight=6)
    >>> cache.get(("s", "a", 1)) is None, cache.get(("s", "b", 1))
    (True, 'layout-b')
    >>> runs([0, 1, 2, 5, 7, 8])
    [(0, 3), (3, 4), (4, 6)]
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections import OrderedDict
from typing import Any, Hashable, Sequence

__all__ = ["LayoutCache", "runs", "StorageFile"]


class LayoutCache:
    """A thread-safe LRU map whose entries have weights (e.g. records described); the oldest entries
    go once the total passes ``max_weight``."""

    def __init__(self, max_weight: int) -> None:
        self.max_weight = max_weight
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """The value for ``key`` (now the most recent), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: Any, weight: int = 1) -> None:
        """Store ``value``; evict the least recently used entries beyond ``max_weight``."""
        w = max(1, int(weight))
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._items[key] = (value, w)
            self._weight += w
            while self._weight > self.max_weight and len(self._items) > 1:
                _, (_, ow) = self._items.popitem(last=False)
                self._weight -= ow

    def clear(self) -> None:
        """Forget everything (tests; a process that rewrote its dataset)."""
        with self._lock:
            self._items.clear()
            self._weight = 0


def runs(sorted_unique: Sequence[int]) -> list[tuple[int, int]]:
    """``(start, stop)`` positions in ``sorted_unique`` of maximal runs of consecutive values, so that
    adjacent samples are fetched with one read."""
    out = []
    start = 0
    for k in range(1, len(sorted_unique) + 1):
        if k == len(sorted_unique) or sorted_unique[k] != sorted_unique[k - 1] + 1:
            out.append((start, k))
            start = k
    return out


class StorageFile(io.RawIOBase):
    """A read-only, seekable file over ``storage.read_into`` that counts the bytes it returns and the
    seconds spent reading (for h5py, which reads through Python file objects).

    Example:
        >>> import tempfile
        >>> from dlio_core.storage import open_storage
        >>> st = open_storage(tempfile.mkdtemp()); _ = st.write_atomic("f", b"hello")
        >>> f = StorageFile(st, "f", 5); _ = f.seek(1); f.read(3), f.bytes_read
        (b'ell', 3)
    """

    def __init__(self, storage: Any, path: str, size: int) -> None:
        super().__init__()
        self.storage, self.path, self.size = storage, path, int(size)
        self.pos = 0
        self.bytes_read = 0
        self.io_s = 0.0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + int(offset))
        return self.pos

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        want = min(mv.nbytes, max(0, self.size - self.pos))
        if want <= 0:
            return 0
        t0 = time.perf_counter()
        n = self.storage.read_into(self.path, mv[:want], self.pos)
        self.io_s += time.perf_counter() - t0
        self.pos += n
        self.bytes_read += n
        return n
