"""DLIO's ``indexed_binary`` and ``mmap_indexed_binary`` formats (Megatron-style indexed datasets).

Layout (DLIO ``data_generator/indexed_binary_generator.py``, both names): the data file
``{name}.{format}`` holds the samples back to back, sample ``i`` being the bytes of ``x[..., i]`` in
C order; beside it ``{data file}.off.idx`` and ``{data file}.sz.idx`` hold one native (little-endian
on the machines DLIO runs on) uint64 per sample: its offset in the data file and its size. DLIO's
two bugs are not copied: its POSIX path restarts the offsets at 0 in each ``generation_buffer_size``
chunk (wrong offsets past the first chunk of a large file) and its MPI-IO path sizes N-D samples
with ``sum`` instead of ``prod``; here offsets are right for any size and the data is written from
the array's own buffer (DLIO packs it with ``struct`` one byte at a time).

Reading goes through the engine's ranged hook (``whole_file = False``, see ``_indexed_read``): the
index files are read once per process, and each batch reads exactly its samples' bytes, one
``read_into`` per run of adjacent samples. ``mmap_indexed_binary`` maps a local data file and copies
the samples out of the mapping, so the pages are really touched (DLIO's mmap reader takes a slice
and never touches it, so it reads nothing); on a remote storage it reads ranges as the other does.

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)    # 4 samples of 2x3
    >>> FORMAT.write_file(st, "a.indexed_binary", x), np.fromfile(st.path("a.indexed_binary.off.idx"), "<u8").tolist()
    (24, [0, 6, 12, 18])
    >>> r = FORMAT.open_reader(st, "a.indexed_binary", 24)
    >>> n, sample_bytes, samples, _, _ = r.read([3, 1], keep=True); r.close()
    >>> n, sample_bytes, samples[0].tolist() == x[..., 3].reshape(-1).tolist()   # 12 data + 64 index bytes
    (76, 12, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dlio_core.formats._indexed_read import INDEX_CACHE, IndexedBinaryReader, check_index, index_paths
from dlio_core.formats._rows import option_name, sample_rows
from dlio_core.formats.base import FormatError, where

if TYPE_CHECKING:
    from dlio_core.storage import Storage

__all__ = ["FORMAT", "MMAP_FORMAT", "IndexedBinaryFormat", "index_paths", "INDEX_CACHE"]

_U64 = np.dtype("<u8")


@dataclass(frozen=True)
class IndexedBinaryFormat:
    """DLIO's indexed binary format; ``mmap`` reads local files through a memory map."""

    name: str = "indexed_binary"
    extension: str = "indexed_binary"
    mmap: bool = False
    whole_file: bool = False
    # The generator fills the bytes sample after sample, as this file holds them: no transposing copy.
    samples_first: ClassVar[bool] = True

    def _check_compression(self, compression: str | None) -> None:
        if option_name(compression) not in ("none", ""):
            raise FormatError(f"{self.name} files are written uncompressed (as DLIO writes them); "
                              f"dataset.compression {option_name(compression)!r} does not apply")

    def file_size(self, shape: tuple[int, ...], dtype: Any, *, compression: str | None = "none") -> int:
        """Bytes of the data file for ``x`` of this shape (the two index files add 16 per sample).

        Example:
            >>> FORMAT.file_size((64, 64, 4), "uint8")
            16384
        """
        self._check_compression(compression)
        return math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize

    def write_file(self, storage: Storage, path: str, x: np.ndarray, *, compression: str | None = "none") -> int:
        """Write the samples of ``x`` to ``path`` and the offsets and sizes to ``path.off.idx`` /
        ``path.sz.idx`` (each atomically; the index last); return the data bytes."""
        self._check_compression(compression)
        rows = sample_rows(x, self.name)
        n, sample = rows.shape
        written = storage.write_atomic(path, rows.reshape(-1))
        off_path, sz_path = index_paths(path)
        offsets, sizes = _index_bytes(n, sample)
        storage.write_atomic(off_path, offsets)
        storage.write_atomic(sz_path, sizes)
        return written

    def parse(self, buffer: Any, path: str | None = None, *, offsets: Any = None, sizes: Any = None) -> np.ndarray:
        """``(sample_bytes, n)`` uint8 (sample ``i`` is ``x[:, i]``) from the bytes of a whole data file
        and its index arrays (``offsets``, ``sizes``): the data file alone does not say where samples
        start. Samples of different sizes cannot make one array: read those with ``open_reader``.

        Example:
            >>> raw = bytes(range(6))
            >>> FORMAT.parse(raw, offsets=[0, 3], sizes=[3, 3])[:, 1].tolist()
            [3, 4, 5]
        """
        if offsets is None or sizes is None:
            raise FormatError(f"{where(path)}: an {self.name} data file is read with its .off.idx and .sz.idx "
                              f"files (use open_reader, or pass offsets= and sizes=)")
        data = np.frombuffer(memoryview(buffer).cast("B"), np.uint8)
        off = np.asarray(offsets, np.int64)
        sz = np.asarray(sizes, np.int64)
        check_index(off, sz, data.nbytes, where(path), where(path))
        if len(off) == 0:
            return np.empty((0, 0), np.uint8)
        if not (sz == sz[0]).all():
            raise FormatError(f"{where(path)}: samples of different sizes {sorted(set(sz.tolist()))[:4]}; "
                              f"read them with open_reader instead")
        step = int(off[1] - off[0]) if len(off) > 1 else 0
        if len(off) > 1 and not (np.diff(off) == step).all():
            return np.stack([data[o:o + s] for o, s in zip(off.tolist(), sz.tolist())], axis=1)
        return np.lib.stride_tricks.as_strided(data[int(off[0]):], shape=(int(sz[0]), len(off)),
                                               strides=(1, step), writeable=False)

    def open_reader(self, storage: Storage, path: str, size: int) -> IndexedBinaryReader:
        """A reader of some samples of one data file (the engine's ranged-format hook)."""
        return IndexedBinaryReader(storage, path, int(size), mmap=self.mmap)


_INDEX: dict[tuple[int, int], tuple[bytes, bytes]] = {}


def _index_bytes(n: int, sample: int) -> tuple[bytes, bytes]:
    """The ``.off.idx`` and ``.sz.idx`` bytes of ``n`` samples of ``sample`` bytes, made once per pair
    (every file of a dataset without a size spread has the same two)."""
    got = _INDEX.get((n, sample))
    if got is None:
        got = ((np.arange(n, dtype=_U64) * sample).tobytes(), np.full(n, sample, _U64).tobytes())
        if n <= 65536:  # few pairs per dataset; huge indexes are not kept
            if len(_INDEX) >= 64:
                _INDEX.clear()
            _INDEX[(n, sample)] = got
    return got


FORMAT = IndexedBinaryFormat()
MMAP_FORMAT = IndexedBinaryFormat("mmap_indexed_binary", "mmap_indexed_binary", mmap=True)
