"""The native engine: every sample once, plan order, bounded read-ahead, errors that name the file and
never hang, correct bytes, clean shutdown; and the buffer reuse its speed depends on.

Wall-clock speed is measured in benchmarks/harness_ceiling.py, never asserted here.
"""

from __future__ import annotations

import collections
import os
import threading
import time

import numpy as np
import pytest

import dlio_core.engine as engine_mod
from dlio_core.engine import Batch, NativeLoader, ReadError, _Scratch
from dlio_core.formats import FormatError, get_format
from dlio_core.sampling import EpochPlan
from dlio_core.storage import open_storage

pytestmark = pytest.mark.timeout(60)


# -- fixtures ----------------------------------------------------------------------------------------
def _x(file: int, spf: int, dims: tuple[int, ...] = (3,)) -> np.ndarray:
    """A file's samples (DLIO layout, samples on the last axis); sample i of file f starts (f, i, 7, ...)."""
    x = np.full((*dims, spf), 7, np.uint32)
    flat = x.reshape(-1, spf)  # a view: row k is element k of every sample
    flat[0] = file
    flat[1] = np.arange(spf)
    return x


def _identity(sample: np.ndarray) -> tuple[int, int]:
    flat = sample.reshape(-1)
    return int(flat[0]), int(flat[1])


@pytest.fixture
def dataset(tmp_path):
    """Build ``n`` files of ``spf`` samples in ``fmt``; returns (storage, paths, sizes)."""

    def make(n: int, spf: int, fmt: str = "npz", *, vary: bool = False):
        st = open_storage(str(tmp_path))
        f = get_format(fmt)
        paths, sizes = [], []
        for i in range(n):
            dims = (3 + (i % 3 if vary else 0),)
            rel = f"train/f{i:03d}.{fmt}"
            sizes.append(f.write_file(st, rel, _x(i, spf, dims)))
            paths.append(rel)
        return st, paths, sizes

    return make


@pytest.fixture(params=["burst", "one-by-one"])
def mode(request, monkeypatch):
    """Both read paths of the engine: a batch read back to back, or one large file at a time."""
    if request.param == "one-by-one":
        monkeypatch.setattr(engine_mod, "BURST_MAX_BYTES", 0)
    return request.param


class Recording:
    """A storage wrapper that records every ``read_into`` (path, thread) and can fail or block them."""

    def __init__(self, inner, *, fail: str | None = None, before_read=None) -> None:
        self.inner = inner
        self.reads: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.fail = fail
        self.before_read = before_read

    def read_into(self, path, buffer, offset=0):
        with self.lock:
            self.reads.append((path, threading.current_thread().name))
        if self.before_read is not None:
            self.before_read(path)
        if self.fail is not None and path.endswith(self.fail):
            raise PermissionError(13, "Permission denied")
        return self.inner.read_into(path, buffer, offset)

    def size(self, path):
        return self.inner.size(path)


def _plan(n: int, spf: int, batch: int, **kw) -> EpochPlan:
    return EpochPlan(num_files=n, samples_per_file=spf, batch_size=batch, world=1, rank=0, seed=5, epoch=1, **kw)


def _drain(loader: NativeLoader, plan, **kw) -> list[Batch]:
    out = []
    for b in loader.epoch(plan, **kw):
        out.append(b)
        b.release()
    return out


