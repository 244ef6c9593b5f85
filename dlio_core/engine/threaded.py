"""The threaded read path: Python reader threads build whole batches, the consumer yields them in
step order. Used for everything the pooled path (``pooled.py``) does not take: object stores, ranged
formats, large files, ``preprocess_time``.

``read_threads`` threads each build whole batches (as DataLoader workers do in DLIO's PyTorch path),
so the number of steps never depends on the thread count. Steps are claimed in plan order and handed
over by step number (see ``steps.py``). At most ``in_flight = max(prefetch_size, read_threads)``
batches are read ahead of the consumer; a reader at that bound sleeps until the consumer moves on.

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
from typing import Any, Iterator

import numpy as np

from .batch import Batch
from .buffers import ScratchShelf
from .read_path import BatchReader, ReadInputs, batch_size_of
from .steps import _STOP, _EpochState, _Failed


def _nothing_to_reserve(scratch: Any, batch_size: int) -> None:
    """The ``reserve`` of a ``BatchReader`` that has none."""


class ThreadedPath:
    """The ``ReadPath`` of Python reader threads, each building whole batches with ``reader``.

    Example (any ``BatchReader`` will do; the engine's are ``WholeFileBatches`` and ``RangedBatches``):
        >>> from dlio_core.sampling import EpochPlan
        >>> from dlio_core.storage import open_storage
        >>> class Counts:
        ...     def read(self, step, files, samples, scratch, rng):
        ...         return Batch(step, len(files))
        >>> inputs = ReadInputs.build(open_storage("direct:///tmp"), None, ["a", "b", "c", "d"], read_threads=2)
        >>> path = ThreadedPath(inputs, Counts(), ScratchShelf(None, enabled=False))
        >>> [(b.step, b.num_samples) for b in path.epoch(EpochPlan(num_files=4, samples_per_file=1, batch_size=2), 2)]
        [(0, 2), (1, 2)]
    """

    name = "threaded"

    def __init__(self, inputs: ReadInputs, reader: BatchReader, scratches: ScratchShelf) -> None:
        self.read_threads = inputs.read_threads
        self.in_flight = inputs.in_flight
        self.seed = inputs.seed
        self.read_batch = reader.read
        # Optional: a reader without scratch buffers (a plugin's, a test's) need not size any.
        self.reserve = getattr(reader, "reserve", _nothing_to_reserve)
        self.scratches = scratches

    def epoch(self, plan: Any, steps: int) -> Iterator[Batch]:
        """Yield the plan's first ``steps`` batches in step order, reading ahead on reader threads.

        A step the consumer asks for that no thread has claimed yet is read by the consumer itself
        (it would be blocked anyway). Closing the generator early (or an error) stops and joins the
        threads and returns the buffers of batches read ahead but never consumed.
        """
        nthreads = min(self.read_threads, steps)
        batch_size = batch_size_of(plan)
        state = _EpochState(steps, self.in_flight)
        threads = [
            threading.Thread(target=self._worker, args=(plan, state, t, batch_size), name=f"dl-driver-reader-{t}",
                             daemon=True)
            for t in range(nthreads)
        ]
        for t in threads:
            t.start()
        lock, ready, handoff, wake = state.lock, state.ready, state.handoff, state.wake
        own: list = []  # the consumer's scratch and rng, for the steps it reads itself
        try:
            if self.scratches.enabled:  # sized now, while the threads size theirs: before the first step
                own += [self.scratches.take(), np.random.default_rng([self.seed, nthreads])]
                self._reserve(own[0], batch_size)
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
                            own += [self.scratches.take(), np.random.default_rng([self.seed, nthreads])]
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
            if own:
                self.scratches.give(own[0])

    def _build(self, plan: Any, step: int, scratch: Any, rng: np.random.Generator) -> Any:
        """Step ``step``'s batch, or a ``_Failed`` carrying what building it raised."""
        try:
            files, samples = plan.batch(step)
            return self.read_batch(step, files, samples, scratch, rng)
        except BaseException as exc:  # handed to the consumer, which re-raises it in step order
            return _Failed(exc)

    def _reserve(self, scratch: Any, batch_size: int) -> None:
        """Size and fault in a scratch set before the epoch's first step; best effort: a failure here
        (no memory) comes back from the read that needs the buffer, as a step's error."""
        try:
            self.reserve(scratch, batch_size)
        except (MemoryError, OSError):
            pass

    def _worker(self, plan: Any, state: _EpochState, index: int, batch_size: int) -> None:
        lock, ready, handoff, wake = state.lock, state.ready, state.handoff, state.wake
        steps, in_flight = state.steps, state.in_flight
        rng = np.random.default_rng([self.seed, index])
        scratch = self.scratches.take()
        try:
            self._reserve(scratch, batch_size)
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
            self.scratches.give(scratch)
