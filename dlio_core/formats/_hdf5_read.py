"""Reading DLIO's HDF5 files (either layout) through the engine's ranged hook.

The first time a process meets a file, h5py opens it through a :class:`StorageFile` (so the metadata
bytes HDF5 reads are counted) and the layout is noted: the records datasets (``records`` in DLIO
2.0.0's files, ``records_0 ..`` in HEAD's, told apart by their names), their shapes, dtype and, when
stored contiguously without filters (DLIO's default), their byte offsets. Samples of such files are
then read with ``storage.read_into`` at ``offset + i * sample_bytes``: exactly the bytes HDF5 itself
would read, one call per run of adjacent samples, without h5py's global lock. Chunked or compressed
files are read through h5py (one open and one selection per dataset per batch), counting the bytes
it pulls from storage; a sample of ``k`` datasets is their parts joined along the first axis.

Example:
    >>> import tempfile, numpy as np, h5py
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> with h5py.File(st.path("old.hdf5"), "w") as f:                  # DLIO 2.0.0's layout
    ...     _ = f.create_dataset("records", data=np.arange(3 * 16, dtype=np.uint8).reshape(3, 4, 4))
    ...     _ = f.create_dataset("labels", data=[0, 0, 0])
    >>> r = HDF5Reader(st, "old.hdf5", st.size("old.hdf5"))
    >>> n, sample_bytes, samples, _, _ = r.read([2], keep=True); r.close()
    >>> sample_bytes, samples[0][0].tolist()
    (16, [32, 33, 34, 35])
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from dlio_core.formats._h5py import h5py_module
from dlio_core.formats._ranged import LayoutCache, StorageFile, runs
from dlio_core.formats.base import FormatError

__all__ = ["HDF5Reader", "read_all", "LAYOUT_CACHE"]

LAYOUT_CACHE = LayoutCache(max_weight=1 << 20)   # files whose layout a process remembers
_RECORDS_K = re.compile(r"records_(\d+)$")


@dataclass(frozen=True)
class _Layout:
    count: int                                  # samples in the file
    names: tuple[str, ...]                      # records datasets, in sample order
    shapes: tuple[tuple[int, ...], ...]         # each dataset's per-sample shape
    dtype: np.dtype
    offsets: tuple[int, ...] | None             # byte offsets when all are contiguous and unfiltered
    rows: tuple[int, ...] = ()                  # each dataset's bytes per sample

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(int(np.prod(s, dtype=np.int64)) * self.dtype.itemsize
                                               for s in self.shapes))

    def row_bytes(self, j: int) -> int:
        return self.rows[j]


def _records(f: Any, name: str) -> list[Any]:
    """The records datasets of an open file: HEAD's ``records_k`` (by k) or 2.0.0's ``records``."""
    keys = list(f.keys())
    k_named = sorted(((int(m.group(1)), key) for key in keys if (m := _RECORDS_K.match(key))), key=lambda t: t[0])
    if k_named:
        if [k for k, _ in k_named] != list(range(len(k_named))):
            raise FormatError(f"{name}: records datasets {[key for _, key in k_named]} are not records_0..records_"
                              f"{len(k_named) - 1}")
        chosen = [key for _, key in k_named]
    elif "records" in keys:
        chosen = ["records"]
    else:
        raise FormatError(f"{name}: no 'records' (DLIO 2.0.0) or 'records_0'.. (DLIO HEAD) dataset; "
                          f"found {sorted(keys)[:8]}")
    dsets = [f[key] for key in chosen]
    n = dsets[0].shape[0] if dsets[0].shape else 0
    for d in dsets:
        if not d.shape or d.shape[0] != n or d.dtype != dsets[0].dtype:
            raise FormatError(f"{name}: records datasets disagree on sample count or dtype "
                              f"({[(x.name, x.shape, str(x.dtype)) for x in dsets]})")
    return dsets


def _open(h5py: Any, fileobj: Any, name: str) -> Any:
    try:
        return h5py.File(fileobj, "r")
    except (OSError, ValueError) as e:
        raise FormatError(f"{name}: not a readable HDF5 file ({e})") from None


def _discover(storage: Any, path: str, size: int) -> tuple[_Layout, int, float]:
    h5py = h5py_module()
    sf = StorageFile(storage, path, size)
    with _open(h5py, sf, path) as f:
        try:
            dsets = _records(f, path)
            offsets: list[int] | None = []
            for d in dsets:
                plain = d.chunks is None and d.id.get_create_plist().get_nfilters() == 0 and d.dtype.kind in "biuf"
                off = d.id.get_offset() if plain else None
                if off is None or offsets is None:
                    offsets = None
                else:
                    offsets.append(int(off))
            layout = _Layout(dsets[0].shape[0], tuple(d.name.lstrip("/") for d in dsets),
                             tuple(tuple(int(s) for s in d.shape[1:]) for d in dsets), np.dtype(dsets[0].dtype),
                             None if offsets is None else tuple(offsets))
        except (RuntimeError, KeyError, ValueError, OSError) as e:
            # h5py reports damaged metadata (a failed checksum) as RuntimeError/KeyError; storage errors
            # (StorageError, an OSError) keep their own meaning.
            if isinstance(e, FormatError) or type(e).__name__.startswith("Storage"):
                raise
            raise FormatError(f"{path}: damaged HDF5 metadata ({e})") from None
    if layout.offsets is not None:
        for j, off in enumerate(layout.offsets):
            end = off + layout.count * layout.row_bytes(j)
            if end > size:
                raise FormatError(f"{path}: dataset {layout.names[j]} ends at byte {end} but the file has {size} "
                                  f"bytes (truncated)")
    return layout, sf.bytes_read, sf.io_s


def _join(parts: list[np.ndarray]) -> np.ndarray:
    """One sample from its ``k`` dataset parts (a view when ``k == 1``)."""
    if len(parts) == 1:
        return parts[0]
    return np.stack(parts) if parts[0].ndim == 0 else np.concatenate(parts, axis=0)


class HDF5Reader:
    """Reads chosen samples of one HDF5 file; see :meth:`read`."""

    def __init__(self, storage: Any, path: str, size: int) -> None:
        self.storage, self.path, self.size = storage, path, size

    def _layout(self) -> tuple[_Layout, int, float]:
        key = (self.storage.url, self.path, self.size)
        hit = LAYOUT_CACHE.get(key)
        if hit is not None:
            return hit, 0, 0.0
        layout, nbytes, io_s = _discover(self.storage, self.path, self.size)
        LAYOUT_CACHE.put(key, layout)
        return layout, nbytes, io_s

    def read(self, indices: Sequence[int], keep: bool) -> tuple[int, int, list[np.ndarray] | None, float, float]:
        """Read samples ``indices`` of the file.

        Returns ``(bytes_read, sample_bytes, samples, io_s, decode_s)``; ``samples`` (when ``keep``)
        are arrays in the order asked (views of one read buffer for single-dataset files).
        """
        wanted = [int(i) for i in indices]
        if not wanted:
            return 0, 0, [] if keep else None, 0.0, 0.0
        layout, nbytes, io_s = self._layout()
        uniq = sorted(set(wanted))
        if uniq[0] < 0 or uniq[-1] >= layout.count:
            bad = uniq[-1] if uniq[-1] >= layout.count else uniq[0]
            raise FormatError(f"{self.path}: sample {bad} asked for, but the file holds {layout.count} sample(s)")
        if layout.offsets is not None:
            n, t_io, t_dec, parts = self._read_direct(layout, uniq)
        else:
            n, t_io, t_dec, parts = self._read_h5py(layout, uniq)
        sample_bytes = len(wanted) * sum(layout.rows)
        per = None
        if keep:
            t0 = time.perf_counter()
            at = {i: _join([p[u] for p in parts]) for u, i in enumerate(uniq)}
            per = [at[i] for i in wanted]
            t_dec += time.perf_counter() - t0
        return nbytes + n, sample_bytes, per, io_s + t_io, t_dec

    def _read_direct(self, layout: _Layout, uniq: list[int]) -> tuple[int, float, float, list[np.ndarray]]:
        """Contiguous datasets: ``read_into`` each run of adjacent samples at its byte offset."""
        perf = time.perf_counter
        u = len(uniq)
        spans = runs(uniq)
        nbytes = 0
        io_s = 0.0
        parts = []
        for j, off in enumerate(layout.offsets or ()):
            row = layout.rows[j]
            buf = np.empty((u, row), dtype=np.uint8)
            t0 = perf()
            for a, b in spans:
                start = off + uniq[a] * row
                got = self.storage.read_into(self.path, buf[a:b], start)
                nbytes += got
                if got != (b - a) * row:
                    raise FormatError(f"{self.path}: read {got} of {(b - a) * row} bytes at byte {start} "
                                      f"(file truncated or changed since it was listed)")
            io_s += perf() - t0
            parts.append(buf.view(layout.dtype).reshape(u, *layout.shapes[j]))
        return nbytes, io_s, 0.0, parts

    def _read_h5py(self, layout: _Layout, uniq: list[int]) -> tuple[int, float, float, list[np.ndarray]]:
        """Chunked or filtered datasets: h5py selects the samples (and decompresses) per dataset."""
        h5py = h5py_module()
        sf = StorageFile(self.storage, self.path, self.size)
        t0 = time.perf_counter()
        sel = uniq
        with _open(h5py, sf, self.path) as f:
            try:
                parts = [f[name][sel] if len(sel) != 1 else f[name][sel[0]][None] for name in layout.names]
            except (OSError, ValueError, KeyError) as e:
                raise FormatError(f"{self.path}: cannot read samples {sel[:8]} ({e})") from None
        total = time.perf_counter() - t0
        return sf.bytes_read, sf.io_s, max(0.0, total - sf.io_s), parts

    def close(self) -> None:
        """Nothing is held open between reads."""


def read_all(fileobj: Any, name: str) -> np.ndarray:
    """Every sample of an HDF5 file object, in DLIO's array layout (samples on the last axis).

    Example:
        >>> import io, numpy as np, h5py
        >>> bio = io.BytesIO()
        >>> with h5py.File(bio, "w") as f: _ = f.create_dataset("records_0", data=np.zeros((5, 2, 3), np.uint8))
        >>> read_all(bio, "<buffer>").shape
        (2, 3, 5)
    """
    h5py = h5py_module()
    with _open(h5py, fileobj, name) as f:
        arrays = [d[()] for d in _records(f, name)]
    joined = arrays[0] if len(arrays) == 1 else (
        np.stack(arrays, axis=1) if arrays[0].ndim == 1 else np.concatenate(arrays, axis=1))
    return np.moveaxis(joined, 0, -1)
