"""The steps of an epoch plan one process reads, shaped like a plan for the engine (``steps``, ``batch(i)``).

A DataLoader worker ``w`` of ``W`` reads steps ``start + w, start + w + W, ...``. With one reader (no
workers, or the runner's single process) the steps are consecutive; either way (up to
``MAX_BLOCK_STRIDE`` workers) their ``(file, sample)`` ids are planned 64 steps at a time (:meth:`~dlio_core.sampling.EpochPlan.batch_block`: one vectorised pass
instead of 64); the engine and the consumer (which looks up each step's labels) share them, so no step
is planned twice.

Example:
    >>> import numpy as np
    >>> from dlio_core.sampling import EpochPlan
    >>> plan = EpochPlan(num_files=8, samples_per_file=1, batch_size=2, sample_shuffle="seed")
    >>> view = StepView(plan, np.arange(1, 4))
    >>> view.steps, view.batch(2)[0].tolist() == plan.batch(3)[0].tolist()
    (3, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["StepView"]

BLOCK_STEPS = 64
MAX_BLOCK_STRIDE = 8  # workers: past this, planning the steps between a worker's own costs more than it saves


class StepView:
    """Steps ``step_ids`` of ``plan``, as a plan of ``len(step_ids)`` steps."""

    def __init__(self, plan: Any, step_ids: np.ndarray) -> None:
        self.plan, self.step_ids, self.steps = plan, step_ids, int(step_ids.size)
        # Evenly spaced steps (a worker's every W-th) are planned a block at a time too, the steps between
        # them included and dropped: one vectorised pass beats W-times-fewer planned one by one, for small W.
        stride = int(step_ids[1] - step_ids[0]) if self.steps > 1 else 1
        even = self.steps > 0 and 1 <= stride <= MAX_BLOCK_STRIDE and \
            int(step_ids[-1]) - int(step_ids[0]) == stride * (self.steps - 1) and \
            (self.steps < 3 or bool((np.diff(step_ids) == stride).all()))
        self._stride = stride if even else 0
        self._blocks: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # first index -> ids of its steps

    def batch(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(file_idx, sample_idx)`` of this view's step ``i``."""
        stride = self._stride
        if not stride:
            return self.plan.batch(int(self.step_ids[i]))
        first = i - i % BLOCK_STEPS
        block = self._blocks.get(first)
        if block is None:
            count = min(BLOCK_STEPS, self.steps - first)
            files, samples = self.plan.batch_block(int(self.step_ids[first]), (count - 1) * stride + 1)
            block = (files[::stride], samples[::stride]) if stride > 1 else (files, samples)
            self._blocks[first] = block
            for old in list(self._blocks):  # the engine reads ahead of the consumer: keep the last two
                if old < first - BLOCK_STEPS:
                    self._blocks.pop(old, None)
        files, samples = block
        return files[i - first], samples[i - first]
