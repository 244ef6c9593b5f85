"""Early writeback for fsync'd checkpoint files: the device writes one piece while the next is made.

A checkpoint written through the page cache and then ``fsync``'d does its work in two serial phases: every piece
is copied into the page cache (and, for ``raw``, generated first), then ``fsync`` waits while all of it goes to
the device. Below the kernel's dirty thresholds nothing starts the device earlier, so the device idles during
the first phase and the CPU during the second. :class:`Writeback` asks the kernel to start writing each piece
as soon as it is in the page cache (``sync_file_range(SYNC_FILE_RANGE_WRITE)``: it queues the writes and
returns), so the device writes piece ``i`` while the writer makes and copies piece ``i + 1``. Durability is
unchanged: the writer still calls ``fsync`` at the end (``sync_file_range`` neither waits nor flushes the
device's cache nor writes metadata); that ``fsync`` now finds most pages written already.

It is only a hint: where ``sync_file_range`` does not exist (not Linux) or the descriptor does not support it
(a pipe, a socket, a closed descriptor), :class:`Writeback` turns itself off and the file is written as before.

Example:
    >>> import os, tempfile
    >>> fd = os.open(os.path.join(tempfile.mkdtemp(), "f"), os.O_WRONLY | os.O_CREAT)
    >>> wb = Writeback(fd, min_bytes=8192)
    >>> os.write(fd, b"x" * 8192)
    8192
    >>> wb.wrote(8192); wb.offset, wb.queued, wb.active or wb.reason != ""
    (8192, 8192, True)
    >>> os.close(fd)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

__all__ = ["Writeback", "writeback_for", "SYNC_FILE_RANGE_WRITE", "MIN_RANGE_BYTES"]

SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>: start writeback of dirty pages in the range, do not wait


def _sync_file_range() -> Any:
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE = _sync_file_range()


MIN_RANGE_BYTES = 8 << 20  # writeback asked for in ranges of at least this much


class Writeback:
    """Starts the device writing each range of ``fd`` as the writer finishes it (see the module doc).

    ``wrote(n)`` after writing ``n`` bytes sequentially; ``offset`` is where the next piece starts. Ranges shorter
    than ``min_bytes`` wait for the next ones (``queued`` is where the next request starts): ext4 allocates a
    delayed-allocation file's blocks when writeback starts, and 2 MiB requests left a 0.5 GiB file in 11 extents
    where 8 MiB ones left 5. ``active`` is False once the kernel refused (``reason`` says why); later calls then
    do nothing.
    """

    def __init__(self, fd: int, offset: int = 0, min_bytes: int = MIN_RANGE_BYTES) -> None:
        self.fd, self.offset, self.queued, self.min_bytes = fd, offset, offset, min_bytes
        self.active = _SYNC_FILE_RANGE is not None
        self.reason = "" if self.active else "sync_file_range is not available on this platform"

    def wrote(self, nbytes: int) -> None:
        """The ``nbytes`` after ``offset`` are written: queue them to the device once ``min_bytes`` are waiting
        (the call does not wait for the device)."""
        self.offset += nbytes
        start, length = self.queued, self.offset - self.queued
        if not self.active or length < self.min_bytes:
            return
        self.queued = self.offset
        # ctypes releases the GIL for the call: a producer thread keeps generating meanwhile
        if _SYNC_FILE_RANGE(self.fd, start, length, SYNC_FILE_RANGE_WRITE) != 0:
            err = ctypes.get_errno()
            self.active, self.reason = False, f"sync_file_range: {os.strerror(err)}"


def writeback_for(f: Any, enabled: bool) -> Writeback | None:
    """A :class:`Writeback` for the writable ``f`` when ``enabled`` (an fsync'd save) and ``f`` is a local file
    (it has an OS descriptor); None otherwise (object-store uploads, ``fsync: False``).

    >>> import io
    >>> writeback_for(io.BytesIO(), True) is None
    True
    """
    if not enabled or _SYNC_FILE_RANGE is None:
        return None
    try:
        fd = f.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return None
    return Writeback(fd) if isinstance(fd, int) and fd >= 0 else None
