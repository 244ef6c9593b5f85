"""The bar of a training epoch: steps done, samples/s and AU so far, drawn by a watcher thread.

The step loop does nothing for it: a thread on rank 0 looks at the epoch's
:class:`~dlio_core.metrics.PhaseRecord` every :data:`~dlio_core.progress.REDRAW_S` seconds, adds up only
the steps appended since its last look (the lists only grow), and redraws. The loop's cost is one
more thread waking four times a second, on rank 0, on a terminal (:func:`~dlio_core.progress.on_terminal`).

AU so far is compute over wall time since the epoch's first step (the measured window excludes the
first steps at the end; the bar is a glance, ``summary.json`` the figure).

Example:
    >>> from dlio_core.metrics import PhaseRecord
    >>> rec = PhaseRecord(batch_size=4)
    >>> with EpochProgress(rec, epoch=1, epochs=2, steps=3, enabled=False) as bar:
    ...     rec.add_step(start=0.0, wait=0.5, compute=0.5, barrier=0.0, end=1.0, samples=4, bytes_read=0,
    ...                  io_s=None, decode_s=None)
    ...     bar.look()
    >>> bar.progress.done, bar.progress.info
    (1, 'steps, 4.0 samples/s, AU 50.0%')
"""

from __future__ import annotations

import threading
from typing import Any, TextIO

from .progress import REDRAW_S, Progress

__all__ = ["EpochProgress"]


class EpochProgress:
    """Draws ``record``'s progress while the ``with`` block runs (see the module docstring)."""

    def __init__(self, record: Any, *, epoch: int, epochs: int, steps: int, enabled: bool,
                 stream: TextIO | None = None) -> None:
        self.record = record
        self.progress = Progress(steps, f"epoch {epoch}/{epochs}", enabled=enabled, stream=stream)
        self._seen = 0
        self._compute = 0.0
        self._samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def look(self) -> None:
        """Add up the steps appended since the last look and redraw (if due)."""
        rec = self.record
        n = min(len(rec.end), len(rec.compute), len(rec.samples))  # a step being appended is not counted yet
        if n == self._seen:
            return
        self._compute += float(sum(rec.compute[self._seen:n]))
        self._samples += int(sum(rec.samples[self._seen:n]))
        self._seen = n
        wall = max(rec.end[n - 1] - rec.start[0], 1e-9)
        self.progress.set(n, f"steps, {self._samples / wall:,.1f} samples/s, AU {100.0 * self._compute / wall:.1f}%")

    def _watch(self) -> None:
        while not self._stop.wait(REDRAW_S):
            self.look()

    def __enter__(self) -> EpochProgress:
        if self.progress.enabled:
            self._thread = threading.Thread(target=self._watch, name="dl-driver-epoch-bar", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.look()
        self.progress.close()
