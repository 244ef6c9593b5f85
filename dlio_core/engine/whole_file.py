"""The read path of whole-file formats (npz, npy): one read per file a batch touches.

Each file is read whole, once per batch that touches it, into a reused buffer: the thread's own
scratch buffer for that file size (kept across epochs), or a pooled one when the consumer keeps the
samples. Plain local files are read by the engine itself (the size comes from the manifest: no
``stat``): a batch's files in one call to the C extension ``_cread`` with the GIL released once, or,
where it is not built, with ``os.open`` + ``os.preadv`` + ``os.close``; any other storage through
``storage.read_into``. ``prepare`` and ``finish`` (plan a batch's reads; check and parse what they
read) are shared with the pooled path (``pooled.py``), which runs the reads on native threads.

Every file is still parsed and validated (a real loader decodes what it reads); with reused buffers
the format's per-thread ``parser()`` re-checks the header bytes and hands back the view it built last
time instead of building a new array. Bytes actually read, I/O seconds and decode
seconds are summed per batch; nothing is formatted or logged per sample.

:class:`WholeFileBatches` holds what these reads need, taken from the loader's ``ReadInputs`` once,
as plain attributes: the hot path pays one attribute lookup per input, as the loader's methods did.
"""

from __future__ import annotations

import os
import time
from typing import Any, NamedTuple

import numpy as np

from .batch import Batch, ReadError
from .buffers import _BufferPool, _Scratch, first_sample_bytes
from .read_path import ReadInputs

try:  # the optional C extension (setup.py): batch reads with the GIL released once
    from . import _cread
except ImportError:  # not compiled here: the os.open/os.preadv/os.close loop below does the same reads
    _cread = None

# A batch of files up to this many bytes in all is read back to back into one scratch array, then
# parsed (see WholeFileBatches.read); above it, one file at a time into one buffer.
BURST_MAX_BYTES = 4 << 20
# Batches above BURST_MAX_BYTES (not kept) are read in chunks of files up to this many bytes in all,
# side by side in reused scratch memory, one read call (one GIL release) a chunk: retinanet's 24 files
# of 322,624 B in two chunks. Measured on the 2-vCPU VM (interleaved, one process): one file at a time
# 0.46 of the raw-read ceiling, chunks of 1 MiB 0.64 (fits the CPU's L2 cache), 2 MiB 0.64, 4 MiB 0.78,
# 8 MiB 0.74 (the whole batch): fewer GIL hand-offs between reader threads count more than the cache.
CHUNK_MAX_BYTES = 4 << 20
# The largest file the engine reads itself in one os.preadv (or C) call; larger plain local files,
# like every other storage's, go through storage.read_into.
_O_RDONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_LOCAL_READ_MAX_BYTES = 0x7FFFF000 if hasattr(os, "preadv") else -1


def _short_read(path: str, n: int, size: int) -> ReadError:
    return ReadError(f"{path}: read {n} bytes, expected {size} (file changed or truncated?)")


def _no_such_sample(path: str, sample: int, per_file: int) -> ReadError:
    return ReadError(f"{path}: sample {sample} asked for, but the file holds {per_file} "
                     "(dataset.num_samples_per_file does not match the files?)")


class Prepared(NamedTuple):
    """A batch's reads, planned and given buffers but not yet read (see ``WholeFileBatches.prepare``)."""

    which: list[int]  # read of each sample (a run of samples in one file is one read)
    paths: list[str]  # path of each read
    sizes: list[int]  # bytes of each read (the file's size)
    bufs: list[memoryview] | None  # where each read lands (None: read one at a time, see ``read_large``)
    parse: Any  # the format's parse, or a scratch's caching parser
    owned: list[np.ndarray] | None  # pooled buffers the batch keeps (keep_samples), else None
    parse_all: Any  # (bufs, paths) -> (arrays, bytes of sample 0 summed or None): see _Scratch.parse_batch




# ``Prepared(...)`` without NamedTuple's Python-level ``__new__``: a tuple of the class (400 -> 140 ns a batch).
_prepared = tuple.__new__

# which[] of a batch whose reads are its samples in order, by batch length (shared, never mutated);
# ``finish`` recognises them by identity.
_IDENTITY_LEN = 257
_IDENTITY: tuple[list[int], ...] = tuple(list(range(n)) for n in range(_IDENTITY_LEN))


def _identity(n: int) -> list[int]:
    """``list(range(n))``, shared for the usual batch sizes (never mutated)."""
    return _IDENTITY[n] if n < len(_IDENTITY) else list(range(n))


def _is_identity(which: list[int]) -> bool:
    n = len(which)
    return (which is _IDENTITY[n]) if n < len(_IDENTITY) else which == list(range(n))


