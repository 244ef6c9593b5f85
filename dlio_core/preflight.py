"""Sizes checked against the machine before generation starts: one file must fit in memory (a file is
built as one array, then serialised), and the dataset on local disk must fit in the free space.

Without these, ``record_length_bytes: 1e12`` ended in a ``MemoryError`` traceback (931 GiB for one
file) and a dataset larger than its disk in ``ENOSPC`` part-way through. The errors name the keys
and the figures, before a byte is written.

Example:
    >>> check_file_memory(largest_file_bytes=2**40, keys="dataset.record_length_bytes=1e12", available=2**34)
    Traceback (most recent call last):
    ...
    dlio_core.manifest.DatasetError: one file of this dataset is 1 TiB (dataset.record_length_bytes=1e12), and generation builds each file in memory about 2 times over, but 16 GiB of memory is available; lower the record or file size
    >>> writer_threads(8, largest_file_bytes=2**30, available=2**32)
    2
"""

from __future__ import annotations

import os
import shutil

from dlio_core.manifest import DatasetError

__all__ = ["available_memory_bytes", "memory_to_check", "check_file_memory", "writer_threads", "check_free_space", "human_bytes"]

# Copies of a file held while it is written: the array, and the format's serialised bytes.
WRITE_COPIES = 2
# Files in flight (copies x largest file x writer threads) below this need no memory check: reading the
# available memory costs 0.1-0.2 ms a call (0.1 ms of /proc/meminfo, more for a cgroup), a few percent of
# generating 32 small files, and no machine that runs Python lacks 64 MiB.
MEMORY_CHECK_FLOOR = 64 << 20


def human_bytes(n: float) -> str:
    """``1.5 GiB``: binary units, three significant figures.

    Example:
        >>> human_bytes(931 * 2**30), human_bytes(512)
        ('931 GiB', '512 B')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def available_memory_bytes() -> int | None:
    """Memory this process may still use: ``MemAvailable``, lowered by a cgroup (v2 or v1) limit; None
    when neither is known.

    Example:
        >>> available_memory_bytes() is None or available_memory_bytes() > 0
        True
    """
    found: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError):
        pass
    for limit_path, usage_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_path, encoding="ascii") as fh:
                limit = fh.read().strip()
            with open(usage_path, encoding="ascii") as fh:
                usage = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" or a huge v1 number: no limit
            found.append(max(int(limit) - usage, 0))
        break
    return min(found) if found else None


def memory_to_check(in_flight_bytes: int) -> int | None:
    """``available_memory_bytes()`` when ``in_flight_bytes`` reach ``MEMORY_CHECK_FLOOR``, else None (too
    small to matter: the checks below then pass and keep every thread).

    Example:
        >>> memory_to_check(1 << 20) is None
        True
    """
    return available_memory_bytes() if in_flight_bytes >= MEMORY_CHECK_FLOOR else None


def check_file_memory(*, largest_file_bytes: int, keys: str, available: int | None) -> None:
    """``DatasetError`` when one file, built in memory, cannot fit in ``available`` bytes."""
    need = WRITE_COPIES * largest_file_bytes
    if available is not None and need > available:
        raise DatasetError(
            f"one file of this dataset is {human_bytes(largest_file_bytes)} ({keys}), and generation builds each "
            f"file in memory about {WRITE_COPIES} times over, but {human_bytes(available)} of memory is available; "
            f"lower the record or file size")


def writer_threads(requested: int, *, largest_file_bytes: int, available: int | None) -> int:
    """As many writer threads as asked, but no more than memory holds files in flight (at least 1)."""
    if available is None or largest_file_bytes <= 0:
        return requested
    return max(1, min(requested, available // (WRITE_COPIES * largest_file_bytes)))


def check_free_space(folder: str, *, need_bytes: int, keys: str, reusable_bytes: int = 0) -> None:
    """``DatasetError`` when ``need_bytes`` will not fit on the file system of the local ``folder``
    (its nearest existing parent), counting ``reusable_bytes`` of files that will be replaced.

    Example:
        >>> try:
        ...     check_free_space("/no/such/dir", need_bytes=2**70, keys="dataset.num_files_train=1e9")
        ... except DatasetError as e:
        ...     str(e)[:70]
        'the dataset needs 1.05e+06 PiB (dataset.num_files_train=1e9) but the f'
    """
    probe = os.path.abspath(folder)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return
    if need_bytes > free + reusable_bytes:
        raise DatasetError(
            f"the dataset needs {human_bytes(need_bytes)} ({keys}) but the file system of {folder} has "
            f"{human_bytes(free)} free{f' (+{human_bytes(reusable_bytes)} in files it replaces)' if reusable_bytes else ''}; "
            f"free some space, lower the file count or size, or choose another dataset.data_folder")
