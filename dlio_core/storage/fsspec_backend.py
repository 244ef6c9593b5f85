"""The Storage protocol over an fsspec async file system (the base of the S3, Azure and GCS backends).

The client's life (lazy, per process, fork-safe, never pickled), retries and redaction are
:class:`~dlio_core.storage.client.LazyClient`'s. Here:

* **One loop, many requests in flight.** Every call is a coroutine submitted to fsspec's I/O loop
  thread. Reader threads block on their own request while the loop multiplexes all of them, so
  ``read_threads`` requests really are concurrent (measured in tests/integration/test_storage_s3.py
  through a latency-adding proxy, and against raw boto3 threads in benchmarks/object_store.py).
* **Objects appear whole.** ``write_atomic`` is one PUT (or a multipart upload completed at the end);
  ``open_write`` aborts the upload when the block raises, so nothing partial is ever visible.

Subclasses say how options become client kwargs (``_client_kwargs``), how to create a missing
bucket or container (``_create_root``), and may stream ranged reads straight into the caller's
buffer (``_read_into_async``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from dlio_core.storage.backend import Data, StorageError, StorageNotFoundError
from dlio_core.storage.client import LazyClient, byte_view

__all__ = ["FsspecStorage", "byte_view"]

# Objects above this size are written through a streaming (multipart) writer instead of one PUT,
# so a large checkpoint is not joined into one more in-memory copy.
_STREAM_WRITE_BYTES = 64 * 2**20
_WRITE_CHUNK = 8 * 2**20


class FsspecStorage(LazyClient):
    """Files under ``scheme://bucket/prefix`` through an fsspec async file system.

    Not used directly: :class:`~dlio_core.storage.s3.S3Storage`, :class:`~dlio_core.storage.azure.AzureStorage`
    and :class:`~dlio_core.storage.gcs.GCSStorage` fill in the client. Every public method takes a
    path relative to the root (or a full URI of the same scheme).
    """

    # -- the Storage protocol --------------------------------------------------------------------
    def join(self, *parts: str) -> str:
        """``"/"``-joined parts, empty parts dropped (no I/O).

        Example:
            >>> FsspecStorage.join(None, "train", "", "0", "a.npz")
            'train/0/a.npz'
        """
        return "/".join(s for s in (p.strip("/") for p in parts) if s)

    def list_files(self, prefix: str = "", suffix: str = "") -> list[tuple[str, int]]:
        """Sorted ``(relpath, size_bytes)`` of every object under ``prefix`` ending with ``suffix``.

        One recursive ``find``: paginated flat list calls (1,000 keys a page on S3), never a
        request per object. A missing prefix gives ``[]``.
        """
        top = self._full(prefix) if prefix else self._base

        async def go(fs: Any) -> Any:
            return await fs._find(top, detail=True)

        found = self._run("list", prefix or "", go)
        cut = len(self._base) + 1
        out = []
        for p, info in found.items():
            if info.get("type") == "directory" or not p.endswith(suffix) or not p.startswith(self._base + "/"):
                continue
            out.append((p[cut:], int(info.get("size") or 0)))
        out.sort()
        return out

    def size(self, path: str) -> int:
        """Size of one object in bytes."""
        full = self._full(path)

        async def go(fs: Any) -> Any:
            return await fs._info(full)

        info = self._run("stat", path, go)
        if info.get("type") == "directory":
            raise StorageError(f"cannot stat {self.uri(path)}: it is a prefix (directory), not an object")
        return int(info["size"])

    async def _read_into_async(self, fs: Any, full: str, mv: memoryview, offset: int) -> int:
        """Default ranged read: one ranged GET, then one copy into the caller's buffer."""
        data = await fs._cat_file(full, start=offset, end=offset + mv.nbytes)
        n = len(data)
        mv[:n] = data
        return n

    def read_into(self, path: str, buffer: Any, offset: int = 0) -> int:
        """Fill ``buffer`` from byte ``offset`` of ``path`` with one ranged GET; return the bytes read
        (fewer than ``len(buffer)`` only at the end of the object)."""
        full = self._full(path)
        mv = byte_view(buffer, self.uri(path))
        if mv.nbytes == 0:
            return 0
        return self._run("read", path, lambda fs: self._read_into_async(fs, full, mv, offset))

    async def _read_async(self, fs: Any, full: str) -> bytes:
        return await fs._cat_file(full)

    def read(self, path: str) -> bytes:
        """The whole object."""
        full = self._full(path)
        return bytes(self._run("read", path, lambda fs: self._read_async(fs, full)))

    def _ensure_root(self) -> None:
        """Create the bucket/container once per process when it is missing (generation, checkpoints)."""
        if self._root_ready:
            return
        bucket = self._base.split("/", 1)[0]

        async def go(fs: Any) -> None:
            if not await fs._exists(bucket):
                await self._create_root(fs, bucket)

        self._run("create the bucket of", self._url.split("://", 1)[0] + "://" + bucket, go)
        self._root_ready = True

    def write_atomic(self, path: str, data: Data, *, fsync: bool = False) -> int:
        """Upload ``data`` (a buffer or a sequence of buffers) as one object; it is visible only once
        the upload completed (a PUT, or a multipart upload completed at the end). ``fsync`` needs
        nothing more here: a completed upload is durable."""
        parts = [memoryview(d).cast("B") if not isinstance(d, bytes) else d
                 for d in (data if isinstance(data, (list, tuple)) else [data])]
        total = sum(len(p) for p in parts)
        if total > _STREAM_WRITE_BYTES:
            with self.open_write(path) as f:
                for p in parts:
                    mv = memoryview(p)
                    for i in range(0, len(mv), _WRITE_CHUNK):
                        f.write(mv[i:i + _WRITE_CHUNK])
            return total
        blob = parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)
        self._ensure_root()
        full = self._full(path)

        async def go(fs: Any) -> None:
            await fs._pipe_file(full, blob)

        self._run("write", path, go)
        return total

    @contextmanager
    def open_write(self, path: str, *, fsync: bool = False) -> Iterator[IO[bytes]]:
        """A write-only (not seekable) file whose bytes become ``path`` when the block exits normally;
        on an exception the upload is aborted and nothing appears."""
        self._ensure_root()
        full = self._full(path)
        try:
            f = self.fs.open(full, "wb")
        except Exception as e:
            raise StorageError(f"cannot write {self.uri(path)}: {self._scrub(e)}") from None
        try:
            yield f
        except BaseException:
            _discard(f)
            raise
        try:
            f.close()
        except Exception as e:
            _discard(f)
            raise StorageError(f"cannot write {self.uri(path)}: {type(e).__name__}: {self._scrub(e)}") from None

    def put_file(self, local_path: str, path: str) -> int:
        """Upload a local file (multipart for large ones); returns its size."""
        self._ensure_root()
        full = self._full(path)

        async def go(fs: Any) -> None:
            await fs._put_file(local_path, full)

        self._run("upload to", path, go, deadline=False)
        return os.path.getsize(local_path)

    def get_file(self, path: str, local_path: str) -> int:
        """Download one object to a local file; returns its size."""
        full = self._full(path)
        os.makedirs(os.path.dirname(local_path) or ".", exist_ok=True)

        async def go(fs: Any) -> None:
            await fs._get_file(full, local_path)

        self._run("download", path, go, deadline=False)
        return os.path.getsize(local_path)

    def local_path(self, path: str) -> None:
        """None: objects have no OS path (copy them with ``get_file``)."""
        return None

    def makedirs(self, path: str) -> None:
        """Directories are implicit in object stores; this only makes sure the bucket exists."""
        self._ensure_root()

    def exists(self, path: str) -> bool:
        """Whether ``path`` names an object or a non-empty prefix."""
        full = self._full(path)

        async def go(fs: Any) -> Any:
            return await fs._exists(full)

        return bool(self._run("check", path, go))

    def delete(self, path: str, *, missing_ok: bool = False) -> None:
        """Delete an object, or every object under a prefix (batched deletes; the bucket stays)."""
        full = self._full(path)

        async def go(fs: Any) -> int:
            if await fs._isfile(full):
                await fs._rm_file(full)
                return 1
            keys = [k for k, v in (await fs._find(full, detail=True)).items() if v.get("type") != "directory"]
            if keys:
                await fs._rm(keys)
            return len(keys)

        if self._run("delete", path, go) == 0 and not missing_ok:
            raise StorageNotFoundError(f"cannot delete {self.uri(path)}: not found")



def _discard(f: Any) -> None:
    """Abort an object upload and make sure garbage collection cannot commit it later."""
    try:
        f.discard()
    except Exception:  # best effort: the original error matters more
        pass
    try:
        f.closed = True  # fsspec's __del__ would otherwise close(), i.e. commit, the partial object
    except Exception:
        pass
