"""File formats by DLIO name, in a :class:`~dlio_core.registry.Registry`: each module is imported
only when its format is asked for, and third parties add formats through the ``dl_driver.formats``
entry point group (``name = "mypkg.fmt:FORMAT"``, a :class:`Format`).

Example:
    >>> from dlio_core.formats import get_format
    >>> get_format("npz").extension
    'npz'
    >>> get_format("parquet").whole_file   # read by ranges: row groups of the selected columns
    False
"""

from __future__ import annotations

import inspect

from dlio_core.formats.base import COMPRESSIONS, Format, FormatError
from dlio_core.registry import Entry, Registry

__all__ = ["Format", "FormatError", "COMPRESSIONS", "FORMATS", "get_format", "format_for", "supported_formats"]

# name -> the module's FORMAT; imported lazily so unused formats cost nothing (and their optional
# dependencies, e.g. h5py, are only needed when chosen).
FORMATS = Registry("dataset.format", group="dl_driver.formats", error=FormatError)
FORMATS.register_builtins([
    Entry("npz", "dlio_core.formats.npz:FORMAT"),
    Entry("npy", "dlio_core.formats.npy:FORMAT"),
    Entry("hdf5", "dlio_core.formats.hdf5:FORMAT"),          # h5py is imported when a file is written or read
    Entry("tfrecord", "dlio_core.formats.tfrecord:FORMAT"),  # hand-encoded; never imports TensorFlow
    Entry("csv", "dlio_core.formats.csv:FORMAT"),
    Entry("jpeg", "dlio_core.formats.images:JPEG"),          # Pillow (extra 'formats') when encoding/decoding
    Entry("png", "dlio_core.formats.images:PNG"),
    Entry("indexed_binary", "dlio_core.formats.indexed_binary:FORMAT"),
    Entry("mmap_indexed_binary", "dlio_core.formats.indexed_binary:MMAP_FORMAT"),
    Entry("parquet", "dlio_core.formats.parquet:FORMAT"),    # pyarrow (extra 'formats') when written or read
    Entry("synthetic", "dlio_core.formats.synthetic:FORMAT"),
])


def supported_formats() -> tuple[str, ...]:
    """Names ``get_format`` accepts.

    Example:
        >>> supported_formats()
        ('csv', 'hdf5', 'indexed_binary', 'jpeg', 'mmap_indexed_binary', 'npy', 'npz', 'parquet', 'png', 'synthetic', 'tfrecord')
    """
    return FORMATS.names(available=True)


def get_format(name: str) -> Format:
    """The format called ``name`` (DLIO's ``dataset.format`` value, case-insensitive).

    Example:
        >>> get_format("NPY").name
        'npy'
        >>> get_format("npzz")
        Traceback (most recent call last):
        ...
        dlio_core.formats.base.FormatError: unknown dataset.format 'npzz'; did you mean 'npz'? (available: csv, hdf5, indexed_binary, jpeg, mmap_indexed_binary, npy, npz, parquet, png, synthetic, tfrecord)
    """
    return FORMATS.load(name)


def format_for(dataset: object, reader: object = None) -> Format:
    """The format of a ``dataset`` config section, bound to that section's options and to the ``reader``
    section's read mode when the format takes any (``configure(dataset, reader)``: hdf5's layout and
    chunking, tfrecord's samples per file, ``reader.decode`` for jpeg, png, csv and parquet).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> format_for(NS(format="tfrecord", num_samples_per_file=4)).samples_per_file
        4
        >>> format_for(NS(format="png", num_samples_per_file=1), NS(decode=True)).decode
        True
    """
    fmt = get_format(getattr(dataset, "format"))
    configure = getattr(fmt, "configure", None)
    if configure is None:
        return fmt
    return configure(dataset, reader) if _takes_reader(configure) else configure(dataset)


def _takes_reader(configure: object) -> bool:
    """Whether a format's ``configure`` accepts the reader section (third-party formats may take only
    the dataset section)."""
    try:
        params = list(inspect.signature(configure).parameters.values())
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)