class _ParseEach:
    """``parse_all`` of buffers that change every batch (kept samples): ``parse`` file by file."""

    __slots__ = ("parse",)

    def __init__(self, parse: Any) -> None:
        self.parse = parse

    def __call__(self, bufs: list[memoryview], paths: list[str]) -> tuple[list[np.ndarray], int | None]:
        arrays = list(map(self.parse, bufs, paths))
        return arrays, first_sample_bytes(arrays)


def _check_in_order(prep: Prepared, got: list[int]) -> None:
    """Raise for the first file that is short or does not parse, in read order."""
    for n, size, b, path in zip(got, prep.sizes, prep.bufs, prep.paths):
        if n != size:
            raise _short_read(path, n, size)
        prep.parse(b, path)


def _sample_figures(arrays: list[np.ndarray], samples: list[int], which: list[int], paths: list[str],
                    keep: bool) -> tuple[int, list[np.ndarray] | None]:
    """Bytes of the batch's samples and, with ``keep``, their views; raises for a sample a file lacks."""
    sample_bytes = 0
    views: list[np.ndarray] | None = [] if keep else None
    prev = None
    per_file = each = 0
    for s, r in zip(samples, which):
        x = arrays[r]
        if x is not prev:
            prev = x
            per_file = x.shape[-1] if x.ndim else 0
            each = x.nbytes // per_file if per_file else 0
        if not 0 <= s < per_file:
            raise _no_such_sample(paths[r], s, per_file)
        sample_bytes += each
        if keep:
            views.append(x[..., s])
    return sample_bytes, views


