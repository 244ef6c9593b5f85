"""What every file format offers, and the error it raises.

A format writes whole files from DLIO's array layout (samples on the last axis) and parses a buffer
holding a whole file back into that array, as a view of the buffer where the layout allows.

Example:
    >>> from dlio_core.formats import get_format
    >>> fmt = get_format("npy")
    >>> isinstance(fmt, Format), fmt.extension
    (True, 'npy')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from dlio_core.storage import Storage

__all__ = ["Format", "FormatError", "FunctionFormat", "COMPRESSIONS", "VERIFY_ENV", "verify_checksums"]

# DLIO's dataset.compression values; which of them a format honours is the format's business.
COMPRESSIONS = ("none", "gzip", "lzf", "bz2", "zip", "xz")


# Opt-in checksum verification: npz members' zip CRC-32 and TFRecord records' CRC-32C. Off by default, as in
# DLIO's fork (a benchmark reads to move bytes; checking costs a pass over them, mlcommons/storage #223).
VERIFY_ENV = "DL_DRIVER_VERIFY_CHECKSUMS"


def verify_checksums() -> bool:
    """Whether readers verify the checksums their formats carry (``DL_DRIVER_VERIFY_CHECKSUMS=1``).

    Example:
        >>> os.environ.pop(VERIFY_ENV, None); verify_checksums()
        False
    """
    return os.environ.get(VERIFY_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class FormatError(ValueError):
    """A file could not be written or parsed; the message names the file and what is wrong."""


def where(path: str | None) -> str:
    """How a message names the file: its path, or ``<buffer>`` when the caller gave none."""
    return path if path else "<buffer>"


@runtime_checkable
class Format(Protocol):
    """A file format: DLIO's on-disk layout, written and parsed.

    ``write_file(storage, path, x, *, compression)`` writes one file holding ``x`` (DLIO's layout:
    ``(d1, d2, ..., num_samples)``) atomically and returns the bytes written.
    ``parse(buffer, path=None)`` takes the bytes of one whole file and returns ``x``; samples are
    ``x[..., i]``. ``file_size(shape, dtype, *, compression)`` is the exact size ``write_file`` will
    produce, or None where it depends on the data (compressed files).
    """

    name: str
    extension: str

    def write_file(self, storage: Storage, path: str, x: np.ndarray, *, compression: str | None = "none") -> int:
        ...

    def parse(self, buffer: Any, path: str | None = None) -> np.ndarray:
        ...

    def file_size(self, shape: tuple[int, ...], dtype: Any, *, compression: str | None = "none") -> int | None:
        ...


@dataclass(frozen=True)
class FunctionFormat:
    """A :class:`Format` made of a module's ``write_file``, ``parse`` and ``file_size`` functions."""

    name: str
    extension: str
    write_file: Callable[..., int]
    parse: Callable[..., Any]
    file_size: Callable[..., int | None]
