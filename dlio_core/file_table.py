"""The run's file table in numpy arrays, listed once on rank 0 and broadcast as raw buffers.

A list of ``(path, size)`` tuples costs about 170 bytes a file in Python objects (64 M files: ~11 GB
on every rank, mlcommons/storage #466), and pickling it for a broadcast doubles that on rank 0.
:class:`FileTable` keeps the same table in arrays, with no Python object per file until one is asked
for, in the smaller of two forms (chosen on rank 0, exactly invertible):

- *numbered*: names that differ only in their ASCII numbers (DLIO's ``train/3/img_12_of_64.npz``) are
  kept as at most 255 templates (the text between the numbers) and one column per number, each in the
  smallest unsigned type that holds it; a column that never changes, sizes included, is one value.
  64 M files named by DLIO's rule, all of one size: 4-5 bytes a file. Numbers with a leading zero
  (``img_007``) would not come back the same, so they fall back to
- *raw*: the UTF-8 names back to back (``blob``) and their ``offsets``: name bytes + 8 a file.

It reads like the list it replaces (``len``, indexing, iteration give ``(path, size)`` tuples), so the
loaders take it as they take a list.

:func:`shared_file_table` is the only way a run gets its table: rank 0 lists the folder (or reads the
manifest, or applies the naming rule, :func:`dlio_core.listing.dataset_files`), the other ranks never
LIST; a small header (the form, the templates, the arrays' types and lengths, or rank 0's error) goes
out as an object, then each array as bytes in pieces of at most 256 MiB (MPI counts are 32-bit).

Example:
    >>> table = FileTable.from_pairs([("train/img_0_of_2.npz", 10), ("train/img_1_of_2.npz", 10)])
    >>> len(table), table[1], list(table)[0], table.nbytes  # one uint8 column: the file number
    (2, ('train/img_1_of_2.npz', 10), ('train/img_0_of_2.npz', 10), 2)
    >>> FileTable.from_pairs([("b/x.npz", 1), ("a/007.npz", 2)]).nbytes  # raw: 16 name bytes, offsets, sizes
    56
"""

from __future__ import annotations

import re
from array import array
from typing import Any, Callable, Iterator, Sequence, overload

import numpy as np

__all__ = ["FileTable", "TableNames", "shared_file_table", "BCAST_PIECE_BYTES"]

BCAST_PIECE_BYTES = 256 * 2**20
_ITER_BLOCK = 65536  # files decoded at once when iterating
_NUMBER = re.compile(r"[0-9]+")  # ASCII only: str(int(x)) must give x back
_MAX_DIGITS = 18  # fits int64
_MAX_TEMPLATES = 256


def _numbered(names: Sequence[str]) -> tuple[tuple[tuple[str, ...], ...], np.ndarray, list[np.ndarray]] | None:
    """Templates, each name's template and its numbers, when that form gives every name back; else None."""
    templates: dict[tuple[str, ...], int] = {}
    which = array("B")
    columns: list[array] | None = None
    for name in names:
        numbers = _NUMBER.findall(name)
        if columns is None:
            columns = [array("q") for _ in numbers]
        if len(numbers) != len(columns) or any(len(d) > _MAX_DIGITS or (len(d) > 1 and d[0] == "0") for d in numbers):
            return None
        template = templates.setdefault(tuple(_NUMBER.split(name)), len(templates))
        if template >= _MAX_TEMPLATES:
            return None
        which.append(template)
        for column, digits in zip(columns, numbers):
            column.append(int(digits))
    return tuple(templates), np.frombuffer(which, np.uint8), [np.frombuffer(c, np.int64) for c in columns or []]


def _smallest(values: np.ndarray) -> np.ndarray:
    top = int(values.max()) if len(values) else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values.astype(np.int64)


