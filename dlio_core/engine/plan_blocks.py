"""``PlanTail``: an epoch plan's steps from ``start`` on, planned a block of steps at a time.

A plan's ``batch(step)`` with a shuffle runs its permutation for one step (~140 us at 32 samples);
``batch_block`` does 64 steps in one vectorised pass. The engine plans with ``batch_block`` when the
plan offers it; a consumer that also needs each step's ``(file, sample)`` ids (labels) asks ``batch``,
which here is served from the last block planned. Only numpy.

Example:
    >>> from dlio_core.sampling import EpochPlan
    >>> plan = EpochPlan(num_files=8, samples_per_file=1, batch_size=2, sample_shuffle="seed", file_shuffle="seed")
    >>> tail = PlanTail(plan, start=1)
    >>> tail.steps, tail.batch(0)[0].tolist() == plan.batch(1)[0].tolist()
    (3, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PlanTail", "BLOCK_STEPS"]

BLOCK_STEPS = 64


class PlanTail:
    """Steps ``start``.. of ``plan`` (any object with ``steps`` and ``batch``; ``batch_block`` is used when
    it has one), as a plan of ``plan.steps - start`` steps."""

    def __init__(self, plan: Any, start: int = 0) -> None:
        if not 0 <= start <= plan.steps:
            raise ValueError(f"cannot resume at step {start}: the epoch has {plan.steps} steps")
        self.plan, self.start = plan, start
        self._blocks = getattr(plan, "batch_block", None) is not None
        self._block: tuple[int, Any, Any] = (0, np.empty((0, 0), np.int64), np.empty((0, 0), np.int64))

    @property
    def steps(self) -> int:
        return self.plan.steps - self.start

    @property
    def batch_size(self) -> int | None:
        """The plan's samples per step (None when the plan does not say)."""
        return getattr(self.plan, "batch_size", None)

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """``(file_idx, sample_idx)`` of this tail's step ``step``."""
        if not self._blocks:
            return self.plan.batch(step + self.start)
        first, files, samples = self._block  # one read: another thread may replace the block meanwhile
        i = step - first
        if not 0 <= i < len(files):
            files, samples = self.batch_block(step, min(BLOCK_STEPS, self.steps - step))
            self._block, i = (step, files, samples), 0
        return files[i], samples[i]

    def batch_block(self, step: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Steps ``step``..``step + count - 1`` at once (rows of ``(files, samples)``)."""
        return self.plan.batch_block(step + self.start, count)
