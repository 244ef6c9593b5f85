"""Helpers shared by the engine's unit tests (``test_engine*.py``, ``test_cread.py``): sample data, a
recording storage, a fake ranged format, thread counts. Their fixtures (``dataset``, ``mode``) are in
``conftest.py``; these are plain functions and classes, imported by the tests that use them."""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from dlio_core.engine import Batch, NativeLoader
from dlio_core.sampling import EpochPlan


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


class _NoFiles:
    """A storage the fake ranged format never reads from (its files have no OS path)."""

    def local_path(self, path):
        return None
