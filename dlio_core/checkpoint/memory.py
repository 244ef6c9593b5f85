"""Peak resident memory of one checkpoint save or load, measured by the kernel.

Linux keeps a process's peak resident set (``VmHWM`` in ``/proc/self/status``) and resets it to the current
one when ``5`` is written to ``/proc/self/clear_refs`` (Linux 4.0+). :class:`PeakMemory` resets it before a
phase and reads it after, so ``grew_bytes`` is how far the phase pushed memory above where it started:
about one piece (or a small ring of them) for ``raw`` and ``stream``, the tensors plus the framework's
serialisation buffers for the framework mechanisms. Elsewhere (no ``/proc``, or not allowed) figures are None.
The reset is process-wide, so two phases must not overlap in one process (they never do in the engine).

Example:
    >>> import numpy as np
    >>> with PeakMemory() as m:
    ...     a = np.ones(64 << 20, np.uint8); del a
    >>> m.grew_bytes is None or m.grew_bytes >= 60 << 20
    True
"""

from __future__ import annotations

from typing import Any

__all__ = ["PeakMemory", "resident_bytes", "peak_bytes"]


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def resident_bytes() -> int | None:
    """This process's resident set now (``VmRSS``), or None where unknown."""
    return _status("VmRSS")


def peak_bytes() -> int | None:
    """This process's peak resident set (``VmHWM``) since start or the last reset, or None."""
    return _status("VmHWM")


def _reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """``with PeakMemory() as m: ...`` then ``m.start_bytes``, ``m.peak_bytes``, ``m.grew_bytes`` (or None)."""

    def __init__(self) -> None:
        self.start_bytes: int | None = None
        self.peak_bytes: int | None = None

    def __enter__(self) -> PeakMemory:
        self._ok = _reset()
        self.start_bytes = resident_bytes() if self._ok else None
        return self

    def __exit__(self, *exc: Any) -> None:
        self.peak_bytes = peak_bytes() if self._ok else None

    @property
    def grew_bytes(self) -> int | None:
        if self.start_bytes is None or self.peak_bytes is None:
            return None
        return max(0, self.peak_bytes - self.start_bytes)
