"""Dataset generation with DLIO's names, layout and file sizes, in parallel, reproducibly.

What matches DLIO (``data_generator/data_generator.py`` and the npz/npy generators at HEAD):

* names ``{file_prefix}_{i:0Nd}_of_{N}.{format}`` (N = file count of the split, padded to its digits)
  under ``{data_folder}/train`` and ``/valid``; with ``num_subfolders_* > 1`` file ``i`` goes to
  subfolder ``i % num_subfolders``, named with ``len(str(num_subfolders))`` digits;
* shapes: a sample is ``d x d`` with ``d = int(sqrt(record_length_bytes))``, or ``record_dims``; a file
  holds ``(*sample_shape, num_samples_per_file)`` of ``record_element_type``; with
  ``record_length_bytes_stdev > 0`` both dims of file ``g`` are ``max(int(v), 1)`` of
  ``v[2g], v[2g+1]`` where ``v = normal(d, stdev / 2 / sqrt(record_length_bytes), 2 * total)`` after
  ``np.random.seed(10)``, ``g`` counting train files then valid files. Sizes therefore equal DLIO's
  for the same config, on any number of ranks;
* rank ``r`` of ``world`` writes global files ``r, r + world, ...``.

What differs, on purpose: content is a pure function of the file's key ``(10, split, index)``
(incompressible and dedup-safe, see ``dlio_core.content.sample_array``) instead of DLIO's unseeded
generator, so a rerun is byte-identical whatever the rank and thread counts; files appear atomically;
``compression: zip`` really deflates npz members (DLIO means to, never does); a manifest of names and
sizes is written for runs to use instead of listing.

Example:
    >>> import tempfile
    >>> from types import SimpleNamespace as NS
    >>> ds = NS(data_folder=tempfile.mkdtemp(), format="npz", num_files_train=4, num_files_eval=0,
    ...         num_samples_per_file=1, record_length_bytes=4096, record_length_bytes_stdev=0,
    ...         num_subfolders_train=2, num_subfolders_eval=0, file_prefix="img", compression="none",
    ...         record_dims=(), record_element_type="uint8")
    >>> cfg = NS(dataset=ds, to_dict=lambda: {"dataset": vars(ds)})
    >>> m = generate_dataset(cfg, progress=False)
    >>> m.train[:2]
    (('train/0/img_0_of_4.npz', 4594), ('train/1/img_1_of_4.npz', 4594))
"""

from __future__ import annotations

import inspect
import math
import os
import posixpath
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from dlio_core.content import content_crc32, sample_array, thread_buffer
from dlio_core.formats import Format, format_for, get_format
from dlio_core.listing import dataset_storage
from dlio_core.manifest import DatasetError, Manifest, write_manifest
from dlio_core.naming import file_name, split_relpath, subfolders
from dlio_core.progress import Progress
from dlio_core import preflight

__all__ = ["generate_dataset", "DatasetPlan", "DatasetError", "sample_array", "file_name", "dlio_dims"]

DIMS_SEED = 10      # DLIO: np.random.seed(10) right before get_dimension()
CONTENT_SEED = 10   # ours: file contents are a function of the key (CONTENT_SEED, split_id, index)
SPLITS = ("train", "valid")


def _name(v: Any) -> str:
    return str(getattr(v, "value", v)).lower()


def dlio_dims(record_length_bytes: float, record_length_bytes_stdev: float, total_files: int) -> np.ndarray | None:
    """DLIO's per-file dims, ``(2 * total_files,)`` int64, or None when the stdev is 0 (all ``d``).

    Draws from a private ``RandomState(10)``: the same stream as DLIO's ``np.random.seed(10)`` +
    ``np.random.normal``, without touching the global generator.

    Example:
        >>> dlio_dims(146600628, 68341808, 2).tolist()
        [15865, 14125, 7745, 12083]
    """
    d = int(math.sqrt(record_length_bytes))
    sd = record_length_bytes_stdev / 2.0 / math.sqrt(record_length_bytes) if record_length_bytes > 0 else 0.0
    if not sd > 0:
        return None
    v = np.random.RandomState(DIMS_SEED).normal(d, sd, 2 * total_files)
    return np.maximum(v.astype(np.int64), 1)  # astype truncates toward zero, as int() does


