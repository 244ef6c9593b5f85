"""Reused memory: the pool that kept samples are read into, and each reader thread's scratch buffers.

Without ``keep_samples`` a thread reads into its own :class:`_Scratch` (kept across epochs, so a file
size seen before costs no allocation and no page faults); with it, into buffers from a
:class:`_BufferPool`, which the batch gives back on ``Batch.release()``. A loader's scratch buffers
wait between epochs on its :class:`ScratchShelf`.

Buffers of 2 MiB or more are maps the engine owns (:func:`page_buffer`): anonymous, private,
aligned on 2 MiB and advised for transparent huge pages, unmapped when the last view of them goes.
The first write to fresh memory costs a page fault per page (on the 2-vCPU VM of RESULTS.md ~2.7 us
per 4 KiB page: ~11 ms for 16 MiB, 15 times the read itself); huge pages cut that to one fault per
2 MiB, and :func:`prefault` lets an epoch pay it on its reader threads before its first batch instead
of inside the measured steps. Smaller buffers come from numpy (the C heap reuses them at no cost).
"""

from __future__ import annotations

import mmap
import threading
from typing import Any, Callable, Sequence

import numpy as np

try:  # the C extension's batch header check (setup.py); without it each file is parsed in Python
    from ._cread import spans_match as _spans_match
except ImportError:
    _spans_match = None

HUGE_PAGE = 2 << 20
_PAGE = mmap.PAGESIZE
# From this size up a buffer is a map of its own, on huge pages where the kernel gives them.
MAP_MIN_BYTES = HUGE_PAGE
_CAN_MAP = hasattr(mmap, "MAP_PRIVATE") and hasattr(mmap, "MAP_ANONYMOUS")


