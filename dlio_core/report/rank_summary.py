"""What each rank sends rank 0 for the summary: O(epochs) window figures and one histogram per stage.

The figures ``summary.json`` carries (AU, samples/s, MB/s per epoch) come from each rank's measured
window, exactly as before: sums over the window's steps, merged across ranks by DLIO's rule (AU
averaged, throughput and bytes/s summed). The per-stage latency distribution of ``report.json``
comes from :class:`~dlio_core.report.histogram.LatencyHistogram`, whose payload does not grow with
the number of steps; its percentiles are within 1% (+1 ns) of numpy's on the concatenated steps
(see that module). A single-rank run keeps exact percentiles: rank 0 holds every step itself.

Example:
    >>> from types import SimpleNamespace
    >>> from dlio_core.metrics import PhaseRecord
    >>> rec = PhaseRecord(batch_size=1)
    >>> for i in range(3):
    ...     rec.add_step(start=float(i), wait=0.5, compute=0.5, barrier=0.0, end=i + 1.0, samples=1,
    ...                  bytes_read=10, io_s=0.5, decode_s=None)
    >>> epochs = [SimpleNamespace(epoch=1, train=rec, eval=None)]
    >>> mine = RankSummary.from_epochs(epochs, exclude_start=0, exclude_end=0)
    >>> [round(r["au"], 1) for r in mine.train_rows], mine.train_stages["wait"].count
    ([50.0], 3)
    >>> aggregate([mine.train_rows, mine.train_rows])["throughput"]  # two ranks: summed
    [2.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..metrics import STAGES, stage_summary
from .histogram import LatencyHistogram

__all__ = ["RankSummary", "epoch_figures", "aggregate", "stage_summaries"]


def epoch_figures(epochs: Sequence[Any], phase: str, exclude_start: int, exclude_end: int) -> list[dict]:
    """This rank's per-epoch window figures for ``phase`` ("train" or "eval")."""
    out = []
    for rec in epochs:
        record = rec.train if phase == "train" else rec.eval
        if record is None or record.steps == 0:
            continue
        w = record.window(exclude_start, exclude_end)
        out.append({"epoch": rec.epoch, "au": w.au_percentage, "au_nb": w.au_without_barrier_percentage,
                    "throughput": w.throughput_samples_per_s, "io_bps": w.io_bytes_per_s,
                    "bytes": w.bytes_read, "sample_bytes": w.sample_bytes, "full_window": w.full_window})
    return out


def aggregate(per_rank: list[list[dict]]) -> dict[str, list[float]]:
    """Across ranks, epoch by epoch: AU averaged, throughput and bytes/s summed (DLIO's rule)."""
    n = min((len(r) for r in per_rank), default=0)
    agg: dict[str, list[float]] = {"au": [], "au_nb": [], "throughput": [], "io_bps": []}
    for i in range(n):
        rows = [r[i] for r in per_rank]
        agg["au"].append(sum(x["au"] for x in rows) / len(rows))
        agg["au_nb"].append(sum(x["au_nb"] for x in rows) / len(rows))
        agg["throughput"].append(sum(x["throughput"] for x in rows))
        agg["io_bps"].append(sum(x["io_bps"] for x in rows))
    return agg


@dataclass
class RankSummary:
    """One rank's contribution to the summary: window figures per epoch and the training stages' counts."""

    train_rows: list[dict] = field(default_factory=list)
    eval_rows: list[dict] = field(default_factory=list)
    train_stages: dict[str, LatencyHistogram] = field(default_factory=dict)

    @classmethod
    def from_epochs(cls, epochs: Sequence[Any], *, exclude_start: int, exclude_end: int) -> RankSummary:
        """Summarise this rank's epoch records (every training step goes into the stage histograms)."""
        stages = {name: LatencyHistogram() for name in STAGES}
        for rec in epochs:
            for name, values in rec.train.stage_lists().items():
                stages[name].add(values)
        return cls(train_rows=epoch_figures(epochs, "train", exclude_start, exclude_end),
                   eval_rows=epoch_figures(epochs, "eval", exclude_start, exclude_end),
                   train_stages=stages)


def stage_summaries(summaries: Sequence[RankSummary], local_epochs: Sequence[Any] | None = None) -> dict[str, dict]:
    """``report.json``'s per-stage block: merged histograms, or exact when ``local_epochs`` holds every step.

    Pass ``local_epochs`` only when this process ran the whole job (one rank).
    """
    if local_epochs is not None:
        values: dict[str, list] = {name: [] for name in STAGES}
        for rec in local_epochs:
            for name, stage_values in rec.train.stage_lists().items():
                values[name].extend(stage_values)
        return {name: stage_summary(v) for name, v in values.items()}
    return {name: LatencyHistogram.merged([s.train_stages[name] for s in summaries]).summary() for name in STAGES}
