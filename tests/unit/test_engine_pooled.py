"""The engine's pooled path (dlio_core/engine/pooled.py): when it is taken, that it yields what the
threaded path yields, that its read-ahead is bounded, and that its native threads never outlive an
epoch. (The shared read-path tests run it too, as the ``pooled`` mode.)"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from dlio_core.config.timespec import TimeSpec
from dlio_core.engine import NativeLoader
from dlio_core.engine import pooled, whole_file
from dlio_core.formats import get_format

from ._engine_helpers import Recording, _drain, _identity, _plan, os_threads, threads_settle_at

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(whole_file._cread is None, reason="the C extension _cread is not built")]


def test_taken_for_small_local_whole_files_only(dataset, monkeypatch):
    st, paths, sizes = dataset(8, 1)
    npz = get_format("npz")
    assert pooled_for(NativeLoader(st, npz, paths, sizes=sizes), 4)
    assert pooled_for(NativeLoader(st, npz, paths, sizes=sizes, keep_samples=True), 10**6)  # pooled buffers
    assert not pooled_for(NativeLoader(st, npz, paths), 4)  # sizes unknown: the threads stat as they go
    assert not pooled_for(NativeLoader(Recording(st), npz, paths, sizes=sizes), 4)  # not plain local storage
    sleepy = TimeSpec.parse(0.001, key="reader.preprocess_time")  # runs on the reader threads: not pooled
    assert not pooled_for(NativeLoader(st, npz, paths, sizes=sizes, preprocess_s=sleepy), 4)
    big = whole_file.BURST_MAX_BYTES // max(sizes) + 1
    assert not pooled_for(NativeLoader(st, npz, paths, sizes=sizes), big)  # a batch too big for scratch sets
    monkeypatch.setattr(whole_file, "_cread", None)
    assert not pooled_for(NativeLoader(st, npz, paths, sizes=sizes), 4)


def pooled_for(loader: NativeLoader, batch_size: int) -> bool:
    """Whether ``loader``'s epochs of ``batch_size``-sample steps take the pooled path (and, the same
    thing said by the predicate alone, whether ``pooled.can_pool`` says so)."""
    path = loader.read_path(batch_size)
    assert path.name in ("pooled", "threaded")
    assert (path.name == "pooled") == pooled.can_pool(loader.inputs, batch_size)
    return path.name == "pooled"


@pytest.mark.parametrize("threads", [1, 2, 5])
@pytest.mark.parametrize("shuffle", ["off", "seed"])
def test_yields_what_the_threaded_path_yields(dataset, monkeypatch, threads, shuffle):
    st, paths, sizes = dataset(20, 3, vary=True)
    plan = _plan(20, 3, 4, file_shuffle=shuffle, sample_shuffle=shuffle)

    def epoch(keep):
        loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=threads, keep_samples=keep)
        out = []
        for b in loader.epoch(plan):
            ids = [_identity(s) for s in b.samples] if keep else None
            out.append((b.step, b.num_samples, b.bytes_read, b.sample_bytes, ids))
            assert b.io_s >= 0 and b.decode_s >= 0
            b.release()
        return out

    got = {keep: epoch(keep) for keep in (False, True)}
    monkeypatch.setattr(pooled, "can_pool", lambda inputs, batch_size: False)
    want = {keep: epoch(keep) for keep in (False, True)}
    assert got == want
    assert [ids for *_, ids in got[True]] == [list(zip(*(a.tolist() for a in plan.batch(s))))
                                              for s in range(plan.steps)]


@pytest.mark.parametrize("cpus, native", [(16, 3), (2, 1)])
def test_uses_native_threads_not_python_ones(dataset, monkeypatch, cpus, native):
    """``read_threads`` native threads, but no more than the CPUs less one (the consumer reads too)."""
    monkeypatch.setattr(pooled, "usable_cpus", lambda: cpus)
    st, paths, sizes = dataset(40, 1)
    py_base, os_base = threading.active_count(), os_threads()
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=3)
    it = loader.epoch(_plan(40, 1, 2))
    next(it).release()
    assert threading.active_count() == py_base and os_threads() == os_base + native
    for b in it:
        b.release()
    assert threads_settle_at(os_base)


def test_usable_cpus_follows_the_affinity_mask():
    assert pooled.usable_cpus() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("prefetch", [1, 2, 4])
def test_read_ahead_is_bounded(dataset, monkeypatch, prefetch):
    st, paths, sizes = dataset(30, 1)
    consumed, worst = [0], [0]
    plan_step = pooled._Planner.batch  # called once per step, as the step is submitted

    def spy(planner, step):
        worst[0] = max(worst[0], step + 1 - consumed[0])
        return plan_step(planner, step)

    monkeypatch.setattr(pooled._Planner, "batch", spy)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2, prefetch_size=prefetch)
    for b in loader.epoch(_plan(30, 1, 1)):
        consumed[0] = b.step + 1
    bound = max(prefetch, 2)
    assert worst[0] == bound + 1  # the step being consumed, plus `bound` submitted ahead of it


def test_batches_before_a_bad_file_arrive_then_its_error(dataset):
    st, paths, sizes = dataset(12, 1)
    with open(st.path(paths[7]), "r+b") as f:
        f.truncate(sizes[7] - 1)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2, keep_samples=True)
    steps = []
    with pytest.raises(Exception) as e:
        for b in loader.epoch(_plan(12, 1, 1)):
            steps.append(b.step)
            b.release()
    assert steps == list(range(7)) and "f007.npz" in str(e.value) and "truncated" in str(e.value)
    # the pooled buffers of every batch went back, the failed one's included
    assert len(loader._pool._free) >= 1


def test_scratch_sets_are_kept_across_epochs(dataset):
    st, paths, sizes = dataset(16, 1)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2, prefetch_size=3)
    _drain(loader, _plan(16, 1, 2))
    first = {id(s) for s in loader._scratches.kept}
    arrays = {id(s.batch) for s in loader._scratches.kept}
    _drain(loader, _plan(16, 1, 2))
    assert len(first) == 4  # in_flight 3 steps ahead + the one being consumed
    kept = loader._scratches.kept
    assert {id(s) for s in kept} == first and {id(s.batch) for s in kept} == arrays


def test_npy_files_too(dataset):
    st, paths, sizes = dataset(9, 2, "npy")
    loader = NativeLoader(st, get_format("npy"), paths, sizes=sizes, read_threads=2, keep_samples=True)
    plan = _plan(9, 2, 3, sample_shuffle="seed")
    for step, b in enumerate(loader.epoch(plan)):
        files, samples = plan.batch(step)
        for got, f, s in zip(b.samples, files.tolist(), samples.tolist()):
            np.testing.assert_array_equal(got, np.load(st.path(paths[f]))[..., s])
        b.release()