# -- every sample once, in plan order --------------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2, 3, 5])
@pytest.mark.parametrize("shuffle", ["off", "seed"])
def test_every_sample_read_once_in_plan_order(dataset, threads, shuffle):
    st, paths, sizes = dataset(24, 1)
    rec = Recording(st)
    plan = _plan(24, 1, 3, file_shuffle=shuffle, sample_shuffle=shuffle)
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=threads, prefetch_size=2,
                          keep_samples=True)
    seen = []
    for step, b in enumerate(loader.epoch(plan)):
        assert b.step == step
        files, samples = plan.batch(step)
        assert [_identity(s) for s in b.samples] == list(zip(files.tolist(), samples.tolist()))
        seen += [_identity(s) for s in b.samples]
        b.release()
    assert sorted(seen) == [(f, 0) for f in range(24)]
    assert collections.Counter(p for p, _ in rec.reads) == collections.Counter(paths)  # each file once
    if threads > 1:
        assert len({t for _, t in rec.reads}) > 1 or plan.steps < 2  # the work really is shared


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_multi_sample_files_shuffled_every_sample_once_and_reads_counted(dataset, threads):
    st, paths, sizes = dataset(8, 5)
    rec = Recording(st)
    plan = _plan(8, 5, 4, file_shuffle="seed", sample_shuffle="seed")
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=threads, keep_samples=True)
    seen, expected_reads = [], 0
    for step, b in enumerate(loader.epoch(plan)):
        files, samples = plan.batch(step)
        assert [_identity(s) for s in b.samples] == list(zip(files.tolist(), samples.tolist()))
        runs = 1 + int(np.count_nonzero(np.diff(files)))  # the engine reads a file once per run in a batch
        expected_reads += runs
        assert b.bytes_read == sum(sizes[f] for i, f in enumerate(files.tolist()) if i == 0 or files[i - 1] != f)
        assert b.sample_bytes == len(files) * 3 * 4
        seen += [_identity(s) for s in b.samples]
        b.release()
    assert sorted(seen) == sorted((f, i) for f in range(8) for i in range(5))
    assert len(rec.reads) == expected_reads


def test_figures_without_keep_samples(dataset, mode):
    st, paths, sizes = dataset(12, 2, vary=True)
    plan = _plan(12, 2, 4)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2)
    batches = _drain(loader, plan)
    assert [b.step for b in batches] == list(range(plan.steps))
    assert all(b.samples is None for b in batches)
    assert sum(b.num_samples for b in batches) == 24
    # each batch reads 2 files of 2 samples; a sample of file i is (3 + i % 3) uint32 values
    assert sum(b.sample_bytes for b in batches) == sum(2 * 4 * (3 + i % 3) for i in range(12))
    assert sum(b.bytes_read for b in batches) == sum(sizes)
    assert all(b.io_s >= 0 and b.decode_s >= 0 for b in batches)


def test_max_steps_and_sizes_from_stat(dataset):
    st, paths, _ = dataset(10, 1, "npy")  # no sizes given: the engine asks storage (a stat per file)
    loader = NativeLoader(st, get_format("npy"), paths, read_threads=2, keep_samples=True)
    got = []
    for b in loader.epoch(_plan(10, 1, 2), max_steps=3):
        got += [_identity(s) for s in b.samples]
        b.release()
    assert got == [(f, 0) for f in range(6)]


# -- bytes equal np.load ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["npz", "npy"])
@pytest.mark.parametrize("threads", [1, 3])
def test_kept_samples_equal_np_load(dataset, fmt, threads):
    st, paths, sizes = dataset(9, 3, fmt, vary=True)
    plan = _plan(9, 3, 4, sample_shuffle="seed")
    loader = NativeLoader(st, get_format(fmt), paths, sizes=sizes, read_threads=threads, keep_samples=True)
    for step, b in enumerate(loader.epoch(plan)):
        files, samples = plan.batch(step)
        for got, f, s in zip(b.samples, files.tolist(), samples.tolist()):
            ref = np.load(st.path(paths[f]))
            ref = ref["x"] if fmt == "npz" else ref
            np.testing.assert_array_equal(got, ref[..., s])
            assert got.dtype == ref.dtype
        b.release()


def test_kept_samples_stay_valid_until_released(dataset):
    st, paths, sizes = dataset(16, 1)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2, prefetch_size=4,
                          keep_samples=True)
    held = list(loader.epoch(_plan(16, 1, 2)))  # nothing released while the epoch runs
    assert [_identity(s) for b in held for s in b.samples] == [(f, 0) for f in range(16)]
    for b in held:
        b.release()
        b.release()  # twice is harmless


