"""SIGINT and SIGTERM become a request to stop at the end of the current step.

A run checks :attr:`StopSignals.received` when it exchanges statuses after each step
(:meth:`dlio_core.dist.Dist.step_status`), so every rank stops at the same step, writes what it
measured and exits with 128 + the signal number: 130 for SIGINT (Ctrl-C), 143 for SIGTERM (what
``timeout``, Slurm, batch systems and torchrun's agent send). A second SIGINT raises
:class:`KeyboardInterrupt` at once, for a run stuck where no step ends (a read that never returns).

Launchers, as measured on this machine:
- torchrun forwards SIGTERM/SIGINT to every worker and waits (30 s by default) before SIGKILL:
  the ranks stop together and write their results.
- Open MPI 5's ``mpirun`` passes SIGTERM and SIGINT on to every rank as SIGTERM, then sends SIGKILL
  about 0.25 s later (fixed in PRRTE, no parameter changes it), so results are complete only when the
  run can stop and write them within that time. For a clean stop, signal the ranks rather than
  mpirun (a signal on any one rank stops them all at the next step); under Slurm ``srun`` the grace
  before SIGKILL is ``KillWait`` (30 s by default).

Example:
    >>> import os, signal
    >>> from dlio_core.signals import StopSignals
    >>> with StopSignals() as stop:
    ...     os.kill(os.getpid(), signal.SIGTERM)
    ...     (stop.received, stop.exit_code, stop.name)
    (15, 143, 'SIGTERM')
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Iterable

__all__ = ["StopSignals", "exit_code_for", "EXIT_SIGINT", "EXIT_SIGTERM"]

EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


def exit_code_for(signum: int) -> int:
    """The shell's convention for a process ended by ``signum``: 128 + its number.

    Example:
        >>> exit_code_for(2)
        130
    """
    return 128 + int(signum)


class StopSignals:
    """Handlers that record SIGINT/SIGTERM instead of ending the process; a context manager.

    Installing replaces the previous handlers, leaving restores them (and does nothing outside the
    main thread, where Python cannot install handlers: ``installed`` says whether it did).
    """

    def __init__(self, signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = tuple(signals)
        self.received: int | None = None  # the first signal, the one that decides the exit code
        self.count = 0
        self.installed = False
        self._previous: dict[int, Any] = {}

    @property
    def exit_code(self) -> int | None:
        """130 after SIGINT, 143 after SIGTERM; None when no signal came."""
        return None if self.received is None else exit_code_for(self.received)

    @property
    def name(self) -> str | None:
        """``SIGINT`` / ``SIGTERM`` for the first signal received, None when none came."""
        return None if self.received is None else signal.Signals(self.received).name

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Only assignments here: printing from a handler can re-enter a stream that is mid-write.
        self.count += 1
        if self.received is None:
            self.received = signum
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now, whatever this rank is waiting on

    def install(self) -> "StopSignals":
        """Install the handlers (main thread only); returns self."""
        if self.installed or threading.current_thread() is not threading.main_thread():
            return self
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)
        self.installed = True
        return self

    def restore(self) -> None:
        """Put back the handlers that were there before :meth:`install`."""
        if not self.installed:
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
        self.installed = False

    def __enter__(self) -> "StopSignals":
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()
