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
    >>> rank_spread([mine, mine])["step_time_s"]["slowest_rank"]  # a tie goes to the lowest rank
    0
"""

from __future__ import annotations

import resource
import socket
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..metrics import STAGES, stage_summary
from .histogram import LatencyHistogram

__all__ = ["RankSummary", "epoch_figures", "aggregate", "stage_summaries", "rank_spread", "peak_rss_bytes",
           "host_table"]


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far, in bytes (``getrusage``; kB on Linux, bytes on macOS).

    Example:
        >>> peak_rss_bytes() > 0
        True
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def epoch_figures(epochs: Sequence[Any], phase: str, exclude_start: int, exclude_end: int) -> list[dict]:
    """This rank's per-epoch window figures for ``phase`` ("train" or "eval")."""
    out = []
    for rec in epochs:
        record = rec.train if phase == "train" else rec.eval
        if record is None or record.steps == 0:
            continue
        w = record.window(exclude_start, exclude_end)
        first, last, _ = record.window_bounds(exclude_start, exclude_end)
        steps = slice(first, last + 1)
        io = [v for v in record.io[steps] if v is not None]
        out.append({"epoch": rec.epoch, "au": w.au_percentage, "au_nb": w.au_without_barrier_percentage,
                    "throughput": w.throughput_samples_per_s, "io_bps": w.io_bytes_per_s,
                    "bytes": w.bytes_read, "sample_bytes": w.sample_bytes, "full_window": w.full_window,
                    # for the spread across ranks (rank_spread): this rank's own time, without the barrier
                    "steps": w.steps, "samples": w.samples, "wall_s": w.wall_s,
                    "busy_s": float(sum(record.wait[steps]) + sum(record.compute[steps])),
                    "io_s": float(sum(io)), "io_steps": len(io)})
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
    hostname: str = ""
    peak_rss_bytes: int = 0  # this rank's peak resident memory when it wrote its results
    node: dict = field(default_factory=dict)  # once-per-node work this rank did for its host (node_work.py)

    @classmethod
    def from_epochs(cls, epochs: Sequence[Any], *, exclude_start: int, exclude_end: int,
                    node: dict | None = None) -> RankSummary:
        """Summarise this rank's epoch records (every training step goes into the stage histograms)."""
        stages = {name: LatencyHistogram() for name in STAGES}
        for rec in epochs:
            for name, values in rec.train.stage_lists().items():
                stages[name].add(values)
        return cls(train_rows=epoch_figures(epochs, "train", exclude_start, exclude_end),
                   eval_rows=epoch_figures(epochs, "eval", exclude_start, exclude_end),
                   train_stages=stages, hostname=socket.gethostname(), peak_rss_bytes=peak_rss_bytes(),
                   node=dict(node or {}))


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


def _across_ranks(values: Sequence[float | None], slowest: str) -> dict[str, Any]:
    """min, p50, p99, max and mean over ranks, and the slowest rank (largest time, or smallest rate).

    Ranks with no value (``None``: nothing measured) are left out; ``ranks_measured`` counts the rest.
    """
    ranks = [r for r, v in enumerate(values) if v is not None]
    if not ranks:
        return {"ranks_measured": 0, "min": None, "p50": None, "p99": None, "max": None, "mean": None,
                "slowest_rank": None}
    arr = np.asarray([values[r] for r in ranks], dtype=np.float64)
    p50, p99 = np.percentile(arr, [50, 99])
    pick = int(np.argmax(arr) if slowest == "max" else np.argmin(arr))  # the first on a tie: the lowest rank
    return {"ranks_measured": len(ranks), "min": float(arr.min()), "p50": float(p50), "p99": float(p99),
            "max": float(arr.max()), "mean": float(arr.mean()), "slowest_rank": ranks[pick]}


def rank_spread(summaries: Sequence[RankSummary]) -> dict[str, Any]:
    """``report.json``'s ``train.rank_spread``: how the ranks differ, and the job's straggler-inclusive time.

    Per rank, over every epoch's measured window: its mean step time without the barrier (wait +
    compute per step: what it took this rank to be ready), its mean io seconds per step, and its
    samples/s; each as min, p50, p99, max and mean across ranks, with the slowest rank. The
    straggler-inclusive figures, per epoch: the slowest rank's window (``wall_s``) and every rank's
    samples over it (DLIO sums each rank's own rate instead, which a straggler cannot lower).
    """
    per_rank = [s.train_rows for s in summaries]
    step_time, io_time, rate = [], [], []
    for rows in per_rank:
        steps = sum(r["steps"] for r in rows)
        io_steps = sum(r["io_steps"] for r in rows)
        wall = sum(r["wall_s"] for r in rows)
        step_time.append(sum(r["busy_s"] for r in rows) / steps if steps else None)
        io_time.append(sum(r["io_s"] for r in rows) / io_steps if io_steps else None)
        rate.append(sum(r["samples"] for r in rows) / wall if steps and wall > 0 else None)
    epochs = min((len(rows) for rows in per_rank), default=0)
    walls, slowest, job_rate = [], [], []
    for i in range(epochs):
        wall_by_rank = [rows[i]["wall_s"] for rows in per_rank]
        worst = int(np.argmax(wall_by_rank))
        walls.append(wall_by_rank[worst])
        slowest.append(worst)
        job_rate.append(sum(rows[i]["samples"] for rows in per_rank) / max(wall_by_rank[worst], 1e-12))
    return {
        "ranks": len(per_rank),
        "step_time_s": _across_ranks(step_time, "max"),
        "io_s": _across_ranks(io_time, "max"),
        "throughput_samples_per_s": _across_ranks(rate, "min"),
        "straggler_inclusive": {"wall_s": walls, "slowest_rank": slowest, "throughput_samples_per_s": job_rate},
    }


def host_table(summaries: Sequence[RankSummary], host_names: Sequence[str]) -> list[dict[str, Any]]:
    """``report.json``'s ``hosts``: per host (in ``host_names`` order) its ranks, their peak memory and
    the once-per-node work its leader did (``node``: page-cache eviction, see ``dlio_core.node_work``).

    Example:
        >>> a, b = RankSummary(hostname="h1", peak_rss_bytes=5), RankSummary(hostname="h1", peak_rss_bytes=7)
        >>> host_table([a, b], ["h1"])[0]["peak_rss_bytes"]
        {'max': 7, 'sum': 12, 'max_rank': 1}
    """
    table = []
    for name in host_names:
        ranks = [r for r, s in enumerate(summaries) if s.hostname == name]
        rss = [summaries[r].peak_rss_bytes for r in ranks]
        work = [summaries[r].node for r in ranks if summaries[r].node]
        table.append({"hostname": name, "ranks": ranks,
                      "peak_rss_bytes": {"max": max(rss, default=0), "sum": sum(rss),
                                         "max_rank": ranks[int(np.argmax(rss))] if rss else None},
                      "node_work": work[0] if work else {}})
    return table