# -- bounded read-ahead ------------------------------------------------------------------------------
@pytest.mark.parametrize("threads, prefetch", [(1, 1), (1, 3), (2, 2), (3, 2), (2, 5)])
def test_read_ahead_is_bounded(dataset, threads, prefetch):
    st, paths, sizes = dataset(30, 1)
    bound = max(prefetch, threads)
    consumed = [0]
    worst = [0]

    def before_read(path):  # batch_size 1: one read = one batch started
        started = int(os.path.basename(path)[1:4]) + 1
        worst[0] = max(worst[0], started - consumed[0])

    rec = Recording(st, before_read=before_read)
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=threads, prefetch_size=prefetch)
    for b in loader.epoch(_plan(30, 1, 1)):
        consumed[0] = b.step + 1
        time.sleep(0.01)  # a slow consumer: readers would run ahead if they could
    assert len(rec.reads) == 30
    assert worst[0] <= bound + 1  # the one the consumer holds, plus `bound` read ahead of it
    assert worst[0] >= min(bound, 2)  # and they do read ahead


def _settle(reads: list, want: int, timeout: float = 10.0) -> int:
    """Wait until ``want`` reads happened (or the timeout), then a little longer; return the count."""
    deadline = time.monotonic() + timeout
    while len(reads) < want and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.2)  # room for a read that should not happen
    return len(reads)


def test_read_ahead_stops_at_bound_while_consumer_holds_a_batch(dataset):
    st, paths, sizes = dataset(20, 1)
    rec = Recording(st)
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=2, prefetch_size=3)
    it = loader.epoch(_plan(20, 1, 1))
    next(it)  # step 0 taken; steps 1..3 may be read, step 4 may not
    assert _settle(rec.reads, 4) == 4
    next(it)
    assert _settle(rec.reads, 5) == 5
    it.close()


# -- the consumer reads steps no thread has claimed ---------------------------------------------------
class _SlowWake:
    """Stands in for the readers' wake-up queue: every wake-up arrives ``delay`` seconds late (the VM's
    cross-thread wake-up cost, exaggerated), so readers at the bound are slow to come back."""

    def __init__(self, delay: float) -> None:
        self.q = engine_mod.SimpleQueue()
        self.delay = delay

    def put(self, item) -> None:
        self.q.put(item)

    def get(self):
        item = self.q.get()
        time.sleep(self.delay)
        return item


@pytest.fixture
def slow_wakeups(monkeypatch):
    real = engine_mod._EpochState

    class State(real):
        __slots__ = ()

        def __init__(self, steps, in_flight):
            super().__init__(steps, in_flight)
            self.wake = _SlowWake(0.1)

    monkeypatch.setattr(engine_mod, "_EpochState", State)


@pytest.mark.parametrize("keep", [False, True])
def test_consumer_reads_unclaimed_steps_itself_while_readers_sleep(dataset, slow_wakeups, keep):
    st, paths, sizes = dataset(24, 1)
    base = threading.active_count()
    rec = Recording(st)
    plan = _plan(24, 1, 1, file_shuffle="seed")
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=1, prefetch_size=2,
                          keep_samples=keep)
    me = threading.current_thread().name
    got = []
    for step, b in enumerate(loader.epoch(plan)):
        assert b.step == step
        if keep:
            got += [_identity(s) for s in b.samples]
        b.release()
        time.sleep(0.01)  # a little compute: the reader fills its window and sleeps at the bound
    assert collections.Counter(p for p, _ in rec.reads) == collections.Counter(paths)  # each file once
    by = collections.Counter(t for _, t in rec.reads)
    # the reader comes back 0.1 s after each wake-up; meanwhile the consumer read the steps itself
    assert by[me] >= 8 and by[me] + by["dl-driver-reader-0"] == 24
    if keep:
        assert got == [(int(plan.batch(s)[0][0]), 0) for s in range(24)]
    assert threading.active_count() == base


def test_consumer_waits_for_a_step_a_thread_is_reading_and_never_reads_it_twice(dataset):
    st, paths, sizes = dataset(12, 1)
    me = threading.current_thread().name

    def before_read(path):  # every read by the reader thread is slow
        if threading.current_thread().name != me:
            time.sleep(0.02)

    rec = Recording(st, before_read=before_read)
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=1, prefetch_size=3,
                          keep_samples=True)
    got = []
    for b in loader.epoch(_plan(12, 1, 1)):
        got += [_identity(s) for s in b.samples]
        b.release()
    assert got == [(f, 0) for f in range(12)]
    assert collections.Counter(p for p, _ in rec.reads) == collections.Counter(paths)
    assert any(t != me for _, t in rec.reads)  # the thread's steps were waited for, not read again


