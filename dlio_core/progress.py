"""Progress bars for long work (generation, epochs, checkpoints): on a terminal only, never in the way.

A bar draws on stderr when stderr is a terminal (``2>log`` or ``2>&1 | tee`` shows none; stdout, where
the log and ``--format json`` go, never carries it) and the caller did not turn it off (``--quiet``;
ranks other than 0). It redraws at most four times a second, whatever the rate of updates, so a
caller may update it per file. On a real terminal with `rich <https://github.com/Textualize/rich>`_
installed (``pip install rich``; the jax and tf extras bring it) the bar is rich's, and disappears
when the work is done; otherwise a plain ``\\r`` line (``label: done/total figures``).

Example:
    >>> p = Progress(10, "generating", enabled=False)
    >>> p.update(files=3, nbytes=3 << 20); p.done
    3
    >>> p.set(5, "half way"); (p.done, p.info)
    (5, 'half way')
    >>> p.close()
    >>> on_terminal(quiet=True)
    False
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

__all__ = ["Progress", "on_terminal", "REDRAW_S"]

REDRAW_S = 0.25  # the most often a bar redraws


def _isatty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def on_terminal(quiet: bool = False, stream: TextIO | None = None) -> bool:
    """Whether a bar should draw: not ``quiet``, and ``stream`` (stderr) is a terminal."""
    return not quiet and _isatty(stream if stream is not None else sys.stderr)


def _real_terminal(stream: Any) -> bool:
    """A terminal device behind a file descriptor (rich moves the cursor; a stream that only says
    ``isatty``, as an IDE's or a test's, gets the plain line)."""
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


class _RichBar:
    """rich's bar on ``stream``: label, bar, done/total, a text of figures, elapsed time; erased when closed."""

    def __init__(self, total: int, label: str, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                 console=Console(file=stream), transient=True, auto_refresh=False)
        self._task = self._bar.add_task(label, total=total, info="")
        self._bar.start()

    def draw(self, done: int, info: str) -> None:
        self._bar.update(self._task, completed=done, info=info, refresh=True)

    def close(self) -> None:
        self._bar.stop()


class _LineBar:
    """A plain ``\\r`` line, ended with a newline when closed."""

    def __init__(self, total: int, label: str, stream: TextIO) -> None:
        self.total, self.label, self.stream = total, label, stream

    def draw(self, done: int, info: str) -> None:
        self.stream.write(f"\r{self.label}: {done}/{self.total} {info} ")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _make_bar(total: int, label: str, stream: TextIO) -> Any:
    if _real_terminal(stream):
        try:
            return _RichBar(total, label, stream)
        except ImportError:
            pass
    return _LineBar(total, label, stream)


class Progress:
    """Counts work items and bytes, or takes a count and a text from a watcher; redraws at most every
    ``REDRAW_S`` seconds.

    Args:
        total: items expected.
        label: what is being done ("generating npz").
        enabled: False to count silently; by default (None or True), only when :func:`on_terminal`.
        stream: where to draw (stderr).
    """

    def __init__(self, total: int, label: str, *, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None or enabled:
            enabled = on_terminal(stream=self.stream)
        self.enabled = enabled
        self.done = 0
        self.nbytes = 0
        self.info = ""
        self._t0 = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()
        self._bar: Any = None

    def update(self, files: int = 1, nbytes: int = 0) -> None:
        """Add finished files and bytes; redraw if due (the text then says MiB and MiB/s)."""
        with self._lock:
            self.done += files
            self.nbytes += nbytes
            if self.enabled and self._due():
                mib = self.nbytes / (1 << 20)
                self.info = f"files, {mib:,.1f} MiB, {mib / max(time.monotonic() - self._t0, 1e-9):,.1f} MiB/s"
                self._draw()

    def set(self, done: int, info: str = "") -> None:
        """Set the count and the text (a watcher's figures, e.g. samples/s and AU so far); redraw if due."""
        with self._lock:
            self.done, self.info = done, info
            if self.enabled and self._due():
                self._draw()

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self._last >= REDRAW_S or self.done >= self.total:
            self._last = now
            return True
        return False

    def _draw(self) -> None:
        if self._bar is None:
            self._bar = _make_bar(self.total, self.label, self.stream)
        self._bar.draw(self.done, self.info)

    def close(self) -> None:
        """Final redraw, then end the bar (when drawing)."""
        if self.enabled:
            with self._lock:
                self._draw()
                self._bar.close()
