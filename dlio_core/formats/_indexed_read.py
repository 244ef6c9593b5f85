"""Reading indexed binary files through the engine's ranged hook (layout: ``indexed_binary``).

The ``.off.idx`` / ``.sz.idx`` arrays of a data file are read once per process (cached by storage,
path and size, so a rewritten file misses) and checked against the data file's size. A batch's
samples are read with one ``read_into`` per run of samples lying back to back in the file. With
``mmap`` a local data file is mapped once per process and the samples are copied out of the
mapping: the copy is what makes the pages be read (the bytes counted are the bytes copied).

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_core.storage import open_storage
    >>> from dlio_core.formats.indexed_binary import MMAP_FORMAT
    >>> st = open_storage(tempfile.mkdtemp())
    >>> _ = MMAP_FORMAT.write_file(st, "m.mmap_indexed_binary", np.arange(6, dtype=np.uint8).reshape(2, 3))
    >>> r = IndexedBinaryReader(st, "m.mmap_indexed_binary", 6, mmap=True)
    >>> [s.tolist() for s in r.read([2, 0], keep=True)[2]]
    [[2, 5], [0, 3]]
"""

from __future__ import annotations

import mmap as _mmap
import os
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

from dlio_core.formats._ranged import LayoutCache
from dlio_core.formats._spans import check_wanted, fill, gather
from dlio_core.formats.base import FormatError
from dlio_core.storage.backend import open_ranged

__all__ = ["IndexedBinaryReader", "INDEX_CACHE", "MAPS", "index_paths", "check_index"]

# per process: each data file's (offsets, sizes) (weight 1 when samples are evenly spaced, else their count)
INDEX_CACHE = LayoutCache(max_weight=8 << 20)
# per process: read-only maps of local data files (mmap_indexed_binary); views keep an evicted map alive
MAPS = LayoutCache(max_weight=256)
_MAP_LOCK = threading.Lock()


def index_paths(path: str) -> tuple[str, str]:
    """The offset and size index files of a data file, as DLIO names them.

    Example:
        >>> index_paths("train/img_1_of_2.indexed_binary")
        ('train/img_1_of_2.indexed_binary.off.idx', 'train/img_1_of_2.indexed_binary.sz.idx')
    """
    return path + ".off.idx", path + ".sz.idx"


def check_index(offsets: np.ndarray, sizes: np.ndarray, data_size: int, index: str, data: str) -> None:
    """``FormatError`` naming ``index`` unless every sample lies inside a data file of ``data_size`` bytes."""
    if len(offsets) != len(sizes):
        raise FormatError(f"{index}: {len(offsets)} offsets but {len(sizes)} sizes")
    if len(offsets) and (int(offsets.min()) < 0 or int(sizes.min()) < 0
                         or int((offsets + sizes).max()) > data_size):
        raise FormatError(f"{index}: the index does not fit {data} ({data_size} bytes): stale index or "
                          f"truncated data file")


class _FileIndex:
    """Where the samples of one data file are; ``step``/``size`` when sample ``i`` is at ``i * step``."""

    __slots__ = ("offsets", "sizes", "count", "step", "size")

    def __init__(self, offsets: np.ndarray, sizes: np.ndarray) -> None:
        self.offsets, self.sizes, self.count = offsets, sizes, len(offsets)
        self.step = self.size = 0
        if self.count and bool((sizes == sizes[0]).all()):
            s = int(sizes[0])
            if bool((offsets == np.arange(self.count, dtype=np.int64) * s).all()):
                self.step = self.size = s

    def span(self, i: int) -> tuple[int, int]:
        if self.step:
            return i * self.step, self.size
        return int(self.offsets[i]), int(self.sizes[i])


