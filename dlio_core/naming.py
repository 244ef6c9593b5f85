"""DLIO's naming rule for dataset files, in one place: generation writes these names and
``dataset.skip_listing`` rebuilds them instead of listing the folder (the MLCommons fork's zero-LIST mode).

Names are ``{file_prefix}_{i:0Nd}_of_{N}.{extension}`` (N = file count of the split, padded to its
digits) under ``train`` / ``valid``; with more than one subfolder, file ``i`` is in subfolder
``i % subfolders``, named with ``len(str(subfolders))`` digits.

Example:
    >>> split_relpath("train", 7, 16, 2, "img", "npz")
    'train/1/img_07_of_16.npz'
    >>> [p for p in split_relpaths("valid", 2, 0, "part", "csv.gz")]
    ['valid/part_0_of_2.csv.gz', 'valid/part_1_of_2.csv.gz']
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["file_name", "split_relpath", "split_relpaths", "subfolders"]


def file_name(prefix: str, index: int, count: int, extension: str) -> str:
    """DLIO's file name: the index zero-padded to the digits of the count.

    Example:
        >>> file_name("img", 7, 16, "npz"), file_name("img", 7, 168, "npz")
        ('img_07_of_16.npz', 'img_007_of_168.npz')
    """
    return f"{prefix}_{index:0{len(str(count))}d}_of_{count}.{extension}"


def split_relpath(split: str, index: int, count: int, subfolders: int, prefix: str, extension: str) -> str:
    """Path of file ``index`` of ``count`` in ``split``, relative to the data folder (see the module)."""
    name = file_name(prefix, index, count, extension)
    if subfolders > 1:
        return f"{split}/{index % subfolders:0{len(str(subfolders))}d}/{name}"
    return f"{split}/{name}"


def split_relpaths(split: str, count: int, subfolders: int, prefix: str, extension: str) -> Iterator[str]:
    """Every file's path in ``split``, by index."""
    for i in range(count):
        yield split_relpath(split, i, count, subfolders, prefix, extension)


def subfolders(split: str, count: int) -> list[str]:
    """The numbered subfolders DLIO creates under ``split`` (none for one or no subfolder).

    Example:
        >>> subfolders("train", 2)
        ['train/0', 'train/1']
    """
    return [f"{split}/{k:0{len(str(count))}d}" for k in range(count)] if count > 1 else []
