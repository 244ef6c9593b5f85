"""File formats by DLIO name; each module is imported only when its format is asked for.

Example:
    >>> from dlio_core.formats import get_format
    >>> get_format("npz").extension
    'npz'
    >>> get_format("parquet")
    Traceback (most recent call last):
    ...
    dlio_core.formats.base.FormatError: dataset.format 'parquet' is a DLIO format that this build of dl-driver does not support yet (supported: hdf5, npy, npz, tfrecord)
"""

from __future__ import annotations

import difflib
import importlib

from dlio_core.formats.base import COMPRESSIONS, Format, FormatError

__all__ = ["Format", "FormatError", "COMPRESSIONS", "get_format", "format_for", "supported_formats"]

# name -> module defining FORMAT; imported lazily so unused formats cost nothing (and their optional
# dependencies, e.g. h5py, are only needed when chosen).
_MODULES: dict[str, str] = {
    "npz": "dlio_core.formats.npz",
    "npy": "dlio_core.formats.npy",
    "hdf5": "dlio_core.formats.hdf5",          # h5py is imported when a file is written or read
    "tfrecord": "dlio_core.formats.tfrecord",  # hand-encoded; never imports TensorFlow
}
# DLIO formats (HEAD and the MLCommons fork) that have no module here yet.
_PLANNED = ("csv", "jpeg", "png", "indexed_binary", "mmap_indexed_binary", "parquet",
            "synthetic")


def supported_formats() -> tuple[str, ...]:
    """Names ``get_format`` accepts.

    Example:
        >>> supported_formats()
        ('hdf5', 'npy', 'npz', 'tfrecord')
    """
    return tuple(sorted(_MODULES))


def get_format(name: str) -> Format:
    """The format called ``name`` (DLIO's ``dataset.format`` value, case-insensitive)."""
    key = str(getattr(name, "value", name)).lower()
    mod = _MODULES.get(key)
    if mod is None:
        supported = ", ".join(supported_formats())
        if key in _PLANNED:
            raise FormatError(f"dataset.format '{key}' is a DLIO format that this build of dl-driver does not "
                              f"support yet (supported: {supported})")
        close = difflib.get_close_matches(key, list(_MODULES) + list(_PLANNED), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise FormatError(f"unknown dataset.format '{name}' (supported: {supported}){hint}")
    return importlib.import_module(mod).FORMAT


def format_for(dataset: object) -> Format:
    """The format of a ``dataset`` config section, bound to that section's options when the format
    takes any (``configure(dataset)``: hdf5's layout and chunking, tfrecord's samples per file).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> format_for(NS(format="tfrecord", num_samples_per_file=4)).samples_per_file
        4
    """
    fmt = get_format(getattr(dataset, "format"))
    configure = getattr(fmt, "configure", None)
    return configure(dataset) if configure is not None else fmt
