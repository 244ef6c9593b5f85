"""The framework-free batch reader ("native" loader).

:class:`NativeLoader` reads an :class:`~dlio_core.sampling.EpochPlan`'s batches on ``read_threads``
threads, the consumer reading a step itself when no thread has claimed it yet, and yields them in step
order as :class:`Batch` records. Where the time goes, and why, is in ``benchmarks/RESULTS.md``.

Import from here; the modules behind it hold one idea each:

- ``batch``: :class:`Batch` and :class:`ReadError`, what the consumer receives;
- ``buffers``: the buffer pool (kept samples) and each reader thread's reused scratch buffers;
- ``steps``: the claim/deliver state one epoch's reader threads and its consumer share;
- ``whole_file``: the read path of whole-file formats (npz, npy), including direct ``os.preadv`` reads;
- ``ranged``: the read path of formats read by ranges (``whole_file = False``);
- ``loader``: :class:`NativeLoader` itself (reader threads, the consumer loop, preprocess time).
"""

from __future__ import annotations

from .batch import Batch, ReadError
from .buffers import _BufferPool, _Scratch  # noqa: F401  (not public; kept importable from here)
from .loader import NativeLoader
from .whole_file import BURST_MAX_BYTES  # noqa: F401  (read by whole_file; patch it there)

__all__ = ["Batch", "NativeLoader", "ReadError"]
