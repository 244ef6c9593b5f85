"""The framework-free batch reader ("native" loader).

``read_threads`` threads each build whole batches (as DataLoader workers do in DLIO's PyTorch path),
so the number of steps never depends on the thread count. At most ``max(prefetch_size,
read_threads)`` batches are read ahead of the consumer; a thread may start step ``k`` only while
``k < next_to_consume + in_flight``, which bounds memory and cannot deadlock (the step the consumer
waits for is always allowed to start).

Each sample of a whole-file format (npz, npy) is one ``open`` + ``readv`` into a reused buffer
(the thread's own scratch buffer, or a pooled one when the consumer keeps the samples) followed by
``Format.parse``, which returns a view. Bytes actually read, I/O seconds and decode seconds are
summed per batch; nothing is formatted or logged per sample.

Example:
    >>> import numpy as np, tempfile, os
    >>> from dlio_core.engine import NativeLoader
    >>> from dlio_core.formats import get_format
    >>> from dlio_core.storage import open_storage
    >>> from dlio_core.sampling import EpochPlan
    >>> root = tempfile.mkdtemp()
    >>> st = open_storage(root)
    >>> fmt = get_format("npy")
    >>> for i in range(4):
    ...     _ = fmt.write_file(st, f"f{i}.npy", np.full((8, 8, 1), i, np.uint8))
    >>> loader = NativeLoader(st, fmt, [os.path.join(root, f"f{i}.npy") for i in range(4)],
    ...                       read_threads=2, prefetch_size=2)
    >>> plan = EpochPlan(num_files=4, samples_per_file=1, batch_size=2, world=1, rank=0, seed=1, epoch=1)
    >>> [b.num_samples for b in loader.epoch(plan)]
    [2, 2]
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

__all__ = ["Batch", "NativeLoader", "ReadError"]


class ReadError(RuntimeError):
    """A sample could not be read or decoded; the message names the file."""


@dataclass
class Batch:
    """One step's data as the runner sees it.

    ``io_s`` and ``decode_s`` are summed over the batch's samples (thread time, not wall time);
    ``bytes_read`` counts what storage actually returned, so whole-file reads of multi-sample files
    show up as amplification against ``sample_bytes``.
    """

    step: int
    num_samples: int
    bytes_read: int = 0
    sample_bytes: int = 0
    io_s: float = 0.0
    decode_s: float = 0.0
    samples: list[np.ndarray] | None = None
    _release: Any = field(default=None, repr=False)

    def release(self) -> None:
        """Give the batch's buffers back to the loader (called by the consumer when done)."""
        if self._release is not None:
            self._release()
            self._release = None


class _BufferPool:
    """Reusable uint8 buffers; ``get`` returns one of at least ``nbytes``."""

    def __init__(self) -> None:
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def get(self, nbytes: int) -> np.ndarray:
        with self._lock:
            for i, buf in enumerate(self._free):
                if buf.nbytes >= nbytes:
                    return self._free.pop(i)
        return np.empty(_round_up(nbytes), dtype=np.uint8)

    def put(self, bufs: Sequence[np.ndarray]) -> None:
        with self._lock:
            self._free.extend(bufs)


