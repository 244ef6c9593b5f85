"""The run's file table in three numpy arrays, listed once on rank 0 and broadcast as raw buffers.

A list of ``(path, size)`` tuples costs about 150 bytes a file in Python objects (two objects and a
tuple each; 64 M files: ~10 GB on every rank, mlcommons/storage #466), and pickling it for a
broadcast doubles that on rank 0. :class:`FileTable` keeps the same table as one UTF-8 blob of every
name, the offsets of each name in it and the sizes: name bytes + 16 bytes a file, with no Python
object per file until one is asked for. It reads like the list it replaces (``len``, indexing,
iteration give ``(path, size)`` tuples), so the loaders take it as they take a list.

:func:`shared_file_table` is the only way a run gets its table: rank 0 lists the folder (or reads the
manifest, or applies the naming rule, :func:`dlio_core.listing.dataset_files`), the other ranks never
LIST; a small header (the arrays' lengths, or rank 0's error) goes out as an object, then each array as
bytes in pieces of at most 256 MiB (MPI counts are 32-bit).

Example:
    >>> table = FileTable.from_pairs([("train/a.npz", 10), ("train/b.npz", 20)])
    >>> len(table), table[1], list(table)[0], table.nbytes
    (2, ('train/b.npz', 20), ('train/a.npz', 10), 62)
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence, overload

import numpy as np

__all__ = ["FileTable", "shared_file_table", "BCAST_PIECE_BYTES"]

BCAST_PIECE_BYTES = 256 * 2**20
_ITER_BLOCK = 65536  # files decoded at once when iterating


class FileTable(Sequence):
    """``(path, size)`` pairs stored as arrays: ``blob`` (uint8, the names back to back), ``offsets``
    (int64, ``len + 1``: name ``i`` is ``blob[offsets[i]:offsets[i + 1]]``) and ``sizes`` (int64)."""

    __slots__ = ("blob", "offsets", "sizes")

    def __init__(self, blob: np.ndarray, offsets: np.ndarray, sizes: np.ndarray) -> None:
        if len(offsets) != len(sizes) + 1 or (len(offsets) and int(offsets[-1]) != len(blob)):
            raise ValueError(f"inconsistent file table: {len(sizes)} sizes, {len(offsets)} offsets, "
                             f"{len(blob)} name bytes")
        self.blob, self.offsets, self.sizes = blob, offsets, sizes

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, int]]) -> FileTable:
        """The table of ``pairs`` (what listing returns)."""
        encoded = [name.encode("utf-8") for name, _ in pairs]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        blob = np.frombuffer(b"".join(encoded), np.uint8).copy()  # writable: a broadcast fills it in place
        return cls(blob, offsets, np.fromiter((int(s) for _, s in pairs), np.int64, len(pairs)))

    @classmethod
    def empty(cls, files: int, name_bytes: int) -> FileTable:
        """A table of the given shape to receive a broadcast into (offsets[-1] set to fit)."""
        offsets = np.zeros(files + 1, np.int64)
        offsets[-1] = name_bytes
        return cls(np.zeros(name_bytes, np.uint8), offsets, np.zeros(files, np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes the three arrays hold."""
        return int(self.blob.nbytes + self.offsets.nbytes + self.sizes.nbytes)

    def name(self, i: int) -> str:
        return self.blob[int(self.offsets[i]):int(self.offsets[i + 1])].tobytes().decode("utf-8")

    def __len__(self) -> int:
        return len(self.sizes)

    @overload
    def __getitem__(self, i: int) -> tuple[str, int]: ...

    @overload
    def __getitem__(self, i: slice) -> list[tuple[str, int]]: ...

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        k = int(i)
        if not -n <= k < n:
            raise IndexError(f"file {k} out of range: the table holds {n} files")
        k %= n
        return self.name(k), int(self.sizes[k])

    def __iter__(self) -> Iterator[tuple[str, int]]:
        # A block at a time as Python ints and one bytes object: numpy scalar access per file is ~10x slower.
        for first in range(0, len(self), _ITER_BLOCK):
            last = min(first + _ITER_BLOCK, len(self))
            offsets = self.offsets[first:last + 1].tolist()
            raw, base = self.blob[offsets[0]:offsets[-1]].tobytes(), offsets[0]
            for k, size in enumerate(self.sizes[first:last].tolist()):
                yield raw[offsets[k] - base:offsets[k + 1] - base].decode("utf-8"), size

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileTable):
            return (np.array_equal(self.blob, other.blob) and np.array_equal(self.offsets, other.offsets)
                    and np.array_equal(self.sizes, other.sizes))
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == tuple(b) for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable arrays

    def __repr__(self) -> str:
        return f"FileTable({len(self)} files, {self.nbytes} bytes)"


def _pieces(buf: np.ndarray) -> Iterator[np.ndarray]:
    raw = buf.view(np.uint8)
    for start in range(0, len(raw), BCAST_PIECE_BYTES):
        yield raw[start:start + BCAST_PIECE_BYTES]


def shared_file_table(dist: Any, compute: Callable[[], Sequence[tuple[str, int]]]) -> FileTable:
    """``compute()`` (a listing) on rank 0 only, its table on every rank (collective).

    An error on rank 0 is raised on every rank (:meth:`dlio_core.dist.Dist.from_root`).
    """
    mine: FileTable | None = None

    def header() -> tuple[int, int]:
        nonlocal mine
        mine = FileTable.from_pairs(compute())
        return len(mine), len(mine.blob)

    files, name_bytes = dist.from_root(header)
    table = mine if mine is not None else FileTable.empty(files, name_bytes)
    if dist.world > 1:
        for array in (table.blob, table.offsets, table.sizes):
            for piece in _pieces(array):
                dist.bcast_buffer(piece)
    return table
