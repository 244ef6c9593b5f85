"""How a run ended, and the exchanges that make every rank end it at the same step.

:class:`RunSync` is the runner's side of :meth:`dlio_core.dist.Dist.step_status`. Local work runs in
:meth:`RunSync.guard`, which keeps the first error (or a second Ctrl-C) instead of letting it escape;
a SIGINT or SIGTERM only sets :class:`~dlio_core.signals.StopSignals`' flag. At the next
:meth:`RunSync.exchange` every rank says how it is, so all learn at once that one failed or was
signalled. The rule that keeps ranks from hanging: a guarded block holds no collective, and every
rank makes the same exchanges in the same order, whatever happened to it.

:class:`RunEnd` is what ``summary.json`` and ``report.json`` say about the end (``run_status``):
complete, failed or interrupted, the epoch, step and phase reached, which rank and why. A run that did
not complete raises, after its results are written: the failing rank its own error, the others
:class:`RankFailed`; every rank :class:`RunInterrupted` after a signal. Both carry the exit code
(the failing rank's, or 128 + the signal number), so all ranks exit with the same one.

Example:
    >>> from dlio_core.dist import Dist
    >>> from dlio_core.signals import StopSignals
    >>> sync = RunSync(Dist(), StopSignals())
    >>> with sync.guard():
    ...     raise OSError("f.npz: truncated")
    >>> out = sync.exchange("epoch 1 step 3")
    >>> sync.end_from(out, epoch=1, step=3, phase="train").to_dict()["reason"]
    'rank 0 failed: OSError: f.npz: truncated'
"""

from __future__ import annotations

import contextlib
import signal as _signal
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

from .dist import USE_RANK_TIMEOUT, Dist, RankLost, RankStatus, StepOutcome
from .signals import StopSignals

__all__ = ["RunEnd", "RunSync", "Progress", "RankFailed", "RunInterrupted", "COMPLETE", "FAILED", "INTERRUPTED"]

COMPLETE, FAILED, INTERRUPTED = "complete", "failed", "interrupted"


@dataclass
class RunEnd:
    """How the run ended: ``status`` (complete, failed, interrupted), where, which rank and why."""

    status: str = COMPLETE
    reason: str = ""
    epoch: int = 0  # the epoch reached (the last one begun)
    step: int = 0  # the training step of that epoch at which the run stopped (its last for a complete run)
    phase: str = ""  # setup, generation, cache eviction, train, checkpoint, eval, results
    rank: int | None = None  # the rank that failed or was signalled first
    signal: str | None = None  # SIGINT / SIGTERM for an interruption
    exit_code: int = 0

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    """How far this rank got: the epoch begun, its training step, the phase (what :class:`RunEnd` reports)."""

    epoch: int = 0
    step: int = 0
    phase: str = "setup"


class RankFailed(RuntimeError):
    """Another rank failed; this rank stopped at the same step. ``exit_code`` is the failing rank's."""

    def __init__(self, end: RunEnd) -> None:
        super().__init__(f"{end.reason} (stopped at epoch {end.epoch} step {end.step}, {end.phase})")
        self.end, self.exit_code = end, end.exit_code


class RunInterrupted(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM) on some rank stopped every rank; ``exit_code`` is 130 or 143."""

    def __init__(self, end: RunEnd) -> None:
        super().__init__(f"{end.reason} (stopped at epoch {end.epoch} step {end.step}, {end.phase})")
        self.end, self.exit_code = end, end.exit_code


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RunSync:
    """This rank's pending status and the exchanges that end every rank together.

    ``exit_code_of(exc)`` says which exit code a local error means (default 1); it travels with the
    failure so that every rank exits with the same code. ``log`` (a RunLog) gets the local error.
    """

    def __init__(self, dist: Dist, stop: StopSignals, log: Any = None,
                 exit_code_of: Callable[[BaseException], int] | None = None) -> None:
        self.dist, self.stop, self.log = dist, stop, log
        self.exit_code_of = exit_code_of or (lambda exc: 1)
        self.error: BaseException | None = None  # the first local error; the rest follow from it

    @property
    def clear(self) -> bool:
        """True while this rank has neither failed nor been signalled: its next work may start."""
        return self.error is None and self.stop.received is None

    def note(self, exc: BaseException) -> None:
        """Keep ``exc`` for the next exchange (the first error wins); a KeyboardInterrupt is a SIGINT."""
        if isinstance(exc, KeyboardInterrupt):
            if self.stop.received is None:
                self.stop.received = _signal.SIGINT
            return
        if self.error is None:
            self.error = exc
            if self.log is not None:
                self.log.error(_one_line(exc))

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run local work (no collective inside); an error in it waits for the next exchange."""
        try:
            yield
        except RankLost:
            raise  # local work with collectives inside (checkpoints) lost a rank: no exchange can follow
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every rank must hear of it
            self.note(exc)

    def exchange(self, where: str, *, timeout_s: float | None = USE_RANK_TIMEOUT) -> StepOutcome:
        """Every rank's status, at a barrier's cost (``where`` names the point in a lost-rank error)."""
        if self.error is not None:
            status, message, code = RankStatus.FAILED, _one_line(self.error), self._code(self.error)
        elif self.stop.received is not None:
            status, message, code = RankStatus.INTERRUPTED, f"{self.stop.name} received", self.stop.received
        else:
            status, message, code = RankStatus.OK, "", 0
        return self.dist.step_status(status, message, code=code, where=where, timeout_s=timeout_s)

    def _code(self, exc: BaseException) -> int:
        try:
            code = int(self.exit_code_of(exc))
        except Exception:  # noqa: BLE001 - classifying must not hide the error itself
            code = 1
        return code if 0 < code < 256 else 1

    def end_from(self, outcome: StepOutcome, *, epoch: int, step: int, phase: str) -> RunEnd:
        """The :class:`RunEnd` an exchange's outcome means (complete when it was ok)."""
        if outcome.ok:
            return RunEnd(COMPLETE, "", epoch, step, phase)
        status = FAILED if outcome.status == RankStatus.FAILED else INTERRUPTED
        name = _signal.Signals(outcome.signum).name if outcome.signum else None
        return RunEnd(status, outcome.describe(), epoch, step, phase, outcome.rank, name, outcome.exit_code)

    def stopped(self, end: RunEnd) -> BaseException:
        """What this rank raises once the results of an incomplete run are written."""
        if end.status == INTERRUPTED:
            return RunInterrupted(end)
        if end.rank == self.dist.rank and self.error is not None:
            return self.error
        return RankFailed(end)
