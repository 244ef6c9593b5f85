"""The step loops of one epoch: training (each step ends with the status exchange) and evaluation.

A training step waits for its batch (``wait``, the data stall), runs the emulated compute, then
exchanges every rank's status (:meth:`dlio_core.run_end.RunSync.exchange`, DLIO's per-step barrier at
the same cost, recorded as the step's ``barrier`` time). A rank whose batch failed does no more work
but still makes every exchange, so the ranks stop together at the step where the first of them had
trouble; a signal ends the run at the exchange after the step it lands in (every rank ran that step).
Evaluation has no per-step exchange (as in DLIO); a failure or a signal ends it early and the runner's
next exchange tells the other ranks.

Example:
    >>> from types import SimpleNamespace
    >>> from dlio_core.dist import Dist
    >>> from dlio_core.metrics import PhaseRecord
    >>> from dlio_core.run_end import Progress, RunSync
    >>> from dlio_core.signals import StopSignals
    >>> batch = SimpleNamespace(num_samples=2, bytes_read=8, io_s=0.0, decode_s=0.0, sample_bytes=8,
    ...                         release=lambda: None)
    >>> loader = SimpleNamespace(epoch=lambda plan, max_steps: (batch for _ in range(max_steps)))
    >>> rec, at = PhaseRecord(batch_size=2), Progress()
    >>> out = train_epoch(rec, loader, None, 3, SimpleNamespace(step=lambda: 0.0), RunSync(Dist(), StopSignals()), at)
    >>> (out.ok, rec.steps, at.step)
    (True, 3, 3)
"""

from __future__ import annotations

import time
from typing import Any, Callable

from .dist import USE_RANK_TIMEOUT, StepOutcome
from .metrics import PhaseRecord
from .run_end import Progress, RunSync

__all__ = ["train_epoch", "eval_epoch"]


def _add_step(rec: PhaseRecord, batch: Any, t0: float, t1: float, compute_s: float, t2: float, t3: float,
              checkpoint_s: float = 0.0) -> None:
    rec.add_row(t0, t1 - t0, compute_s, t3 - t2, t3, batch.num_samples, batch.bytes_read, batch.io_s,
                batch.decode_s, batch.sample_bytes, checkpoint_s, getattr(batch, "h2d_s", None))


def _solo_ok(sync: RunSync) -> StepOutcome | None:
    """What every exchange of a one-process run returns while the rank is clear (no other rank to hear
    from: ``Dist.step_status`` then hands back one shared "all ok" outcome); None when other ranks
    take part. The step loop then skips the call and the step's name it would format, every step."""
    dist = getattr(sync, "dist", None)
    if dist is None or getattr(dist, "comm", True) is not None or getattr(dist, "rank", -1) != 0:
        return None
    return dist.step_status()


def train_epoch(rec: PhaseRecord, loader: Any, plan: Any, steps: int, compute: Any, sync: RunSync, at: Progress,
                checkpoint: Callable[[int], bool] | None = None) -> StepOutcome:
    """Run up to ``steps`` training steps into ``rec`` (filled in place); the last exchange's outcome.

    ``checkpoint(step)`` runs after a step whose exchange was ok (every rank calls it: a save is
    collective) and returns whether it saved. The save's seconds are kept out of both compute and
    stall, and the next exchange waits without a bound (it waits for the slowest rank's save).
    """
    perf = time.perf_counter
    batches = None
    outcome, after_save = StepOutcome(), False
    solo_ok = _solo_ok(sync)
    with sync.guard():
        batches = loader.epoch(plan, max_steps=steps)
    try:
        for step in range(1, steps + 1):
            at.step, batch = step, None
            t0 = t1 = perf()
            compute_s = 0.0
            # A signal stops the run at the next exchange, after the step it lands in or before: a rank
            # signalled between two steps still runs the next one, as the other ranks do, so that every
            # rank records the same steps. Only a failure skips the work.
            if sync.error is None:
                try:
                    batch = next(batches)
                    t1 = perf()
                    compute_s = compute.step()
                    batch.release()
                except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the exchange tells every rank
                    sync.note(exc)
                    batch = None
            t2 = perf()
            if solo_ok is not None and sync.clear:
                outcome, ok = solo_ok, True
            else:
                outcome = sync.exchange(f"epoch {at.epoch} step {step}",
                                        timeout_s=None if after_save else USE_RANK_TIMEOUT)
                ok = outcome.ok
            t3 = perf()
            after_save = False
            if ok and checkpoint is not None:
                phase, at.phase = at.phase, "checkpoint"
                with sync.guard():
                    after_save = checkpoint(step)
                at.phase = phase
            if batch is not None:
                _add_step(rec, batch, t0, t1, compute_s, t2, t3, (perf() - t3) if after_save else 0.0)
            if not ok:
                break
    finally:
        if batches is not None:
            batches.close()
    return outcome


def eval_epoch(rec: PhaseRecord, loader: Any, plan: Any, compute: Any, sync: RunSync) -> None:
    """Run ``plan.steps`` evaluation steps into ``rec``; stops early once this rank failed or was signalled."""
    perf = time.perf_counter
    batches = loader.epoch(plan, max_steps=plan.steps)
    try:
        for _ in range(plan.steps):
            if not sync.clear:
                break
            t0 = perf()
            batch = next(batches)
            t1 = perf()
            compute_s = compute.step()
            batch.release()
            t2 = perf()
            _add_step(rec, batch, t0, t1, compute_s, t2, t2)
    finally:
        batches.close()
