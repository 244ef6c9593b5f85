"""Cold checkpoint reads: how much of a checkpoint a node's page cache holds, and the optional page-cache drop.

A load right after a save reads RAM, not the device (DLIO issue #277). Before every load each rank evicts the
files it will read (``POSIX_FADV_DONTNEED``, :func:`~dlio_core.checkpoint.transfer.drop_cache`: on every node,
since each rank runs where it reads) and then measures, with ``mincore(2)``, how many of their bytes are still
in its node's page cache (:func:`resident_bytes`): pages another process maps stay, and so does anything the
kernel chose to keep (dirty pages of a save without ``fsync`` are written back first, outside the clock). The load's record says how many bytes were resident when it
started, so a reader knows whether the load could have been served from memory.

``checkpoint.drop_page_cache: True`` also drops the whole page cache of every node before each load (the lowest
rank of each host runs ``sync; echo 3 > /proc/sys/vm/drop_caches``, as MLPerf's rules ask between phases):
as root, or through ``sudo -n`` (never a password prompt that could hang), in a child process bounded by
``checkpoint.drop_page_cache_timeout_s``. Where that is not permitted (no root, a read-only ``/proc/sys`` in a
container) the run goes on with the per-file eviction and says why the drop did not happen.

Object stores have no client page cache: their files count as not resident (a server's own cache is not
visible from here).

Example:
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "f"); _ = open(p, "wb").write(b"x" * 100_000)
    >>> resident_file_bytes(p) > 0  # just written: in the page cache
    True
    >>> drop_page_cache(5, command=["sh", "-c", "echo 'permission denied' >&2; exit 1"])
    (False, 'permission denied')
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import shutil
import signal
import subprocess
from typing import Any

from .hygiene import os_root

__all__ = ["resident_bytes", "resident_file_bytes", "drop_page_cache", "DROP_CACHES", "DEFAULT_DROP_TIMEOUT_S"]

DROP_CACHES = "/proc/sys/vm/drop_caches"
DEFAULT_DROP_TIMEOUT_S = 60.0
_WINDOW = 1 << 30  # mapped at a time: the residency vector stays at 256 KiB whatever the file size
_PAGE = mmap.PAGESIZE


def _libc() -> Any:
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        lib.mmap.restype = ctypes.c_void_p
        lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                             ctypes.c_long]
        lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        lib.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
        return lib
    except (OSError, AttributeError):
        return None


_LIBC = _libc()
_MAP_FAILED = ctypes.c_void_p(-1).value


def resident_file_bytes(path: str) -> int | None:
    """Bytes of the local file ``path`` now in the page cache (whole pages, capped at its size); None where
    ``mincore`` is not available or the file cannot be mapped."""
    if _LIBC is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        pages = 0
        for offset in range(0, size, _WINDOW):
            length = min(_WINDOW, size - offset)
            addr = _LIBC.mmap(None, length, mmap.PROT_READ, mmap.MAP_SHARED, fd, offset)
            if addr in (None, _MAP_FAILED):
                return None
            try:
                vec = (ctypes.c_ubyte * ((length + _PAGE - 1) // _PAGE))()
                if _LIBC.mincore(ctypes.c_void_p(addr), length, vec) != 0:
                    return None
                pages += sum(b & 1 for b in bytes(vec))
            finally:
                _LIBC.munmap(ctypes.c_void_p(addr), length)
        return min(pages * _PAGE, size)
    finally:
        os.close(fd)


def resident_bytes(storage: Any, path: str) -> int | None:
    """Bytes of ``path`` (a file, or every file under a framework's folder) in this node's page cache.

    0 on object stores (no client page cache); None when some file cannot be measured."""
    root = os_root(storage)
    if root is None:
        return 0
    p = os.path.join(root, path)
    files = [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs] if os.path.isdir(p) else [p]
    total = 0
    for f in files:
        n = resident_file_bytes(f)
        if n is None:
            return None
        total += n
    return total


def _command() -> list[str] | None:
    script = f"sync && echo 3 > {DROP_CACHES}"
    if os.geteuid() == 0:
        return ["sh", "-c", script]
    if shutil.which("sudo"):
        return ["sudo", "-n", "sh", "-c", script]  # -n: fail at once rather than ask for a password
    return None


def drop_page_cache(timeout_s: float = DEFAULT_DROP_TIMEOUT_S, *, command: list[str] | None = None
                    ) -> tuple[bool, str]:
    """Drop this node's page cache (``sync``, then ``3 > /proc/sys/vm/drop_caches``) in a child process that
    may run at most ``timeout_s``; ``(True, "")`` when done, else ``(False, why)`` in one line.

    ``command`` replaces the drop (tests). Standard input is closed, so nothing can wait for a password."""
    if command is None:
        if not os.path.exists(DROP_CACHES):
            return False, f"this system has no {DROP_CACHES}"
        command = _command()
        if command is None:
            return False, f"writing {DROP_CACHES} needs root or passwordless sudo"
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    except OSError as e:
        return False, f"cannot run {command[0]}: {e.strerror}"
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: sync or sudo under it too
        except (ProcessLookupError, PermissionError):
            pass
        proc.communicate()
        return False, f"it did not finish within {timeout_s:g} s (checkpoint.drop_page_cache_timeout_s)"
    if proc.returncode != 0:
        lines = [x.strip() for x in (err or "").splitlines() if x.strip()]
        return False, lines[-1] if lines else f"{command[0]} exited with {proc.returncode}"
    return True, ""
