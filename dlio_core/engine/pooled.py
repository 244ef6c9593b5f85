"""The pooled read path: native reader threads (``_cread.ReadPool``) read, the consumer plans and parses.

Used for local files of whole-file formats (npz, npy) when the C extension is built and a batch's
files are small (``batch_size`` x the largest file <= ``BURST_MAX_BYTES``): the case where Python
reader threads spend more on hand-offs than on reading. With Python threads, every batch passes the
GIL between threads and every sleeping thread costs a wake-up (~50 us on a VM whose vCPUs idle, more
than a 4 KiB file's read); a reader returning from a system call while another thread holds the GIL
sleeps too. Here the ``read_threads`` reader threads are native: they never take the GIL. The
consumer (the training loop's thread) does the Python part of each batch itself:

1. it plans steps up to ``in_flight`` ahead (``plan.batch``) and submits each step's file reads to
   the pool, into that step's buffers;
2. for the step it needs, it collects the reads (``wait``): done already, or run by the consumer
   itself at once if no thread has started them (it would only wait), or, if a thread is reading
   them, meanwhile the later steps' reads no thread has started (on 2 vCPUs a spinning consumer
   takes a CPU from the readers), then waited for (spinning briefly, then sleeping);
3. it parses and checks the files (``finish``, as the threaded path does) and yields the Batch.

Both the pool's idle threads and a consumer waiting on a running step spin for ``POOL_SPIN_US``
(yielding the CPU) before they sleep, the price of one wake-up.

The consumer reads too, so the pool has ``read_threads`` threads but never more than the CPUs this
process may run on, less one for the consumer (:func:`native_threads`): on 2 vCPUs, two native readers
and the consumer took turns on the CPUs, and many steps waited 50-200 us for a reader that had been put
aside (fresh runs of 1,024 steps of 4 x 4 KiB, ``read_threads: 2``: 50-149 such steps with two native
readers, 21-68 with one; benchmarks/RESULTS.md, session 6).

What a run reports is unchanged in meaning: ``io_s`` is the batch's read time (on whichever thread
read it), ``decode_s`` its parse time, and the runner's ``wait`` is the time ``next()`` blocked. The
read-ahead bound is the threaded path's: at most ``in_flight`` steps beyond the one being consumed
are submitted. Without ``keep_samples`` each of those ``in_flight + 1`` steps reads into a scratch set
of its own (reused every ``in_flight + 1`` steps); with it, into pooled buffers the batch keeps until
``release()``. Read errors surface as ``ReadError`` naming the file, in step order.

Its state lives in :class:`PooledPath`; ``can_pool`` says whether a loader's epoch takes it.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from . import whole_file
from .batch import Batch, ReadError
from .buffers import ScratchShelf, _BufferPool
from .read_path import ReadInputs, batch_size_of
from .steps import _Failed
from .whole_file import WholeFileBatches

# How long an idle reader thread, or a consumer waiting on a step being read, spins before sleeping.
POOL_SPIN_US = 50


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one, else every CPU)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def native_threads(read_threads: int, steps: int, cpus: int) -> int:
    """Native reader threads for an epoch of ``steps`` steps: ``read_threads``, but no more than the
    steps, and no more than ``cpus`` less one for the consumer, which reads too (at least one).

    Example:
        >>> native_threads(2, 1024, cpus=2), native_threads(8, 1024, cpus=16), native_threads(4, 3, cpus=16)
        (1, 8, 3)
        >>> native_threads(1, 1024, cpus=1), native_threads(0, 1024, cpus=8)
        (1, 0)
    """
    return min(read_threads, steps, max(1, cpus - 1))


def can_pool(inputs: ReadInputs, batch_size: int) -> bool:
    """Whether an epoch of ``batch_size``-sample steps over ``inputs`` takes the pooled path (see the
    module): plain local files of a whole-file format, sizes known, no ``preprocess_time``, the C
    extension built, and the batch small enough for scratch sets (or samples kept in pooled buffers, or
    a format whose parse reads lengths only: each step's files then share one buffer).

    Example:
        >>> from dlio_core.formats import get_format
        >>> from dlio_core.storage import open_storage
        >>> o_direct = open_storage("direct:///tmp")  # no plain OS reads: the threaded path
        >>> can_pool(ReadInputs.build(o_direct, get_format("npz"), ["a.npz"], sizes=[4096]), 4)
        False
    """
    if whole_file._cread is None or not inputs.plain_local_files or inputs.preprocess_s is not None:
        return False
    sizes = inputs.sizes
    if not inputs.whole_file or sizes is None or not sizes.size:
        return False
    largest = int(sizes.max())
    return largest <= whole_file._LOCAL_READ_MAX_BYTES and (
        inputs.keep_samples or largest * batch_size <= whole_file.BURST_MAX_BYTES
        or bool(getattr(inputs.fmt, "parse_reads_length_only", False)))  # then one buffer a step


class PooledPath:
    """The ``ReadPath`` of native reader threads (``_cread.ReadPool``): the consumer plans each step
    and submits its reads with ``reads.prepare``, then checks and parses them with ``reads.finish``.

    Example:
        >>> import numpy as np, tempfile
        >>> from dlio_core.formats import get_format
        >>> from dlio_core.sampling import EpochPlan
        >>> from dlio_core.storage import open_storage
        >>> st, fmt = open_storage(tempfile.mkdtemp()), get_format("npy")
        >>> sizes = [fmt.write_file(st, f"f{i}.npy", np.zeros((4, 1), np.uint8)) for i in range(4)]
        >>> inputs = ReadInputs.build(st, fmt, [f"f{i}.npy" for i in range(4)], sizes=sizes, read_threads=2)
        >>> pool = _BufferPool()
        >>> path = PooledPath(inputs, WholeFileBatches(inputs, pool), ScratchShelf(fmt, enabled=True), pool)
        >>> plan = EpochPlan(num_files=4, samples_per_file=1, batch_size=2)
        >>> [b.num_samples for b in path.epoch(plan, 2)] if can_pool(inputs, 2) else [2, 2]  # C extension built
        [2, 2]
    """

    name = "pooled"

    def __init__(self, inputs: ReadInputs, reads: WholeFileBatches, scratches: ScratchShelf,
                 pool: _BufferPool) -> None:
        self.read_threads = inputs.read_threads
        self.cpus = usable_cpus()
        self.in_flight = inputs.in_flight
        self.keep_samples = inputs.keep_samples
        self.reads = reads
        self.scratches = scratches
        self.pool = pool  # where kept samples' buffers go back when their batch is never yielded

    def epoch(self, plan: Any, steps: int) -> Iterator[Batch]:
        """Yield ``steps`` batches of ``plan`` in order, read by a ``ReadPool`` (see the module)."""
        in_flight = self.in_flight
        slots = in_flight + 1
        batch_size = batch_size_of(plan)
        scratches = [] if self.keep_samples else [self.scratches.take() for _ in range(slots)]
        pool = whole_file._cread.ReadPool(native_threads(self.read_threads, steps, self.cpus), spin_us=POOL_SPIN_US)
        prepare, finish, give_back = self.reads.prepare, self.reads.finish, self.pool.put
        submit, wait = pool.submit, pool.wait
        jobs: dict[int, Any] = {}  # step -> (ticket, prepared, samples), or _Failed
        batch_of = _Planner(plan, steps).batch
        slot_scratch = scratches or [None] * slots
        submitted = 0
        try:
            # Buffers sized and faulted in now, before the first step (reused by later epochs): no page
            # faults inside the measured steps. Kept samples: one set of buffers per step in flight.
            for scratch in scratches:
                self.reads.reserve(scratch, batch_size)
            if self.keep_samples:
                self.reads.reserve_pool(slots * batch_size)
            for step in range(steps):
                last = min(steps, step + in_flight + 1)
                while submitted < last:  # plan the step, give its reads buffers and queue them
                    try:
                        files, samples = batch_of(submitted)
                        prep = prepare(files, slot_scratch[submitted % slots])
                        jobs[submitted] = submit(prep.paths, prep.bufs), prep, samples
                    except BaseException as exc:  # raised when the consumer reaches the step
                        jobs[submitted] = _Failed(exc)
                    submitted += 1
                job = jobs.pop(step)
                if type(job) is _Failed:
                    raise job.exc
                ticket, prep, samples = job
                try:
                    got, io_s = wait(ticket)
                except OSError as exc:
                    if prep.owned is not None:
                        give_back(prep.owned)
                    raise ReadError.from_os_error(exc.filename, exc) from exc
                try:
                    batch = finish(step, samples, prep, got, io_s, None)
                except BaseException:
                    if prep.owned is not None:
                        give_back(prep.owned)
                    raise
                yield batch
        finally:
            pool.close()  # joins the threads: nothing is still being read into a buffer after this
            for job in jobs.values():  # submitted, never consumed
                if type(job) is not _Failed and job[1].owned is not None:
                    give_back(job[1].owned)
            for scratch in scratches:
                self.scratches.give(scratch)


class _Planner:
    """A plan's steps in order, ``(files, samples)`` as lists, computed a block of steps at a time when
    the plan offers ``batch_block`` (one vectorised pass instead of many tiny ones: for small batches
    most of the planning cost is numpy's per-call overhead)."""

    __slots__ = ("plan", "steps", "block", "first", "files", "samples")

    def __init__(self, plan: Any, steps: int) -> None:
        self.plan, self.steps = plan, steps
        self.block = max(1, min(PLAN_BLOCK_STEPS, PLAN_BLOCK_SAMPLES // max(1, batch_size_of(plan))))
        if getattr(plan, "batch_block", None) is None:
            self.block = 0
        self.first = 0
        self.files: list[list[int]] = []
        self.samples: list[list[int]] = []

    def batch(self, step: int) -> tuple[Any, Any]:
        if not self.block:
            return self.plan.batch(step)
        i = step - self.first
        if not 0 <= i < len(self.files):
            count = min(self.block, self.steps - step)
            files, samples = self.plan.batch_block(step, count)
            self.first, self.files, self.samples = step, files.tolist(), samples.tolist()
            i = 0
        return self.files[i], self.samples[i]


# Steps planned per batch_block call: at most this many, and at most this many samples in all.
PLAN_BLOCK_STEPS = 64
PLAN_BLOCK_SAMPLES = 8192

