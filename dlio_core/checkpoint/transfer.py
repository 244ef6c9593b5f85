"""Moving checkpoint files: streamed writes, reads into one reused buffer, and the page-cache drop.

A file is written chunk by chunk through ``Storage.open_write`` (atomic on close: a hidden temporary name
renamed into place, so a failed or interrupted write leaves no file under the final name) and read back with
``Storage.read_into`` into a caller-owned buffer, so memory stays at one chunk whatever the checkpoint size.

Page cache (DLIO issue #277): loads right after saves are served from RAM. For local files
``drop_cache`` calls ``posix_fadvise(POSIX_FADV_DONTNEED)``, which evicts the file's *clean* pages: after an
fsync'd write every page is clean, so a later load reads from the device. Dirty pages (``fsync: False``,
written moments ago) are not dropped by the kernel, and object stores have no client page cache to drop;
the engine reports per checkpoint whether the advice was applied on every file of every rank. For a
guaranteed cold cache, run ``echo 3 > /proc/sys/vm/drop_caches`` between the phases, as MLPerf's rules say.

Example:
    >>> import tempfile
    >>> from dlio_core.storage import open_storage
    >>> from dlio_core.checkpoint.content import ChunkSource
    >>> st = open_storage(tempfile.mkdtemp())
    >>> write_file(st, "c/a.pt", 100_000, ChunkSource(1 << 16))
    100000
    >>> read_file(st, "c/a.pt", bytearray(1 << 15)), drop_cache(st, "c/a.pt")
    (100000, True)
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from typing import Any

from dlio_core.storage import Storage, StorageError

from .content import ChunkSource

__all__ = ["write_file", "read_file", "drop_cache", "local_path", "checkpoint_storage"]

_FADVISE = getattr(os, "posix_fadvise", None)
_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", None)


def checkpoint_storage(cfg: Any) -> Storage:
    """The storage rooted at ``checkpoint.checkpoint_folder``, resolved like the data folder.

    A URI is used as is; a plain path joins ``storage.storage_root`` for local storage (DLIO's file storage
    joins them the same way); ``storage_type: s3`` means ``s3://{storage_root}/{checkpoint_folder}``.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> cfg = NS(checkpoint=NS(checkpoint_folder="/tmp/ck"), storage=NS(storage_type="local_fs", storage_root="./"))
        >>> checkpoint_storage(cfg).url
        'file:///tmp/ck'
    """
    from dlio_core.listing import dataset_storage

    shim = types.SimpleNamespace(dataset=types.SimpleNamespace(data_folder=cfg.checkpoint.checkpoint_folder),
                                 storage=getattr(cfg, "storage", None))
    return dataset_storage(shim)


def local_path(storage: Storage, path: str) -> str | None:
    """The OS path of ``path`` when ``storage`` is a local file system, else None."""
    return storage.local_path(path)


def drop_cache(storage: Storage, path: str, *, flush: bool = False) -> bool:
    """Ask the kernel to evict ``path``'s clean cached pages; True when the advice was given. With ``flush``
    the file's dirty pages are written back first (``fdatasync``), so they can go too (before loads).

    False for non-local storage, platforms without ``posix_fadvise``, or when the file cannot be opened. A
    folder (a framework mechanism's checkpoint) has every file under it evicted.
    """
    from .hygiene import os_root

    root = os_root(storage)  # direct:// included: a framework reads its folders there through the page cache
    if root is None or _FADVISE is None or _DONTNEED is None:
        return False
    p = os.path.join(root, path)
    if os.path.isdir(p):
        files = [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs]
        return all([_advise(f, flush) for f in files])
    return _advise(p, flush)


def _advise(p: str, flush: bool = False) -> bool:
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return False
    try:
        if flush:
            os.fdatasync(fd)
        _FADVISE(fd, 0, 0, _DONTNEED)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def write_file(storage: Storage, path: str, nbytes: int, source: ChunkSource, *, dtype: str = "int8",
               fsync: bool = False, on_chunk: Callable[[int], None] | None = None) -> int:
    """Write ``nbytes`` of ``source``'s content to ``path`` atomically, one chunk at a time; return bytes written.

    With ``fsync`` the data (and the rename) are flushed to stable storage before the file appears.
    ``on_chunk(n)`` is called after each chunk (progress). Nothing is left under ``path`` on error.
    """
    key = source.file_key(path)
    step = source.chunk_bytes
    done = 0
    with storage.open_write(path, fsync=fsync) as f:
        index = 0
        while done < nbytes:
            n = min(step, nbytes - done)
            written = f.write(source.chunk(path, index, n, dtype=dtype, key=key))
            if written is not None and written != n:  # raw writers may write short; ours are buffered
                raise StorageError(f"short write to {path}: {written} of {n} bytes")
            done += n
            index += 1
            if on_chunk is not None:
                on_chunk(n)
    return done


def read_file(storage: Storage, path: str, buffer: Any, *, on_chunk: Callable[[int], None] | None = None) -> int:
    """Read all of ``path`` through ``buffer`` (reused, overwritten chunk by chunk); return bytes read."""
    mv = memoryview(buffer).cast("B")
    if mv.nbytes == 0:
        raise ValueError("read buffer is empty")
    offset = 0
    while True:
        n = storage.read_into(path, mv, offset)
        offset += n
        if on_chunk is not None and n:
            on_chunk(n)
        if n < mv.nbytes:
            return offset
