"""The framework-free batch reader ("native" loader).

``read_threads`` threads each build whole batches (as DataLoader workers do in DLIO's PyTorch path),
so the number of steps never depends on the thread count. Steps are claimed one at a time, in plan
order, from a shared counter under a lock, and built batches are handed over by step number, so the
consumer yields them in plan order whoever built them. At most ``max(prefetch_size, read_threads)``
batches are read ahead of the consumer: step ``k`` may be claimed only once the consumer has taken
step ``k - in_flight``; a reader at that bound sleeps until the consumer moves on.

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

Each file of a whole-file format (npz, npy) is read whole, once per batch that touches it, into a
reused buffer: the thread's own scratch buffer for that file size (kept across epochs), or a pooled
one when the consumer keeps the samples. Plain local files are read by the engine itself with
``os.open`` + ``os.preadv`` + ``os.close`` (the size comes from the manifest: no ``stat``); any other
storage through ``storage.read_into``. Every file is still parsed and validated (a real loader decodes
what it reads); with reused buffers the format's per-thread ``parser()`` re-checks the header bytes
and hands back the view it built last time instead of building a new array. Bytes actually read,
I/O seconds and decode seconds are summed per batch; nothing is formatted or logged per sample.
Read errors surface in the consumer as ``ReadError`` naming the file, corrupt files as the format's
``FormatError`` naming the file, in step order, after which the threads are stopped.

Where the time goes, and why, is in ``benchmarks/RESULTS.md``.

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

import os
import threading
import time
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any, Callable, Iterator, Sequence

import numpy as np

__all__ = ["Batch", "NativeLoader", "ReadError"]


class ReadError(RuntimeError):
    """A sample could not be read or decoded; the message names the file."""


@dataclass
class Batch:
    """One step's data as the runner sees it.

    ``io_s`` and ``decode_s`` are summed over the batch's samples (thread time, not wall time);
    ``bytes_read`` counts what storage actually returned, so whole-file reads of multi-sample files
    show up as amplification against ``sample_bytes``. ``h2d_s`` is the host-to-device copy, set by
    plugin loaders that make one (``None``: no copy, never a made-up 0); plugins subclass this class.
    """

    step: int
    num_samples: int
    bytes_read: int = 0
    sample_bytes: int = 0
    io_s: float = 0.0
    decode_s: float = 0.0
    samples: list[np.ndarray] | None = None
    h2d_s: float | None = None
    _release: Any = field(default=None, repr=False)

    def release(self) -> None:
        """Give the batch's buffers back to the loader (called by the consumer when done)."""
        if self._release is not None:
            self._release()
            self._release = None


class _BufferPool:
    """Reusable uint8 buffers; ``get`` returns one of at least ``nbytes``."""

    def __init__(self, allocator: Callable[[int], np.ndarray] | None = None) -> None:
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._allocate = allocator or (lambda n: np.empty(n, dtype=np.uint8))

    def get(self, nbytes: int) -> np.ndarray:
        with self._lock:
            for i, buf in enumerate(self._free):
                if buf.nbytes >= nbytes:
                    return self._free.pop(i)
        return self._allocate(_round_up(nbytes))

    def put(self, bufs: Sequence[np.ndarray]) -> None:
        with self._lock:
            self._free.extend(bufs)


def _local_storage_class() -> type:
    from dlio_core.storage.local import LocalStorage

    return LocalStorage


# A batch of files up to this many bytes in all is read back to back into one scratch array, then
# parsed (see NativeLoader._read_batch); above it, one file at a time into one buffer.
BURST_MAX_BYTES = 4 << 20
# What the direct local read does in one os.preadv call; larger files go through storage.read_into.
_O_RDONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_DIRECT_MAX = 0x7FFFF000 if hasattr(os, "preadv") else -1