class IndexedBinaryReader:
    """Reads chosen samples of one data file; see :meth:`read`."""

    def __init__(self, storage: Any, path: str, size: int, *, mmap: bool = False) -> None:
        self.storage, self.path, self.size, self.mmap = storage, path, int(size), mmap
        self._file: Any = None  # opened at the first ranged read, closed by close()

    def _read_index_file(self, name: str) -> bytes:
        try:
            raw = self.storage.read(name)
        except FileNotFoundError:
            raise FormatError(f"{name}: missing index file of {self.path} (indexed binary data files are read "
                              f"with their .off.idx and .sz.idx)") from None
        if len(raw) % 8:
            raise FormatError(f"{name}: {len(raw)} bytes is not a whole number of uint64 entries (truncated?)")
        return raw

    def _index(self) -> tuple[_FileIndex, int, float]:
        """``(index, bytes_read, io_s)``, from the cache or the two index files."""
        key = (self.storage.url, self.path, self.size)
        hit = INDEX_CACHE.get(key)
        if hit is not None:
            return hit, 0, 0.0
        t0 = time.perf_counter()
        off_path, sz_path = index_paths(self.path)
        off_raw, sz_raw = self._read_index_file(off_path), self._read_index_file(sz_path)
        io_s = time.perf_counter() - t0
        offsets = np.frombuffer(off_raw, "<u8").astype(np.int64)
        sizes = np.frombuffer(sz_raw, "<u8").astype(np.int64)
        if len(offsets) != len(sizes):
            raise FormatError(f"{sz_path}: {len(sizes)} sizes for {len(offsets)} offsets in {off_path}")
        check_index(offsets, sizes, self.size, off_path, self.path)
        fi = _FileIndex(offsets, sizes)
        INDEX_CACHE.put(key, fi, weight=1 if fi.step else fi.count)
        return fi, len(off_raw) + len(sz_raw), io_s

    def _mapping(self) -> np.ndarray | None:
        """The data file mapped read-only, or None when it is not a local file (or is empty)."""
        local = self.storage.local_path(self.path) if self.mmap and self.size else None
        if local is None:
            return None
        try:
            st = os.stat(local)
        except FileNotFoundError:
            raise FormatError(f"{self.path}: data file not found") from None
        if st.st_size < self.size:
            raise FormatError(f"{self.path}: file is shorter than the {self.size} bytes listed "
                              f"(truncated or changed since it was listed)")
        key = (local, self.size, st.st_ino, st.st_mtime_ns)  # a file rewritten in place maps anew
        with _MAP_LOCK:
            m = MAPS.get(key)
            if m is None:
                with open(local, "rb") as f:
                    m = np.frombuffer(_mmap.mmap(f.fileno(), self.size, access=_mmap.ACCESS_READ), np.uint8)
                MAPS.put(key, m)
        return m

    def read(self, indices: Sequence[int], keep: bool) -> tuple[int, int, list[np.ndarray] | None, float, float]:
        """Read samples ``indices`` (sample numbers in the file).

        Returns ``(bytes_read, sample_bytes, samples, io_s, decode_s)``: ``samples`` (when ``keep``) are
        1-D uint8 arrays of the samples' bytes in the order asked; ``bytes_read`` counts the index files
        the first time a process reads them.
        """
        if not len(indices):
            return 0, 0, [] if keep else None, 0.0, 0.0
        fi, nbytes, io_s = self._index()
        if fi.step:
            return self._read_even(fi, np.asarray(indices, np.int64), keep, nbytes, io_s)
        wanted = [int(i) for i in indices]
        uniq = sorted(set(wanted))
        check_wanted(uniq, fi.count, self.path)
        t0 = time.perf_counter()
        mapped = self._mapping()
        fetch = self._read_range if mapped is None else _copier(mapped)
        buf, starts, got = gather([fi.span(i) for i in uniq], fetch, self.path)
        nbytes += got
        io_s += time.perf_counter() - t0
        views = {i: buf[starts[k]:starts[k + 1]] for k, i in enumerate(uniq)}
        sample_bytes = sum(views[i].nbytes for i in wanted)
        return nbytes, sample_bytes, [views[i] for i in wanted] if keep else None, io_s, 0.0

    def _read_even(self, fi: _FileIndex, wanted: np.ndarray, keep: bool, nbytes: int,
                   io_s: float) -> tuple[int, int, list[np.ndarray] | None, float, float]:
        """:meth:`read` for samples evenly spaced in the file (DLIO's layout), in numpy: no Python work
        per sample unless the samples are kept (a batch of 16,384 dlrm rows is a few runs, not 16,384)."""
        steps = np.diff(wanted)
        # in file order, once each (no sample shuffle): nothing to sort
        uniq = wanted if bool((steps > 0).all()) else np.unique(wanted)
        check_wanted([int(uniq[0]), int(uniq[-1])], fi.count, self.path)
        cut = np.flatnonzero(np.diff(uniq) != 1) + 1             # runs of consecutive samples: one read each
        firsts, ends = np.concatenate(([0], cut)).tolist(), np.concatenate((cut, [len(uniq)])).tolist()
        t0 = time.perf_counter()
        mapped = self._mapping()
        fetch = self._read_range if mapped is None else _copier(mapped)
        size = fi.size
        buf = np.empty(len(uniq) * size, np.uint8)
        for a, b in zip(firsts, ends):
            nbytes += fill(buf[a * size:b * size], int(uniq[a]) * fi.step, fetch, self.path)
        io_s += time.perf_counter() - t0
        samples = None
        if keep:
            rows = buf.reshape(len(uniq), size)
            samples = list(rows) if uniq is wanted else [rows[k] for k in np.searchsorted(uniq, wanted).tolist()]
        return nbytes, len(wanted) * size, samples, io_s, 0.0

    def _read_range(self, view: np.ndarray, at: int) -> int:
        if self._file is None:
            self._file = open_ranged(self.storage, self.path)
        return self._file.read_into(view, at)

    def close(self) -> None:
        """Close the data file if a ranged read opened it (maps are shared per process)."""
        f, self._file = self._file, None
        if f is not None:
            f.close()


def _copier(mapped: np.ndarray) -> Callable[[np.ndarray, int], int]:
    """A ``fetch`` for ``gather`` that copies out of a mapped file."""

    def copy(view: np.ndarray, at: int) -> int:
        view[:] = mapped[at:at + view.nbytes]  # the copy is what touches (reads) every page
        return view.nbytes
    return copy
