"""Framework checkpoints that are folders (``dcp``, ``tf_save``, ``orbax``): written aside, published whole.

A framework writes its folder into a work folder the engine can throw away:

- on a local file system (``direct://`` included) a hidden temporary folder next to the target
  (``{checkpoint}/.{entry}.tmp-{pid}-{hex}/c``), renamed onto ``{checkpoint}/{entry}`` once the framework is
  done (and, with ``fsync``, every file and folder flushed): one rename on one file system;
- on an object store a local stage (``dl-driver-ckpt-stage-{pid}-*`` in the system temp folder), uploaded file
  by file under ``{checkpoint}/{entry}/`` and removed (TensorFlow and Orbax have no Azure support of their own;
  this is the shared local stage).

Either way the checkpoint becomes visible only with the engine's commit marker, written after every rank's
folders are in place. Loads read the folder in place, or download exactly the listed files into a fresh stage
(each name checked to stay inside it) and remove the stage afterwards.

Example:
    >>> import os, tempfile
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> w = WorkFolder(st, "ck/x.orbax")
    >>> _ = open(os.path.join(w.inner, "data"), "wb").write(b"abc")
    >>> w.publish(fsync=True), sorted(os.listdir(st.local_path("ck")))
    (3, ['x.orbax'])
    >>> with fetched(st, "ck/x.orbax") as d:
    ...     os.listdir(d)
    ['data']
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dlio_core.storage.stage import inside

from .hygiene import make_stage, os_root, temp_name
from .mechanisms import Context, Moved
from .records import CheckpointError
from .state import FileSpec

__all__ = ["WorkFolder", "FolderSave", "start_save", "fetched", "fetched_entry", "folder_bytes", "fsync_tree"]


def folder_bytes(path: str) -> int:
    """Bytes of every file under ``path``."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def fsync_tree(path: str) -> None:
    """Flush every file and folder under ``path`` (and ``path``) to stable storage."""
    for d, _, fs in os.walk(path, topdown=False):
        for name in [*fs, ""]:
            fd = os.open(os.path.join(d, name) if name else d, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class WorkFolder:
    """Where a framework writes the folder ``path`` (relative to ``storage``) before it is published.

    ``inner`` is the folder to hand the framework (it exists and is empty)."""

    def __init__(self, storage: Any, path: str) -> None:
        self.storage, self.path = storage, path.strip("/")
        root = os_root(storage)
        if root is not None:
            self.target: str | None = os.path.join(root, self.path)
            parent, name = os.path.split(self.target)
            os.makedirs(parent, exist_ok=True)
            self.work = os.path.join(parent, temp_name(name))
        else:
            self.target = None
            self.work = make_stage()
        self.inner = os.path.join(self.work, "c")
        os.makedirs(self.inner)

    def publish(self, *, fsync: bool = False) -> int:
        """Put ``inner`` in place as ``path``; return the bytes published."""
        try:
            nbytes = folder_bytes(self.inner)
            if self.target is not None:
                if fsync:
                    fsync_tree(self.inner)
                if os.path.lexists(self.target):  # an earlier save of the same checkpoint (its marker is gone)
                    shutil.rmtree(self.target)
                os.replace(self.inner, self.target)
                if fsync:
                    _fsync_dir(os.path.dirname(self.target))  # the rename itself
            else:
                self._upload()
            return nbytes
        finally:
            self.discard()

    def _upload(self) -> None:
        for d, _, fs in os.walk(self.inner):
            for f in sorted(fs):
                local = os.path.join(d, f)
                rel = os.path.relpath(local, self.inner).replace(os.sep, "/")
                self.storage.put_file(local, f"{self.path}/{rel}")

    def discard(self) -> None:
        """Remove the work folder (a failed save leaves nothing)."""
        shutil.rmtree(self.work, ignore_errors=True)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def fetched(storage: Any, path: str, listing: dict[str, int] | None = None) -> Iterator[str]:
    """A local folder holding the published folder ``path``: in place on local file systems, else a stage
    with the listed files downloaded (names that would leave the stage are refused), removed on exit.
    ``listing`` (``{relpath: size}``, rank 0's listing of the checkpoint) spares this rank a listing."""
    root = os_root(storage)
    if root is not None:
        yield os.path.join(root, path.strip("/"))
        return
    stage = make_stage()
    try:
        prefix = path.strip("/") + "/"
        found = listing.items() if listing is not None else storage.list_files(path.strip("/"))
        listed = [(rel, size) for rel, size in found if rel.startswith(prefix)]
        for rel, _ in listed:
            storage.get_file(rel, inside(stage, rel[len(prefix):]))
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


class FolderSave:
    """A framework save in flight: ``wait`` lets the framework finish, publishes the folder, says what moved."""

    def __init__(self, ctx: Context, work: WorkFolder, spec: FileSpec, finish: Callable[[], Any]) -> None:
        self.ctx, self.work, self.spec, self.finish = ctx, work, spec, finish

    def wait(self) -> Moved:
        try:
            self.finish()
            stored = self.work.publish(fsync=self.ctx.fsync)
        except BaseException:
            self.work.discard()
            raise
        if self.ctx.on_chunk is not None:
            self.ctx.on_chunk(self.spec.nbytes)
        return Moved(self.spec.nbytes, stored)


def start_save(ctx: Context, path: str, spec: FileSpec, start: Callable[[str], Callable[[], Any]]) -> FolderSave:
    """Run ``start(folder)`` (the framework begins writing into ``folder`` and returns how to wait for it);
    a failure to start leaves nothing behind."""
    work = WorkFolder(ctx.storage, path)
    try:
        finish = start(work.inner)
    except BaseException:
        work.discard()
        raise
    return FolderSave(ctx, work, spec, finish)


@contextmanager
def fetched_entry(ctx: Context, path: str, required: str, what: str) -> Iterator[tuple[str, int]]:
    """``(local folder, stored bytes)`` of a published folder that holds ``required`` (the file its framework
    writes last); CheckpointError naming ``what`` when it does not (a save that did not finish)."""
    with fetched(ctx.storage, path, ctx.listing) as folder:
        if not os.path.exists(os.path.join(folder, required)):
            raise CheckpointError(f"{ctx.storage.url.rstrip('/')}/{path} has no {what}: its save did not finish; "
                                  "save it again")
        yield folder, folder_bytes(folder)
