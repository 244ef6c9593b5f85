"""Reading a local file by ranges through one open descriptor (``LocalStorage.open_ranged``), and the
``preadv`` loop that ``LocalStorage.read_into`` shares with it.

A ranged reader (parquet column chunks, indexed binary runs) reads many spans of one file per batch:
opening and closing the file for each span cost as much as the reads (1,392 opens in 18 dlrm
batches). :class:`LocalRangedFile` opens the file at its first read and keeps it until ``close``.

Example:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "f.bin")
    >>> with open(p, "wb") as f: _ = f.write(b"abcdef")
    >>> with LocalRangedFile(p) as f:
    ...     buf = bytearray(2); f.read_into(buf, 1), bytes(buf), f.read_into(buf, 4), bytes(buf)
    (2, b'bc', 2, b'ef')
"""

from __future__ import annotations

import os
from typing import Any

from dlio_core.storage.backend import StorageError
from dlio_core.storage.osio import as_byte_view, os_error

__all__ = ["LocalRangedFile", "pread_full", "byte_view", "O_RDONLY"]

O_RDONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_HAS_PREADV = hasattr(os, "preadv")
# Linux moves at most 0x7ffff000 bytes per read/write call; larger requests come back short.
_MAX_IO = 0x7FFFF000


def byte_view(buffer: Any, p: str) -> memoryview:
    """A writable flat byte view of ``buffer``; a ``StorageError`` naming ``p`` when it cannot be one."""
    try:
        mv = buffer if type(buffer) is memoryview else memoryview(buffer)
    except TypeError:
        mv = None
    if mv is None or mv.format != "B" or mv.ndim != 1 or not mv.c_contiguous:  # the rest: as_byte_view's checks
        try:
            mv = as_byte_view(buffer)
        except (TypeError, ValueError, BufferError) as e:
            raise StorageError(f"read_into {p}: the destination must be a C-contiguous buffer ({e})") from None
    if mv.readonly:
        raise StorageError(f"read_into {p}: the destination buffer is read-only")
    return mv


def pread_full(fd: int, mv: memoryview, offset: int) -> int:
    """Fill ``mv`` from byte ``offset`` of ``fd`` until it is full or the file ends; the bytes read.
    One ``preadv`` unless the kernel returns short (``OSError`` passes through)."""
    want = mv.nbytes
    if want <= _MAX_IO and _HAS_PREADV:
        got = os.preadv(fd, [mv], offset)
        if got == want or got == 0:
            return got
    else:
        got = 0
    while got < want:
        chunk = mv[got:got + _MAX_IO] if want - got > _MAX_IO else mv[got:]
        if _HAS_PREADV:
            n = os.preadv(fd, [chunk], offset + got)
        else:  # pragma: no cover - platforms without preadv
            os.lseek(fd, offset + got, os.SEEK_SET)
            n = os.readv(fd, [chunk])
        if n == 0:
            break
        got += n
    return got


class LocalRangedFile:
    """One local file read by ranges: opened at the first :meth:`read_into`, kept open until
    :meth:`close` (also a context manager). Errors are ``StorageError``s naming the path, as
    ``LocalStorage.read_into``'s."""

    __slots__ = ("path", "_fd")

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1

    def read_into(self, buffer: Any, offset: int = 0) -> int:
        """Fill the writable ``buffer`` from byte ``offset``; the bytes read (fewer only at end of file)."""
        mv = byte_view(buffer, self.path)
        if self._fd < 0:
            try:
                self._fd = os.open(self.path, O_RDONLY)
            except OSError as e:
                raise os_error("open", self.path, e) from e
        try:
            return pread_full(self._fd, mv, offset)
        except OSError as e:
            raise os_error("read", self.path, e) from e

    def close(self) -> None:
        """Close the descriptor (if the file was opened); a second call does nothing."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __del__(self) -> None:  # a reader dropped without close() (a doctest, a one-off read) leaks no descriptor
        self.close()

    def __enter__(self) -> "LocalRangedFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
