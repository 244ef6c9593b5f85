"""``instrument(loader)``: measure a real training loop's input pipeline without changing it.

Wrap any iterable (a ``DataLoader``, ours or the user's) and iterate it as before. Per step it records
the time the loop waited for the batch (the data stall), the time the loop body took before asking
for the next one (compute, as the loop sees it), the samples (first dimension of the batch) and the
batch's bytes. With ``device=`` the batch is also copied there and the copy is timed with CUDA events
(``h2d``; ``None`` without CUDA, and ``None`` where no device copy happens, ``device="cpu"`` included).
:meth:`Instrumented.report` gives the figures with the names and meanings of ``report.json`` (stall %,
per-stage mean and p50/p95/p99, throughput).

``io`` and ``decode`` (the engine's read and parse seconds) are filled when the source is ours:

- batches that carry their figures (:class:`~dlio_torch.TorchBatch` from :class:`~dlio_torch.DeviceLoader`,
  or anything with ``data``, ``num_samples``, ``io_s`` and ``decode_s``): each step's own figures, and
  the batch's ``h2d_s`` when it made the device copy itself;
- :class:`~dlio_torch.DlioIterableDataset` / :class:`~dlio_torch.DlioMapDataset`, or a ``DataLoader``
  over one (``make_dataloader`` included), with any ``num_workers``: the dataset sums the engine's
  per-batch figures in shared memory (:mod:`._figures`), and a step's ``io``/``decode`` is what the
  engine finished reading and decoding, in any process, between the end of the previous step and the
  end of this one. Workers read ahead, so one step's figure may hold several batches' reads: totals
  (``io_s``, ``decode_s``) and means are exact, single steps are not.

Any other source leaves them ``None`` (unknown, never 0) and ``io_decode_note`` says why. ``io_s`` is
thread time summed over the batch's samples, so with several reader threads it can exceed wall time.

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

from ._figures import engine_figures_of
from ._h2d import DeviceCopy, tensor_bytes

__all__ = ["Instrumented", "instrument"]


def _batch_len(batch: Any) -> int:
    """Samples in a batch: the first dimension of its first tensor (lists, tuples, dicts looked into)."""
    while isinstance(batch, (list, tuple, dict)) and len(batch):
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    shape = getattr(batch, "shape", None)
    return int(shape[0]) if shape else 1


def _carries_figures(batch: Any) -> bool:
    """A batch object with its step's figures and its tensors in ``data`` (``TorchBatch``)."""
    return all(hasattr(batch, name) for name in ("data", "num_samples", "io_s", "decode_s"))


NOT_OURS_NOTE = ("io and decode are null: the loader is not a dl-driver dataset (DlioIterableDataset, DlioMapDataset, "
                 "a DataLoader over one, make_dataloader) and its batches carry no io_s/decode_s, so the time "
                 "spent reading and decoding inside it is unknown")


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
        figures = engine_figures_of(self.loader)
        seen = figures.totals() if figures is not None else None  # before iter(): workers start reading there
        it = iter(self.loader)
        t0 = perf()
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            t1 = perf()
            io_s, decode_s, h2d_s = self._figures_of(batch)
            payload = batch.data if _carries_figures(batch) else batch
            if self.copy is not None:
                payload, h2d_s = self.copy(payload)
                if _carries_figures(batch):
                    batch.data = payload
                else:
                    batch = payload
            if h2d_s is not None:
                self.h2d.append(h2d_s)
            samples = int(batch.num_samples) if _carries_figures(batch) else _batch_len(payload)
            nbytes = tensor_bytes(payload)
            t_body = perf()
            try:
                yield batch
            finally:  # also when the loop breaks out: the last step still counts
                t2 = perf()
                if seen is not None:  # our dataset: what the engine finished since the previous step
                    now = figures.totals()  # type: ignore[union-attr]
                    io_s, decode_s, seen = now[0] - seen[0], now[1] - seen[1], now
                rec.add_step(start=t0, wait=t1 - t0, compute=t2 - t_body, barrier=0.0, end=t2, samples=samples,
                             bytes_read=nbytes, io_s=io_s, decode_s=decode_s, sample_bytes=nbytes)
                t0 = t2

    @staticmethod
    def _figures_of(batch: Any) -> tuple[float | None, float | None, float | None]:
        """``(io_s, decode_s, h2d_s)`` a batch carries (``None`` each when it carries none)."""
        if not _carries_figures(batch):
            return None, None, None
        return float(batch.io_s), float(batch.decode_s), getattr(batch, "h2d_s", None)

    def io_decode_note(self) -> str | None:
        """Why ``io``/``decode`` are null (``None`` when they were measured)."""
        return None if self._measured("io") else NOT_OURS_NOTE

    def _measured(self, stage: str) -> bool:
        return any(v is not None for rec in self.epochs for v in getattr(rec, stage))

    def report(self) -> dict[str, Any]:
        """Figures over every pass so far (after ``exclude_start_steps`` steps of each pass)."""
        wait: list[float] = []
        compute: list[float] = []
        io: list[float | None] = []
        decode: list[float | None] = []
        steps = samples = nbytes = 0
        wall = 0.0
        for rec in self.epochs:
            if rec.steps == 0:
                continue
            w = rec.window(self.exclude_start_steps, 0)
            s, e, _ = rec.window_bounds(self.exclude_start_steps, 0)
            wait += rec.wait[s:e + 1]
            compute += rec.compute[s:e + 1]
            io += rec.io[s:e + 1]
            decode += rec.decode[s:e + 1]
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
            # Engine seconds (thread time) over the steps reported; None, not 0, where the loader cannot tell.
            "io_s": _total(io),
            "decode_s": _total(decode),
            "io_decode_note": self.io_decode_note(),
            "stages": {"wait": stage_summary(wait), "compute": stage_summary(compute),
                       "h2d": stage_summary(self.h2d), "io": _stage(io), "decode": _stage(decode)},
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


def _total(values: list[float | None]) -> float | None:
    measured = [v for v in values if v is not None]
    return float(sum(measured)) if measured else None


def _stage(values: list[float | None]) -> dict[str, Any]:
    return stage_summary([]) if all(v is None for v in values) else stage_summary(values)


def instrument(loader: Any, *, device: Any = None, exclude_start_steps: int = 0) -> Instrumented:
    """Wrap ``loader`` (any iterable of batches) so each pass records wait, compute and batch bytes."""
    return Instrumented(loader, device=device, exclude_start_steps=exclude_start_steps)
