"""``reader.data_loader: jax``: the runner's adapter (private to it), ending every batch on the JAX device.

The engine reads, a copier thread stacks and ``jax.device_put``\\ s each batch (double-buffered) and
the batch handed to the runner carries ``h2d_s`` (the copy, timed to ``block_until_ready``) beside
the engine's ``io_s``/``decode_s``. The runner's plan fixes rank and world (MPI ranks = processes).

Example:
    >>> from dlio_core.config import tiny_run_config
    >>> from dlio_core.runner import run
    >>> metric = run(tiny_run_config(data_loader="jax"), quiet=True).summary["metric"]
    >>> metric["train_throughput_samples_per_second"][0] > 0
    True
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from dlio_core.reader import native_reader

from ._device import DeviceBatch, device_batches
from ._pinned import make_put

__all__ = ["JaxLoader", "make_loader"]


class JaxLoader:
    """Loader protocol adapter: ``epoch(plan, max_steps=None)`` yields :class:`DeviceBatch` objects."""

    def __init__(self, engine: Any, *, sharding: Any = None, staging: str = "plain") -> None:
        self.engine = engine
        self.put = make_put(sharding, staging)

    def epoch(self, plan: Any, *, max_steps: int | None = None) -> Iterator[DeviceBatch]:
        return device_batches(self.engine.epoch(plan, max_steps=max_steps), self.put)


def make_loader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str, rank: int = 0) -> JaxLoader:
    """The factory ``dlio_core.loaders`` registers for ``reader.data_loader: jax``."""
    return JaxLoader(native_reader(cfg, storage, files, rank=rank, keep_samples=True))