def _round_up(n: int, align: int = 4096) -> int:
    return max(align, (n + align - 1) // align * align)


class _Scratch:
    """One reader thread's reused buffers (when the consumer does not keep samples) and parser.

    Two backing arrays, each only ever grown: ``batch`` holds a whole batch of small files side by
    side (read back to back, then parsed: see ``_read_batch``), ``single`` one large file at a time.
    A view (in a one-element list, as ``os.preadv`` takes it) is cached per place and size, so files
    of the same size land in the same memory (no allocation, no page faults after the first) and the
    parser recognises the buffer. Growing drops the old views and the parser's references to them.
    """

    __slots__ = ("fmt", "batch", "single", "views", "sets", "parse")
    _MAX_VIEWS = 4096

    def __init__(self, fmt: Any) -> None:
        self.fmt = fmt
        self.batch = np.empty(0, dtype=np.uint8)
        self.single = np.empty(0, dtype=np.uint8)
        self.views: dict[tuple[int, int], list[memoryview]] = {}  # (offset, size); offset -1: single
        self.sets: dict[tuple[int, ...], list[list[memoryview]]] = {}  # a batch's sizes -> its views
        self.parse = self._new_parser()

    def _new_parser(self) -> Any:
        make = getattr(self.fmt, "parser", None)
        return make() if make is not None else self.fmt.parse

    def _reset(self) -> None:
        self.views = {}
        self.sets = {}
        self.parse = self._new_parser()

    def batch_views(self, sizes: list[int]) -> list[list[memoryview]]:
        """Side-by-side views for one batch's files (offsets 64-byte aligned); the same list for the
        same sizes (most datasets have one size: one entry)."""
        key = tuple(sizes)
        out = self.sets.get(key)
        if out is not None:
            return out
        offsets, end = [], 0
        for size in sizes:
            offsets.append(end)
            end += (size + 63) & ~63
        if end > self.batch.nbytes:
            self.batch = np.empty(_round_up(end), dtype=np.uint8)
            self._reset()
        elif len(self.views) >= self._MAX_VIEWS or len(self.sets) >= self._MAX_VIEWS:
            self._reset()
        views = self.views
        out = []
        for off, size in zip(offsets, sizes):
            v = views.get((off, size))
            if v is None:
                v = views[(off, size)] = [memoryview(self.batch)[off:off + size]]
            out.append(v)
        self.sets[key] = out
        return out

    def single_view(self, size: int) -> list[memoryview]:
        """A view for one large file (key offset -1)."""
        v = self.views.get((-1, size))
        if v is None:
            if size > self.single.nbytes:
                self.single = np.empty(_round_up(size), dtype=np.uint8)
                self._reset()
            elif len(self.views) >= self._MAX_VIEWS:
                self._reset()
            v = self.views[(-1, size)] = [memoryview(self.single)[:size]]
        return v


class _Failed:
    """What a reader thread hands over instead of a batch when building it raised."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_STOP = object()  # a wake-up that tells a reader thread to stop


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

    def _read_batch(self, step: int, files: np.ndarray, samples: np.ndarray, scratch: _Scratch | None,
                    rng: np.random.Generator) -> Batch:
        """Whole-file formats: each run of a batch's samples in one file is one whole-file read.

        A batch's files are read back to back (one tight loop of system calls), then parsed; the
        reader thus holds the GIL in one block per batch rather than between every two system
        calls, which is what lets two reader threads share it (with short Python spells between
        system calls, each thread's return from a call finds the GIL taken by the other thread, and
        sleeps). Batches bigger than ``BURST_MAX_BYTES`` without ``keep_samples`` are read one
        file at a time into one scratch buffer instead: their copies dwarf the Python.
        """
        fl = files.tolist()
        paths, sizes, storage = self.files, self._size_list, self.storage
        reads: list[int] = []  # file of each read
        which: list[int] = []  # read of each sample
        last = -1
        for f in fl:
            if f != last:
                reads.append(f)
                last = f
            which.append(len(reads) - 1)
        rsizes = [sizes[f] for f in reads] if sizes is not None else [storage.size(paths[f]) for f in reads]
        keep = scratch is None
        if keep:
            get_buffer = self._pool.get
            owned = [get_buffer(n) for n in rsizes]
            bufs = [[memoryview(b)[:n]] for b, n in zip(owned, rsizes)]
            parse = self.fmt.parse
        elif sum(rsizes) <= BURST_MAX_BYTES:
            bufs = scratch.batch_views(rsizes)
            parse = scratch.parse
        else:
            return self._read_batch_large(step, fl, samples.tolist(), reads, which, rsizes, scratch, rng)
        perf = time.perf_counter
        t0 = perf()
        got = self._read_files([paths[f] for f in reads], bufs, rsizes)
        t1 = perf()
        arrays = []
        nbytes = 0
        for f, n, size, b in zip(reads, got, rsizes, bufs):
            if n != size:
                raise ReadError(f"{paths[f]}: read {n} bytes, expected {size} (file changed or truncated?)")
            arrays.append(parse(b[0], paths[f]))
            nbytes += n
        t2 = perf()
        sample_bytes = 0
        views: list[np.ndarray] | None = [] if keep else None
        prev = None
        per_file = each = 0
        for s, r in zip(samples.tolist(), which):
            x = arrays[r]
            if x is not prev:
                prev = x
                per_file = x.shape[-1] if x.ndim else 0
                each = x.nbytes // per_file if per_file else 0
            if not 0 <= s < per_file:
                raise ReadError(f"{paths[reads[r]]}: sample {s} asked for, but the file holds {per_file} "
                                "(dataset.num_samples_per_file does not match the files?)")
            sample_bytes += each
            if keep:
                views.append(x[..., s])
        decode_s = t2 - t1
        if self.preprocess_s is not None:
            decode_s += self._preprocess(len(fl), rng)
        batch = Batch(step, len(fl), nbytes, sample_bytes, t1 - t0, decode_s, views)
        if keep:
            batch._release = lambda: self._pool.put(owned)
        return batch

    def _read_files(self, paths: list[str], bufs: list[list[memoryview]], sizes: list[int]) -> list[int]:
        """Read each whole file into its buffer, back to back; bytes read per file."""
        got: list[int] = []
        path = ""
        try:
            if self._direct and max(sizes) <= _DIRECT_MAX:
                os_open, os_preadv, os_close, flags = os.open, os.preadv, os.close, _O_RDONLY
                for path, b in zip(paths, bufs):  # the tight loop: system calls, next to no Python
                    fd = os_open(path, flags)
                    try:
                        got.append(os_preadv(fd, b, 0))
                    finally:
                        os_close(fd)
                for i, (n, size) in enumerate(zip(got, sizes)):
                    if n != size and n:  # a short read (signals, odd file systems): finish it
                        path = paths[i]
                        got[i] = n + self.storage.read_into(path, bufs[i][0][n:], n)
            else:
                read_into = self.storage.read_into
                for path, b in zip(paths, bufs):
                    got.append(read_into(path, b[0]))
        except OSError as exc:
            raise ReadError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return got

    def _read_batch_large(self, step: int, fl: list[int], sl: list[int], reads: list[int], which: list[int],
                          rsizes: list[int], scratch: _Scratch, rng: np.random.Generator) -> Batch:
        """Large files without kept samples: one at a time through one reused scratch buffer."""
        paths = self.files
        perf = time.perf_counter
        io_s = decode_s = 0.0
        nbytes = sample_bytes = 0
        figures = []
        for f, size in zip(reads, rsizes):
            b = scratch.single_view(size)
            t0 = perf()
            (n,) = self._read_files([paths[f]], [b], [size])
            t1 = perf()
            if n != size:
                raise ReadError(f"{paths[f]}: read {n} bytes, expected {size} (file changed or truncated?)")
            x = scratch.parse(b[0], paths[f])
            decode_s += perf() - t1
            io_s += t1 - t0
            nbytes += n
            per_file = x.shape[-1] if x.ndim else 0
            figures.append((per_file, x.nbytes // per_file if per_file else 0))
        for s, r in zip(sl, which):
            per_file, each = figures[r]
            if not 0 <= s < per_file:
                raise ReadError(f"{paths[reads[r]]}: sample {s} asked for, but the file holds {per_file} "
                                "(dataset.num_samples_per_file does not match the files?)")
            sample_bytes += each
        if self.preprocess_s is not None:
            decode_s += self._preprocess(len(fl), rng)
        return Batch(step, len(fl), nbytes, sample_bytes, io_s, decode_s, None)

    def _preprocess(self, n: int, rng: np.random.Generator) -> float:
        """DLIO's per-sample ``preprocess_time`` (a sleep), counted as decode time."""
        if self.preprocess_s is None:
            return 0.0
        t0 = time.perf_counter()
        for d in np.atleast_1d(self.preprocess_s.sample(rng, n)):
            time.sleep(float(d))
        return time.perf_counter() - t0

    def _read_batch_ranged(self, step, files, samples, rng) -> Batch:
        """Formats read by ranges (``whole_file = False``): one reader per file the batch touches.

        ``fmt.open_reader(storage, path, size)`` returns a reader whose ``read(indices, keep)`` returns
        ``(bytes_read, sample_bytes, samples_or_None, io_s, decode_s)`` for those samples of the file.
        """
        files_l, samples_l = files.tolist(), samples.tolist()
        groups: dict[int, list[int]] = {}
        for f, s in zip(files_l, samples_l):
            groups.setdefault(f, []).append(s)
        nbytes = sample_bytes = 0
        io_s = decode_s = 0.0
        by_file: dict[int, list[np.ndarray]] = {}
        for f, indices in groups.items():
            path = self.files[f]
            size = int(self.sizes[f]) if self.sizes is not None else self.storage.size(path)
            reader = self.fmt.open_reader(self.storage, path, size)
            try:
                n, sb, views, t_io, t_dec = reader.read(indices, self.keep_samples)
            except OSError as exc:
                raise ReadError(f"cannot read {path}: {exc.strerror or exc}") from exc
            finally:
                reader.close()
            nbytes += n
            sample_bytes += sb
            io_s += t_io
            decode_s += t_dec
            if views is not None:
                by_file[f] = list(views)
        decode_s += self._preprocess(len(files_l), rng)
        kept = None
        if self.keep_samples:  # back into batch order
            kept = [by_file[f].pop(0) for f in files_l]
        return Batch(step, len(files_l), nbytes, sample_bytes, io_s, decode_s, kept)


class _EpochState:
    """Hand-over between one epoch's reader threads and its consumer, guarded by ``lock``.

    Steps are claimed in order (``next`` is the next unclaimed one) by reader threads and, when it
    would otherwise wait, by the consumer. ``taken`` is how many steps the consumer has taken (or
    claimed for itself); a reader may claim step ``k`` only while ``k < taken + in_flight``. Built
    batches (or ``_Failed``) land in ``ready`` by step. The consumer blocked on step ``want`` sleeps on
    ``handoff``, which the thread that builds that step signals; readers at the bound (``idle`` of
    them) sleep on ``wake``. Both are C-level ``SimpleQueue``s: a sleeper waits in the kernel without
    the GIL.
    """

    __slots__ = ("lock", "steps", "in_flight", "next", "taken", "want", "idle", "ready", "handoff", "wake",
                 "stopped")

    def __init__(self, steps: int, in_flight: int) -> None:
        self.lock = threading.Lock()
        self.steps = steps
        self.in_flight = in_flight
        self.next = 0
        self.taken = 0
        self.want = -1
        self.idle = 0
        self.ready: dict[int, Any] = {}
        self.handoff: SimpleQueue = SimpleQueue()
        self.wake: SimpleQueue = SimpleQueue()
        self.stopped = False

    def grant(self) -> int:
        """(Under ``lock``.) How many sleeping readers to wake now that ``taken`` moved on."""
        n = min(self.idle, min(self.steps, self.taken + self.in_flight) - self.next)
        if n <= 0:
            return 0
        self.idle -= n
        return n
