"""Plans and resumption shared by the JAX iterator, the runner adapter and the DALI feeder.

Example:
    >>> from dlio_core.sampling import EpochPlan
    >>> tail = Resumed(EpochPlan(num_files=8, samples_per_file=1, batch_size=2), start=3)
    >>> tail.steps, tail.batch(0)[0].tolist()
    (1, [6, 7])
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Resumed", "plan_for", "reader_for"]


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


def plan_for(cfg: Any, *, split: str, epoch: int, index: int, count: int, random_seed: int | None) -> Any:
    """This process's :class:`~dlio_core.sampling.EpochPlan` (processes are DLIO's ranks)."""
    from dlio_core.sampling import EpochPlan

    return EpochPlan.from_config(cfg, world=count, rank=index, epoch=epoch, split=split, random_seed=random_seed)


def reader_for(cfg: Any, storage: Any, files: list[tuple[str, int]], *, rank: int, keep_samples: bool = True) -> Any:
    """The framework-free engine over ``files``, keeping sample views for the device copy."""
    from dlio_core.engine import NativeLoader
    from dlio_core.formats import get_format

    return NativeLoader(
        storage,
        get_format(str(getattr(cfg.dataset.format, "value", cfg.dataset.format))),
        [storage.join(rel) for rel, _ in files],
        sizes=[size for _, size in files],
        read_threads=cfg.reader.read_threads,
        prefetch_size=cfg.reader.prefetch_size,
        keep_samples=keep_samples,
        preprocess_s=cfg.reader.preprocess_time,
        seed=cfg.train.seed + 7919 * rank,
    )
