"""File formats by DLIO name, in a :class:`~dlio_core.registry.Registry`: each module is imported
only when its format is asked for, and third parties add formats through the ``dl_driver.formats``
entry point group (``name = "mypkg.fmt:FORMAT"``, a :class:`Format`).

Example:
    >>> from dlio_core.formats import get_format
    >>> get_format("npz").extension
    'npz'
    >>> get_format("parquet")
    Traceback (most recent call last):
    ...
    dlio_core.formats.base.FormatError: dataset.format 'parquet' is a DLIO format that this build of dl-driver does not support yet (available: hdf5, npy, npz, tfrecord)
"""

from __future__ import annotations

from dlio_core.formats.base import COMPRESSIONS, Format, FormatError
from dlio_core.registry import Entry, Registry

__all__ = ["Format", "FormatError", "COMPRESSIONS", "FORMATS", "get_format", "format_for", "supported_formats"]

# name -> the module's FORMAT; imported lazily so unused formats cost nothing (and their optional
# dependencies, e.g. h5py, are only needed when chosen).
FORMATS = Registry("dataset.format", group="dl_driver.formats", error=FormatError)
_NOT_YET = "is a DLIO format that this build of dl-driver does not support yet"
FORMATS.register_builtins([
    Entry("npz", "dlio_core.formats.npz:FORMAT"),
    Entry("npy", "dlio_core.formats.npy:FORMAT"),
    Entry("hdf5", "dlio_core.formats.hdf5:FORMAT"),          # h5py is imported when a file is written or read
    Entry("tfrecord", "dlio_core.formats.tfrecord:FORMAT"),  # hand-encoded; never imports TensorFlow
    # DLIO formats (HEAD and the MLCommons fork) that have no module here yet.
    *(Entry(name, None, note=_NOT_YET) for name in ("csv", "jpeg", "png", "indexed_binary", "mmap_indexed_binary",
                                                     "parquet", "synthetic")),
])


def supported_formats() -> tuple[str, ...]:
    """Names ``get_format`` accepts.

    Example:
        >>> supported_formats()
        ('hdf5', 'npy', 'npz', 'tfrecord')
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
        dlio_core.formats.base.FormatError: unknown dataset.format 'npzz'; did you mean 'npz'? (available: hdf5, npy, npz, tfrecord)
    """
    return FORMATS.load(name)


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
