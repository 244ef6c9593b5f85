"""Nothing torn, nothing left behind: temporary names and the sweep of a killed writer's leftovers.

Every checkpoint byte is written under a hidden temporary name first -- ``.{name}.tmp-{pid}-{hex}`` next to
its final name, the pattern :class:`~dlio_core.storage.local.LocalStorage` uses for ``open_write`` (a file)
and that framework mechanisms use for their work directories -- and renamed into place only when complete.
Listings skip such names, loads open only the names the plan gives, and a checkpoint counts only once its
commit marker exists, so a temporary is never mistaken for data.

A writer killed with ``kill -9`` cannot remove its temporary (an 830 MB ``.tmp`` once outlived a later run
that rewrote the same checkpoint). :func:`sweep` removes them: the engine calls it on rank 0 when it starts
(every ``global_epoch*`` folder under the checkpoint root) and before each save (that checkpoint's folder),
before any rank of the run has written, so whatever it finds was left by an earlier run. Object stores need
no sweep: an interrupted upload is an uncommitted multipart upload (or uncommitted blocks), never an object.
Local stages for remote checkpoints live in the system temp folder as ``dl-driver-ckpt-stage-{pid}-*`` and
:func:`sweep_stages` removes those whose process is gone.

Example:
    >>> import os, tempfile
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> os.makedirs(st.local_path("global_epoch1_step1"))
    >>> _ = open(st.local_path("global_epoch1_step1/.model_states-0.pt.tmp-123-abcd1234"), "wb").write(b"x" * 10)
    >>> is_temporary(".model_states-0.pt.tmp-123-abcd1234"), sweep(st)
    (True, (1, 10))
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from typing import Any

__all__ = ["is_temporary", "temp_name", "os_root", "sweep", "sweep_stages", "make_stage", "STAGE_PREFIX"]

_TEMP = re.compile(r"^\..+\.tmp-\d+-[0-9a-f]+$")
STAGE_PREFIX = "dl-driver-ckpt-stage-"


def is_temporary(name: str) -> bool:
    """Whether a file or folder name is a writer's temporary (``.{name}.tmp-{pid}-{hex}``)."""
    return bool(_TEMP.match(name))


def temp_name(name: str) -> str:
    """A fresh temporary name for ``name`` (a bare name, no folder).

    >>> is_temporary(temp_name("x.orbax"))
    True
    """
    return f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"


def os_root(storage: Any) -> str | None:
    """The OS folder behind ``storage`` when it is a local file system (``direct://`` included), else None."""
    from dlio_core.storage.local import LocalStorage

    if isinstance(storage, LocalStorage):
        return storage.root
    return storage.local_path("")


def _size(path: str) -> int:
    if os.path.isdir(path) and not os.path.islink(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs
                   if not os.path.islink(os.path.join(d, f)))
    return os.lstat(path).st_size


def sweep(storage: Any, folder: str = "") -> tuple[int, int]:
    """Remove writers' temporaries in ``folder`` (or, for ``""``, in every folder directly under the root);
    return ``(entries removed, bytes freed)``. Local file systems only; elsewhere ``(0, 0)``."""
    root = os_root(storage)
    if root is None:
        return 0, 0
    base = os.path.join(root, folder) if folder else root
    folders = [base] if folder else [base] + [e.path for e in _scan(base) if e.is_dir(follow_symlinks=False)
                                              and not is_temporary(e.name)]
    removed = freed = 0
    for d in folders:
        for e in _scan(d):
            if not is_temporary(e.name):
                continue
            try:
                n = _size(e.path)
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path)
                else:
                    os.unlink(e.path)
            except FileNotFoundError:
                continue  # another sweeper (a concurrent job) got there first
            removed += 1
            freed += n
    return removed, freed


def _scan(path: str) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def make_stage(base: str | None = None) -> str:
    """A fresh local stage folder ``{tmp}/dl-driver-ckpt-stage-{pid}-{hex}`` (for remote checkpoints)."""
    return tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=base)


def sweep_stages(base: str | None = None) -> int:
    """Remove local stages of processes that no longer run on this host; return how many."""
    base = base or tempfile.gettempdir()
    removed = 0
    for e in _scan(base):
        m = re.match(rf"^{re.escape(STAGE_PREFIX)}(\d+)-", e.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            shutil.rmtree(e.path, ignore_errors=True)
            removed += 1
    return removed
