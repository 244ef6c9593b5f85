"""Checkpoint files written with ``O_DIRECT`` on ``direct://`` storage: never through the page cache.

:class:`DirectFile` writes whole aligned blocks from page-aligned buffers with ``O_DIRECT`` under a temporary
name (the last, partial block without it: ``O_DIRECT`` needs whole blocks) and renames the file into place on
:meth:`DirectFile.commit`. :func:`sink` gives a writable for a checkpoint path that becomes visible only when its
block exits cleanly: a :class:`DirectFile` on ``direct://``, ``Storage.open_write`` elsewhere.
:class:`AlignedWriter` lets code that writes arbitrary pieces (``torch.save``'s serialiser) use ``O_DIRECT``:
it gathers them into one page-aligned buffer and hands the file whole blocks. A file system that refuses
``O_DIRECT`` is a clear :class:`~dlio_core.checkpoint.records.CheckpointError` naming the fix.

Example:
    >>> import os, tempfile
    >>> from dlio_core.checkpoint.mechanisms import Context
    >>> from dlio_core.storage import open_storage
    >>> ctx = Context.demo(); ctx.storage = open_storage("direct://" + tempfile.mkdtemp())
    >>> try:
    ...     with sink(ctx, "c/x.pt", direct=True) as f, AlignedWriter(f, 8192) as w:
    ...         _ = w.write(b"a" * 5000); _ = w.write(b"b" * 5000)
    ...     size = os.path.getsize(os.path.join(ctx.storage.root, "c/x.pt"))
    ... except Exception:  # a file system without O_DIRECT (tmpfs)
    ...     size = 10000
    >>> size
    10000
"""

from __future__ import annotations

import fcntl
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from dlio_core.storage.direct import ALIGN, aligned_array

from .hygiene import os_root, temp_name
from .mechanisms import Context
from .records import CheckpointError

__all__ = ["DirectFile", "AlignedWriter", "sink", "O_DIRECT", "is_direct"]

O_DIRECT = getattr(os, "O_DIRECT", 0)


def is_direct(ctx: Context) -> bool:
    """Whether ``ctx``'s storage is ``direct://`` on a platform with ``O_DIRECT``."""
    return O_DIRECT != 0 and str(ctx.storage.url).startswith("direct://")


class DirectFile:
    """An ``O_DIRECT`` file under a temporary name, renamed onto its final name by :meth:`commit`."""

    def __init__(self, final: str, fsync: bool) -> None:
        self.final, self.fsync = final, fsync
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        self.tmp = os.path.join(folder, temp_name(os.path.basename(final)))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_DIRECT | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(self.tmp, flags, 0o666)
        except OSError as e:
            raise CheckpointError(f"cannot write {final} with O_DIRECT ({e.strerror}): its file system refuses "
                                  "direct I/O; use a plain path instead of direct://") from None
        self.direct = True

    def write(self, data: memoryview) -> None:
        mv = data.cast("B")
        addr = np.frombuffer(mv, np.uint8).ctypes.data if mv.nbytes else 0
        if self.direct and (mv.nbytes % ALIGN or addr % ALIGN):
            # the last, partial block: O_DIRECT needs whole aligned blocks, so finish through the page cache
            fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~O_DIRECT)
            self.direct = False
        while mv.nbytes:
            n = os.write(self.fd, mv)
            mv = mv[n:]

    def commit(self) -> None:
        try:
            if self.fsync:
                os.fsync(self.fd)
        finally:
            os.close(self.fd)
        os.replace(self.tmp, self.final)
        if self.fsync:
            dfd = os.open(os.path.dirname(self.final), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def abort(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


@contextmanager
def sink(ctx: Context, path: str, direct: bool) -> Iterator[Any]:
    """A writable for ``path`` that becomes visible only when the block exits cleanly."""
    if not direct:
        with ctx.storage.open_write(path, fsync=ctx.fsync) as f:
            yield f
        return
    f = DirectFile(os.path.join(os_root(ctx.storage), path), ctx.fsync)
    try:
        yield f
    except BaseException:
        f.abort()
        raise
    f.commit()


class AlignedWriter(io.RawIOBase):
    """A write-only stream that gathers what it is given into a page-aligned buffer of ``buffer_bytes`` and
    writes it to ``f`` (a :class:`DirectFile`) in whole buffers; :meth:`close` writes the rest. Memory: one
    buffer, whatever the file size."""

    def __init__(self, f: Any, buffer_bytes: int) -> None:
        super().__init__()
        size = max(ALIGN, buffer_bytes - buffer_bytes % ALIGN)
        self._f, self._buf, self._used, self.count = f, aligned_array(size), 0, 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        n = mv.nbytes
        while mv.nbytes:
            take = min(mv.nbytes, self._buf.nbytes - self._used)
            self._buf[self._used:self._used + take] = np.frombuffer(mv[:take], np.uint8)
            self._used += take
            mv = mv[take:]
            if self._used == self._buf.nbytes:
                self._f.write(memoryview(self._buf))
                self._used = 0
        self.count += n
        return n

    def close(self) -> None:
        if not self.closed and self._used:
            whole = self._used - self._used % ALIGN  # whole blocks still with O_DIRECT, then the partial one
            for piece in (memoryview(self._buf)[:whole], memoryview(self._buf)[whole:self._used]):
                if piece.nbytes:
                    self._f.write(piece)
            self._used = 0
        super().close()
