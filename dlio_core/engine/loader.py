"""NativeLoader: reads an epoch plan's batches on reader threads and yields them in step order.

The loader turns its arguments into one :class:`~dlio_core.engine.read_path.ReadInputs` and builds
its read paths from it once; each epoch takes one of them (:meth:`NativeLoader.read_path`):

- ``pooled.PooledPath`` for small local whole-file batches (npz, npy) when the C extension is built:
  native reader threads, the consumer parsing (see ``pooled.py``);
- ``threaded.ThreadedPath`` for everything else (object stores, ranged formats, large files,
  ``preprocess_time``): Python reader threads building whole batches with
  ``whole_file.WholeFileBatches`` or ``ranged.RangedBatches`` (see ``threaded.py``).

Both keep at most ``max(prefetch_size, read_threads)`` batches read ahead of the consumer, report the
same figures and raise ``ReadError`` / the format's ``FormatError`` naming the file, in step order.

The loader owns the memory its reads land in (``buffers.py``): scratch sets and pooled buffers are
sized and faulted in when an epoch starts, before its first step, and reused by every later epoch;
``close`` lets them go.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import pooled
from .batch import Batch
from .buffers import ScratchShelf, _BufferPool
from .pooled import PooledPath
from .ranged import RangedBatches
from .read_path import ReadInputs, ReadPath, batch_size_of
from .threaded import ThreadedPath
from .whole_file import WholeFileBatches

__all__ = ["NativeLoader"]


class NativeLoader:
    """Reads the batches of an :class:`~dlio_core.sampling.EpochPlan` with a thread pool.

    ``files`` are the paths (as the storage takes them) indexed by the plan's file indices;
    ``sizes`` (optional) are their sizes in bytes, which spares a ``stat`` per read.
    With ``keep_samples`` the batches carry the decoded sample views (valid until
    ``Batch.release()``), read into buffers from ``allocator(nbytes)`` (a uint8 array; e.g. pinned
    host memory from torch or CuPy, so the read is the only host copy); without it buffers are reused
    at once and only the figures are kept.

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
        inputs = ReadInputs.build(storage, fmt, files, sizes=sizes, read_threads=read_threads,
                                  prefetch_size=prefetch_size, keep_samples=keep_samples,
                                  preprocess_s=preprocess_s, seed=seed)
        self.inputs = inputs
        # The settings as callers read them (plugins check ``fmt``; messages name ``files``): copies of
        # ``inputs``, which is what the read paths read. ``files`` are as the engine opens them
        # (absolute OS paths for plain local storage).
        self.storage, self.fmt, self.files, self.sizes = storage, fmt, inputs.paths, inputs.sizes
        self.read_threads, self.in_flight = inputs.read_threads, inputs.in_flight
        self.keep_samples, self.preprocess_s = inputs.keep_samples, inputs.preprocess_s
        # Kept buffers are pooled across batches and epochs; scratch sets (whole-file formats, samples
        # not kept) wait on the shelf between epochs, so a file size seen before costs no allocation.
        self._pool = _BufferPool(allocator)
        self.closed = False
        self._scratches = ScratchShelf(fmt, enabled=inputs.whole_file and not inputs.keep_samples)
        if inputs.whole_file:
            reads = WholeFileBatches(inputs, self._pool)
            self._threaded: ReadPath = ThreadedPath(inputs, reads, self._scratches)
            self._pooled: ReadPath | None = PooledPath(inputs, reads, self._scratches, self._pool)
        else:
            self._threaded = ThreadedPath(inputs, RangedBatches(inputs), self._scratches)
            self._pooled = None

    def close(self) -> None:
        """Let go of the memory kept between epochs: the scratch sets and the pooled buffers (those of
        batches not yet released go when they are). A closed loader reads no more epochs.

        Example:
            >>> import tempfile
            >>> from dlio_core.formats import get_format
            >>> from dlio_core.storage import open_storage
            >>> with NativeLoader(open_storage(tempfile.mkdtemp()), get_format("npy"), []) as loader:
            ...     pass
            >>> loader.closed
            True
        """
        self.closed = True
        self._scratches.close()
        self._pool.close()

    def __enter__(self) -> "NativeLoader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def read_path(self, batch_size: int) -> ReadPath:
        """The read path an epoch of ``batch_size``-sample steps takes: pooled when ``pooled.can_pool``
        says so (small local whole-file batches, C extension built), else threaded."""
        if self._pooled is not None and pooled.can_pool(self.inputs, batch_size):
            return self._pooled
        return self._threaded

    def epoch(self, plan: Any, *, max_steps: int | None = None) -> Iterator[Batch]:
        """The plan's batches (the first ``max_steps``) in step order, read ahead on ``read_threads``
        threads by the read path this epoch takes.

        Closing the generator early (or an error) stops and joins the threads and returns the buffers
        of batches read ahead but never consumed.
        """
        if self.closed:
            raise ValueError("NativeLoader.epoch on a closed loader")
        steps = plan.steps if max_steps is None else min(plan.steps, max_steps)
        if steps <= 0:
            return _no_batches()
        # The read path's own generator, returned as is: no extra frame per batch.
        return self.read_path(batch_size_of(plan)).epoch(plan, steps)


def _no_batches() -> Iterator[Batch]:
    """An epoch of no steps: still a generator, so callers may ``close()`` it."""
    yield from ()
