"""The optional libraries of the image and parquet formats (extra ``dl-driver[formats]``), imported
only when such a file is written or read, so ``import dlio_core`` needs numpy and PyYAML alone.

Example:
    >>> pyarrow_modules("parquet")[0].__name__
    'pyarrow'
    >>> pil_image("jpeg").__name__
    'PIL.Image'
"""

from __future__ import annotations

from typing import Any

from dlio_core.formats.base import FormatError

__all__ = ["pyarrow_modules", "pil_image", "INSTALL"]

INSTALL = "pip install 'dl-driver[formats]'"


def _missing(fmt: str, library: str) -> FormatError:
    return FormatError(f"dataset.format {fmt} needs {library}, which is not installed; run: {INSTALL}")


def pyarrow_modules(fmt: str = "parquet") -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or a ``FormatError`` naming the extra that installs them."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise _missing(fmt, "pyarrow") from None
    return pyarrow, pyarrow.parquet


def pil_image(fmt: str) -> Any:
    """``PIL.Image`` (Pillow), or a ``FormatError`` naming the extra that installs it."""
    try:
        from PIL import Image
    except ImportError:
        raise _missing(fmt, "Pillow") from None
    return Image
