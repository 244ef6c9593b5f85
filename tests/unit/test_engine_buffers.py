"""The memory the engine reads into (dlio_core/engine/buffers.py): buffers it maps itself, faulted in
before an epoch's first step, reused by later epochs in a bounded number, released on close, and the
samples read into them correct."""

from __future__ import annotations

import gc
import mmap
import resource
import threading
import weakref

import numpy as np
import pytest

from dlio_core.engine import NativeLoader, whole_file
from dlio_core.engine.buffers import HUGE_PAGE, ScratchShelf, _BufferPool, _Scratch, page_buffer, prefault
from dlio_core.engine.read_path import ReadInputs
from dlio_core.engine.threaded import ThreadedPath
from dlio_core.formats import get_format
from dlio_core.sampling import EpochPlan
from dlio_core.storage import open_storage

from ._engine_helpers import _identity, _plan, _x

pytestmark = pytest.mark.timeout(60)

BIG = (600_000,)  # uint32 x 600,000 per sample: files of ~2.3 MiB, over MAP_MIN_BYTES


def _map_of(buf) -> mmap.mmap | None:
    """The mmap behind an array, if any (array -> array -> memoryview -> mmap)."""
    obj = buf
    while obj is not None and not isinstance(obj, mmap.mmap):
        obj = getattr(obj, "base", None) if isinstance(obj, np.ndarray) else getattr(obj, "obj", None)
    return obj


def _thread_faults() -> int:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


@pytest.fixture
def big_files(tmp_path):
    """``n`` npz files of one ~2.3 MiB sample each: 4 to a batch is over the burst bound, so the
    threaded path reads them one at a time into each thread's ``single`` buffer."""

    def make(n: int = 8):
        st = open_storage(str(tmp_path))
        npz = get_format("npz")
        paths = [f"train/f{i:03d}.npz" for i in range(n)]
        sizes = [npz.write_file(st, p, _x(i, 1, BIG)) for i, p in enumerate(paths)]
        return st, paths, sizes

    return make


def test_large_buffers_are_aligned_maps_unmapped_with_their_last_view():
    buf = page_buffer(3 * 2**20 + 5)
    assert buf.nbytes == 3 * 2**20 + 4096 and buf.ctypes.data % HUGE_PAGE == 0
    buf[:] = 7  # writable, all of it
    view = buf[10:20]
    gone = weakref.ref(_map_of(buf))
    del buf
    gc.collect()
    assert gone() is not None  # a view still holds the map
    del view
    gc.collect()
    assert gone() is None
    small = page_buffer(1000)
    assert small.nbytes == 4096 and _map_of(small) is None  # from numpy: the heap reuses small blocks


def test_prefault_takes_a_fresh_buffers_page_faults_up_front():
    buf = page_buffer(8 << 20)
    before = _thread_faults()
    prefault(buf)
    during = _thread_faults() - before
    before = _thread_faults()
    buf[:] = 1
    after = _thread_faults() - before
    assert during >= 1 and after <= 2 < during + 2


def test_scratch_reserve_grows_once_and_drops_stale_views():
    sc = _Scratch(get_format("npz"))
    old = sc.single_view(1000)
    sc.reserve(8192, 3 << 20)
    assert sc.batch.nbytes >= 8192 and sc.single.nbytes >= 3 << 20
    assert sc.single_view(1000).obj is sc.single and old.obj is not sc.single
    arrays = sc.batch, sc.single
    sc.reserve(4096, 1 << 20)  # already large enough: nothing changes
    assert (sc.batch, sc.single) == arrays