def test_read_ahead_bound_holds_with_the_consumer_reading(dataset, slow_wakeups):
    st, paths, sizes = dataset(30, 1)
    consumed, worst = [0], [0]

    def before_read(path):
        started = int(os.path.basename(path)[1:4]) + 1
        worst[0] = max(worst[0], started - consumed[0])

    rec = Recording(st, before_read=before_read)
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=2, prefetch_size=3)
    for b in loader.epoch(_plan(30, 1, 1)):
        consumed[0] = b.step + 1
    assert len(rec.reads) == 30
    assert worst[0] <= 3 + 1


def test_error_in_a_step_the_consumer_reads_names_the_file(dataset, slow_wakeups):
    st, paths, sizes = dataset(16, 1)
    base = threading.active_count()
    rec = Recording(st, fail="f011.npz")
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=1, prefetch_size=2)
    box = _run_in_thread(lambda: _drain(loader, _plan(16, 1, 1)))
    assert isinstance(box.get("error"), ReadError) and "f011.npz" in str(box["error"])
    assert threading.active_count() == base


# -- errors ----------------------------------------------------------------------------------------
def _run_in_thread(fn, timeout=20.0):
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the engine hung"
    return box


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_read_error_names_the_file_and_does_not_hang(dataset, mode, threads):
    st, paths, sizes = dataset(16, 1)
    base = threading.active_count()
    rec = Recording(st, fail="f009.npz")
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=threads, prefetch_size=2)
    box = _run_in_thread(lambda: _drain(loader, _plan(16, 1, 2)))
    assert isinstance(box.get("error"), ReadError)
    assert "f009.npz" in str(box["error"]) and "Permission denied" in str(box["error"])
    assert threading.active_count() == base


def test_missing_file_is_a_read_error(dataset, mode):
    st, paths, sizes = dataset(6, 1)
    os.unlink(st.path(paths[4]))
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2)
    box = _run_in_thread(lambda: _drain(loader, _plan(6, 1, 2)))
    assert isinstance(box.get("error"), ReadError) and "f004.npz" in str(box["error"])


def test_truncated_file_is_a_read_error(dataset, mode):
    st, paths, sizes = dataset(6, 1)
    with open(st.path(paths[2]), "r+b") as f:
        f.truncate(sizes[2] - 10)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2)
    box = _run_in_thread(lambda: _drain(loader, _plan(6, 1, 3)))
    assert isinstance(box.get("error"), ReadError) and "f002.npz" in str(box["error"])


@pytest.mark.parametrize("fmt", ["npz", "npy"])
@pytest.mark.parametrize("keep", [False, True])
def test_corrupt_file_error_names_the_file(dataset, mode, fmt, keep):
    st, paths, sizes = dataset(8, 1, fmt)
    with open(st.path(paths[5]), "r+b") as f:  # same size, garbage bytes
        f.write(b"\0" * sizes[5])
    loader = NativeLoader(st, get_format(fmt), paths, sizes=sizes, read_threads=2, keep_samples=keep)
    box = _run_in_thread(lambda: _drain(loader, _plan(8, 1, 2)))
    assert isinstance(box.get("error"), FormatError) and f"f005.{fmt}" in str(box["error"])


def test_corrupt_header_after_good_files_of_the_same_size_is_caught(dataset, mode):
    # The reused scratch buffer and the parser's cache must not let a bad file through.
    st, paths, sizes = dataset(8, 1)
    assert len(set(sizes)) == 1
    raw = bytearray(open(st.path(paths[6]), "rb").read())
    hdr = raw.index(b"'shape': (")  # a larger shape in x's npy header, same length
    raw[hdr + 10] = ord("9")
    open(st.path(paths[6]), "wb").write(raw)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=1)
    box = _run_in_thread(lambda: _drain(loader, _plan(8, 1, 1)))
    assert isinstance(box.get("error"), FormatError) and "f006.npz" in str(box["error"])


