"""``{rank}_access_order.json``: which sample each step read, epoch by epoch (``output.record_access_order``).

The order is recomputed from the epoch's plan after the epoch (the plan is a pure function of the
seed, epoch and rank), so recording costs nothing on the hot path. Entries are ``"relpath:index"``.

Example:
    >>> from dlio_core.sampling import EpochPlan
    >>> log = AccessOrderLog(["a.npz", "b.npz"])
    >>> log.add(1, EpochPlan(num_files=2, samples_per_file=1, batch_size=1), steps=2)
    >>> log.epochs
    {'1': ['a.npz:0', 'b.npz:0']}
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

__all__ = ["AccessOrderLog"]


class AccessOrderLog:
    """Collects each epoch's read order for one rank and writes it as JSON."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.epochs: dict[str, list[str]] = {}

    def add(self, epoch: int, plan: Any, steps: int) -> None:
        """Record the first ``steps`` steps of ``plan`` (the steps that ran) as epoch ``epoch``."""
        entries: list[str] = []
        for step in range(steps):
            files, samples = plan.batch(step)
            entries.extend(f"{self.names[f]}:{s}" for f, s in zip(files.tolist(), samples.tolist()))
        self.epochs[str(epoch)] = entries

    def write(self, path: str) -> None:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.epochs, fh)
        os.replace(tmp, path)