def page_buffer(nbytes: int) -> np.ndarray:
    """A fresh uint8 array of ``nbytes`` rounded up to whole pages; from ``MAP_MIN_BYTES`` up, backed by
    an anonymous private map aligned on ``HUGE_PAGE`` and advised ``MADV_HUGEPAGE`` (numpy's own
    advice leaves the unaligned ends on small pages), which is unmapped when no view of it is left.

    Example:
        >>> buf = page_buffer(3 << 20)
        >>> buf.nbytes, buf.ctypes.data % HUGE_PAGE
        (3145728, 0)
    """
    n = _round_up(nbytes, _PAGE)
    if n < MAP_MIN_BYTES or not _CAN_MAP:
        return np.empty(n, dtype=np.uint8)
    span = (n + HUGE_PAGE - 1) // HUGE_PAGE * HUGE_PAGE
    # Over-map by a huge page less one page so that an aligned start lies inside; the slack is never
    # touched, so it costs address space only.
    mapped = mmap.mmap(-1, span + HUGE_PAGE - _PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    whole = np.frombuffer(mapped, dtype=np.uint8)  # holds the map: unmapped once no view is left
    start = -whole.ctypes.data % HUGE_PAGE
    try:
        mapped.madvise(mmap.MADV_HUGEPAGE, start, span)
    except (AttributeError, OSError, ValueError):  # no transparent huge pages here: small pages do
        pass
    return whole[start:start + n]


def prefault(buf: np.ndarray) -> None:
    """Fault every page of a fresh ``buf`` in now (one byte written per page: its contents are lost),
    so that the first read into it costs no page faults. numpy releases the GIL for the strided write,
    so reader threads fault their buffers in parallel.

    Example:
        >>> buf = page_buffer(1 << 20); prefault(buf); int(buf[0])
        0
    """
    flat = buf.reshape(-1).view(np.uint8)
    if flat.size:
        flat[::_PAGE] = 0
        flat[-1] = 0


class _BufferPool:
    """Reusable uint8 buffers; ``get`` returns one of at least ``nbytes``.

    ``reserve`` fills it ahead of an epoch (prefaulted buffers, so the epoch's first reads fault no
    pages); ``close`` drops what it holds and what comes back later, so the memory goes once the last
    batch holding a buffer is released.

    Example:
        >>> pool = _BufferPool()
        >>> pool.reserve(2, 10_000); len(pool)
        2
        >>> a, b = pool.get(9_000), pool.get(9_000); pool.put([a]); pool.get(9_000) is a, len(pool)
        (True, 0)
        >>> pool.close(); len(pool)
        0
    """

    def __init__(self, allocator: Callable[[int], np.ndarray] | None = None) -> None:
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._allocate = allocator or page_buffer
        self._closed = False

    def __len__(self) -> int:
        return len(self._free)

    def get(self, nbytes: int) -> np.ndarray:
        with self._lock:
            for i, buf in enumerate(self._free):
                if buf.nbytes >= nbytes:
                    return self._free.pop(i)
        return self._allocate(_round_up(nbytes))

    def put(self, bufs: Sequence[np.ndarray]) -> None:
        with self._lock:
            if not self._closed:
                self._free.extend(bufs)

    def reserve(self, count: int, nbytes: int) -> None:
        """Allocate and prefault (on the calling thread) what the pool lacks to hold ``count`` free
        buffers of at least ``nbytes``."""
        with self._lock:
            missing = count - sum(1 for b in self._free if b.nbytes >= nbytes)
        fresh = []
        for _ in range(missing):
            buf = self._allocate(_round_up(nbytes))
            prefault(buf)
            fresh.append(buf)
        self.put(fresh)

    def close(self) -> None:
        """Drop every free buffer, and every buffer put back from now on."""
        with self._lock:
            self._closed = True
            self._free.clear()


def _round_up(n: int, align: int = _PAGE) -> int:
    return max(align, (n + align - 1) // align * align)


class _Scratch:
    """One reader thread's reused buffers (when the consumer does not keep samples) and parser.

    Two backing arrays, each only ever grown: ``batch`` holds a whole batch of small files side by
    side (read back to back, then parsed: see ``_read_batch``), ``single`` one large file at a time.
    A view is cached per place and size, so files of the same size land in the same memory (no
    allocation, no page faults after the first) and the parser recognises the buffer. Growing drops the old views and the parser's references to them.
    ``parse_batch`` checks a whole batch's headers in one call where the parser offers ``header_spans``.
    """

    __slots__ = ("fmt", "batch", "single", "views", "sets", "parse", "hits")
    _MAX_VIEWS = 4096

    def __init__(self, fmt: Any) -> None:
        self.fmt = fmt
        self.batch = np.empty(0, dtype=np.uint8)
        self.single = np.empty(0, dtype=np.uint8)
        self.views: dict[tuple[int, int], memoryview] = {}  # (offset, size); offset -1: single
        self.sets: dict[tuple[int, ...], list[memoryview]] = {}  # a batch's sizes -> its views
        self.parse = self._new_parser()
        self.hits: dict[int, tuple] = {}  # id(views of a batch) -> (views, spans, arrays, first bytes)

    def _new_parser(self) -> Any:
        make = getattr(self.fmt, "parser", None)
        return make() if make is not None else self.fmt.parse

    def _reset(self) -> None:
        self.views = {}
        self.sets = {}
        self.parse = self._new_parser()
        self.hits = {}

    def parse_batch(self, bufs: list[memoryview], paths: Sequence[str]) -> tuple[list[np.ndarray], int | None]:
        """``(arrays, first)``: each file of a batch read into ``bufs`` (a list from ``batch_views``)
        parsed by ``self.parse``, in order (the first bad file raises, naming it), and the bytes of
        sample 0 summed over the files (None when some file holds no sample).

        When the same views were parsed before and the parser gave ``header_spans`` for each, one call
        to the C extension checks that every buffer still holds those header bytes; then the arrays of
        last time are the parse (the same list: never mutated), as ``self.parse`` would have given them
        file by file. Anything else, a changed header included, goes file by file.
        """
        hit = self.hits.get(id(bufs))
        if hit is not None and hit[0] is bufs and _spans_match(bufs, hit[1]):
            return hit[2], hit[3]
        parse = self.parse
        arrays = list(map(parse, bufs, paths))
        first = first_sample_bytes(arrays)
        spans_of = getattr(parse, "header_spans", None)
        if spans_of is not None and _spans_match is not None:
            spans = []
            for b, x in zip(bufs, arrays):
                entry = spans_of(b)
                if entry is None or entry[1] is not x:
                    break
                spans.append(entry[0])
            else:
                self.hits[id(bufs)] = (bufs, spans, arrays, first)
        return arrays, first

    def reserve(self, batch_bytes: int, single_bytes: int) -> None:
        """Grow the arrays to at least these sizes now and fault their pages in (on the calling thread),
        so that an epoch's first reads into them cost no page faults; no-op when already as large."""
        grown = False
        if batch_bytes > self.batch.nbytes:
            self.batch = page_buffer(batch_bytes)
            prefault(self.batch)
            grown = True
        if single_bytes > self.single.nbytes:
            self.single = page_buffer(single_bytes)
            prefault(self.single)
            grown = True
        if grown:
            self._reset()

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
            self.batch = page_buffer(end)
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
                self.single = page_buffer(size)
                self._reset()
            elif len(self.views) >= self._MAX_VIEWS:
                self._reset()
            v = self.views[(-1, size)] = memoryview(self.single)[:size]
        return v


def first_sample_bytes(arrays: list[np.ndarray]) -> int | None:
    """Bytes of sample 0 (samples lie on the last axis) summed over ``arrays``; None when some array
    holds no sample.

    Example:
        >>> first_sample_bytes([np.zeros((4, 2), np.uint8), np.zeros(3, np.uint16)]), first_sample_bytes([np.zeros(0)])
        (6, None)
    """
    total = 0
    for x in arrays:
        shape = x.shape
        if not shape or not shape[-1]:
            return None
        total += x.nbytes // shape[-1]
    return total


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
        >>> shelf.give(s); shelf.close(); shelf.give(shelf.take()); shelf.kept
        []
    """

    __slots__ = ("fmt", "enabled", "kept", "_lock", "_closed")

    def __init__(self, fmt: Any, *, enabled: bool) -> None:
        self.fmt = fmt
        self.enabled = enabled
        self.kept: list[_Scratch] = []
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> _Scratch | None:
        if not self.enabled:
            return None
        with self._lock:
            return self.kept.pop() if self.kept else _Scratch(self.fmt)

    def give(self, scratch: _Scratch | None) -> None:
        if scratch is not None:
            with self._lock:
                if not self._closed:
                    self.kept.append(scratch)

    def close(self) -> None:
        """Drop the kept sets (their memory goes with them) and keep none given back from now on."""
        with self._lock:
            self._closed = True
            self.kept.clear()
