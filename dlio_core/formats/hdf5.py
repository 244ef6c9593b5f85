"""HDF5 files in both layouts DLIO writes (h5py, imported only when used: extra ``dl-driver[hdf5]``).

Layouts (``dataset.hdf5.layout``, an extension; DLIO picks by version, and so does a config: one in
DLIO 2.0.0's spelling, ``dataset.record_length`` for instance, defaults to 2.0.0's ``records``):

* ``records_k`` (DLIO HEAD, the default): datasets ``records_0 .. records_{k-1}``
  (``k = dataset.hdf5.num_dset_per_record``), each ``(num_samples, d1 // k, *rest)`` (a leading
  axis of 1 dropped, as HEAD does), plus ``labels`` (int64 zeros); file opened with
  ``libver='latest'``. HEAD writes the same array into every ``records_j``; we write the ``j``-th
  slice of each sample along its first axis, so the ``k`` datasets together hold the sample.
* ``records`` (DLIO 2.0.0): one dataset ``records`` of ``(num_samples, d1, d2)`` plus ``labels``, file
  written with h5py's default library version bounds.

Options as DLIO applies them: ``dataset.hdf5.chunk_dims`` -> ``chunks`` (HEAD); else
``dataset.enable_chunking`` -> chunks ``(1, c, c)`` with ``c = ceil(sqrt(chunk_size))`` capped at
``int(sqrt(record_length_bytes))`` (2.0.0); chunks are clipped to each file's shape (DLIO fails on
files smaller than a chunk). ``dataset.compression`` ``gzip`` (level ``compression_level``; 2.0.0's
enum comparison never passed the level, so its files got h5py's default 4) or ``lzf``.
``dataset.hdf5.max_shape`` -> ``maxshape=(num_samples, *max_shape)``.

Files are built in memory and stored with one atomic write, so any storage works; every dataset is
allocated at creation and no timestamps are stored, so a rerun is byte-identical. Sizes are known
only after writing (``file_size`` returns None). Reading (``open_reader``) is in ``_hdf5_read``.

Example:
    >>> import tempfile, numpy as np, h5py
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> x = np.arange(4 * 3 * 2, dtype=np.uint8).reshape(4, 3, 2)     # 2 samples of 4x3
    >>> fmt = HDF5Format(num_dset_per_record=2)
    >>> _ = fmt.write_file(st, "a.hdf5", x)
    >>> with h5py.File(st.path("a.hdf5")) as f: sorted(f), f["records_1"].shape
    (['labels', 'records_0', 'records_1'], (2, 2, 3))
    >>> r = fmt.open_reader(st, "a.hdf5", st.size("a.hdf5"))
    >>> bool((r.read([1], keep=True)[2][0] == x[..., 1]).all()); r.close()
    True
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dlio_core.formats._h5py import h5py_module
from dlio_core.formats._hdf5_read import HDF5Reader, read_all
from dlio_core.formats.base import FormatError, where

if TYPE_CHECKING:
    from dlio_core.storage import Storage

__all__ = ["FORMAT", "HDF5Format", "LAYOUTS", "h5py_module"]

LAYOUTS = ("records_k", "records")   # DLIO HEAD, DLIO 2.0.0
_SLAB_BYTES = 64 << 20               # samples copied out of DLIO's layout per write call


def _name(v: Any) -> str:
    return (str(getattr(v, "value", v)) if v is not None else "none").lower()


@dataclass(frozen=True)
class HDF5Format:
    """DLIO's HDF5 format with its writer options (see the module docstring); built from a config's
    ``dataset`` section by :meth:`configure`."""

    name: ClassVar[str] = "hdf5"
    extension: ClassVar[str] = "hdf5"
    whole_file: ClassVar[bool] = False
    layout: str = "records_k"
    num_dset_per_record: int = 1
    chunk_dims: tuple[int, ...] = ()
    enable_chunking: bool = False
    chunk_size: int = 0
    max_shape: tuple[int | None, ...] = ()
    compression_level: int = 4
    dimension: int = 0          # int(sqrt(record_length_bytes)): 2.0.0's cap on chunk sides; 0 = none

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise FormatError(f"dataset.hdf5.layout: {self.layout!r} is not a layout; use records_k (DLIO HEAD) "
                              f"or records (DLIO 2.0.0)")
        if self.num_dset_per_record < 1:
            raise FormatError(f"dataset.hdf5.num_dset_per_record must be >= 1, not {self.num_dset_per_record}")
        if self.layout == "records" and self.num_dset_per_record > 1:
            raise FormatError(f"dataset.hdf5.num_dset_per_record={self.num_dset_per_record} needs "
                              f"dataset.hdf5.layout: records_k (DLIO 2.0.0's layout has one 'records' dataset)")

    def configure(self, dataset: Any, reader: Any = None) -> HDF5Format:
        """This format with the writer options of a ``dataset`` config section.

        Example:
            >>> from types import SimpleNamespace as NS
            >>> ds = NS(hdf5=NS(layout="records", chunk_dims=(), num_dset_per_record=1, max_shape=()),
            ...         enable_chunking=True, chunk_size=100, compression_level=4, record_length_bytes=4096)
            >>> FORMAT.configure(ds).chunks_for((2, 64, 64))
            (1, 10, 10)
        """
        h = getattr(dataset, "hdf5", None)
        return replace(
            self,
            layout=_name(getattr(h, "layout", self.layout) or self.layout),
            num_dset_per_record=int(getattr(h, "num_dset_per_record", 1) or 1),
            chunk_dims=tuple(int(c) for c in (getattr(h, "chunk_dims", ()) or ())),
            max_shape=tuple(None if m is None else int(m) for m in (getattr(h, "max_shape", ()) or ())),
            enable_chunking=bool(getattr(dataset, "enable_chunking", False)),
            chunk_size=int(getattr(dataset, "chunk_size", 0) or 0),
            compression_level=int(getattr(dataset, "compression_level", 4)),
            dimension=int(math.sqrt(float(getattr(dataset, "record_length_bytes", 0) or 0))),
        )

    # -- layout ----------------------------------------------------------------------------------
    def datasets(self, shape: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
        """``(name, dataset_shape)`` of the records datasets for DLIO's array shape ``(*sample, n)``.

        Example:
            >>> HDF5Format(num_dset_per_record=3).datasets((3, 224, 224, 8))
            [('records_0', (8, 224, 224)), ('records_1', (8, 224, 224)), ('records_2', (8, 224, 224))]
            >>> HDF5Format(layout="records").datasets((64, 64, 8))
            [('records', (8, 64, 64))]
        """
        *sample, n = (int(s) for s in shape)
        if not sample:
            raise FormatError("hdf5: a sample needs at least one dimension")
        if self.layout == "records":
            return [("records", (n, *sample))]
        k = self.num_dset_per_record
        rows = sample[0] // k
        if rows == 0:
            raise FormatError(f"dataset.hdf5.num_dset_per_record={k} exceeds the sample's first dimension "
                              f"{sample[0]}")
        per = (rows, *sample[1:])
        if per[0] == 1 and len(per) > 1:  # DLIO HEAD drops a leading 1
            per = per[1:]
        return [(f"records_{j}", (n, *per)) for j in range(k)]

    def chunks_for(self, dshape: tuple[int, ...]) -> tuple[int, ...] | None:
        """The ``chunks`` for a records dataset of shape ``dshape``, or None (contiguous)."""
        if self.chunk_dims:
            if len(self.chunk_dims) != len(dshape):
                raise FormatError(f"dataset.hdf5.chunk_dims {list(self.chunk_dims)} has {len(self.chunk_dims)} "
                                  f"dims but the records datasets have {len(dshape)} {list(dshape)}")
            if self.max_shape:
                return self.chunk_dims
            return tuple(max(1, min(c, s)) for c, s in zip(self.chunk_dims, dshape))
        if self.enable_chunking:
            side = max(1, math.ceil(math.sqrt(self.chunk_size)))
            if self.dimension:
                side = min(side, self.dimension)
            return (1, *(max(1, min(side, s)) for s in dshape[1:]))
        return None

    def maxshape_for(self, dshape: tuple[int, ...]) -> tuple[int | None, ...] | None:
        """``maxshape`` for a records dataset (HEAD: ``(num_samples, *max_shape)``), or None."""
        if not self.max_shape:
            return None
        if len(self.max_shape) != len(dshape) - 1:
            raise FormatError(f"dataset.hdf5.max_shape {list(self.max_shape)} has {len(self.max_shape)} dims; "
                              f"the samples of the records datasets have {len(dshape) - 1} {list(dshape[1:])}")
        return (dshape[0], *self.max_shape)

    def _filter(self, compression: Any) -> tuple[str | None, int | None]:
        c = _name(compression)
        if c in ("none", ""):
            return None, None
        if c == "gzip":
            if not 0 <= self.compression_level <= 9:
                raise FormatError(f"dataset.compression_level {self.compression_level}: gzip levels are 0..9")
            return "gzip", self.compression_level
        if c == "lzf":
            return "lzf", None
        raise FormatError(f"dataset.compression {c!r} is not an HDF5 filter DLIO uses; use gzip, lzf or none")

    # -- Format protocol -------------------------------------------------------------------------
    def file_size(self, shape: tuple[int, ...], dtype: Any, *, compression: str | None = "none") -> None:
        """None: HDF5's metadata size is learnt by writing (the manifest takes the written size)."""
        self._filter(compression)
        return None

    def build(self, x: np.ndarray, *, compression: str | None = "none") -> bytes:
        """The bytes of the HDF5 file for ``x`` (DLIO's layout, samples on the last axis).

        Example:
            >>> HDF5Format().build(np.zeros((2, 2, 1), np.uint8))[:4]
            b'\\x89HDF'
        """
        return self._build(x, compression).getvalue()

    def _build(self, x: np.ndarray, compression: Any) -> io.BytesIO:
        h5py = h5py_module()
        x = np.asarray(x)
        filt, level = self._filter(compression)
        specs = self.datasets(x.shape)
        n = x.shape[-1]
        rows = x.shape[0] // len(specs)  # records_j holds rows j*rows .. (j+1)*rows-1 of each sample
        bio = io.BytesIO()
        # HEAD opens with libver='latest' (superblock v3); 2.0.0 used h5py's default (superblock v0)
        with _create_in_memory(h5py, bio, latest=self.layout == "records_k") as f:
            dsets = []
            for name, dshape in specs:
                chunks, maxshape = self.chunks_for(dshape), self.maxshape_for(dshape)
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                if filt is None:  # storage allocated up front: the file's layout does not depend on write order
                    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
                # Every byte of a contiguous dataset is written; chunked ones have edge chunks whose padding
                # would be uninitialised memory without a fill (and the rerun would differ).
                plain = chunks is None and maxshape is None and filt is None
                dsets.append(f.create_dataset(name, shape=dshape, dtype=x.dtype, chunks=chunks, maxshape=maxshape,
                                              compression=filt, compression_opts=level, dcpl=dcpl,
                                              fillvalue=None if plain else 0,
                                              fill_time="never" if plain else "alloc", track_times=False))
            per_sample = max(1, x.nbytes // max(n, 1))
            step = max(1, _SLAB_BYTES // per_sample)
            for s in range(0, n, step):
                e = min(n, s + step)
                for j, d in enumerate(dsets):
                    part = x[j * rows:(j + 1) * rows, ..., s:e] if len(dsets) > 1 else x[..., s:e]
                    block = np.ascontiguousarray(np.moveaxis(part, -1, 0)).reshape(e - s, *d.shape[1:])
                    d.write_direct(block, dest_sel=np.s_[s:e])
            f.create_dataset("labels", data=np.zeros(n, np.int64), track_times=False)
        return bio

    def write_file(self, storage: Storage, path: str, x: np.ndarray, *, compression: str | None = "none") -> int:
        """Write DLIO's HDF5 file for ``x`` atomically; return the bytes written."""
        try:
            bio = self._build(x, compression)
        except (ValueError, TypeError) as e:
            if isinstance(e, FormatError):
                raise
            raise FormatError(f"{path}: h5py refused the layout: {e}") from None
        with bio.getbuffer() as data:  # no copy of the file image
            return storage.write_atomic(path, data)

    def parse(self, buffer: Any, path: str | None = None) -> np.ndarray:
        """``x`` (samples on the last axis) from the bytes of a whole file, in either layout."""
        return read_all(io.BytesIO(bytes(memoryview(buffer).cast("B"))), where(path))

    def open_reader(self, storage: Storage, path: str, size: int) -> Any:
        """A reader of some samples of one file (the engine's ranged-format hook)."""
        return HDF5Reader(storage, path, int(size))


FORMAT = HDF5Format()


def _create_in_memory(h5py: Any, bio: io.BytesIO, *, latest: bool) -> Any:
    """A new HDF5 file in ``bio`` whose bytes do not depend on the clock.

    h5py's ``File(..., "w")`` stamps the root group with access/modify/change/birth times, so two runs a
    second apart differ; the file creation property list turns that off (datasets pass
    ``track_times=False`` themselves). ``latest`` is HEAD's ``libver='latest'``; otherwise h5py's
    default bounds, as DLIO 2.0.0.
    """
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fileobj_driver(h5py.h5fd.fileobj_driver, bio)
    if latest:
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    return h5py.File(h5py.h5f.create(b"dl-driver-memory-file", h5py.h5f.ACC_TRUNC, fapl=fapl, fcpl=fcpl))
