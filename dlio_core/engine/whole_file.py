"""The read path of whole-file formats (npz, npy): one read per file a batch touches.

Each file is read whole, once per batch that touches it, into a reused buffer: the thread's own
scratch buffer for that file size (kept across epochs), or a pooled one when the consumer keeps the
samples. Plain local files are read by the engine itself with ``os.open`` + ``os.preadv`` +
``os.close`` (the size comes from the manifest: no ``stat``); any other storage through
``storage.read_into``. Every file is still parsed and validated (a real loader decodes what it reads);
with reused buffers the format's per-thread ``parser()`` re-checks the header bytes and hands back the
view it built last time instead of building a new array. Bytes actually read, I/O seconds and decode
seconds are summed per batch; nothing is formatted or logged per sample.

The functions here are :class:`~dlio_core.engine.NativeLoader` methods (``self`` is the loader), bound
in its class body: moved here, not wrapped, so a call costs what a method call did.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from .batch import Batch, ReadError
from .buffers import _Scratch

if TYPE_CHECKING:
    from .loader import NativeLoader


def _local_storage_class() -> type:
    from dlio_core.storage.local import LocalStorage

    return LocalStorage


# A batch of files up to this many bytes in all is read back to back into one scratch array, then
# parsed (see NativeLoader._read_batch); above it, one file at a time into one buffer.
BURST_MAX_BYTES = 4 << 20
# What the direct local read does in one os.preadv call; larger files go through storage.read_into.
_O_RDONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_DIRECT_MAX = 0x7FFFF000 if hasattr(os, "preadv") else -1


def read_batch(self: NativeLoader, step: int, files: np.ndarray, samples: np.ndarray, scratch: _Scratch | None,
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


def read_files(self: NativeLoader, paths: list[str], bufs: list[list[memoryview]], sizes: list[int]) -> list[int]:
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


def read_batch_large(self: NativeLoader, step: int, fl: list[int], sl: list[int], reads: list[int],
                     which: list[int], rsizes: list[int], scratch: _Scratch, rng: np.random.Generator) -> Batch:
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
