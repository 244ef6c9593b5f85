"""Local staging for code that can only write or read local files (a framework's checkpointer, a
reader with no object-store support): write into a local directory and upload it with a commit
marker, or download a committed directory first.

The marker (``.dl-driver-complete``) is uploaded last and lists every file with its size, so a
reader can tell a complete upload from one that died half-way (object stores have no atomic
directory rename), and :func:`download_stage` refuses a directory without it.

Example:
    >>> import os, tempfile
    >>> from dlio_core.storage import open_storage
    >>> target = open_storage(tempfile.mkdtemp())
    >>> with upload_stage(target, "ckpt/step-10") as d:
    ...     with open(os.path.join(d, "model.bin"), "wb") as f:
    ...         _ = f.write(b"weights")
    >>> sorted(p for p, _ in target.list_files("ckpt/step-10"))
    ['ckpt/step-10/.dl-driver-complete', 'ckpt/step-10/model.bin']
    >>> with download_stage(target, "ckpt/step-10") as d:
    ...     open(os.path.join(d, "model.bin"), "rb").read()
    b'weights'
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from dlio_core.storage.backend import Storage, StorageError, open_storage

__all__ = ["COMMIT_MARKER", "upload_stage", "download_stage", "upload_dir", "download_dir", "is_committed",
           "write_marker", "inside"]

COMMIT_MARKER = ".dl-driver-complete"


def _storage(target: Storage | str, options: Mapping[str, Any] | None) -> Storage:
    return open_storage(target, options) if isinstance(target, str) else target


def _local_files(root: str) -> list[str]:
    out = []
    for d, _dirs, files in os.walk(root):
        for name in files:
            out.append(os.path.relpath(os.path.join(d, name), root).replace(os.sep, "/"))
    return sorted(out)


def upload_dir(local_dir: str, target: Storage | str, prefix: str = "", *, options: Mapping[str, Any] | None = None,
               threads: int = 4) -> dict[str, int]:
    """Upload every file under ``local_dir`` to ``prefix`` of ``target``, then the commit marker.

    Returns ``{relpath: size_bytes}`` of the files uploaded (the marker's content).

    Example:
        >>> import tempfile; from dlio_core.storage import open_storage
        >>> src = tempfile.mkdtemp(); _ = open(f"{src}/a.txt", "w").write("hi")
        >>> upload_dir(src, open_storage(tempfile.mkdtemp()), "out")
        {'a.txt': 2}
    """
    st = _storage(target, options)
    files = [f for f in _local_files(local_dir) if f != COMMIT_MARKER]
    st.makedirs(prefix or "")
    if is_committed(st, prefix):
        st.delete(st.join(prefix, COMMIT_MARKER))  # overwriting: the old marker must not vouch for new files

    def one(rel: str) -> tuple[str, int]:
        return rel, st.put_file(os.path.join(local_dir, rel), st.join(prefix, rel))

    with ThreadPoolExecutor(max(1, min(threads, len(files) or 1)), thread_name_prefix="dl-driver-upload") as ex:
        sizes = dict(ex.map(one, files))
    write_marker(st, prefix, sizes)
    return sizes


def write_marker(target: Storage | str, prefix: str, sizes: Mapping[str, int], *,
                 options: Mapping[str, Any] | None = None, fsync: bool = False) -> None:
    """Commit ``prefix``: write its marker listing ``{relpath: size_bytes}``. Call it only once every
    listed file is in place (``upload_dir`` does; so may code that publishes a local directory by rename).

    Example:
        >>> import tempfile; from dlio_core.storage import open_storage
        >>> st = open_storage(tempfile.mkdtemp())
        >>> write_marker(st, "ckpt-1", {"a.bin": 3}); is_committed(st, "ckpt-1")
        True
    """
    st = _storage(target, options)
    marker = {"version": 1, "files": {str(k): int(v) for k, v in sizes.items()}}
    st.write_atomic(st.join(prefix, COMMIT_MARKER), json.dumps(marker, sort_keys=True).encode(), fsync=fsync)


def is_committed(target: Storage | str, prefix: str = "", *, options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``prefix`` of ``target`` carries a commit marker.

    Example:
        >>> import tempfile; from dlio_core.storage import open_storage
        >>> is_committed(open_storage(tempfile.mkdtemp()), "x")
        False
    """
    st = _storage(target, options)
    return st.exists(st.join(prefix, COMMIT_MARKER))


def inside(local_dir: str, rel: str) -> str:
    """``local_dir``/``rel``, refusing a name (from a marker or a listing) that would land outside ``local_dir``.

    Example:
        >>> inside("/stage", "a/b.bin"), inside("/stage", "../../x")
        Traceback (most recent call last):
        ...
        dlio_core.storage.backend.StorageError: '../../x' names a file outside /stage; refusing to write it
    """
    out = os.path.abspath(os.path.join(local_dir, *rel.split("/")))
    root = os.path.abspath(local_dir)
    if not rel or os.path.isabs(rel) or os.path.commonpath([root, out]) != root or out == root:
        raise StorageError(f"{rel!r} names a file outside {local_dir}; refusing to write it")
    return out


def download_dir(target: Storage | str, prefix: str, local_dir: str, *, options: Mapping[str, Any] | None = None,
                 require_marker: bool = True, threads: int = 4) -> dict[str, int]:
    """Download the files of a committed ``prefix`` into ``local_dir``; returns ``{relpath: size}``.

    With ``require_marker`` (the default) a prefix without a marker is an error, and only the files
    the marker lists are fetched (stray objects of a failed later upload are ignored).
    """
    st = _storage(target, options)
    marker_path = st.join(prefix, COMMIT_MARKER)
    if require_marker:
        try:
            sizes = {str(k): int(v) for k, v in json.loads(st.read(marker_path))["files"].items()}
        except FileNotFoundError:
            raise StorageError(f"{st.url.rstrip('/')}/{prefix.strip('/')} has no {COMMIT_MARKER}: the upload did "
                               f"not complete (or it was not made by upload_stage); refusing to read it") from None
        except (ValueError, KeyError, TypeError) as e:
            raise StorageError(f"{st.url.rstrip('/')}/{marker_path}: unreadable commit marker ({e})") from None
    else:
        cut = len(prefix.strip("/")) + 1 if prefix.strip("/") else 0
        sizes = {p[cut:]: s for p, s in st.list_files(prefix) if not p.endswith(COMMIT_MARKER)}

    targets = {rel: inside(local_dir, rel) for rel in sizes}  # every name checked before any byte is written

    def one(rel: str) -> None:
        st.get_file(st.join(prefix, rel), targets[rel])

    with ThreadPoolExecutor(max(1, min(threads, len(sizes) or 1)), thread_name_prefix="dl-driver-download") as ex:
        list(ex.map(one, sorted(sizes)))
    return sizes


@contextmanager
def upload_stage(target: Storage | str, prefix: str = "", *, options: Mapping[str, Any] | None = None,
                 dir: str | None = None, threads: int = 4) -> Iterator[str]:
    """A fresh local directory; when the block exits normally its files are uploaded to ``prefix``
    of ``target`` and the commit marker is written last. On an exception nothing is uploaded. The
    local directory is removed either way."""
    local = tempfile.mkdtemp(prefix="dl-driver-stage-", dir=dir)
    try:
        yield local
        upload_dir(local, target, prefix, options=options, threads=threads)
    finally:
        shutil.rmtree(local, ignore_errors=True)


@contextmanager
def download_stage(target: Storage | str, prefix: str = "", *, options: Mapping[str, Any] | None = None,
                   dir: str | None = None, require_marker: bool = True, threads: int = 4) -> Iterator[str]:
    """A local directory holding a copy of the committed ``prefix`` of ``target``, removed on exit."""
    local = tempfile.mkdtemp(prefix="dl-driver-stage-", dir=dir)
    try:
        download_dir(target, prefix, local, options=options, require_marker=require_marker, threads=threads)
        yield local
    finally:
        shutil.rmtree(local, ignore_errors=True)