class WholeFileBatches:
    """Builds whole-file batches (the ``BatchReader`` of npz and npy): plans each batch's reads
    (``prepare``), reads them (``read_files``) and checks and parses what they read (``finish``).

    The pooled path calls ``prepare`` and ``finish`` itself around its native threads' reads.

    Example:
        >>> import numpy as np, tempfile
        >>> from dlio_core.formats import get_format
        >>> from dlio_core.storage import open_storage
        >>> st, fmt = open_storage(tempfile.mkdtemp()), get_format("npy")
        >>> sizes = [fmt.write_file(st, f"f{i}.npy", np.full((4, 1), i, np.uint8)) for i in range(2)]
        >>> inputs = ReadInputs.build(st, fmt, ["f0.npy", "f1.npy"], sizes=sizes, keep_samples=True)
        >>> batch = WholeFileBatches(inputs, _BufferPool()).read(0, np.array([1, 0]), np.array([0, 0]), None, None)
        >>> [int(x[0]) for x in batch.samples], batch.bytes_read == sum(sizes)
        ([1, 0], True)
    """

    def __init__(self, inputs: ReadInputs, pool: _BufferPool) -> None:
        # Copied out of ``inputs``: one attribute lookup each on the hot path.
        self.storage = inputs.storage
        self.paths = inputs.paths
        # Many files: the paths are made per batch (paths.LazyPaths.take); else one list lookup a file.
        self.take_paths = None if type(inputs.paths) is list else inputs.paths.take
        self.sizes = inputs.size_list
        # Every file of one size (the usual dataset): a batch's sizes are one shared list per length.
        known = inputs.sizes
        self.one_size = int(known[0]) if known is not None and known.size and known.min() == known.max() else None
        self.size_lists: dict[int, tuple[list[int], bool]] = {}
        self.plain_local_files = inputs.plain_local_files
        # Kept samples' buffers change every batch: one parse the reader threads share, its settings
        # (checksums) read once per loader where the format offers that, not once per file.
        shared = getattr(inputs.fmt, "shared_parser", None)
        self.parse = shared() if shared is not None else inputs.fmt.parse
        self.parse_each = _ParseEach(self.parse)
        # The format's parse looks at the length only (raw image bytes): large batches land in one buffer.
        self.length_only = bool(getattr(inputs.fmt, "parse_reads_length_only", False))
        self.preprocess_s = inputs.preprocess_s
        self.preprocess = inputs.preprocess
        self.pool = pool
        self.largest = inputs.largest

    def scratch_bytes(self, batch_size: int) -> tuple[int, int]:
        """``(batch, single)`` bytes a scratch set needs for ``batch_size``-file batches of files up to
        the largest: the side-by-side array when such a batch is read in one burst (see ``prepare``),
        else the array of a chunk (see ``read_large``; 0 when no two files fit one, or the format's
        parse looks at lengths only) and the one-file array. ``(0, 0)`` when the sizes are not known."""
        if self.largest * batch_size <= BURST_MAX_BYTES:
            return batch_size * ((self.largest + 63) & ~63), 0
        aligned = (self.largest + 63) & ~63
        chunks = not self.length_only and 2 * aligned <= CHUNK_MAX_BYTES
        return (CHUNK_MAX_BYTES // aligned * aligned if chunks else 0), self.largest

    def reserve(self, scratch: _Scratch | None, batch_size: int) -> None:
        """Size ``scratch`` for an epoch of ``batch_size``-file batches and fault its pages in, on the
        calling thread (each reader thread its own, in parallel, before its first step)."""
        if scratch is not None:
            scratch.reserve(*self.scratch_bytes(batch_size))

    def reserve_pool(self, count: int) -> None:
        """Fill the pool with ``count`` prefaulted buffers of the largest file's size (kept samples),
        so that an epoch's first reads fault no pages; no-op when the sizes are not known."""
        if self.largest:
            self.pool.reserve(count, self.largest)

    def prepare(self, files: np.ndarray | list[int], scratch: _Scratch | None) -> Prepared:
        """Plan a batch's whole-file reads and give each a buffer; no buffers (``bufs`` None) when the
        batch is to be read a chunk of large files at a time instead (see ``read_large``). A format whose
        parse looks at lengths only (``parse_reads_length_only``: raw image bytes) gets, for a batch too
        big for one burst, the same reused buffer for every file, as the raw-read ceiling reads."""
        fl = files if type(files) is list else files.tolist()
        paths, sizes = self.paths, self.sizes
        n = len(fl)
        if len(set(fl)) == n:  # no file twice, so none twice in a row: a read per sample
            reads, which = fl, (_IDENTITY[n] if n < _IDENTITY_LEN else list(range(n)))  # (shared: ``finish`` knows it)
        else:
            reads = []  # file of each read: a run of samples in one file is one read
            which = []
            last = -1
            for f in fl:
                if f != last:
                    reads.append(f)
                    last = f
                which.append(len(reads) - 1)
            if len(reads) == len(which):
                which = _identity(len(which))
        if self.one_size is not None:
            known = self.size_lists.get(len(reads))  # (sizes, whether one burst holds them): shared
            if known is None:
                n = len(reads)
                known = self.size_lists[n] = ([self.one_size] * n, n * self.one_size <= BURST_MAX_BYTES)
            rsizes, burst = known
        else:
            rsizes = [sizes[f] for f in reads] if sizes is not None else [self.storage.size(paths[f]) for f in reads]
            burst = sum(rsizes) <= BURST_MAX_BYTES
        rpaths = [paths[f] for f in reads] if self.take_paths is None else self.take_paths(reads)
        if scratch is None:
            get_buffer = self.pool.get
            owned = [get_buffer(n) for n in rsizes]
            bufs = [memoryview(b)[:n] for b, n in zip(owned, rsizes)]
            return Prepared(which, rpaths, rsizes, bufs, self.parse, owned, self.parse_each)
        if burst:
            bufs = scratch.batch_views(rsizes)
        elif self.length_only:  # nothing of a file is looked at but its length: one buffer for all
            bufs = [scratch.single_view(n) for n in rsizes]
        else:
            bufs = None
        return _prepared(Prepared, (which, rpaths, rsizes, bufs, scratch.parse, None, scratch.parse_batch))

    def finish(self, step: int, samples: np.ndarray | list[int], prep: Prepared, got: list[int], io_s: float,
               rng: np.random.Generator | None) -> Batch:
        """Check and parse a prepared batch's reads (``got`` bytes each, read in ``io_s``) into its Batch.

        Files are checked in order, each read's length, then its parse; the first bad one raises.
        """
        perf = time.perf_counter
        t1 = perf()
        which, paths, sizes, bufs, _, owned, parse_all = prep  # one unpacking, not six attribute reads
        if got != sizes:  # some read came back short: name the first bad file, in order
            _check_in_order(prep, got)
        arrays, first = parse_all(bufs, paths)  # each file validated; errors name it
        t2 = perf()
        samples = samples if type(samples) is list else samples.tolist()
        keep = owned is not None
        n = len(which)
        if not keep and first is not None and not any(samples) and (
                which is _IDENTITY[n] if n < _IDENTITY_LEN else _is_identity(which)):
            # One read per sample, each the file's sample 0 (one sample per file): no per-sample views.
            sample_bytes, views = first, None
        else:  # (a file with no sample 0 is named by the general loop)
            sample_bytes, views = _sample_figures(arrays, samples, which, paths, keep)
        decode_s = t2 - t1
        if self.preprocess_s is not None:
            decode_s += self.preprocess(len(which), rng)
        batch = Batch(step, n, sum(got), sample_bytes, io_s, decode_s, views)
        if keep:
            put = self.pool.put
            batch._release = lambda: put(owned)
        return batch

    def read(self, step: int, files: np.ndarray, samples: np.ndarray, scratch: _Scratch | None,
             rng: np.random.Generator) -> Batch:
        """Each run of a batch's samples in one file is one whole-file read.

        A batch's files are read back to back (one call into ``_cread`` with the GIL released once, or
        a tight loop of system calls without it), then parsed; the reader thus holds the GIL in one
        block per batch rather than between every two system calls, which is what lets reader threads
        share it (with short Python spells between system calls, each thread's return from a call finds
        the GIL taken by another thread, and sleeps). Batches bigger than ``BURST_MAX_BYTES`` without
        ``keep_samples`` are read one file at a time into one scratch buffer instead: their copies
        dwarf the Python.
        """
        prep = self.prepare(files, scratch)
        if prep.bufs is None:
            return self.read_large(step, samples, prep, scratch, rng)
        t0 = time.perf_counter()
        got = self.read_files(prep.paths, prep.bufs, prep.sizes)
        return self.finish(step, samples, prep, got, time.perf_counter() - t0, rng)

    def read_files(self, paths: list[str], bufs: list[memoryview], sizes: list[int]) -> list[int]:
        """Read each whole file into its buffer, back to back; bytes read per file."""
        got: list[int] = []
        path = ""
        try:
            if self.plain_local_files and max(sizes) <= _LOCAL_READ_MAX_BYTES:
                if _cread is not None:
                    try:
                        return _cread.read_files(paths, bufs)[0]
                    except OSError as exc:
                        path = exc.filename
                        raise
                os_open, os_preadv, os_close, flags = os.open, os.preadv, os.close, _O_RDONLY
                for path, b in zip(paths, bufs):  # the tight loop: system calls, next to no Python
                    fd = os_open(path, flags)
                    try:
                        got.append(os_preadv(fd, (b,), 0))
                    finally:
                        os_close(fd)
                for i, (n, size) in enumerate(zip(got, sizes)):
                    if n != size and n:  # a short read (signals, odd file systems): finish it
                        path = paths[i]
                        got[i] = n + self.storage.read_into(path, bufs[i][n:], n)
            else:
                read_into = self.storage.read_into
                for path, b in zip(paths, bufs):
                    got.append(read_into(path, b))
        except OSError as exc:
            raise ReadError.from_os_error(path, exc) from exc
        return got

    def read_large(self, step: int, samples: np.ndarray, prep: Prepared, scratch: _Scratch,
                   rng: np.random.Generator) -> Batch:
        """Large files without kept samples, through reused scratch memory that stays in the CPU cache:
        files of up to ``CHUNK_MAX_BYTES`` together are read a few at a time, side by side (one read
        call, one GIL release, for each such chunk), larger ones one at a time into one buffer; each
        chunk is checked and parsed before the next overwrites it. (Formats whose parse looks at the
        length only never come here: ``prepare`` gives their batches one buffer for every file.)"""
        perf = time.perf_counter
        io_s = decode_s = 0.0
        nbytes = sample_bytes = 0
        figures = []
        paths, sizes, parse = prep.paths, prep.sizes, scratch.parse
        i, count = 0, len(paths)
        while i < count:
            j, total = i + 1, (sizes[i] + 63) & ~63
            while j < count and total + sizes[j] <= CHUNK_MAX_BYTES:
                total += (sizes[j] + 63) & ~63
                j += 1
            bufs = scratch.batch_views(sizes[i:j]) if j - i > 1 else [scratch.single_view(sizes[i])]
            chunk_paths, chunk_sizes = paths[i:j], sizes[i:j]
            t0 = perf()
            got = self.read_files(chunk_paths, bufs, chunk_sizes)
            t1 = perf()
            for n, size, b, path in zip(got, chunk_sizes, bufs, chunk_paths):  # in order: the first bad file
                if n != size:
                    raise _short_read(path, n, size)
                x = parse(b, path)
                nbytes += n
                per_file = x.shape[-1] if x.ndim else 0
                figures.append((per_file, x.nbytes // per_file if per_file else 0))
            decode_s += perf() - t1
            io_s += t1 - t0
            i = j
        for s, r in zip(samples.tolist(), prep.which):
            per_file, each = figures[r]
            if not 0 <= s < per_file:
                raise _no_such_sample(prep.paths[r], s, per_file)
            sample_bytes += each
        if self.preprocess_s is not None:
            decode_s += self.preprocess(len(prep.which), rng)
        return Batch(step, len(prep.which), nbytes, sample_bytes, io_s, decode_s, None)
