"""Plain os-level helpers of the local backends: errors that name the path, flat byte views,
vectored writes that loop on short writes, quiet cleanup of temporary files.

Example:
    >>> import os, tempfile
    >>> fd, p = tempfile.mkstemp()
    >>> write_all(fd, [as_byte_view(b"ab"), as_byte_view(bytearray(b"cd"))]); os.close(fd)
    4
    >>> str(os_error("read", p, FileNotFoundError(2, "No such file or directory")))[:12]
    'cannot read '
    >>> unlink_quietly(p); unlink_quietly(p)
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from typing import Any

from dlio_core.storage.backend import CAUSE_INPUT, CAUSE_IO, CAUSE_UNREACHABLE, StorageError, StorageNotFoundError
from dlio_core.storage.retry import is_transient

__all__ = ["os_error", "as_byte_view", "write_all", "unlink_quietly"]


def os_error(action: str, path: str, err: OSError) -> StorageError:
    """A StorageError naming the path; FileNotFoundError stays recognisable as such, and a device that
    fails under a valid request (disk full, I/O error) or a network file system that stops answering
    is a failure while running (``cause``), not bad input.

    Example:
        >>> os_error("write", "/full/x", OSError(errno.ENOSPC, "No space left on device")).cause
        'io'
    """
    cls = StorageNotFoundError if isinstance(err, FileNotFoundError) else StorageError
    cause = CAUSE_IO if err.errno in _DEVICE_FAILED else CAUSE_UNREACHABLE if is_transient(err) else CAUSE_INPUT
    return cls(f"cannot {action} {path}: {err.strerror or err}", cause=cause)


# errno values that say the device failed, not that the request was wrong.
_DEVICE_FAILED = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})


def as_byte_view(data: Any) -> memoryview:
    """A flat ``B`` memoryview of a C-contiguous buffer (``BufferError``/``TypeError`` otherwise)."""
    mv = memoryview(data)
    if not mv.c_contiguous:
        raise BufferError("buffer is not C-contiguous")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")  # raises for non-contiguous buffers, which cannot be written in one call
    return mv


def write_all(fd: int, parts: Sequence[memoryview]) -> int:
    """Write every part with as few ``writev`` calls as the kernel allows; loop on short writes."""
    total = 0
    pending = [p for p in parts if p.nbytes]
    while pending:
        n = os.writev(fd, pending) if len(pending) > 1 else os.write(fd, pending[0])
        total += n
        while pending and n >= pending[0].nbytes:
            n -= pending[0].nbytes
            pending.pop(0)
        if n:
            pending[0] = pending[0][n:]
    return total


def unlink_quietly(p: str) -> None:
    """Remove ``p`` if it is there; errors are ignored (the caller's original error matters more)."""
    try:
        os.unlink(p)
    except OSError:  # already gone; the original error matters more
        pass
