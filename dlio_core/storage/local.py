"""Local file system storage with plain os-level calls (the embedded default backend).

Reads go straight into the caller's buffer with ``os.preadv`` (one host copy: the read itself);
writes land under a hidden temporary name in the target directory and are renamed into place, so a
reader never sees a partial file. Errors are ``StorageError``s that name the path.

Example:
    >>> import tempfile
    >>> st = LocalStorage(tempfile.mkdtemp())
    >>> st.write_atomic("a/b.bin", [b"ab", b"cd"])
    4
    >>> buf = bytearray(8)
    >>> st.read_into("a/b.bin", buf), bytes(buf[:4])
    (4, b'abcd')
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, NoReturn

from dlio_core.storage.backend import Data, ReadIntoRanged, StorageError, split_scheme
from dlio_core.storage.local_ranged import O_RDONLY, LocalRangedFile, byte_view, pread_full
from dlio_core.storage.osio import as_byte_view as _as_byte_view
from dlio_core.storage.osio import os_error as _error
from dlio_core.storage.osio import unlink_quietly as _unlink_quietly
from dlio_core.storage.osio import write_all as _write_all


def _discard(tmp: str, path: str, error: BaseException) -> NoReturn:
    """After ``error`` while writing ``tmp``: the temporary file goes, and ``error`` is raised again (an
    OS error as a StorageError naming ``path``). A plain function, not a context manager: it runs in an
    ``except`` of the write path, which costs nothing until something fails (generation writes a file
    per call)."""
    _unlink_quietly(tmp)
    if isinstance(error, OSError) and not isinstance(error, StorageError):
        raise _error("write", path, error) from error
    raise error

__all__ = ["LocalStorage"]

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_COPY_CHUNK = 8 * 2**20  # put_file/get_file copy in pieces of this size (checkpoints can be large)


class LocalStorage:
    """Files under a root directory.

    Args:
        root: a plain path (relative paths resolve against the current directory, once) or a
            ``file://`` URI.
        options: backend options; none apply to local files, so any given draw a warning.

    Example:
        >>> LocalStorage("file:///tmp").url
        'file:///tmp'
    """

    def __init__(self, root: str, options: Mapping[str, Any] | None = None) -> None:
        scheme, rest = split_scheme(root)
        if scheme not in (None, "file", "local"):
            raise StorageError(f"LocalStorage cannot open {scheme}:// URIs ({root})")
        if scheme is not None and rest.startswith("localhost/"):
            rest = rest[len("localhost"):]
        self.root = os.path.abspath(rest or ".")
        self._prefix = self.root if self.root.endswith("/") else self.root + "/"
        if options:
            # Names only: values may be secrets.
            warnings.warn(f"storage options {sorted(options)} have no effect on local storage ({self.url})",
                          stacklevel=2)

    # Pickling keeps the root only (it is all there is).
    def __repr__(self) -> str:
        return f"LocalStorage({self.root!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalStorage) and other.root == self.root

    def __hash__(self) -> int:
        return hash(("LocalStorage", self.root))

    @property
    def url(self) -> str:
        """The root as a ``file://`` URI."""
        return "file://" + self.root

    def join(self, *parts: str) -> str:
        """``"/"``-joined parts, empty parts dropped (no I/O).

        Example:
            >>> LocalStorage("/tmp").join("train", "", "0", "a.npz")
            'train/0/a.npz'
        """
        joined = "/".join(s for s in (p.strip("/") for p in parts) if s)
        return "/" + joined if parts and parts[0].startswith("/") else joined

    def path(self, path: str) -> str:
        """The absolute OS path for ``path`` (relative to the root, absolute, or ``file://``).

        Example:
            >>> LocalStorage("/tmp").path("a/b")
            '/tmp/a/b'
        """
        scheme, rest = split_scheme(path)
        if scheme is not None:
            if scheme not in ("file", "local"):
                raise StorageError(f"{path} is not a local path (storage root {self.url})")
            return os.path.abspath(rest)
        return path if os.path.isabs(path) else os.path.join(self.root, path)

    def local_path(self, path: str) -> str | None:
        """The OS path of ``path`` (the root itself for ``""``): plain file I/O on it is what this
        storage does.

        Example:
            >>> LocalStorage("/tmp").local_path("a/b"), LocalStorage("/tmp").local_path("")
            ('/tmp/a/b', '/tmp')
        """
        return self.path(path) if path else self.root

    def put_file(self, local_path: str, path: str) -> int:
        """Copy the local file ``local_path`` to ``path`` atomically; return its size in bytes.

        Example:
            >>> import tempfile; st = LocalStorage(tempfile.mkdtemp())
            >>> _ = st.write_atomic("a.bin", b"abc"); st.put_file(st.path("a.bin"), "copy/b.bin")
            3
        """
        try:
            with open(local_path, "rb") as src, self.open_write(path) as dst:
                shutil.copyfileobj(src, dst, _COPY_CHUNK)
                return dst.tell()
        except OSError as e:
            if isinstance(e, StorageError):
                raise
            raise _error("upload", local_path, e) from e

    def get_file(self, path: str, local_path: str) -> int:
        """Copy ``path`` to the local file ``local_path`` through ``read_into`` (so ``direct://`` keeps
        reading with O_DIRECT); return its size in bytes.

        Example:
            >>> import os, tempfile; st = LocalStorage(tempfile.mkdtemp())
            >>> _ = st.write_atomic("a.bin", b"abc"); st.get_file("a.bin", os.path.join(st.root, "b", "c.bin"))
            3
        """
        buf = bytearray(min(_COPY_CHUNK, max(self.size(path), 1)))
        done = 0
        try:
            os.makedirs(os.path.dirname(local_path) or ".", exist_ok=True)
            with open(local_path, "wb") as out:
                while n := self.read_into(path, buf, offset=done):
                    out.write(memoryview(buf)[:n])
                    done += n
                    if n < len(buf):
                        break
        except OSError as e:
            if isinstance(e, StorageError):
                raise
            raise _error("download to", local_path, e) from e
        return done

    def list_files(self, prefix: str = "", suffix: str = "") -> list[tuple[str, int]]:
        """Sorted ``(relpath, size_bytes)`` of every file under ``prefix`` ending with ``suffix``.

        One recursive ``os.scandir`` walk; a missing prefix gives ``[]``. Our own in-flight
        temporary files (``.name.tmp-*``) are skipped.

        Example:
            >>> import tempfile; st = LocalStorage(tempfile.mkdtemp())
            >>> _ = st.write_atomic("d/x.npz", b"1"); st.list_files("d", ".npz")
            [('d/x.npz', 1)]
        """
        top = self.path(prefix) if prefix else self.root
        out: list[tuple[str, int]] = []
        stack = [top]
        while stack:
            d = stack.pop()
            try:
                it = os.scandir(d)
            except FileNotFoundError:
                if d == top:
                    return []
                continue  # removed while we walked
            except OSError as e:
                raise _error("list", d, e) from e
            with it:
                for entry in it:
                    name = entry.name
                    try:
                        if entry.is_dir():
                            stack.append(entry.path)
                            continue
                        if not name.endswith(suffix) or (name.startswith(".") and ".tmp-" in name):
                            continue
                        size = entry.stat().st_size
                    except FileNotFoundError:
                        continue
                    except OSError as e:
                        raise _error("stat", entry.path, e) from e
                    out.append((os.path.relpath(entry.path, self.root).replace(os.sep, "/"), size))
        out.sort()
        return out

    def size(self, path: str) -> int:
        """Size of one file in bytes."""
        p = self.path(path)
        try:
            return os.stat(p).st_size
        except OSError as e:
            raise _error("stat", p, e) from e

    def read_into(self, path: str, buffer: Any, offset: int = 0) -> int:
        """Read from byte ``offset`` into the writable ``buffer`` until it is full or the file ends.

        Returns the bytes read. Uses ``os.open`` + ``os.preadv`` and loops on short reads. This is the
        engine's hot path (one call per whole-file sample): a flat byte ``memoryview`` and a plain
        relative or absolute path take the shortest route (no regex, no ``os.path.join``, no copy).
        """
        if path[:1] == "/":
            p = path
        elif "://" in path or not path:
            p = self.path(path)
        else:
            p = self._prefix + path  # what os.path.join(root, path) gives for a relative path
        mv = byte_view(buffer, p)
        try:
            fd = os.open(p, O_RDONLY)
        except OSError as e:
            raise _error("open", p, e) from e
        try:
            return pread_full(fd, mv, offset)
        except OSError as e:
            raise _error("read", p, e) from e
        finally:
            os.close(fd)

    def open_ranged(self, path: str) -> Any:
        """``path`` for many ranged reads: an object with ``read_into(buffer, offset)`` and ``close()``
        that keeps the file open between reads (``read_into`` opens and closes it per call). A subclass
        with its own ``read_into`` (``direct://``) gets the generic one, which calls that.

        Example:
            >>> import tempfile; st = LocalStorage(tempfile.mkdtemp()); _ = st.write_atomic("a.bin", b"abcd")
            >>> f = st.open_ranged("a.bin"); buf = bytearray(2)
            >>> f.read_into(buf, 2), bytes(buf), f.close()
            (2, b'cd', None)
        """
        if type(self).read_into is not LocalStorage.read_into:
            return ReadIntoRanged(self, path)
        return LocalRangedFile(self.path(path))

    def read(self, path: str) -> bytes:
        """The whole file as bytes."""
        p = self.path(path)
        try:
            with open(p, "rb", buffering=0) as f:
                return f.read()
        except OSError as e:
            raise _error("read", p, e) from e

    def _temp_name(self, p: str) -> str:
        d, slash, name = p.rpartition("/")  # p is absolute (self.path)
        return f"{d}{slash}.{name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"

    def _open_temp(self, p: str) -> tuple[int, str]:
        """Create the hidden temporary file next to ``p``, making parent directories on demand."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC
        tmp = self._temp_name(p)
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileNotFoundError:
            try:
                os.makedirs(os.path.dirname(p), exist_ok=True)
                return os.open(tmp, flags, 0o666), tmp
            except OSError as e:
                raise _error("create", p, e) from e
        except OSError as e:
            raise _error("create", p, e) from e

    def _sync_dir(self, p: str) -> None:
        """Make the rename onto ``p`` durable (fsync its directory)."""
        dfd = os.open(os.path.dirname(p) or ".", os.O_RDONLY | _O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def write_atomic(self, path: str, data: Data, *, fsync: bool = False) -> int:
        """Write a buffer, or a sequence of buffers (one ``writev``), to a temporary name, then
        ``os.replace`` it onto ``path``. Returns the bytes written; on error no file is left.
        """
        p = self.path(path)
        if isinstance(data, (list, tuple)):
            parts = [_as_byte_view(d) for d in data]
        else:
            parts = [_as_byte_view(data)]
        fd, tmp = self._open_temp(p)
        try:
            try:
                n = _write_all(fd, parts)
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, p)
            if fsync:
                self._sync_dir(p)
        except BaseException as e:
            _discard(tmp, p, e)
        return n

    @contextmanager
    def open_write(self, path: str, *, fsync: bool = False) -> Iterator[IO[bytes]]:
        """A seekable binary file that becomes ``path`` when the block exits without error.

        Example:
            >>> import tempfile; st = LocalStorage(tempfile.mkdtemp())
            >>> with st.open_write("x.bin") as f: _ = f.write(b"xyz")
            >>> st.read("x.bin")
            b'xyz'
        """
        p = self.path(path)
        fd, tmp = self._open_temp(p)
        try:
            f = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        try:
            with f:
                yield f
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, p)
            if fsync:
                self._sync_dir(p)
        except BaseException as e:
            _discard(tmp, p, e)

    def makedirs(self, path: str) -> None:
        """Create a directory and its parents (existing ones are fine)."""
        p = self.path(path)
        try:
            os.makedirs(p, exist_ok=True)
        except OSError as e:
            raise _error("create directory", p, e) from e

    def exists(self, path: str) -> bool:
        """Whether the file or directory exists."""
        return os.path.exists(self.path(path))

    def delete(self, path: str, *, missing_ok: bool = False) -> None:
        """Delete a file, or a whole directory tree."""
        p = self.path(path)
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        except FileNotFoundError as e:
            if not missing_ok:
                raise _error("delete", p, e) from e
        except OSError as e:
            raise _error("delete", p, e) from e

