"""``instrument(loader)``: measure a real training loop's input pipeline without changing it.

Wrap any iterable (a ``DataLoader``, ours or the user's) and iterate it as before. Per step it records
the time the loop waited for the batch (the data stall), the time the loop body took before asking
for the next one (compute, as the loop sees it), the samples (first dimension of the batch) and the
batch's bytes. With ``device=`` the batch is also copied there and the copy is timed with CUDA events
(``h2d``; ``None`` without CUDA). :meth:`Instrumented.report` gives the figures with the names and
meanings of ``report.json`` (stall %, per-stage mean and p50/p95/p99, throughput).

Example:
    >>> import torch
    >>> loader = [torch.zeros(4, 8) for _ in range(5)]
    >>> timed = instrument(loader)
    >>> for batch in timed:
    ...     _ = batch.sum()
    >>> r = timed.report()
    >>> r["steps"], r["samples"], r["batch_bytes"], r["stages"]["h2d"]["mean_s"]
    (5, 20, 640, None)
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import numpy as np

from dlio_core.metrics import PhaseRecord, stage_summary

from ._h2d import DeviceCopy, tensor_bytes

__all__ = ["Instrumented", "instrument"]


def _batch_len(batch: Any) -> int:
    """Samples in a batch: the first dimension of its first tensor (lists, tuples, dicts looked into)."""
    while isinstance(batch, (list, tuple, dict)) and len(batch):
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    shape = getattr(batch, "shape", None)
    return int(shape[0]) if shape else 1


class Instrumented:
    """An iterable over ``loader`` that records one :class:`~dlio_core.metrics.PhaseRecord` per pass."""

    def __init__(self, loader: Any, *, device: Any = None, exclude_start_steps: int = 0) -> None:
        self.loader = loader
        self.copy = DeviceCopy(device) if device is not None else None
        self.exclude_start_steps = int(exclude_start_steps)
        self.epochs: list[PhaseRecord] = []
        self.h2d: list[float] = []

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:  # set_epoch, state_dict, ... reach the wrapped loader
        if name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __iter__(self) -> Iterator[Any]:
        rec = PhaseRecord(batch_size=0)
        self.epochs.append(rec)
        perf = time.perf_counter
        it = iter(self.loader)
        t0 = perf()
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            t1 = perf()
            if self.copy is not None:
                batch, h2d_s = self.copy(batch)
                if h2d_s is not None:
                    self.h2d.append(h2d_s)
            samples, nbytes = _batch_len(batch), tensor_bytes(batch)
            t_body = perf()
            try:
                yield batch
            finally:  # also when the loop breaks out: the last step still counts
                t2 = perf()
                rec.add_step(start=t0, wait=t1 - t0, compute=t2 - t_body, barrier=0.0, end=t2, samples=samples,
                             bytes_read=nbytes, io_s=0.0, decode_s=0.0, sample_bytes=nbytes)
                t0 = t2

    def report(self) -> dict[str, Any]:
        """Figures over every pass so far (after ``exclude_start_steps`` steps of each pass)."""
        wait: list[float] = []
        compute: list[float] = []
        steps = samples = nbytes = 0
        wall = 0.0
        for rec in self.epochs:
            if rec.steps == 0:
                continue
            w = rec.window(self.exclude_start_steps, 0)
            s, e, _ = rec.window_bounds(self.exclude_start_steps, 0)
            wait += rec.wait[s:e + 1]
            compute += rec.compute[s:e + 1]
            steps, samples, nbytes, wall = steps + w.steps, samples + w.samples, nbytes + w.bytes_read, wall + w.wall_s
        stall = float(np.sum(wait)) if wait else 0.0
        return {
            "schema": "dl-driver/instrument/1",
            "passes": len(self.epochs),
            "steps": steps,
            "samples": samples,
            "batch_bytes": nbytes,
            "wall_s": wall,
            "data_stall_percentage": 100.0 * stall / wall if wall > 0 else None,
            "throughput_samples_per_s": samples / wall if wall > 0 else None,
            "batch_bytes_per_s": nbytes / wall if wall > 0 else None,
            # io/decode happen inside the wrapped loader, which does not tell us: unknown, not 0.
            "stages": {"wait": stage_summary(wait), "compute": stage_summary(compute),
                       "h2d": stage_summary(self.h2d), "io": stage_summary([]), "decode": stage_summary([])},
        }

    def write_report(self, uri: str, *, storage_options: Any = None) -> dict[str, Any]:
        """Write :meth:`report` as JSON to ``uri`` (a path or storage URI, atomically); returns it."""
        import posixpath

        from dlio_core.storage import open_storage, split_scheme

        scheme, rest = split_scheme(uri)
        head, name = posixpath.split(rest)
        root = f"{scheme}://{head}" if scheme else (head or ".")
        report = self.report()
        open_storage(root, storage_options).write_atomic(name, json.dumps(report, indent=2).encode())
        return report


def instrument(loader: Any, *, device: Any = None, exclude_start_steps: int = 0) -> Instrumented:
    """Wrap ``loader`` (any iterable of batches) so each pass records wait, compute and batch bytes."""
    return Instrumented(loader, device=device, exclude_start_steps=exclude_start_steps)
