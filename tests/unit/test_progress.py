"""Progress bars: drawn only on a terminal (stderr), at most a few times a second, with rich or
a plain line; the epoch bar's watcher counts steps, samples/s and AU without the step loop's help."""

from __future__ import annotations

import io
import os
import select
import sys
import threading
import time

import pytest

from dlio_core import progress as P
from dlio_core.metrics import PhaseRecord
from dlio_core.run_progress import EpochProgress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal():
    """A stream that says it is a terminal (no file descriptor: the plain line)."""
    return _Terminal()


def test_quiet_or_redirected_stderr_draws_nothing():
    stream = io.StringIO()  # 2>log, 2>&1 | tee
    bar = P.Progress(3, "x", stream=stream)
    bar.update(3)
    bar.close()
    assert not bar.enabled and stream.getvalue() == ""
    assert P.on_terminal(quiet=True, stream=_Terminal()) is False
    assert P.on_terminal(stream=_Terminal()) is True
    assert not P.Progress(3, "x", enabled=False, stream=_Terminal()).enabled


def _drain(fd: int) -> str:
    """Everything written to the pseudo-terminal so far (it arrives in chunks)."""
    chunks = []
    while select.select([fd], [], [], 0.2)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def test_rich_bar_on_a_real_terminal():
    pytest.importorskip("rich")
    master, slave = os.openpty()
    try:
        with io.open(slave, "w", closefd=False) as stream:
            bar = P.Progress(10, "generating npz", stream=stream)
            for _ in range(10):
                bar.update(1, 1 << 20)
            bar.close()
        text = _drain(master)
    finally:
        os.close(master)
        os.close(slave)
    assert isinstance(bar._bar, P._RichBar)
    assert "generating npz" in text and "10/10" in text and "files, 10.0 MiB" in text and "\u2501" in text  # rich's bar


def test_plain_line_where_rich_cannot_draw(terminal, monkeypatch):
    bar = P.Progress(2, "checkpoint save", stream=terminal)  # no file descriptor
    bar.update(2, 2 << 20)
    bar.close()
    assert terminal.getvalue().startswith("\rcheckpoint save: 2/2 files, 2.0 MiB") and terminal.getvalue().endswith("\n")
    monkeypatch.setitem(sys.modules, "rich.progress", None)  # a real terminal without rich: the plain line too
    monkeypatch.setattr(P, "_real_terminal", lambda stream: True)
    assert isinstance(P._make_bar(1, "x", terminal), P._LineBar)


def test_redraws_a_few_times_a_second_whatever_the_update_rate(terminal, monkeypatch):
    drawn = []
    monkeypatch.setattr(P.Progress, "_draw", lambda self: drawn.append(self.done))
    bar = P.Progress(10**6, "many", stream=terminal)
    t0 = time.monotonic()
    for _ in range(20000):
        bar.update(1)
    seconds = time.monotonic() - t0
    assert len(drawn) <= seconds / P.REDRAW_S + 2


def test_epoch_watcher_counts_what_the_loop_appended(terminal):
    rec = PhaseRecord(batch_size=2)
    with EpochProgress(rec, epoch=1, epochs=3, steps=4, enabled=True, stream=terminal) as bar:
        for i in range(4):
            rec.add_step(start=float(i), wait=0.25, compute=0.75, barrier=0.0, end=i + 1.0, samples=2,
                         bytes_read=0, io_s=None, decode_s=None)
        assert bar._thread is not None and bar._thread.daemon
    assert bar.progress.done == 4 and bar.progress.info == "steps, 2.0 samples/s, AU 75.0%"
    assert not any(t.name == "dl-driver-epoch-bar" for t in threading.enumerate())  # stopped with the epoch
    assert "epoch 1/3: 4/4 steps, 2.0 samples/s, AU 75.0%" in terminal.getvalue()


def test_epoch_watcher_off_starts_no_thread():
    with EpochProgress(PhaseRecord(batch_size=1), epoch=1, epochs=1, steps=1, enabled=False) as bar:
        pass
    assert bar._thread is None
