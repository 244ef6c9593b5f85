"""Reused memory: the pool that kept samples are read into, and each reader thread's scratch buffers.

Without ``keep_samples`` a thread reads into its own :class:`_Scratch` (kept across epochs, so a file
size seen before costs no allocation and no page faults); with it, into buffers from a
:class:`_BufferPool`, which the batch gives back on ``Batch.release()``. A loader's scratch buffers
wait between epochs on its :class:`ScratchShelf`.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

import numpy as np


class _BufferPool:
    """Reusable uint8 buffers; ``get`` returns one of at least ``nbytes``."""

    def __init__(self, allocator: Callable[[int], np.ndarray] | None = None) -> None:
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._allocate = allocator or (lambda n: np.empty(n, dtype=np.uint8))

    def get(self, nbytes: int) -> np.ndarray:
        with self._lock:
            for i, buf in enumerate(self._free):
                if buf.nbytes >= nbytes:
                    return self._free.pop(i)
        return self._allocate(_round_up(nbytes))

    def put(self, bufs: Sequence[np.ndarray]) -> None:
        with self._lock:
            self._free.extend(bufs)


def _round_up(n: int, align: int = 4096) -> int:
    return max(align, (n + align - 1) // align * align)


class _Scratch:
    """One reader thread's reused buffers (when the consumer does not keep samples) and parser.

    Two backing arrays, each only ever grown: ``batch`` holds a whole batch of small files side by
    side (read back to back, then parsed: see ``_read_batch``), ``single`` one large file at a time.
    A view is cached per place and size, so files of the same size land in the same memory (no
    allocation, no page faults after the first) and the parser recognises the buffer. Growing drops the old views and the parser's references to them.
    """

    __slots__ = ("fmt", "batch", "single", "views", "sets", "parse")
    _MAX_VIEWS = 4096

    def __init__(self, fmt: Any) -> None:
        self.fmt = fmt
        self.batch = np.empty(0, dtype=np.uint8)
        self.single = np.empty(0, dtype=np.uint8)
        self.views: dict[tuple[int, int], memoryview] = {}  # (offset, size); offset -1: single
        self.sets: dict[tuple[int, ...], list[memoryview]] = {}  # a batch's sizes -> its views
        self.parse = self._new_parser()

    def _new_parser(self) -> Any:
        make = getattr(self.fmt, "parser", None)
        return make() if make is not None else self.fmt.parse

    def _reset(self) -> None:
        self.views = {}
        self.sets = {}
        self.parse = self._new_parser()

    def batch_views(self, sizes: list[int]) -> list[memoryview]:
        """Side-by-side views for one batch's files (offsets 64-byte aligned); the same list for the
        same sizes (most datasets have one size: one entry)."""
        key = tuple(sizes)
        out = self.sets.get(key)
        if out is not None:
            return out
        offsets, end = [], 0
        for size in sizes:
            offsets.append(end)
            end += (size + 63) & ~63
        if end > self.batch.nbytes:
            self.batch = np.empty(_round_up(end), dtype=np.uint8)
            self._reset()
        elif len(self.views) >= self._MAX_VIEWS or len(self.sets) >= self._MAX_VIEWS:
            self._reset()
        views = self.views
        out = []
        for off, size in zip(offsets, sizes):
            v = views.get((off, size))
            if v is None:
                v = views[(off, size)] = memoryview(self.batch)[off:off + size]
            out.append(v)
        self.sets[key] = out
        return out

    def single_view(self, size: int) -> memoryview:
        """A view for one large file (key offset -1)."""
        v = self.views.get((-1, size))
        if v is None:
            if size > self.single.nbytes:
                self.single = np.empty(_round_up(size), dtype=np.uint8)
                self._reset()
            elif len(self.views) >= self._MAX_VIEWS:
                self._reset()
            v = self.views[(-1, size)] = memoryview(self.single)[:size]
        return v



class ScratchShelf:
    """A loader's :class:`_Scratch` sets between epochs: an epoch's threads ``take`` one each and
    ``give`` it back when they end, so the next epoch reuses their memory (and the parsers' caches).

    ``take`` returns None when the loader reads into no scratch (``enabled`` False: kept samples go
    to pooled buffers; ranged formats bring their own).

    Example:
        >>> from dlio_core.formats import get_format
        >>> shelf = ScratchShelf(get_format("npz"), enabled=True)
        >>> s = shelf.take(); shelf.give(s)
        >>> shelf.take() is s, ScratchShelf(None, enabled=False).take()
        (True, None)
    """

    __slots__ = ("fmt", "enabled", "kept", "_lock")

    def __init__(self, fmt: Any, *, enabled: bool) -> None:
        self.fmt = fmt
        self.enabled = enabled
        self.kept: list[_Scratch] = []
        self._lock = threading.Lock()

    def take(self) -> _Scratch | None:
        if not self.enabled:
            return None
        with self._lock:
            return self.kept.pop() if self.kept else _Scratch(self.fmt)

    def give(self, scratch: _Scratch | None) -> None:
        if scratch is not None:
            with self._lock:
                self.kept.append(scratch)