@dataclass(frozen=True)
class DatasetPlan:
    """Every file of a dataset: name, shape, dtype and expected size, without touching storage.

    Global file index ``g`` counts train files, then valid files (DLIO's order).
    """

    format: str
    extension: str
    file_prefix: str
    num_files: tuple[int, int]         # train, valid
    num_subfolders: tuple[int, int]    # train, valid
    samples_per_file: int
    dtype: np.dtype
    sample_shape: tuple[int, ...] | None   # record_dims, or (d, d) when every file is alike
    dims: np.ndarray | None                # per-file dims when drawn (stdev > 0)
    compression: str

    @classmethod
    def from_config(cls, cfg: Any) -> DatasetPlan:
        """The plan for ``cfg.dataset`` (raises ``DatasetError`` for combinations DLIO rejects)."""
        ds = cfg.dataset
        fmt = get_format(ds.format)
        n_train, n_valid = int(ds.num_files_train), max(int(ds.num_files_eval), 0)
        total = n_train + n_valid
        record_dims = tuple(int(v) for v in (getattr(ds, "record_dims", None) or ()))
        stdev = float(getattr(ds, "record_length_bytes_stdev", 0) or 0)
        length = float(ds.record_length_bytes)
        dims = None
        if record_dims:
            if stdev > 0:
                raise DatasetError("dataset.record_dims and dataset.record_length_bytes_stdev are both set; "
                                   "DLIO rejects this (drop one of them)")
            shape: tuple[int, ...] | None = record_dims
        else:
            dims = dlio_dims(length, stdev, total)
            d = int(math.sqrt(length))
            shape = None if dims is not None else (d, d)
        return cls(format=fmt.name, extension=fmt.extension, file_prefix=str(ds.file_prefix),
                   num_files=(n_train, n_valid),
                   num_subfolders=(int(ds.num_subfolders_train or 0), int(ds.num_subfolders_eval or 0)),
                   samples_per_file=int(ds.num_samples_per_file),
                   dtype=np.dtype(getattr(ds, "record_element_type", None) or "uint8"),
                   sample_shape=shape, dims=dims,
                   compression=_effective_compression(fmt.name, getattr(ds, "compression", "none")))

    @property
    def total(self) -> int:
        """Files in both splits."""
        return self.num_files[0] + self.num_files[1]

    def locate(self, g: int) -> tuple[int, int]:
        """``(split_id, index_in_split)`` of global file ``g`` (split 0 = train, 1 = valid)."""
        return (0, g) if g < self.num_files[0] else (1, g - self.num_files[0])

    def relpath(self, split_id: int, index: int) -> str:
        """Path of a file relative to the data folder, e.g. ``train/1/img_07_of_16.npz``.

        Example:
            >>> from types import SimpleNamespace as NS
            >>> p = DatasetPlan("npz", "npz", "img", (16, 0), (2, 0), 1, np.dtype("u1"), (8, 8), None, "none")
            >>> p.relpath(0, 7)
            'train/1/img_07_of_16.npz'
        """
        return split_relpath(SPLITS[split_id], index, self.num_files[split_id], self.num_subfolders[split_id],
                             self.file_prefix, self.extension)

    def stored_path(self, relpath: str) -> str:
        """Where a file named ``relpath`` is stored: csv appends its codec's suffix (``.csv.gz``), as DLIO does.

        Example:
            >>> DatasetPlan("csv", "csv", "img", (1, 0), (0, 0), 1, np.dtype("u1"), (2, 2), None, "gzip").stored_path("train/a.csv")
            'train/a.csv.gz'
        """
        if self.format == "csv" and self.compression != "none":
            from dlio_core.formats.csv import data_path

            return data_path(relpath, self.compression)
        return relpath

    def shape(self, g: int) -> tuple[int, ...]:
        """The array shape of global file ``g``: ``(*sample_shape, samples_per_file)``."""
        if self.dims is not None:
            return (int(self.dims[2 * g]), int(self.dims[2 * g + 1]), self.samples_per_file)
        assert self.sample_shape is not None
        return (*self.sample_shape, self.samples_per_file)

    def directories(self) -> list[str]:
        """Folders DLIO creates: ``train``, ``valid`` and the numbered subfolders."""
        return [d for sid, split in enumerate(SPLITS) for d in (split, *subfolders(split, self.num_subfolders[sid]))]

    def expected_size(self, fmt: Format, g: int) -> int | None:
        """Exact bytes of file ``g``, or None when compression makes it data-dependent."""
        return fmt.file_size(self.shape(g), self.dtype, compression=self.compression)

    def manifest(self, sizes: list[int], dataset: Any, names: list[str | None] | None = None) -> Manifest:
        """The manifest for per-file ``sizes`` (indexed by global file, -1 when unknown); ``names[g]``, when
        set, is file ``g``'s ``relpath`` already made (by its writer)."""
        lists: list[list[tuple[str, int]]] = [[], []]
        for g in range(self.total):
            sid, i = self.locate(g)
            rel = names[g] if names is not None and names[g] is not None else self.relpath(sid, i)
            lists[sid].append((self.stored_path(rel) if self.format == "csv" else rel, int(sizes[g])))
        by_name = [tuple(sorted(fl, key=lambda f: (posixpath.basename(f[0]), f[0]))) for fl in lists]
        return Manifest(format=self.format, train=by_name[0], valid=by_name[1], dataset=dataset)


