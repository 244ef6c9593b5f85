"""The framework-free batch reader ("native" loader).

:class:`NativeLoader` reads an :class:`~dlio_core.sampling.EpochPlan`'s batches on ``read_threads``
threads and yields them in step order as :class:`Batch` records; a failed read raises
:class:`ReadError` naming the file. Where the time goes, and why, is in ``benchmarks/RESULTS.md``.

Import from here; the modules behind it hold one idea each:

- ``batch``: :class:`Batch` and :class:`ReadError`, what the consumer receives;
- ``read_path``: the :class:`ReadPath` and ``BatchReader`` protocols and ``ReadInputs``, the frozen
  settings every read path is built from;
- ``threaded``: the read path of Python reader threads (the consumer reads unclaimed steps itself);
- ``pooled``: the read path of native reader threads for small local whole-file batches;
- ``whole_file`` / ``ranged``: how one batch is read, for whole-file formats (npz, npy; direct
  ``os.preadv`` or C reads of local files) and for formats read by ranges;
- ``buffers``: the buffer pool (kept samples) and the reader threads' reused scratch buffers;
- ``steps``: the claim/deliver state one threaded epoch's readers and consumer share;
- ``loader``: :class:`NativeLoader`, which builds the read paths and picks one per epoch.
"""

from __future__ import annotations

from .batch import Batch, ReadError
from .loader import NativeLoader
from .read_path import ReadPath

__all__ = ["Batch", "NativeLoader", "ReadError", "ReadPath"]
