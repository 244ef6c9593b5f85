"""A tiny progress line on stderr for long work (files done / total, MB/s), only on a terminal.

Example:
    >>> p = Progress(10, "generating", enabled=False)
    >>> p.update(files=3, nbytes=3 << 20); p.done
    3
    >>> p.close()
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Counts work items and bytes; redraws at most ten times a second.

    Args:
        total: items expected.
        label: what is being done ("generating npz").
        enabled: False to count silently; by default, only when ``stream`` is a terminal.
        stream: where to draw (stderr).
    """

    def __init__(self, total: int, label: str, *, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None or enabled:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.done = 0
        self.nbytes = 0
        self._t0 = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def update(self, files: int = 1, nbytes: int = 0) -> None:
        """Add finished items and bytes; redraw if due."""
        with self._lock:
            self.done += files
            self.nbytes += nbytes
            if self.enabled:
                now = time.monotonic()
                if now - self._last >= 0.1 or self.done >= self.total:
                    self._last = now
                    self._draw(now)

    def _draw(self, now: float) -> None:
        dt = max(now - self._t0, 1e-9)
        mib = self.nbytes / (1 << 20)
        self.stream.write(f"\r{self.label}: {self.done}/{self.total} files, {mib:,.1f} MiB, "
                          f"{mib / dt:,.1f} MiB/s ")
        self.stream.flush()

    def close(self) -> None:
        """Final redraw and newline (when drawing)."""
        if self.enabled:
            with self._lock:
                self._draw(time.monotonic())
                self.stream.write("\n")
                self.stream.flush()
