"""``{rank}_access_order.json``: which samples each step delivered, epoch by epoch (``output.record_access_order``).

What is recorded is what the loader handed the training loop, not what was planned: :meth:`AccessOrderLog.watch`
wraps the loader, and every batch it yields is recorded as it passes, by the samples the batch says it
holds (``batch.sample_ids``, ``(file_idx, sample_idx)`` arrays, when the loader sets them) or else by its
``step`` in the plan the loader was given (the engine builds step ``k``'s batch from ``plan.batch(k)``,
so the two agree; a test checks the samples' bytes against the files the log names). A step that never
arrived (an epoch cut short, a failure) is not in the file. Loaders that shard and shuffle on their
own (tensorflow, native_dali) cannot say what they delivered: the config refuses the option for them
(``dlio_core.config.checks``). Entries are ``"relpath:index"``.

Example:
    >>> from types import SimpleNamespace as NS
    >>> from dlio_core.sampling import EpochPlan
    >>> log = AccessOrderLog(["a.npz", "b.npz"])
    >>> loader = log.watch(NS(epoch=lambda plan, max_steps=None: iter([NS(step=1), NS(step=0)])))
    >>> plan = EpochPlan(num_files=2, samples_per_file=1, batch_size=1)
    >>> [b.step for b in loader.epoch(plan)]
    [1, 0]
    >>> log.add(1, plan, steps=2); log.epochs
    {'1': ['b.npz:0', 'a.npz:0']}
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator, Sequence

__all__ = ["AccessOrderLog", "WatchedLoader"]


class AccessOrderLog:
    """Collects each epoch's delivered samples for one rank and writes them as JSON."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.epochs: dict[str, list[str]] = {}
        self._delivered: list[str] | None = None  # the watched loader's current epoch, as it goes

    def watch(self, loader: Any) -> WatchedLoader:
        """``loader`` with every batch it delivers recorded here (use it in the loader's place)."""
        return WatchedLoader(loader, self)

    def _start(self) -> list[str]:
        self._delivered = []
        return self._delivered

    def _entries(self, batch: Any, plan: Any, position: int) -> list[str]:
        ids = getattr(batch, "sample_ids", None)
        if ids is None:
            files, samples = plan.batch(int(getattr(batch, "step", position)))
        else:
            files, samples = ids
        return [f"{self.names[int(f)]}:{int(s)}" for f, s in zip(files, samples)]

    def add(self, epoch: int, plan: Any, steps: int) -> None:
        """Record epoch ``epoch``: the batches the watched loader delivered (at most ``steps`` of them), or,
        for a loader that was not watched, the first ``steps`` steps of ``plan``."""
        if self._delivered is not None:
            per_step = max(1, int(getattr(plan, "batch_size", 1)))
            self.epochs[str(epoch)] = self._delivered[: steps * per_step]
            self._delivered = None
            return
        entries: list[str] = []
        for step in range(steps):
            entries.extend(self._entries(None, plan, step))
        self.epochs[str(epoch)] = entries

    def write(self, path: str) -> None:
        """Write the epochs recorded so far (atomically: a reader never sees half a file)."""
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.epochs, fh)
        os.replace(tmp, path)


class WatchedLoader:
    """A loader whose delivered batches are recorded in an :class:`AccessOrderLog`; anything else is the
    wrapped loader's."""

    def __init__(self, loader: Any, log: AccessOrderLog) -> None:
        self.loader = loader
        self.log = log

    def epoch(self, plan: Any, max_steps: int | None = None) -> Iterator[Any]:
        """The wrapped loader's epoch, each batch recorded as it is handed over."""
        delivered = self.log._start()
        batches = self.loader.epoch(plan, max_steps=max_steps)
        try:
            for position, batch in enumerate(batches):
                delivered.extend(self.log._entries(batch, plan, position))
                yield batch
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
