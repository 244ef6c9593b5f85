"""Reading a parquet file written with ``dataset.parquet.partition_by``: one logical file stored as
parts ``{dir}/{column}={value}/{name}`` (hive layout), read as the parts' rows one after the other, the
parts in the order of their folder names.

The parts of every file in a folder are found with one listing of that folder per process (cached);
each part is read by :class:`~dlio_core.formats._parquet_read.ParquetReader` (its footer cached as for
any file), so bytes, sample bytes and times are those of the parts' row groups actually read.

Example:
    >>> import tempfile, numpy as np
    >>> from types import SimpleNamespace as NS
    >>> from dlio_core.storage import open_storage
    >>> from dlio_core.formats.parquet import FORMAT
    >>> st = open_storage(tempfile.mkdtemp())
    >>> fmt = FORMAT.configure(NS(parquet={"partition_by": "k", "columns": [{"name": "k", "dtype": "bool"},
    ...                                                                    {"name": "v", "dtype": "int32"}]}))
    >>> size = fmt.write_rows(st, "train/f.parquet", 10, key=(1,))
    >>> r = PartitionedReader(st, "train/f.parquet", size, ("v",), decode=True)
    >>> r.rows, len(r.read(list(range(10)), keep=True)[2])
    (10, 10)
"""

from __future__ import annotations

import posixpath
from typing import Any, Sequence

import numpy as np

from dlio_core.formats._parquet_read import ParquetReader
from dlio_core.formats._ranged import LayoutCache
from dlio_core.formats._spans import check_wanted
from dlio_core.formats.base import FormatError

__all__ = ["PartitionedReader", "PARTS"]

PARTS = LayoutCache(max_weight=1 << 16)   # per process: (storage, folder) -> {name: [(part, size), ...]}


def _parts_of(storage: Any, path: str) -> list[tuple[str, int]]:
    folder, name = posixpath.split(path)
    key = (storage.url, folder)
    table = PARTS.get(key)
    if table is None or name not in table:  # a folder listed before this file was written: list again
        table = {}
        for rel, size in storage.list_files(folder, ".parquet"):  # rel: from the storage's root
            part_folder, part_name = posixpath.split(rel)
            label = posixpath.basename(part_folder)
            if "=" in label:  # named as the engine names the file: under its folder (an OS path or not)
                table.setdefault(part_name, []).append((posixpath.join(folder, label, part_name), int(size)))
        for parts in table.values():
            parts.sort()
        PARTS.put(key, table, weight=1 + len(table) // 256)
    parts = table.get(name)
    if not parts:
        raise FormatError(f"{path}: no partition parts ({folder}/<column>=<value>/{name}) found for "
                          f"dataset.parquet.partition_by")
    return parts


class PartitionedReader:
    """Reads rows of a logical file whose rows are spread over partition parts; see the module."""

    def __init__(self, storage: Any, path: str, size: int, columns: Sequence[str], *, decode: bool = False) -> None:
        self.path = path
        self.parts = [ParquetReader(storage, rel, n, columns, decode=decode) for rel, n in _parts_of(storage, path)]
        counts = [int(p._footer()[0].row_starts[-1]) for p in self.parts]  # footers cached per process
        self.starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        self.rows = int(self.starts[-1])

    def read(self, indices: Sequence[int], keep: bool) -> tuple[int, int, list[np.ndarray] | None, float, float]:
        """Rows ``indices`` of the logical file: ``(bytes_read, sample_bytes, samples, io_s, decode_s)``."""
        wanted = np.asarray([int(i) for i in indices], np.int64)
        check_wanted(sorted(set(wanted.tolist())), self.rows, self.path, "the file's parts hold")
        which = np.searchsorted(self.starts, wanted, side="right") - 1
        nbytes = sample_bytes = 0
        io_s = decode_s = 0.0
        samples: list[Any] = [None] * len(wanted) if keep else []
        for k in np.unique(which).tolist():
            pos = np.flatnonzero(which == k)
            n, sb, got, t_io, t_dec = self.parts[k].read((wanted[pos] - self.starts[k]).tolist(), keep)
            nbytes, sample_bytes, io_s, decode_s = nbytes + n, sample_bytes + sb, io_s + t_io, decode_s + t_dec
            if keep and got is not None:
                for p, sample in zip(pos.tolist(), got):
                    samples[p] = sample
        return nbytes, sample_bytes, samples if keep else None, io_s, decode_s

    def close(self) -> None:
        """Nothing is held open (footers and part lists are cached per process)."""
