"""The native engine, what it yields: every sample once, in plan order, with correct figures and bytes.

Shared fixtures and helpers for the engine's tests live here (imported by ``test_engine_threads.py``
and ``test_engine_reads.py``). Wall-clock speed is measured in benchmarks/harness_ceiling.py, never
asserted here.
"""

from __future__ import annotations

import collections
import os
import threading
import time

import numpy as np
import pytest

from dlio_core.engine import Batch, NativeLoader
from dlio_core.engine import pooled, whole_file
from dlio_core.formats import get_format
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


@pytest.fixture(params=["pooled", "burst", "one-by-one", "python-reads"])
def mode(request, monkeypatch):
    """Every read path of the engine for plain local files: native reader threads (pooled.py); Python
    reader threads reading a batch back to back (with the C extension), or one large file at a time;
    and Python threads without the C extension (os.open/os.preadv/os.close)."""
    if request.param == "pooled" and whole_file._cread is None:
        pytest.skip("the C extension dlio_core.engine._cread is not built")
    if request.param != "pooled":
        monkeypatch.setattr(pooled, "can_pool", lambda inputs, batch_size: False)
    if request.param == "one-by-one":
        monkeypatch.setattr(whole_file, "BURST_MAX_BYTES", 0)
    if request.param == "python-reads":
        monkeypatch.setattr(whole_file, "_cread", None)
    return request.param


def os_threads() -> int:
    """Threads of this process as the OS counts them: Python's and native ones (the pooled path's)."""
    return len(os.listdir("/proc/self/task"))


def threads_settle_at(n: int, timeout: float = 5.0) -> bool:
    """Whether the OS thread count reaches ``n`` within ``timeout`` (a joined thread may take a moment
    to leave the kernel's list)."""
    deadline = time.monotonic() + timeout
    while os_threads() != n and time.monotonic() < deadline:
        time.sleep(0.005)
    return os_threads() == n


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

    def local_path(self, path):  # no OS paths: every read goes through read_into, and is recorded
        return None


def _plan(n: int, spf: int, batch: int, **kw) -> EpochPlan:
    return EpochPlan(num_files=n, samples_per_file=spf, batch_size=batch, world=1, rank=0, seed=5, epoch=1, **kw)


def _drain(loader: NativeLoader, plan, **kw) -> list[Batch]:
    out = []
    for b in loader.epoch(plan, **kw):
        out.append(b)
        b.release()
    return out



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
