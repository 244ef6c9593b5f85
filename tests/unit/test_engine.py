"""The native engine, what it yields: every sample once, in plan order, with correct figures and bytes.

The engine tests' fixtures (``dataset``, ``mode``) are in ``conftest.py`` and their helpers in
``_engine_helpers.py``. Wall-clock speed is measured in benchmarks/harness_ceiling.py, never asserted here.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from dlio_core.engine import NativeLoader
from dlio_core.formats import get_format

from ._engine_helpers import Recording, _drain, _identity, _plan

pytestmark = pytest.mark.timeout(60)


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
