"""Resumption: the rest of an epoch plan, for the JAX iterator (plans and readers come from ``dlio_core.reader``).

Example:
    >>> from dlio_core.sampling import EpochPlan
    >>> tail = Resumed(EpochPlan(num_files=8, samples_per_file=1, batch_size=2), start=3)
    >>> tail.steps, tail.batch(0)[0].tolist()
    (1, [6, 7])
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Resumed"]


class Resumed:
    """A plan's steps from ``start`` on (the engine takes any object with ``steps`` and ``batch``)."""

    def __init__(self, plan: Any, start: int) -> None:
        if not 0 <= start <= plan.steps:
            raise ValueError(f"cannot resume at step {start}: the epoch has {plan.steps} steps")
        self.plan, self.start = plan, start

    @property
    def steps(self) -> int:
        return self.plan.steps - self.start

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        return self.plan.batch(step + self.start)