def test_pool_reserve_is_bounded_and_close_lets_buffers_go():
    pool = _BufferPool()
    pool.reserve(3, 3 << 20)
    pool.reserve(3, 3 << 20)  # already holds 3 of that size: no more
    assert len(pool) == 3
    bufs = [pool.get(3 << 20) for _ in range(3)]
    maps = [weakref.ref(_map_of(b)) for b in bufs]
    pool.reserve(2, 1 << 20)  # the 3 are out: 2 new ones
    assert len(pool) == 2
    pool.close()
    pool.put(bufs)  # batches released after close: not kept
    assert len(pool) == 0
    del bufs
    gc.collect()
    assert all(m() is None for m in maps)


class _Journal:
    """A BatchReader that records when each thread reserves and reads."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def _note(self, what: str) -> None:
        with self.lock:
            self.events.append((threading.current_thread().name, what))

    def reserve(self, scratch, batch_size):
        assert batch_size == 2
        self._note("reserve")

    def read(self, step, files, samples, scratch, rng):
        from dlio_core.engine import Batch

        self._note("read")
        return Batch(step, len(files))


def test_threaded_path_sizes_every_threads_scratch_before_its_first_step():
    journal = _Journal()
    inputs = ReadInputs.build(open_storage("direct:///tmp"), get_format("npz"), ["f"] * 16, read_threads=3)
    path = ThreadedPath(inputs, journal, ScratchShelf(get_format("npz"), enabled=True))
    assert [b.step for b in path.epoch(_plan(16, 1, 2), 8)] == list(range(8))
    for name in {n for n, _ in journal.events}:
        mine = [what for n, what in journal.events if n == name]
        assert mine[0] == "reserve" and mine.count("reserve") == 1, (name, mine)
    assert sum(what == "reserve" for _, what in journal.events) == 4  # 3 threads and the consumer


def _epoch_samples(loader, n, batch, epoch):
    seen = []
    plan = EpochPlan(num_files=n, samples_per_file=1, batch_size=batch, seed=5, epoch=epoch, sample_shuffle="seed")
    for b in loader.epoch(plan):
        if b.samples is not None:
            seen += [_identity(s) for s in b.samples]
        b.release()
    return seen


def test_scratch_sets_are_sized_once_reused_by_later_epochs_bounded_and_released_on_close(big_files):
    st, paths, sizes = big_files()
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2, prefetch_size=2)
    assert loader.read_path(4).name == "threaded"  # 4 x 2.3 MiB: one file at a time
    _epoch_samples(loader, 8, 4, 1)
    kept = loader._scratches.kept
    # At most one set per thread and one for the consumer (a thread that starts after another has
    # finished takes the set it gave back).
    assert 1 <= len(kept) <= 3
    assert all(s.single.nbytes >= max(sizes) for s in kept)
    arrays = {id(s.single) for s in kept}
    for epoch in (2, 3):
        _epoch_samples(loader, 8, 4, epoch)
        assert len(kept) <= 3 and arrays <= {id(s.single) for s in kept}  # the same memory, no more of it
    maps = [weakref.ref(_map_of(s.single)) for s in kept]
    loader.close()
    gc.collect()
    assert loader._scratches.kept == [] and all(m() is None for m in maps)
    with pytest.raises(ValueError, match="closed"):
        loader.epoch(_plan(8, 1, 4))


@pytest.mark.skipif(whole_file._cread is None, reason="the C extension _cread is not built")
def test_kept_samples_land_in_reserved_buffers_reused_across_epochs_with_the_right_content(big_files):
    st, paths, sizes = big_files()
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2, prefetch_size=2,
                          keep_samples=True)
    assert loader.read_path(2).name == "pooled"
    first = _epoch_samples(loader, 8, 2, 1)
    assert sorted(first) == [(i, 0) for i in range(8)]
    pool = loader._pool
    held = {id(b) for b in pool._free}
    assert len(held) == (loader.in_flight + 1) * 2  # one buffer per file of each step in flight
    second = _epoch_samples(loader, 8, 2, 2)
    assert sorted(second) == [(i, 0) for i in range(8)] and second != first  # another order, same files
    assert {id(b) for b in pool._free} == held
    loader.close()
    assert len(pool) == 0