def test_sample_index_past_the_file_is_a_read_error(dataset, mode):
    st, paths, sizes = dataset(4, 2)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=1)
    box = _run_in_thread(lambda: _drain(loader, _plan(4, 3, 2)))  # the plan thinks files hold 3
    assert isinstance(box.get("error"), ReadError) and "holds 2" in str(box["error"])


# -- shutdown ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("keep", [False, True])
def test_closing_mid_epoch_stops_the_threads(dataset, mode, threads, keep):
    st, paths, sizes = dataset(40, 1)
    base = threading.active_count()
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=threads, prefetch_size=3,
                          keep_samples=keep)
    pool, made = loader._pool, []
    get = pool.get
    pool.get = lambda n: made.append(get(n)) or made[-1]
    it = loader.epoch(_plan(40, 1, 2))
    for _ in range(3):
        next(it).release()
    assert threading.active_count() == base + threads
    it.close()
    assert threading.active_count() == base
    if keep:  # batches read ahead and never consumed gave their buffers back
        assert {id(b) for b in made} == {id(b) for b in pool._free}
    # and the loader runs the next epoch normally
    assert len(_drain(loader, _plan(40, 1, 2))) == 20
    assert threading.active_count() == base


def test_abandoned_generator_stops_the_threads(dataset):
    st, paths, sizes = dataset(40, 1)
    base = threading.active_count()
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=3)
    it = loader.epoch(_plan(40, 1, 2))
    next(it)
    del it  # garbage collection closes the generator
    deadline = time.monotonic() + 10
    while threading.active_count() != base and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == base


def test_close_while_a_read_is_blocked_waits_for_it_then_stops(dataset):
    st, paths, sizes = dataset(10, 1)
    base = threading.active_count()
    gate = threading.Event()
    rec = Recording(st, before_read=lambda p: gate.wait(10) if p.endswith("f003.npz") else None)
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=2, prefetch_size=4)
    it = loader.epoch(_plan(10, 1, 1))
    next(it)
    deadline = time.monotonic() + 10
    while not any(p.endswith("f003.npz") for p, _ in list(rec.reads)) and time.monotonic() < deadline:
        time.sleep(0.005)
    threading.Timer(0.2, gate.set).start()
    it.close()  # returns once the blocked read finished
    assert gate.is_set()
    time.sleep(0.05)  # the Timer thread itself
    assert threading.active_count() == base


# -- buffers -----------------------------------------------------------------------------------------
def test_scratch_buffers_are_reused_per_size():
    sc = _Scratch(get_format("npz"))
    a = sc.batch_views([4594, 4594, 100])
    assert [v[0].nbytes for v in a] == [4594, 4594, 100]
    assert all(x is y for x, y in zip(sc.batch_views([4594, 4594, 100]), a))  # the same list objects
    starts = [np.frombuffer(v[0], np.uint8).ctypes.data for v in a]
    assert starts[1] - starts[0] == 4608 and all(p % 64 == starts[0] % 64 for p in starts)  # side by side
    big = sc.batch_views([100_000])
    assert big[0][0].obj is not a[0][0].obj and (0, 4594) not in sc.views  # growing drops the old views
    s1 = sc.single_view(10_000)
    assert sc.single_view(10_000) is s1 and s1[0].obj is not big[0][0].obj
    assert sc.single_view(5_000)[0].obj is s1[0].obj  # smaller files share the single array


@pytest.mark.parametrize("burst", [True, False])
def test_engine_reuses_one_buffer_for_files_of_one_size(dataset, monkeypatch, burst):
    if not burst:
        monkeypatch.setattr(engine_mod, "BURST_MAX_BYTES", 0)
    st, paths, sizes = dataset(12, 1)
    buffers = set()

    class Spy(Recording):
        def read_into(self, path, buffer, offset=0):
            buffers.add(id(buffer.obj) if isinstance(buffer, memoryview) else id(buffer))
            return super().read_into(path, buffer, offset)

    loader = NativeLoader(Spy(st), get_format("npz"), paths, sizes=sizes, read_threads=2)
    _drain(loader, _plan(12, 1, 2))
    _drain(loader, _plan(12, 1, 2))
    assert len(buffers) <= 3  # one scratch array per reader thread and the consumer's, across batches and epochs
    assert 2 <= len(loader._scratches) <= 3  # the consumer's is made the first time it reads a step itself


