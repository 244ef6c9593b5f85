"""What we record about the machine a rank ran on (DLIO's host fields and our provenance)."""

from __future__ import annotations

import os
import platform

__all__ = ["proc_dict", "host_memory_bytes", "host_info", "timestamp"]


def timestamp() -> str:
    """Local time in DLIO's format (ISO 8601 with microseconds, no zone)."""
    from datetime import datetime

    return datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%f")


def proc_dict(path: str) -> dict[str, str]:
    """``key: value`` lines of a /proc file as a dict (later lines win, as in DLIO's summary).

    ``processor`` lines are skipped, as DLIO does; a missing file gives ``{}``.
    """
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                key = key.strip()
                if sep and key and key != "processor":
                    out[key] = value.strip()
    except OSError:
        pass
    return out


def host_memory_bytes() -> int:
    """Total physical memory of this host in bytes."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def host_info() -> dict:
    """This host's CPU count, processor name, memory and the parsed /proc files."""
    return {
        "host_cpu_count": os.cpu_count() or 1,
        "host_processor_name": platform.processor(),
        "host_memory_GB": host_memory_bytes() / 2**30,
        "host_cpuinfo": proc_dict("/proc/cpuinfo"),
        "host_meminfo": proc_dict("/proc/meminfo"),
    }
