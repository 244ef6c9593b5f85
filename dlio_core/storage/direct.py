"""Local files read with ``O_DIRECT`` (``direct:///path``; DLIO's ``reader.odirect: true``).

Direct I/O bypasses the page cache, so a benchmark measures the device and not memory. The kernel
demands that the file offset, the length and the buffer address of each read are multiples of the
logical block size; this module uses 4 KiB, which satisfies every common device. Reads therefore go:

* straight into the caller's buffer when it is aligned (see :func:`aligned_array`) and the offset is
  aligned: no copy at all (the tail past the last whole block goes through a bounce buffer);
* otherwise into a pooled, page-aligned bounce buffer (anonymous ``mmap``, reused across reads, at
  most 16 MiB a read), then one copy into the caller's buffer.

Writes are ordinary buffered, atomic writes (``LocalStorage``): DLIO's option is a reader option.
File systems that refuse ``O_DIRECT`` (tmpfs before Linux 6.6, some FUSE and overlay mounts) give a
clear error at the first read.

Example:
    >>> import tempfile
    >>> st = DirectStorage("direct://" + tempfile.mkdtemp(dir="/var/tmp"))
    >>> st.write_atomic("x.bin", bytes(range(200)) * 50)
    10000
    >>> buf = bytearray(6)
    >>> st.read_into("x.bin", buf, offset=4097), bytes(buf)      # doctest: +SKIP
    (6, b'\\x11\\x12\\x13\\x14\\x15\\x16')
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from dlio_core.storage.backend import StorageError, StorageNotFoundError, split_scheme
from dlio_core.storage.local import LocalStorage

__all__ = ["DirectStorage", "aligned_array", "ALIGN"]

ALIGN = 4096
_BOUNCE = 16 * 2**20
_O_DIRECT = getattr(os, "O_DIRECT", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def aligned_array(nbytes: int, align: int = ALIGN) -> np.ndarray:
    """A uint8 array of ``nbytes`` whose data starts on an ``align`` boundary and whose capacity is
    rounded up to whole blocks (so a direct read into it needs no bounce buffer).

    Example:
        >>> a = aligned_array(10000)
        >>> a.nbytes, a.ctypes.data % ALIGN
        (10000, 0)
    """
    cap = max(align, -(-nbytes // align) * align)
    raw = np.empty(cap + align, dtype=np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start:start + cap][:nbytes]


class _BouncePool:
    """Page-aligned scratch buffers (anonymous mmaps), reused; at most one per concurrent reader."""

    def __init__(self) -> None:
        self._free: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def get(self) -> mmap.mmap:
        with self._lock:
            if self._free:
                return self._free.pop()
        return mmap.mmap(-1, _BOUNCE)

    def put(self, m: mmap.mmap) -> None:
        with self._lock:
            if len(self._free) < 64:  # beyond that, let it be unmapped when the last view goes
                self._free.append(m)


class DirectStorage(LocalStorage):
    """A local directory whose reads use ``O_DIRECT``.

    Args:
        root: ``direct:///abs/path``, ``direct://relative/path`` or a plain path.
        options: none apply (warned, as for local files).

    Example:
        >>> DirectStorage("direct:///tmp").url
        'direct:///tmp'
    """

    def __init__(self, root: str, options: Mapping[str, Any] | None = None) -> None:
        scheme, rest = split_scheme(root)
        if scheme not in (None, "direct"):
            raise StorageError(f"DirectStorage cannot open {scheme}:// URIs ({root})")
        if not _O_DIRECT:
            raise StorageError(f"{root}: this platform has no O_DIRECT; use a plain path (reader.odirect: false)")
        super().__init__(rest or ".", options)
        self._pool = _BouncePool()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_pool"]  # mmaps do not pickle; each process makes its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pool = _BouncePool()

    def __repr__(self) -> str:
        return f"DirectStorage({self.root!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DirectStorage) and other.root == self.root

    def __hash__(self) -> int:
        return hash(("DirectStorage", self.root))

    @property
    def url(self) -> str:
        """The root as a ``direct://`` URI."""
        return "direct://" + self.root

    def path(self, path: str) -> str:
        """The OS path for a relative path, an absolute path, or a ``direct://``/``file://`` URI."""
        scheme, rest = split_scheme(path)
        if scheme == "direct":
            return os.path.abspath(rest)
        return super().path(path)

    def local_path(self, path: str) -> None:
        """None: plain file I/O would read through the page cache, which ``direct://`` is there to avoid
        (so a framework's own reader does not silently replace the O_DIRECT reads).

        Example:
            >>> DirectStorage("direct:///tmp").local_path("a") is None
            True
        """
        return None

    def _open_direct(self, p: str) -> int:
        try:
            return os.open(p, os.O_RDONLY | _O_DIRECT | _O_CLOEXEC)
        except FileNotFoundError as e:
            raise StorageNotFoundError(f"cannot open {p}: {e.strerror}") from None
        except OSError as e:
            if e.errno == errno.EINVAL:
                raise StorageError(
                    f"cannot open {p} with O_DIRECT: its file system refuses direct I/O (tmpfs before Linux 6.6, "
                    f"some FUSE and overlay mounts do); set reader.odirect: false or put the data on a block-device file "
                    f"system") from None
            raise StorageError(f"cannot open {p}: {e.strerror or e}") from None

    def read_into(self, path: str, buffer: Any, offset: int = 0) -> int:
        """Fill ``buffer`` from byte ``offset`` with direct reads; return the bytes read (short only
        at end of file). Zero-copy when ``buffer`` and ``offset`` are block-aligned."""
        p = self.path(path)
        try:
            mv = memoryview(buffer)
            if mv.format != "B" or mv.ndim != 1:
                mv = mv.cast("B")
        except (TypeError, ValueError, BufferError) as e:
            raise StorageError(f"read_into {p}: the destination must be a C-contiguous buffer ({e})") from None
        if mv.readonly:
            raise StorageError(f"read_into {p}: the destination buffer is read-only")
        want = mv.nbytes
        if want == 0:
            return 0
        fd = self._open_direct(p)
        try:
            got = 0
            if offset % ALIGN == 0 and _address(mv) % ALIGN == 0 and want >= ALIGN:
                direct = want - want % ALIGN
                got = _pread_full(fd, mv[:direct], offset)
                if got < direct or got == want:
                    return got
            return got + self._bounce_read(fd, mv[got:], offset + got)
        except OSError as e:
            if e.errno == errno.EINVAL:
                raise StorageError(f"cannot read {p} with O_DIRECT: the file system refused the aligned read "
                                   f"({e.strerror}); set reader.odirect: false") from None
            raise StorageError(f"cannot read {p}: {e.strerror or e}") from None
        finally:
            os.close(fd)

    def _bounce_read(self, fd: int, mv: memoryview, offset: int) -> int:
        """Read ``mv.nbytes`` bytes at ``offset`` through aligned bounce buffers; return bytes copied."""
        want = mv.nbytes
        start = offset - offset % ALIGN
        skip = offset - start
        got = 0
        bounce = self._pool.get()
        try:
            bv = memoryview(bounce)
            while got < want:
                length = min(_BOUNCE, -(-(skip + want - got) // ALIGN) * ALIGN)
                n = _pread_full(fd, bv[:length], start)
                usable = max(0, min(n - skip, want - got))
                mv[got:got + usable] = bv[skip:skip + usable]
                got += usable
                if n < length:
                    break  # end of file
                start += length
                skip = 0
        finally:
            self._pool.put(bounce)
        return got

    def read(self, path: str) -> bytes:
        """The whole file, read with ``O_DIRECT``."""
        buf = aligned_array(self.size(path))
        n = self.read_into(path, buf)
        return buf[:n].tobytes()


def _address(mv: memoryview) -> int:
    return int(np.frombuffer(mv, dtype=np.uint8).ctypes.data) if mv.nbytes else 0


def _pread_full(fd: int, mv: memoryview, offset: int) -> int:
    """``preadv`` until ``mv`` is full or the file ends (direct reads may come back short)."""
    got = 0
    want = mv.nbytes
    while got < want:
        n = os.preadv(fd, [mv[got:]], offset + got)
        if n == 0:
            break
        got += n
        if got % ALIGN:
            break  # a short read that is not block-aligned only happens at end of file
    return got
