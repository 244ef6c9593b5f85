"""The readers ``harness_ceiling.py`` measures the native engine against: two ceilings and two baselines.

- ``raw_ceiling``: the issue's ceiling, threads calling ``os.open`` + ``os.readv`` + ``os.close`` per file
  into one reused buffer (no allocation, no parsing, no hand-off; a GIL hand-off per system call);
- ``native_ceiling``: the same threads, each reading its whole share in one call to the C extension
  (``_cread.read_files``): the system calls alone, no Python and no GIL between them;
- ``np_load_loop`` and ``torch_loader``: what a plain loop and a torch ``DataLoader`` reach, for scale.

(Not a benchmark itself: ``run_all.py`` skips modules whose name starts with ``_``.)
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Callable

import numpy as np

Share = list[tuple[str, int]]  # (path, size) of the files one thread reads


def _files_per_second(paths: list[str], sizes: list[int], threads: int,
                      prepare: Callable[[Share], Callable[[], None]]) -> float:
    """Files per second of ``threads`` threads released together, thread ``i`` reading every
    ``threads``-th file: ``prepare(share)`` (untimed) returns the read to time. A thread's error is
    raised here: a failed ceiling must not look fast."""
    start = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker(share: Share) -> None:
        read = prepare(share)
        start.wait()
        try:
            read()
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    pairs = list(zip(paths, sizes))
    ts = [threading.Thread(target=worker, args=(pairs[i::threads],)) for i in range(threads)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return len(paths) / elapsed


def raw_ceiling(paths: list[str], sizes: list[int], threads: int) -> float:
    """Files per second read by ``threads`` threads, each ``readv`` into its own reused buffer."""

    def prepare(share: Share) -> Callable[[], None]:
        view = memoryview(bytearray(max(s for _, s in share)))
        views = {s: [view[:s]] for s in {s for _, s in share}}

        def read() -> None:
            o_open, o_readv, o_close, flags = os.open, os.readv, os.close, os.O_RDONLY
            for p, s in share:
                fd = o_open(p, flags)
                try:
                    if o_readv(fd, views[s]) != s:
                        raise OSError(f"short read of {p}")
                finally:
                    o_close(fd)

        return read

    return _files_per_second(paths, sizes, threads, prepare)


def native_ceiling(paths: list[str], sizes: list[int], threads: int) -> float | None:
    """Files per second read by ``threads`` threads, each reading its whole share in one call to the C
    extension (``_cread.read_files``, the GIL released throughout, one reused buffer): the system calls
    alone, with no Python between them. ``None`` without the extension."""
    from dlio_core.engine import whole_file

    cread = whole_file._cread
    if cread is None:
        return None

    def prepare(share: Share) -> Callable[[], None]:
        view = memoryview(bytearray(max(s for _, s in share)))
        names, bufs, want = [p for p, _ in share], [view[:s] for _, s in share], [s for _, s in share]

        def read() -> None:
            if cread.read_files(names, bufs)[0] != want:
                raise OSError("short read")

        return read

    return _files_per_second(paths, sizes, threads, prepare)


def np_load_loop(paths: list[str]) -> float:
    """Samples/s of the simplest loader: ``np.load(path)["x"]`` per file, one thread."""
    t0 = time.perf_counter()
    for p in paths:
        with np.load(p) as z:
            z["x"]
    return len(paths) / (time.perf_counter() - t0)


class _NpzFiles:
    """A map-style dataset: item i is ``np.load(paths[i])["x"][..., 0]`` (one sample per file)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        with np.load(self.paths[i]) as z:
            return z["x"][..., 0]


def torch_loader(paths: list[str], batch: int, workers: int, epochs: int) -> float | None:
    """Best samples/s over ``epochs`` epochs of a persistent-worker torch DataLoader (first epoch not timed)."""
    try:
        import torch.utils.data as tud
    except ImportError:
        return None
    dl = tud.DataLoader(_NpzFiles(paths), batch_size=batch, num_workers=workers, persistent_workers=True,
                        drop_last=True, multiprocessing_context="fork")
    best = 0.0
    try:
        for e in range(epochs + 1):
            n = 0
            t0 = time.perf_counter()
            for b in dl:
                n += len(b)
            rate = n / (time.perf_counter() - t0)
            if e:
                best = max(best, rate)
    finally:
        del dl
        gc.collect()
    return best
