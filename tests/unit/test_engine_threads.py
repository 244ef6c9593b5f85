"""The native engine's threads: bounded read-ahead, the consumer reading steps no thread has claimed,
and clean shutdown (no thread left behind, however the epoch ends)."""

from __future__ import annotations

import collections
import os
import threading
import time
from queue import SimpleQueue

import pytest

from dlio_core.engine import NativeLoader, ReadError
from dlio_core.engine import steps as engine_steps, threaded as engine_threaded
from dlio_core.formats import get_format

from ._engine_helpers import Recording, _drain, _identity, _plan, _run_in_thread, os_threads, threads_settle_at

pytestmark = pytest.mark.timeout(60)


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
        self.q = SimpleQueue()
        self.delay = delay

    def put(self, item) -> None:
        self.q.put(item)

    def get(self):
        item = self.q.get()
        time.sleep(self.delay)
        return item


@pytest.fixture
def slow_wakeups(monkeypatch):
    real = engine_steps._EpochState

    class State(real):
        __slots__ = ()

        def __init__(self, steps, in_flight):
            super().__init__(steps, in_flight)
            self.wake = _SlowWake(0.1)

    monkeypatch.setattr(engine_threaded, "_EpochState", State)  # the name ThreadedPath.epoch looks up


@pytest.mark.parametrize("keep", [False, True])
def test_consumer_reads_unclaimed_steps_itself_while_readers_sleep(dataset, slow_wakeups, keep):
    st, paths, sizes = dataset(24, 1)
    base = os_threads()
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
    assert threads_settle_at(base)


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
    base = os_threads()
    rec = Recording(st, fail="f011.npz")
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=1, prefetch_size=2)
    box = _run_in_thread(lambda: _drain(loader, _plan(16, 1, 1)))
    assert isinstance(box.get("error"), ReadError) and "f011.npz" in str(box["error"])
    assert threads_settle_at(base)


# -- shutdown ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("keep", [False, True])
def test_closing_mid_epoch_stops_the_threads(dataset, mode, threads, keep):
    st, paths, sizes = dataset(40, 1)
    base = os_threads()
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=threads, prefetch_size=3,
                          keep_samples=keep)
    pool, made = loader._pool, []
    get = pool.get
    pool.get = lambda n: made.append(get(n)) or made[-1]
    it = loader.epoch(_plan(40, 1, 2))
    for _ in range(3):
        next(it).release()
    assert threads_settle_at(base + threads)
    it.close()
    assert threads_settle_at(base)
    if keep:  # batches read ahead and never consumed gave their buffers back
        assert {id(b) for b in made} == {id(b) for b in pool._free}
    # and the loader runs the next epoch normally
    assert len(_drain(loader, _plan(40, 1, 2))) == 20
    assert threads_settle_at(base)


def test_abandoned_generator_stops_the_threads(dataset):
    st, paths, sizes = dataset(40, 1)
    base = os_threads()
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=3)
    it = loader.epoch(_plan(40, 1, 2))
    next(it)
    del it  # garbage collection closes the generator
    deadline = time.monotonic() + 10
    while os_threads() != base and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threads_settle_at(base)


def test_close_while_a_read_is_blocked_waits_for_it_then_stops(dataset):
    st, paths, sizes = dataset(10, 1)
    base = os_threads()
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
    assert threads_settle_at(base)