def _effective_compression(fmt: str, compression: Any) -> str:
    """What compression actually applies; values DLIO ignores for this format are warned about."""
    c = _name(compression if compression is not None else "none")
    if c in ("none", ""):
        return "none"
    if fmt == "npz" and c == "zip":
        return "zip"
    applied = {"csv": ("gzip", "bz2", "zip", "xz"), "parquet": ("snappy", "gzip", "lz4", "zstd", "brotli")}
    if c in applied.get(fmt, ()):
        return c
    if fmt == "csv":
        raise DatasetError(f"dataset.compression={c} is not a csv codec (DLIO's pandas writer fails on it too); "
                           f"use gzip, bz2, zip, xz or none")
    if fmt == "hdf5":
        if c in ("gzip", "lzf"):
            return c
        raise DatasetError(f"dataset.compression={c} is not an HDF5 filter (DLIO's hdf5 writer fails on it too); "
                           f"use gzip, lzf or none")
    warnings.warn(f"dataset.compression={c} has no effect on {fmt} files (as in DLIO); writing them "
                  f"uncompressed", stacklevel=3)
    return "none"


def _default_threads() -> int:
    return min(8, (os.cpu_count() or 1) * 2)


def generate_dataset(cfg: Any, *, rank: int = 0, world: int = 1, threads: int | None = None,
                     progress: bool = True) -> Manifest:
    """Write this rank's share of the dataset described by ``cfg.dataset``; return the manifest.

    Rank ``r`` writes global files ``r, r + world, ...`` with ``threads`` writer threads (default
    ``reader.write_threads``, else ``min(8, 2 * cpus)``). Rank 0 also writes ``{data_folder}/dl-driver-manifest.json``: every size is
    known in advance from the shapes, so it needs nothing from the other ranks (callers still barrier
    before reading). Compressed files are the exception: their sizes depend on the data, so with
    ``world > 1`` no manifest is written (sizes are -1 in the returned one); call
    ``write_manifest(storage, scan_manifest(cfg, storage))`` (``dlio_core.manifest``, ``dlio_core.listing``)
    after the barrier if one is wanted.
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world}")
    if threads is None:  # the MLCommons fork's reader.write_threads, else ours
        threads = getattr(getattr(cfg, "reader", None), "write_threads", None)
    nthreads = _default_threads() if threads is None else int(threads)
    if nthreads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    plan = DatasetPlan.from_config(cfg)
    fmt = format_for(cfg.dataset)  # bound to the section's options (hdf5 layout, chunking, ...)
    note = fmt.size_note(cfg.dataset) if hasattr(fmt, "size_note") else None  # a schema sizes parquet rows
    if note:
        warnings.warn(note, stacklevel=2)
    storage = dataset_storage(cfg)
    size_of: dict[tuple[int, ...], int | None] = {}  # shapes repeat: one header build per shape
    expected = []
    for g in range(plan.total):
        shape = plan.shape(g)
        if shape not in size_of:
            size_of[shape] = fmt.file_size(shape, plan.dtype, compression=plan.compression)
        expected.append(size_of[shape])
    sizes = [-1 if s is None else s for s in expected]
    names: list[str | None] = [None] * plan.total  # made by the writers, reused by the manifest
    nthreads = _preflight(cfg, plan, storage, expected, nthreads)  # before anything is written
    for d in plan.directories():  # every rank: makedirs is idempotent and spares us a barrier
        storage.makedirs(d)
    mine = range(rank, plan.total, world)
    bar = Progress(len(mine), f"generating {plan.format} in {storage.url}", enabled=progress and rank == 0)

    samples_first = bool(getattr(fmt, "samples_first", False))  # a format writing sample after sample
    buffers = threading.local()  # one reused content buffer per writer thread (writes are synchronous)
    # A writer that checksums the bytes (npz's zip CRC-32) can take it from the generator instead.
    known_crc = plan.dtype.kind in "iu" and not samples_first and _takes(fmt.write_file, "data_crc32")

    # Looked up once: per file, every Python step counts (a 322 KB file takes about 150 us to write).
    rows_writer = getattr(fmt, "generates_rows", False)  # parquet with a schema: rows from the columns
    write_file, dtype, itemsize, compression = fmt.write_file, plan.dtype, plan.dtype.itemsize, plan.compression

    def write_one(g: int) -> tuple[int, int]:
        sid, i = plan.locate(g)
        rel = names[g] = plan.relpath(sid, i)
        key = (CONTENT_SEED, sid, i)
        if rows_writer:  # a batch of rows at a time
            n = fmt.write_rows(storage, rel, plan.samples_per_file, key=key, compression=compression)
        else:
            shape = plan.shape(g)
            x = sample_array(shape, dtype, key, samples_first=samples_first,
                             out=thread_buffer(buffers, math.prod(shape) * itemsize))
            if known_crc:
                crc = partial(content_crc32, x.nbytes, key)
                n = write_file(storage, rel, x, compression=compression, data_crc32=crc)
            else:
                n = write_file(storage, rel, x, compression=compression)
        if expected[g] is not None and n != expected[g]:
            raise DatasetError(f"{rel}: wrote {n} bytes, expected {expected[g]} (dl-driver bug: please report)")
        return g, n

    try:
        for g, n in _run(write_one, mine, nthreads):
            sizes[g] = n
            bar.update(1, n)
    finally:
        bar.close()

    manifest = plan.manifest(sizes, _dataset_section(cfg), names)
    if rank == 0 and min(sizes, default=0) >= 0:
        write_manifest(storage, manifest)
    return manifest


_LAST_SECTION: list[tuple[Any, dict[str, Any]]] = [(None, {})]  # (section, its tree): the last one asked for


def _dataset_section(cfg: Any) -> dict[str, Any]:
    """``cfg.to_dict()["dataset"]`` (what the manifest records), built from the dataset section's own keys
    when ``cfg`` is a loaded config: ``to_dict`` walks every section, 0.3-0.8 ms a call here. Sections are
    frozen, so the tree of the last one is kept (0.1 ms a call: a benchmark or a sweep generating again
    with one config pays it once); callers copy it (``Manifest`` does), never change it."""
    from dlio_core.config.layout import Section, section_items

    section = getattr(cfg, "dataset", None)
    if not isinstance(section, Section):
        return cfg.to_dict()["dataset"] if hasattr(cfg, "to_dict") else {}
    last_section, last_tree = _LAST_SECTION[0]  # one tuple: threads never see a section with another's tree
    if last_section is section:
        return last_tree
    tree: dict[str, Any] = {}
    for key, value in section_items(cfg.dataset):
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    found = tree.get("dataset", {})
    _LAST_SECTION[0] = (section, found)
    return found


_TAKES: dict[tuple[Any, str], bool] = {}


def _takes(fn: Any, keyword: str) -> bool:
    """Whether ``fn`` accepts ``keyword`` (False when its signature cannot be read); remembered per function."""
    key = (getattr(fn, "__func__", fn), keyword)
    if key not in _TAKES:
        try:
            _TAKES[key] = keyword in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            _TAKES[key] = False
    return _TAKES[key]


def _preflight(cfg: Any, plan: DatasetPlan, storage: Any, expected: list[int | None], nthreads: int) -> int:
    """Check the sizes against memory and (local) disk before anything is written; the writer threads
    memory allows (``dlio_core.preflight``)."""
    shapes = [plan.shape(0)] if plan.total else []
    if plan.dims is not None and plan.total:  # per-file dims: the largest of them
        shapes.append(plan.shape(int(np.argmax(plan.dims[0::2].astype(np.float64) * plan.dims[1::2]))))
    in_memory = [math.prod(shape) * plan.dtype.itemsize for shape in shapes]
    largest = max([*in_memory, *(s for s in expected if s is not None)], default=0)
    ds = cfg.dataset
    size_keys = (f"dataset.record_dims={list(ds.record_dims)}" if getattr(ds, "record_dims", None)
                 else f"dataset.record_length_bytes={ds.record_length_bytes:g}")
    keys = f"{size_keys}, dataset.num_samples_per_file={plan.samples_per_file}"
    available = preflight.memory_to_check(preflight.WRITE_COPIES * largest * nthreads)
    preflight.check_file_memory(largest_file_bytes=largest, keys=keys, available=available)
    root = storage.local_path("")
    if root is not None:
        need = sum(s if s is not None else largest for s in expected)
        counts = f"dataset.num_files_train={plan.num_files[0]}, dataset.num_files_eval={plan.num_files[1]}, {keys}"
        try:
            preflight.check_free_space(root, need_bytes=need, keys=counts)
        except DatasetError:  # files being replaced free their space: count them, once, only now
            reusable = sum(n for _, n in storage.list_files(""))
            preflight.check_free_space(root, need_bytes=need, keys=counts, reusable_bytes=reusable)
    return preflight.writer_threads(nthreads, largest_file_bytes=largest, available=available)


def _run(fn: Any, items: range, nthreads: int) -> Iterator[tuple[int, int]]:
    """``fn`` over ``items`` on ``nthreads`` threads, at most ``2 * nthreads`` in flight (memory stays
    bounded for million-file datasets); results in completion order; the first error cancels the rest."""
    if nthreads == 1:
        for g in items:
            yield fn(g)
        return
    with ThreadPoolExecutor(nthreads, thread_name_prefix="dl-driver-gen") as ex:
        pending: set[Future[tuple[int, int]]] = set()
        try:
            for g in items:
                pending.add(ex.submit(fn, g))
                if len(pending) >= 2 * nthreads:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        yield f.result()
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        except BaseException:
            for f in pending:
                f.cancel()
            raise
