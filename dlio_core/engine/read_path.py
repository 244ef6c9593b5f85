"""What a read path is, and what it is given: the :class:`ReadPath` and :class:`BatchReader` protocols
and :class:`ReadInputs`, the one frozen record of the loader's settings every read path reads from.

:class:`~dlio_core.engine.NativeLoader` builds one ``ReadInputs`` and its read paths from it at
construction, then picks one per epoch (``NativeLoader.read_path``):

- ``threaded.ThreadedPath``: Python reader threads each build whole batches with a ``BatchReader``
  (``whole_file.WholeFileBatches`` or ``ranged.RangedBatches``), the consumer reading unclaimed steps
  itself;
- ``pooled.PooledPath``: native reader threads read small local whole-file batches, the consumer plans
  and parses them.
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from .batch import Batch
from .paths import engine_paths

__all__ = ["BatchReader", "ReadInputs", "ReadPath", "batch_size_of"]


@runtime_checkable
class ReadPath(Protocol):
    """One way of reading an epoch's batches, chosen per epoch by ``NativeLoader.read_path``.

    ``name`` says which ("threaded", "pooled"); ``epoch(plan, steps)`` yields the plan's first
    ``steps`` batches in step order (``steps >= 1``) and, closed early or failing, stops its threads
    and gives back the buffers of batches it read ahead.

    Example:
        >>> import numpy as np, tempfile
        >>> from dlio_core.engine import NativeLoader
        >>> from dlio_core.formats import get_format
        >>> from dlio_core.sampling import EpochPlan
        >>> from dlio_core.storage import open_storage
        >>> st, fmt = open_storage(tempfile.mkdtemp()), get_format("npy")
        >>> sizes = [fmt.write_file(st, f"f{i}.npy", np.zeros((4, 1), np.uint8)) for i in range(2)]
        >>> loader = NativeLoader(st, fmt, ["f0.npy", "f1.npy"], sizes=sizes)
        >>> path = loader.read_path(batch_size=1)
        >>> plan = EpochPlan(num_files=2, samples_per_file=1, batch_size=1)
        >>> [b.step for b in path.epoch(plan, 2)]
        [0, 1]
    """

    name: str

    def epoch(self, plan: Any, steps: int) -> Iterator[Batch]: ...


class BatchReader(Protocol):
    """Builds one step's :class:`Batch` on the calling thread: what a threaded reader thread runs.

    ``read(step, files, samples, scratch, rng)`` reads sample ``samples[i]`` of file ``files[i]`` for
    every ``i`` (the plan's arrays for ``step``) into ``scratch`` (a thread's ``buffers._Scratch``,
    or None: pooled buffers, or a ranged format's own) and spends ``preprocess_time`` drawn from ``rng``.
    A reader may also offer ``reserve(scratch, batch_size)``, which each thread calls before its first
    step to size and fault in ``scratch`` for an epoch of ``batch_size``-sample steps (the engine's
    ``WholeFileBatches`` does; a reader without it has nothing to size).
    """

    def read(self, step: int, files: np.ndarray, samples: np.ndarray, scratch: Any,
             rng: np.random.Generator) -> Batch: ...


def batch_size_of(plan: Any) -> int:
    """A plan's samples per step: ``plan.batch_size``, or (for plan-like views that lack it) the first
    step's length.

    Example:
        >>> from dlio_core.sampling import EpochPlan
        >>> batch_size_of(EpochPlan(num_files=8, samples_per_file=1, batch_size=4))
        4
    """
    size = getattr(plan, "batch_size", None)
    return int(size) if size is not None else int(len(plan.batch(0)[0]))


@dataclass(frozen=True, eq=False)
class ReadInputs:
    """Everything a read path reads from, fixed for the loader's life (see ``NativeLoader``).

    ``paths`` are the files as the read paths open them: OS paths when ``plain_local_files``, else as
    the storage takes them. ``plain_local_files`` is True when the storage gives its files' OS paths
    (``Storage.local_path``: plain file I/O on them is exactly what the storage does, as for
    ``LocalStorage``); the engine then opens and reads them itself (``os.open``/``os.preadv`` or the C
    extension). Every other storage (object stores; ``direct://``, whose reads must bypass the page
    cache) is read through ``storage.read_into``. ``sizes`` (bytes per file, or None: ask
    ``storage.size``) comes as an array and as ``size_list``, an ``array('q')`` of the same 8 bytes a
    file whose items are Python ints, for per-file lookups on the hot path. ``paths`` is a list up to
    ``paths.EAGER_PATHS_MAX`` files, else made per batch (``paths.LazyPaths``): per-rank memory at many
    files stays the file table's arrays.

    Example:
        >>> import tempfile
        >>> from dlio_core.formats import get_format
        >>> from dlio_core.storage import open_storage
        >>> st = open_storage(tempfile.mkdtemp())
        >>> inputs = ReadInputs.build(st, get_format("npy"), ["a.npy"], sizes=[128])
        >>> inputs.plain_local_files, inputs.paths[0].startswith("/"), inputs.size_list[0]
        (True, True, 128)
    """

    storage: Any
    fmt: Any
    paths: Sequence[str]  # a list, or paths.LazyPaths (many files)
    sizes: np.ndarray | None
    size_list: Sequence[int] | None  # array('q'): items are Python ints
    plain_local_files: bool
    whole_file: bool  # the format reads whole files (npz, npy); False: by ranges (fmt.open_reader)
    read_threads: int
    in_flight: int  # steps read ahead of the consumer at most: max(prefetch_size, read_threads)
    largest: int  # bytes of the largest file (0 when sizes are not known): what buffers are sized for
    keep_samples: bool
    preprocess_s: Any  # a TimeSpec drawn per sample, or None (no preprocess_time)
    seed: int

    @classmethod
    def build(cls, storage: Any, fmt: Any, files: Sequence[str], *, sizes: Sequence[int] | None = None,
              read_threads: int = 1, prefetch_size: int = 2, keep_samples: bool = False,
              preprocess_s: Any = None, seed: int = 0) -> "ReadInputs":
        """The inputs for ``NativeLoader``'s arguments of the same names (``files`` as storage takes them)."""
        paths, plain = engine_paths(storage, files)
        array = None if sizes is None else np.ascontiguousarray(sizes, dtype=np.int64).reshape(-1)
        threads = max(1, int(read_threads))
        if preprocess_s is not None and getattr(preprocess_s, "is_zero", False):
            preprocess_s = None
        largest = int(array.max()) if array is not None and array.size else 0
        return cls(storage, fmt, paths, array, None if array is None else _int_array(array), plain,
                   bool(getattr(fmt, "whole_file", True)), threads, max(int(prefetch_size), threads), largest,
                   bool(keep_samples), preprocess_s, seed)

    def preprocess(self, n: int, rng: np.random.Generator) -> float:
        """DLIO's per-sample ``preprocess_time`` for ``n`` samples (a sleep), counted as decode time."""
        if self.preprocess_s is None:
            return 0.0
        t0 = time.perf_counter()
        for d in np.atleast_1d(self.preprocess_s.sample(rng, n)):
            time.sleep(float(d))
        return time.perf_counter() - t0


def _int_array(sizes: np.ndarray) -> array:
    """``sizes`` as an ``array('q')``: a copy of the same 8 bytes a file, indexed as Python ints (a
    list of ints costs ~36 bytes a file, numpy scalars are slow to index)."""
    out = array("q")
    out.frombytes(memoryview(np.ascontiguousarray(sizes, "=i8")).cast("B"))  # no bytes copy in between
    return out
