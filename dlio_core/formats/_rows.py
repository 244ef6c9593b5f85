"""DLIO's array layout (samples on the last axis) as one row of bytes per sample, and the few option
readers the newer formats share.

Example:
    >>> import numpy as np
    >>> x = np.arange(12, dtype=np.uint8).reshape(2, 3, 2)       # 2 samples of 2x3
    >>> sample_rows(x)[1].tolist() == x[..., 1].reshape(-1).tolist()
    True
    >>> from types import SimpleNamespace as NS
    >>> nominal_sample(NS(record_length_bytes=4096, record_dims=(), record_element_type="uint8"))
    ((64, 64), dtype('uint8'))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlio_core.formats.base import FormatError

__all__ = ["sample_rows", "sample_count", "option_name", "decode_flag", "nominal_sample"]


def sample_count(x: np.ndarray, fmt: str) -> int:
    """Samples in ``x`` (its last axis); a 0-d array is a ``FormatError``."""
    if np.ndim(x) == 0:
        raise FormatError(f"{fmt}: the array needs a sample axis (the last one)")
    return int(np.shape(x)[-1])


def sample_rows(x: np.ndarray, fmt: str = "format") -> np.ndarray:
    """``(n, sample_bytes)`` C-contiguous uint8 rows: row ``i`` is the bytes of ``x[..., i]`` in C order."""
    a = np.asarray(x)
    n = sample_count(a, fmt)
    rows = np.ascontiguousarray(np.moveaxis(a, -1, 0)).reshape(n, -1)
    return rows.view(np.uint8).reshape(n, -1)


def option_name(value: Any, default: str = "none") -> str:
    """A config value as a lower-case string (enums by their value; None is ``default``).

    Example:
        >>> option_name(None), option_name("GZIP")
        ('none', 'gzip')
    """
    return (str(getattr(value, "value", value)) if value is not None else default).lower()


def decode_flag(reader: Any, default: bool = False) -> bool:
    """``reader.decode`` of a ``reader`` config section (``False``: count the bytes, decode nothing, as the
    MLCommons fork measures; ``True``: decode as a trainer would); ``default`` when absent."""
    value = getattr(reader, "decode", None) if reader is not None else None
    return default if value is None else bool(value)


def nominal_sample(dataset: Any) -> tuple[tuple[int, ...], np.dtype]:
    """A sample's shape and dtype as DLIO sizes it: ``record_dims``, else ``d x d`` with
    ``d = int(sqrt(record_length_bytes))``; ``record_element_type`` (uint8 by default)."""
    dims = tuple(int(d) for d in (getattr(dataset, "record_dims", None) or ()))
    if not dims:
        d = int(math.sqrt(float(getattr(dataset, "record_length_bytes", 65536) or 0)))
        dims = (d, d)
    return dims, np.dtype(getattr(dataset, "record_element_type", None) or "uint8")