class FileTable(Sequence):
    """``(path, size)`` pairs in arrays (see the module docstring). ``templates`` is None for raw names
    (``arrays["blob"]``, ``arrays["offsets"]``); otherwise name ``i`` is template ``tid[i]`` filled with
    ``n0[i], n1[i], ...``. A column in ``consts`` (``sizes``, ``tid``, ``n<j>``) has one value for all."""

    __slots__ = ("files", "templates", "arrays", "consts", "_made")

    def __init__(self, files: int, templates: tuple[tuple[str, ...], ...] | None, arrays: dict[str, np.ndarray],
                 consts: dict[str, int]) -> None:
        self.files, self.templates, self.arrays, self.consts = files, templates, arrays, consts
        self._made: tuple[str, list[str]] | None = None  # (prefix, formats) last made (_formats)

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, int]]) -> FileTable:
        """The table of ``pairs`` (what listing returns), in the smaller form that gives them back."""
        names = [name for name, _ in pairs]
        columns: dict[str, np.ndarray] = {"sizes": np.fromiter((int(s) for _, s in pairs), np.int64, len(pairs))}
        numbered = _numbered(names) if names else None
        if numbered is None:
            encoded = [name.encode("utf-8") for name in names]
            offsets = np.zeros(len(encoded) + 1, np.int64)
            np.cumsum([len(e) for e in encoded], out=offsets[1:])
            blob = np.frombuffer(b"".join(encoded), np.uint8).copy()  # writable: a broadcast fills it in place
            return cls(len(pairs), None, {"blob": blob, "offsets": offsets, "sizes": columns["sizes"]}, {})
        templates, which, numbers = numbered
        columns["tid"] = which
        columns.update({f"n{j}": column for j, column in enumerate(numbers)})
        arrays, consts = {}, {}
        for key, column in columns.items():
            if bool((column == column[0]).all()):
                consts[key] = int(column[0])
            else:
                arrays[key] = column if key == "sizes" else _smallest(column)
        return cls(len(pairs), templates, arrays, consts)

    def header(self) -> dict[str, Any]:
        """What the other ranks need to receive the arrays: the form, constants, each array's type and length."""
        return {"files": self.files, "templates": self.templates, "consts": self.consts,
                "arrays": {k: (a.dtype.str, len(a)) for k, a in self.arrays.items()}}

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> FileTable:
        """An empty table shaped by ``header``, for a broadcast to fill."""
        arrays = {k: np.zeros(n, np.dtype(dtype)) for k, (dtype, n) in header["arrays"].items()}
        return cls(header["files"], header["templates"], arrays, dict(header["consts"]))

    @property
    def nbytes(self) -> int:
        """Bytes the arrays hold."""
        return int(sum(a.nbytes for a in self.arrays.values()))

    def _column(self, key: str, first: int, last: int) -> list[int]:
        if key in self.consts:
            return [self.consts[key]] * (last - first)
        return self.arrays[key][first:last].tolist()

    def _block(self, first: int, last: int) -> Iterator[tuple[str, int]]:
        """Files ``first .. last - 1`` as Python objects made a block at a time (numpy scalars are slow)."""
        sizes = self._column("sizes", first, last)
        if self.templates is None:
            offsets = self.arrays["offsets"][first:last + 1].tolist()
            raw, base = self.arrays["blob"][offsets[0]:offsets[-1]].tobytes(), offsets[0]
            names: Iterator[str] = (raw[offsets[k] - base:offsets[k + 1] - base].decode("utf-8")
                                    for k in range(last - first))
        else:
            numbers = [self._column(f"n{j}", first, last) for j in range(len(self.templates[0]) - 1)]
            formats = self._formats()
            names = (formats[t] % tuple(row) for t, *row in zip(self._column("tid", first, last), *numbers))
        return zip(names, sizes)

    def name(self, i: int) -> str:
        return self[i][0]

    def names_at(self, indices: Sequence[int] | np.ndarray, prefix: str = "") -> list[str]:
        """The names of files ``indices`` (in that order), each after ``prefix``, made from the arrays
        in a few numpy calls and one ``%`` per name: what a loader asks for a batch's files.

        Example:
            >>> FileTable.from_pairs([("a/1.npz", 3), ("a/20.npz", 3), ("b/x.npz", 3)]).names_at([2, 0])
            ['b/x.npz', 'a/1.npz']
        """
        at = np.asarray(indices, np.int64).reshape(-1)
        if not len(at):
            return []
        low, high = (min(indices), max(indices)) if type(indices) is list else (int(at.min()), int(at.max()))
        if low < 0 or high >= self.files:
            raise IndexError(f"file {high if high >= self.files else low} out of range: the table holds "
                             f"{self.files} files")
        if self.templates is None:
            starts, ends = self.arrays["offsets"][at].tolist(), self.arrays["offsets"][at + 1].tolist()
            blob = self.arrays["blob"]
            return [prefix + blob[a:b].tobytes().decode("utf-8") for a, b in zip(starts, ends)]
        formats = self._formats(prefix)
        rows = zip(*[self._take(f"n{j}", at) for j in range(len(self.templates[0]) - 1)])
        if "tid" in self.consts:  # one template (DLIO's rule): one format, each row a tuple already
            fmt = formats[self.consts["tid"]]
            return [fmt % row for row in rows]
        return [formats[t] % row for t, row in zip(self._take("tid", at), rows)]

    def names(self) -> TableNames:
        """The names alone as a read-only sequence of strings, made from the arrays when asked.

        Example:
            >>> names = FileTable.from_pairs([("a/1.npz", 3), ("a/2.npz", 3)]).names()
            >>> len(names), names[1], list(names), names.names_at([1])
            (2, 'a/2.npz', ['a/1.npz', 'a/2.npz'], ['a/2.npz'])
        """
        return TableNames(self)

    def sizes_array(self) -> np.ndarray:
        """Every file's size as one int64 array (8 bytes a file, also when all sizes are one constant).

        Example:
            >>> FileTable.from_pairs([("a/1.npz", 3), ("a/2.npz", 3)]).sizes_array().tolist()
            [3, 3]
        """
        if "sizes" in self.consts:
            return np.full(self.files, self.consts["sizes"], np.int64)
        return self.arrays["sizes"].astype(np.int64)

    def _take(self, key: str, at: np.ndarray) -> list[int]:
        if key in self.consts:
            return [self.consts[key]] * len(at)
        return self.arrays[key][at].tolist()

    def _formats(self, prefix: str = "") -> list[str]:
        """Each template as a ``%`` format (the text between the numbers, ``%d`` for each number)
        after ``prefix``; the last prefix's are kept (a loader asks with one prefix, batch after batch)."""
        assert self.templates is not None
        made = self._made
        if made is not None and made[0] == prefix:
            return made[1]
        lead = prefix.replace("%", "%%")
        formats = [lead + "%d".join(part.replace("%", "%%") for part in t) for t in self.templates]
        self._made = (prefix, formats)
        return formats

    def representatives(self) -> list[str] | None:
        """One name per template, its numbers all 0 (None for raw names): every name of a template
        starts and ends like its representative (only digit runs differ), so a check of how a storage
        joins names holds for all of them when it holds for these.

        Example:
            >>> FileTable.from_pairs([("a/1.npz", 3), ("a/20.npz", 3)]).representatives()
            ['a/0.npz']
        """
        if self.templates is None:
            return None
        return ["0".join(t) for t in self.templates]

    def __len__(self) -> int:
        return self.files

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
        return next(self._block(k, k + 1))

    def __iter__(self) -> Iterator[tuple[str, int]]:
        for first in range(0, len(self), _ITER_BLOCK):
            yield from self._block(first, min(first + _ITER_BLOCK, len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileTable):
            return (self.header() == other.header()
                    and all(np.array_equal(a, other.arrays[k]) for k, a in self.arrays.items()))
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == tuple(b) for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable arrays

    def __repr__(self) -> str:
        form = "raw names" if self.templates is None else f"{len(self.templates)} name template(s)"
        return f"FileTable({len(self)} files, {form}, {self.nbytes} bytes)"


class TableNames(Sequence):
    """A :class:`FileTable`'s names as a sequence of strings, each after ``prefix`` (see
    :meth:`FileTable.names`; ``with_prefix`` gives a prefixed copy, ``representatives`` the table's)."""

    __slots__ = ("table", "prefix")

    def __init__(self, table: FileTable, prefix: str = "") -> None:
        self.table, self.prefix = table, prefix

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.prefix + name for name, _ in self.table[i]]
        return self.prefix + self.table[i][0]

    def __iter__(self) -> Iterator[str]:
        return (self.prefix + name for name, _ in self.table)

    def names_at(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        """:meth:`FileTable.names_at` with this view's prefix."""
        return self.table.names_at(indices, self.prefix)

    def with_prefix(self, prefix: str) -> TableNames:
        return TableNames(self.table, self.prefix + prefix)

    def representatives(self) -> list[str] | None:
        reps = self.table.representatives()
        return None if reps is None else [self.prefix + r for r in reps]


def _pieces(buf: np.ndarray) -> Iterator[np.ndarray]:
    raw = buf.view(np.uint8)
    for start in range(0, len(raw), BCAST_PIECE_BYTES):
        yield raw[start:start + BCAST_PIECE_BYTES]


def shared_file_table(dist: Any, compute: Callable[[], Sequence[tuple[str, int]]]) -> FileTable:
    """``compute()`` (a listing) on rank 0 only, its table on every rank (collective).

    An error on rank 0 is raised on every rank (:meth:`dlio_core.dist.Dist.from_root`).
    """
    mine: FileTable | None = None

    def header() -> dict[str, Any]:
        nonlocal mine
        mine = FileTable.from_pairs(compute())
        return mine.header()

    shape = dist.from_root(header)
    table = mine if mine is not None else FileTable.from_header(shape)
    if dist.world > 1:
        for key in shape["arrays"]:  # the same order on every rank: the header's
            for piece in _pieces(table.arrays[key]):
                dist.bcast_buffer(piece)
    return table
