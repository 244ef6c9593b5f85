"""h5py, imported only when an HDF5 file is written or read (extra ``dl-driver[hdf5]``).

A leaf shared by the writer (``hdf5``) and the reader (``_hdf5_read``), so neither imports the other's way back.
"""

from __future__ import annotations

from typing import Any

from dlio_core.formats.base import FormatError

__all__ = ["h5py_module"]


def h5py_module() -> Any:
    """``h5py``, or a ``FormatError`` saying which extra installs it.

    Example:
        >>> h5py_module().__name__
        'h5py'
    """
    try:
        import h5py
    except ImportError:
        raise FormatError("dataset.format hdf5 needs h5py, which is not installed; "
                          "run: pip install 'dl-driver[hdf5]'") from None
    return h5py
