"""How the files of a split are found besides a plain listing: the names a format stores under (csv's
codec suffix), parquet's ``partition_by`` folders, and the MLCommons fork's ``dataset.skip_listing``.

* csv with ``dataset.compression`` is stored as ``.csv.gz`` / ``.bz2`` / ``.zip`` / ``.xz`` (DLIO appends
  the codec's suffix), so that is the suffix listed and named.
* parquet with ``dataset.parquet.partition_by`` stores file ``train/img_0_of_4.parquet`` as parts
  ``train/{column}={value}/img_0_of_4.parquet``. A run reads the logical file (the name generation
  gave, the parts' sizes summed); its reader finds the parts (``formats/_parquet_parts``).
* ``dataset.skip_listing: true`` (the fork's zero-LIST mode, mlcommons/storage #472): names come from
  DLIO's naming rule (:mod:`dlio_core.naming`) instead of a listing. Sizes come from the manifest (one
  read, no LIST) when it holds those names, and every ``listing_validation_interval``-th file (the first
  and last too) is checked to exist with that size; without a manifest every file's size is asked for
  (a HEAD each, on 16 threads). ``0`` checks none.

Example:
    >>> from types import SimpleNamespace as NS
    >>> stored_suffix(NS(format="csv", compression="gzip", parquet={}))
    '.csv.gz'
    >>> logical_files([("train/label=0/a.parquet", 10), ("train/label=1/a.parquet", 5)])
    [('train/a.parquet', 15)]
"""

from __future__ import annotations

import posixpath
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dlio_core.manifest import DatasetError, load_manifest
from dlio_core.naming import split_relpaths

__all__ = ["stored_suffix", "partition_column", "logical_files", "named_files"]

_CSV_SUFFIX = {"gzip": ".gz", "bz2": ".bz2", "zip": ".zip", "xz": ".xz"}  # as formats.csv.CODECS (no import)
_HEAD_THREADS = 16


def _name(v: Any) -> str:
    return str(getattr(v, "value", v)).lower()


def stored_suffix(dataset: Any) -> str:
    """The suffix a split's files end with: ``.{format}``, plus csv's codec suffix."""
    fmt = _name(dataset.format)
    suffix = "." + fmt
    if fmt == "csv":
        suffix += _CSV_SUFFIX.get(_name(getattr(dataset, "compression", "none") or "none"), "")
    return suffix


def partition_column(dataset: Any) -> str | None:
    """``dataset.parquet.partition_by`` for parquet, else None."""
    if _name(dataset.format) != "parquet":
        return None
    p = getattr(dataset, "parquet", None) or {}
    col = p.get("partition_by") if hasattr(p, "get") else getattr(p, "partition_by", None)
    return None if col in (None, "") else str(col)


def logical_files(parts: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Partition parts ``{dir}/{col}={value}/{name}`` grouped into their logical files ``{dir}/{name}``
    with the parts' sizes summed (a file outside a ``col=value`` folder stands for itself)."""
    sizes: dict[str, int] = {}
    for rel, size in parts:
        folder, name = posixpath.split(rel)
        parent, part = posixpath.split(folder)
        logical = posixpath.join(parent, name) if "=" in part else rel
        sizes[logical] = sizes.get(logical, 0) + int(size)
    return sorted(sizes.items())


def named_files(cfg: Any, storage: Any, split: str, need: int) -> list[tuple[str, int]]:
    """The first ``need`` files of ``split`` by DLIO's naming rule, with sizes (module docstring); a
    ``DatasetError`` names a missing file or one whose size is not the manifest's."""
    ds = cfg.dataset
    if partition_column(ds) is not None:
        raise DatasetError("dataset.skip_listing cannot name partitioned parquet files (dataset.parquet."
                           "partition_by): their parts are named by value; drop one of the two")
    count = int(ds.num_files_train if split == "train" else ds.num_files_eval)
    subs = int((ds.num_subfolders_train if split == "train" else ds.num_subfolders_eval) or 0)
    names = list(split_relpaths(split, count, subs, str(ds.file_prefix), stored_suffix(ds)[1:]))[:need]
    m = load_manifest(storage)
    known = dict(m.files(split)) if m is not None else {}
    interval = int(getattr(ds, "listing_validation_interval", 0) or 0)
    if names and all(known.get(n, -1) >= 0 for n in names):
        checked = sorted({0, len(names) - 1, *range(0, len(names), interval)}) if interval > 0 else []
        for i in checked:
            _check(storage, names[i], known[names[i]])
        return [(n, known[n]) for n in names]
    with ThreadPoolExecutor(_HEAD_THREADS) as pool:  # no manifest: a size per file, in parallel
        sizes = list(pool.map(lambda n: _size(storage, n), names))
    return list(zip(names, sizes))


def _size(storage: Any, name: str) -> int:
    try:
        return int(storage.size(name))
    except FileNotFoundError:
        raise DatasetError(f"dataset.skip_listing: {storage.url.rstrip('/')}/{name} does not exist (names follow "
                           f"DLIO's rule {{file_prefix}}_{{i}}_of_{{N}}); generate the dataset or drop "
                           f"skip_listing") from None


def _check(storage: Any, name: str, size: int) -> None:
    got = _size(storage, name)
    if got != size:
        raise DatasetError(f"dataset.skip_listing: {storage.url.rstrip('/')}/{name} holds {got} bytes, the manifest "
                           f"says {size} (rewritten by another tool?); regenerate or drop skip_listing")