class _RangedFormat:
    """A format read by ranges (whole_file = False): the engine's hook for hdf5/tfrecord readers."""

    name, extension, whole_file = "fake", "fake", False

    def __init__(self):
        self.opened = []

    def open_reader(self, storage, path, size):
        self.opened.append(path)
        fmt = self

        class R:
            def read(self, indices, keep):
                views = [np.full(2, i, np.uint8) for i in indices] if keep else None
                return 10 * len(indices), 2 * len(indices), views, 0.001, 0.002

            def close(self):
                pass

        del fmt
        return R()


def test_ranged_formats_use_the_reader_hook():
    fmt = _RangedFormat()
    loader = NativeLoader(None, fmt, [f"p{i}" for i in range(4)], sizes=[100] * 4, read_threads=2,
                          keep_samples=True)
    plan = _plan(4, 3, 3)
    for step, b in enumerate(loader.epoch(plan)):
        files, samples = plan.batch(step)
        assert [int(v[0]) for v in b.samples] == samples.tolist()
        assert b.sample_bytes == 6 and b.bytes_read == 10 * 3
    assert sorted(set(fmt.opened)) == [f"p{i}" for i in range(4)]


def test_direct_local_reads_finish_short_reads(dataset, mode, monkeypatch):
    # Local files are read with os.preadv in the engine itself; a short read is completed, not taken as EOF.
    st, paths, sizes = dataset(6, 2)
    real = os.preadv
    calls = []

    def short_preadv(fd, bufs, offset):
        (b,) = bufs
        calls.append(offset)
        return real(fd, [b[: max(1, len(b) // 3)]], offset)

    monkeypatch.setattr(engine_mod.os, "preadv", short_preadv)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2, keep_samples=True)
    assert loader._direct and os.path.isabs(loader.files[0])
    got = []
    for b in loader.epoch(_plan(6, 2, 4)):
        got += [_identity(s) for s in b.samples]
        b.release()
    assert sorted(got) == [(f, i) for f in range(6) for i in range(2)]
    assert len(calls) > 12  # the engine's call, then storage.read_into's loop


def test_direct_path_is_only_for_plain_local_storage(dataset):
    from dlio_core.storage.local import LocalStorage

    st, paths, sizes = dataset(2, 1)

    class Sub(LocalStorage):  # e.g. DirectStorage (O_DIRECT) keeps its own read_into
        pass

    assert NativeLoader(st, get_format("npz"), paths, sizes=sizes)._direct
    sub = NativeLoader(Sub(st.root), get_format("npz"), paths, sizes=sizes)
    assert not sub._direct and sub.files == paths


def test_kept_samples_live_in_buffers_from_the_allocator(tmp_path):
    """A plugin's allocator (pinned memory in real use) supplies the buffers samples are read into."""
    import numpy as np

    from dlio_core.engine import NativeLoader
    from dlio_core.formats import get_format
    from dlio_core.sampling import EpochPlan
    from dlio_core.storage import open_storage

    st, fmt = open_storage(str(tmp_path)), get_format("npy")
    for i in range(6):
        fmt.write_file(st, f"f{i}.npy", np.full((16, 16, 1), i, np.uint8))
    made: list[np.ndarray] = []

    def allocator(n: int) -> np.ndarray:
        made.append(np.zeros(n, np.uint8))
        return made[-1]

    loader = NativeLoader(st, fmt, [f"f{i}.npy" for i in range(6)], sizes=[st.size(f"f{i}.npy") for i in range(6)],
                          read_threads=2, prefetch_size=2, keep_samples=True, allocator=allocator)
    plan = EpochPlan(num_files=6, samples_per_file=1, batch_size=2)
    seen = []
    for batch in loader.epoch(plan):
        for sample in batch.samples:
            assert any(np.shares_memory(sample, buf) for buf in made)
            seen.append(int(sample[0, 0]))
        batch.release()
    assert sorted(seen) == list(range(6)) and made
