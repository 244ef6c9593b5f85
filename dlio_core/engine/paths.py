"""The files' paths as the engine opens them, without a string per file for large datasets.

A list of full path strings costs about 100 bytes a file (1 M files: ~93 MiB on every rank, and 64 M
files several GB), on top of the run's :class:`~dlio_core.file_table.FileTable`, which keeps the names
in arrays. :func:`engine_paths` therefore keeps the list only up to ``EAGER_PATHS_MAX`` files (a few
MB: a list lookup is the cheapest thing the hot path can do per file); above that it returns
:class:`LazyPaths`, which makes a batch's paths when the batch is read (``take``: the table's names for
those files, then the storage's join and OS path each), so per-rank memory stays the table's arrays.
For DLIO-named files on local storage the root is built into the table's name formats (checked once,
``_prefixed``): a batch's paths cost about 1 us a file (one ``%``) against 0.05 us for a list lookup,
small beside the open and read of each file; other storages and raw names call the storage per name.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Sequence

__all__ = ["EAGER_PATHS_MAX", "LazyPaths", "engine_paths", "table_names"]

# Up to this many files the paths are one list made up front (~6 MB at most); above it, made per batch.
EAGER_PATHS_MAX = 1 << 16


class LazyPaths(Sequence):
    """``resolve(names[i])`` for file ``i``, made when asked; ``take(files)`` makes a batch's at once
    (through ``names.names_at`` when the names offer it, as :class:`~dlio_core.file_table.FileTable`'s
    ``names()`` view does).

    Example:
        >>> paths = LazyPaths(["a.npz", "b.npz"], lambda name: "/data/" + name)
        >>> len(paths), paths[1], paths.take([1, 0]), list(paths)
        (2, '/data/b.npz', ['/data/b.npz', '/data/a.npz'], ['/data/a.npz', '/data/b.npz'])
    """

    __slots__ = ("names", "resolve")

    def __init__(self, names: Sequence[str], resolve: Callable[[str], str]) -> None:
        self.names, self.resolve = names, resolve

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.resolve(n) for n in self.names[i]]
        return self.resolve(self.names[i])

    def __iter__(self) -> Iterator[str]:
        return map(self.resolve, self.names)

    def take(self, files: Sequence[int]) -> list[str]:
        """The paths of ``files`` (file numbers), in that order."""
        names_at = getattr(self.names, "names_at", None)
        names = names_at(files) if names_at is not None else [self.names[f] for f in files]
        return names if self.resolve is _same else list(map(self.resolve, names))

    names_at = take  # so that one LazyPaths can take its names from another's batches


def engine_paths(storage: Any, files: Sequence[str]) -> tuple[Sequence[str], bool]:
    """``(paths, plain_local_files)``: the files' OS paths when ``storage`` has them (plain file I/O on
    them is what the storage does), else the names as the storage takes them; a list up to
    ``EAGER_PATHS_MAX`` files, :class:`LazyPaths` above.

    Example:
        >>> from dlio_core.storage import open_storage
        >>> engine_paths(open_storage("/tmp"), ["a.npz"])
        (['/tmp/a.npz'], True)
    """
    root = storage.local_path("")  # the root's answer: none for object stores, O_DIRECT
    local = root is not None
    if len(files) > EAGER_PATHS_MAX:
        if local and storage.local_path(files[0]) is not None:
            prefixed = _prefixed(files, os.path.join(root, ""), storage.local_path)
            return (LazyPaths(files, storage.local_path) if prefixed is None else prefixed), True
        return LazyPaths(files, str), False
    if local:
        local_path = storage.local_path
        paths = [local_path(p) for p in files]
        if None not in paths:
            return paths, True
    return list(files), False


def _same(name: str) -> str:
    return name


def _prefixed(names: Any, prefix: str, resolve: Callable[[str], str]) -> LazyPaths | None:
    """``names`` with ``prefix`` built into the table's name formats (one ``%`` a name, no call per
    name) when ``resolve`` is exactly that prefix for every name: checked on the table's
    representatives (``TableNames.representatives``: names differ from them only in digit runs, so
    they start and end alike); None otherwise (raw names, or names a storage would rewrite)."""
    reps = getattr(names, "representatives", lambda: None)()
    if reps is None or any(resolve(name) != prefix + name for name in reps):
        return None
    return LazyPaths(names.with_prefix(prefix), _same)


def table_names(names: Any, join: Callable[[str], str]) -> Sequence[str]:
    """A table's names as the storage takes them, ``join(name)`` each: the names themselves when
    ``join`` leaves every one as it is (checked on the table's representatives), else made per batch.

    Example:
        >>> from dlio_core.file_table import FileTable
        >>> names = FileTable.from_pairs([("a/1.npz", 3), ("a/2.npz", 3)]).names()
        >>> table_names(names, lambda n: n.strip("/")) is names, type(table_names(names, str.upper)).__name__
        (True, 'LazyPaths')
    """
    reps = getattr(names, "representatives", lambda: None)()
    if reps is not None and all(join(name) == name for name in reps):
        return names
    return LazyPaths(names, join)