def _round_up(n: int, align: int = 4096) -> int:
    return max(align, (n + align - 1) // align * align)


class NativeLoader:
    """Reads the batches of an :class:`~dlio_core.sampling.EpochPlan` with a thread pool.

    ``files`` are the paths (as the storage takes them) indexed by the plan's file indices;
    ``sizes`` (optional) are their sizes in bytes, which spares a ``stat`` per read.
    With ``keep_samples`` the batches carry the decoded sample views (valid until
    ``Batch.release()``); without it buffers are reused at once and only the figures are kept.
    """

    def __init__(
        self,
        storage: Any,
        fmt: Any,
        files: Sequence[str],
        *,
        sizes: Sequence[int] | None = None,
        read_threads: int = 1,
        prefetch_size: int = 2,
        keep_samples: bool = False,
        preprocess_s: Any = None,
        seed: int = 0,
    ) -> None:
        self.storage = storage
        self.fmt = fmt
        self.files = list(files)
        self.sizes = None if sizes is None else np.asarray(sizes, dtype=np.int64)
        self.read_threads = max(1, int(read_threads))
        self.in_flight = max(int(prefetch_size), self.read_threads)
        self.keep_samples = keep_samples
        self.preprocess_s = None if preprocess_s is None or getattr(preprocess_s, "is_zero", False) else preprocess_s
        self._seed = seed
        self._pool = _BufferPool()

    # -- one epoch -------------------------------------------------------------------------------
    def epoch(self, plan: Any, *, max_steps: int | None = None) -> Iterator[Batch]:
        """Yield the plan's batches in step order, reading ahead on ``read_threads`` threads."""
        steps = plan.steps if max_steps is None else min(plan.steps, max_steps)
        if steps <= 0:
            return
        state = _EpochState(steps, self.in_flight)
        threads = [
            threading.Thread(target=self._worker, args=(plan, state, t), name=f"dl-driver-reader-{t}", daemon=True)
            for t in range(min(self.read_threads, steps))
        ]
        for t in threads:
            t.start()
        try:
            for step in range(steps):
                batch = state.take(step)
                yield batch
        finally:
            state.stop()
            for t in threads:
                t.join()

    def _worker(self, plan: Any, state: "_EpochState", index: int) -> None:
        rng = np.random.default_rng([self._seed, index])
        scratch = np.empty(0, dtype=np.uint8)
        while True:
            step = state.next_step()
            if step is None:
                return
            try:
                files, samples = plan.batch(step)
                batch, scratch = self._read_batch(step, files, samples, scratch, rng)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                state.fail(exc)
                return
            state.put(step, batch)

    def _read_batch(self, step, files, samples, scratch, rng):
        storage, fmt, paths, sizes = self.storage, self.fmt, self.files, self.sizes
        keep = self.keep_samples
        perf = time.perf_counter
        io_s = decode_s = 0.0
        nbytes = sample_bytes = 0
        views: list[np.ndarray] | None = [] if keep else None
        owned: list[np.ndarray] = []
        cached_file = -1
        x = None
        for f, s in zip(files.tolist(), samples.tolist()):
            if f != cached_file:  # a batch reads each file it touches once
                path = paths[f]
                size = int(sizes[f]) if sizes is not None else storage.size(path)
                if keep:
                    buf = self._pool.get(size)
                    owned.append(buf)
                else:
                    if scratch.nbytes < size:
                        scratch = np.empty(_round_up(size), dtype=np.uint8)
                    buf = scratch
                t0 = perf()
                try:
                    n = storage.read_into(path, buf[:size])
                except OSError as exc:
                    raise ReadError(f"cannot read {path}: {exc.strerror or exc}") from exc
                t1 = perf()
                if n != size:
                    raise ReadError(f"{path}: read {n} bytes, expected {size} (file changed or truncated?)")
                x = fmt.parse(buf[:size], path)
                io_s += t1 - t0
                decode_s += perf() - t1
                nbytes += n
                cached_file = f
            sample = x[..., s]
            sample_bytes += sample.nbytes
            if keep:
                views.append(sample)
        if self.preprocess_s is not None:
            t0 = perf()
            for d in np.atleast_1d(self.preprocess_s.sample(rng, len(files))):
                time.sleep(float(d))
            decode_s += perf() - t0
        batch = Batch(step, len(files), nbytes, sample_bytes, io_s, decode_s, views)
        if keep:
            batch._release = lambda: self._pool.put(owned)
        return batch, scratch


class _EpochState:
    """Step hand-out and in-order delivery between reader threads and the consumer."""

    def __init__(self, steps: int, in_flight: int) -> None:
        self.steps = steps
        self.in_flight = in_flight
        self.cond = threading.Condition()
        self.next = 0
        self.consumed = 0
        self.ready: dict[int, Batch] = {}
        self.error: BaseException | None = None
        self.stopped = False

    def next_step(self) -> int | None:
        with self.cond:
            while not self.stopped and self.next < self.steps and self.next >= self.consumed + self.in_flight:
                self.cond.wait()
            if self.stopped or self.next >= self.steps:
                return None
            step = self.next
            self.next += 1
            return step

    def put(self, step: int, batch: Batch) -> None:
        with self.cond:
            self.ready[step] = batch
            self.cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            if self.error is None:
                self.error = exc
            self.cond.notify_all()

    def take(self, step: int) -> Batch:
        with self.cond:
            while step not in self.ready and self.error is None:
                self.cond.wait()
            if step not in self.ready:
                raise self.error  # type: ignore[misc]
            batch = self.ready.pop(step)
            self.consumed = step + 1
            self.cond.notify_all()
            return batch

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            for batch in self.ready.values():
                batch.release()
            self.ready.clear()
            self.cond.notify_all()
