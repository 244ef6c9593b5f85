"""Resumption: the rest of an epoch plan, for the JAX iterator (plans and readers come from ``dlio_core.reader``).

Example:
    >>> from dlio_core.sampling import EpochPlan
    >>> tail = Resumed(EpochPlan(num_files=8, samples_per_file=1, batch_size=2), start=3)
    >>> tail.steps, tail.batch(0)[0].tolist()
    (1, [6, 7])
"""

from __future__ import annotations

from dlio_core.engine.plan_blocks import PlanTail

__all__ = ["Resumed"]


class Resumed(PlanTail):
    """A plan's steps from ``start`` on (the engine takes any object with ``steps`` and ``batch``), planned a
    block at a time: the engine and the label lookup share each block instead of planning every step twice."""
