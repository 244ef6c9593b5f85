"""NativeLoader: one epoch's reader threads and the consumer that yields their batches in step order.

Small local whole-file batches (npz, npy) take the pooled path instead when the C extension is built:
native reader threads, the consumer parsing (see ``pooled.py``). What follows is the threaded path,
used for everything else (object stores, ranged formats, large files, ``preprocess_time``).

``read_threads`` threads each build whole batches (as DataLoader workers do in DLIO's PyTorch path),
so the number of steps never depends on the thread count. Steps are claimed in plan order and handed
over by step number (see ``steps.py``). At most ``max(prefetch_size, read_threads)`` batches are read
ahead of the consumer; a reader at that bound sleeps until the consumer moves on.

The consumer takes part in reading. When it asks for step ``k`` and ``k`` is not ready:

- if no reader thread has claimed ``k`` yet, the consumer claims it and reads it inline (it would be
  blocked anyway, and this spares the two cross-thread wake-ups a hand-off costs: ~50 us each on a
  2-vCPU VM with idle vCPUs, more than a small batch's own work);
- if a thread has claimed it, the consumer waits for that thread, as it always did.

So a run's ``wait`` (the runner's time blocked in ``next()``) includes the consumer's own reading
time when it read a step itself. That is still time the training loop was blocked on data, so AU and
stall stay honest: the read simply happened on the training thread instead of being waited for. The
consumer uses its own scratch buffers (one more set than ``read_threads``) and its own random stream
for ``preprocess_time``. Sleepers (the consumer waiting for a step, readers at the bound) wait on
C-level ``SimpleQueue``s: in the kernel, without the GIL, no spinning, no Python-level condition
variable per batch.

Read errors surface in the consumer as ``ReadError`` naming the file, corrupt files as the format's
``FormatError`` naming the file, in step order, after which the threads are stopped.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import pooled, ranged, whole_file
from .batch import Batch
from .buffers import _BufferPool, _Scratch
from .steps import _STOP, _EpochState, _Failed
from .whole_file import _local_storage_class

__all__ = ["NativeLoader"]


class NativeLoader:
    """Reads the batches of an :class:`~dlio_core.sampling.EpochPlan` with a thread pool.

    ``files`` are the paths (as the storage takes them) indexed by the plan's file indices;
    ``sizes`` (optional) are their sizes in bytes, which spares a ``stat`` per read.
    With ``keep_samples`` the batches carry the decoded sample views (valid until
    ``Batch.release()``); without it buffers are reused at once and only the figures are kept.

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
        allocator: Callable[[int], np.ndarray] | None = None,
    ) -> None:
        self.storage = storage
        self.fmt = fmt
        self.files = list(files)
        # Plain local files are read with os.open + os.preadv + os.close right here, not through
        # storage.read_into (a method call and buffer checks per file; 5-8% of a 4 KiB file's cost).
        # Exactly LocalStorage: subclasses (DirectStorage's O_DIRECT) keep their own read_into.
        self._direct = type(storage) is _local_storage_class()
        if self._direct:
            self.files = [storage.path(p) for p in self.files]  # absolute OS paths (also in messages)
        self.sizes = None if sizes is None else np.asarray(sizes, dtype=np.int64)
        self._size_list: list[int] | None = None if self.sizes is None else self.sizes.tolist()
        self.read_threads = max(1, int(read_threads))
        self.in_flight = max(int(prefetch_size), self.read_threads)
        self.keep_samples = keep_samples
        self.preprocess_s = None if preprocess_s is None or getattr(preprocess_s, "is_zero", False) else preprocess_s
        self._seed = seed
        # With keep_samples, samples are read straight into pooled buffers from ``allocator(nbytes)``
        # (a uint8 array; e.g. pinned host memory from torch or CuPy), so the read is the only host copy.
        self._pool = _BufferPool(allocator)
        # Reader threads' scratch buffers, kept between epochs (a new epoch's threads take them back),
        # so a file size seen before costs no allocation and no page faults.
        self._scratches: list[_Scratch] = []
        self._scratch_lock = threading.Lock()

    # -- one epoch -------------------------------------------------------------------------------
    def epoch(self, plan: Any, *, max_steps: int | None = None) -> Iterator[Batch]:
        """Yield the plan's batches in step order, reading ahead on ``read_threads`` threads.

        A step the consumer asks for that no thread has claimed yet is read by the consumer itself
        (it would be blocked anyway). Closing the generator early (or an error) stops and joins the
        threads and returns the buffers of batches read ahead but never consumed.
        """
        steps = plan.steps if max_steps is None else min(plan.steps, max_steps)
        if steps <= 0:
            return
        if self._direct and self._can_pool(pooled.batch_size_of(plan)):  # small local files: see pooled.py
            yield from self._epoch_pooled(plan, steps)
            return
        nthreads = min(self.read_threads, steps)
        in_flight = self.in_flight
        state = _EpochState(steps, in_flight)
        threads = [
            threading.Thread(target=self._worker, args=(plan, state, t), name=f"dl-driver-reader-{t}",
                             daemon=True)
            for t in range(nthreads)
        ]
        for t in threads:
            t.start()
        lock, ready, handoff, wake = state.lock, state.ready, state.handoff, state.wake
        own: list = []  # the consumer's scratch and rng, made the first time it reads a step itself
        try:
            for step in range(steps):
                with lock:
                    item = ready.pop(step, None)
                    mine = item is None and state.next == step  # nobody has claimed it: read it here
                    if mine:
                        state.next = step + 1
                    elif item is None:
                        state.want = step
                    if item is not None or mine:
                        state.taken = step + 1  # the consumer has moved on: one more step may start
                        n = state.grant()
                    else:
                        n = 0
                for _ in range(n):
                    wake.put(None)
                if item is None:
                    if mine:
                        if not own:
                            own += [self._take_scratch(), np.random.default_rng([self._seed, nthreads])]
                        item = self._build(plan, step, own[0], own[1])
                    else:  # a reader thread is building it: wait for it
                        handoff.get()
                        with lock:
                            item = ready.pop(step)
                            state.taken = step + 1
                            n = state.grant()
                        for _ in range(n):
                            wake.put(None)
                if type(item) is _Failed:
                    raise item.exc
                yield item
        finally:
            with lock:
                state.stopped = True
            for _ in threads:
                wake.put(_STOP)
            for t in threads:
                t.join()
            for item in ready.values():  # batches read ahead and never consumed
                if type(item) is Batch:
                    item.release()
            ready.clear()
            if own and own[0] is not None:
                self._give_scratch(own[0])

    def _take_scratch(self) -> "_Scratch | None":
        if not getattr(self.fmt, "whole_file", True) or self.keep_samples:
            return None
        with self._scratch_lock:
            return self._scratches.pop() if self._scratches else _Scratch(self.fmt)

    def _give_scratch(self, scratch: "_Scratch | None") -> None:
        if scratch is not None:
            with self._scratch_lock:
                self._scratches.append(scratch)

    def _build(self, plan: Any, step: int, scratch: "_Scratch | None", rng: np.random.Generator) -> Any:
        """Step ``step``'s batch, or a ``_Failed`` carrying what building it raised."""
        try:
            files, samples = plan.batch(step)
            if getattr(self.fmt, "whole_file", True):
                return self._read_batch(step, files, samples, scratch, rng)
            return self._read_batch_ranged(step, files, samples, rng)
        except BaseException as exc:  # handed to the consumer, which re-raises it in step order
            return _Failed(exc)

    def _worker(self, plan: Any, state: "_EpochState", index: int) -> None:
        lock, ready, handoff, wake = state.lock, state.ready, state.handoff, state.wake
        steps, in_flight = state.steps, state.in_flight
        rng = np.random.default_rng([self._seed, index])
        scratch = self._take_scratch()
        try:
            while True:
                with lock:  # claim the next step, if the read-ahead bound allows it
                    if state.stopped:
                        return
                    step = state.next
                    if step >= steps:
                        return
                    if step < state.taken + in_flight:
                        state.next = step + 1
                    else:
                        state.idle += 1
                        step = -1
                if step < 0:  # at the bound: sleep until the consumer moves on
                    if wake.get() is _STOP:
                        return
                    continue
                item = self._build(plan, step, scratch, rng)
                with lock:
                    ready[step] = item
                    signal = state.want == step
                    if signal:
                        state.want = -1
                if signal:
                    handoff.put(None)
                if type(item) is _Failed:
                    return
        finally:
            self._give_scratch(scratch)

    def _preprocess(self, n: int, rng: np.random.Generator) -> float:
        """DLIO's per-sample ``preprocess_time`` (a sleep), counted as decode time."""
        if self.preprocess_s is None:
            return 0.0
        t0 = time.perf_counter()
        for d in np.atleast_1d(self.preprocess_s.sample(rng, n)):
            time.sleep(float(d))
        return time.perf_counter() - t0

    # The read paths live in whole_file.py and ranged.py; bound here as plain methods (no wrapper).
    _read_batch = whole_file.read_batch
    _prepare = whole_file.prepare
    _finish = whole_file.finish
    _read_files = whole_file.read_files
    _read_batch_large = whole_file.read_batch_large
    _read_batch_ranged = ranged.read_batch_ranged
    _can_pool = pooled.can_pool
    _epoch_pooled = pooled.epoch_pooled
