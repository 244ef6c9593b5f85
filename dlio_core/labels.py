"""Per-sample labels the files carry (npz ``y``), for the framework plugins that hand samples to a model.

DLIO's npz archives hold ``x`` (samples on the last axis) and ``y`` (one int64 label per sample; DLIO
writes zeros, a user's own archives hold real classes). :func:`labels_of_file` finds ``y`` in the
bytes the engine already read (a sample is a view of its file's buffer), reading the file again only
when the sample no longer leads back to them. Formats without labels (:func:`has_labels` False) give
none: plugins then yield samples only.

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_core.formats import get_format
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> np.savez(st.path("a.npz"), x=np.zeros((2, 2, 3), np.uint8), y=np.array([4, 5, 6]))
    >>> buf = np.frombuffer(st.read("a.npz"), np.uint8)
    >>> view = get_format("npz").parse(buf)[..., 0]
    >>> has_labels(get_format("npz")), labels_of_file(view, st.read, "a.npz", buf.size).tolist()
    (True, [4, 5, 6])
"""

from __future__ import annotations

import io
import zlib
from typing import Any, Callable

import numpy as np

from dlio_core.formats import _zip

__all__ = ["formats_with_labels", "has_labels", "labels_of_file"]

_LABELLED = ("npz",)


def formats_with_labels() -> tuple[str, ...]:
    """Names of the formats whose files carry per-sample labels."""
    return _LABELLED


def has_labels(fmt: Any) -> bool:
    """Whether ``fmt`` (a Format object or a format name) carries labels (npz ``y``)."""
    name = getattr(fmt, "name", fmt)
    return str(getattr(name, "value", name)).lower() in _LABELLED


def _file_buffer(view: np.ndarray, size: int) -> np.ndarray | None:
    """The first ``size`` bytes of the byte buffer ``view`` is a view of (pooled buffers may be larger
    than the file, which starts at their offset 0), if its chain of bases leads to one."""
    x: Any = view
    while x is not None:
        if isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 1 and x.size >= size:
            return x[:size]
        if isinstance(x, memoryview) and x.c_contiguous and x.nbytes >= size:
            return np.frombuffer(x, np.uint8, count=size)
        x = getattr(x, "base", None)
    return None


def _y_member(buf: np.ndarray) -> Any:
    try:
        return _zip.find_member(memoryview(buf), (b"y.npy", b"y"))
    except _zip.ZipError:
        return None


def labels_of_file(view: np.ndarray, read: Callable[[str], bytes], path: str, size: int) -> np.ndarray:
    """Every label of the npz file at ``path`` (``size`` bytes) as int64, from the buffer ``view`` (one of
    its samples) lies in, else from ``read(path)``. Raises ``ValueError`` naming the file without ``y``."""
    buf = _file_buffer(view, size)
    member = _y_member(buf) if buf is not None else None
    if member is None:  # the sample no longer leads to its file's bytes: read them again
        buf = np.frombuffer(read(path), np.uint8)
        try:
            member = _zip.find_member(memoryview(buf), (b"y.npy", b"y"))
        except _zip.ZipError as exc:
            raise ValueError(f"{path}: not a readable npz archive ({exc})") from exc
    if member is None:
        raise ValueError(f"{path}: npz archive has no y member (labels); write np.savez(path, x=..., y=...) "
                         "or pass labels=False")
    raw = bytes(buf[member.data_offset:member.data_offset + member.compressed_size])
    if member.method != _zip.STORED:
        raw = zlib.decompress(raw, -15)
    return np.asarray(np.lib.format.read_array(io.BytesIO(raw)), dtype=np.int64).reshape(-1)
