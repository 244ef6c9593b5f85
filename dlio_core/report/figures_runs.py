"""The report's figures drawn from per-epoch and per-checkpoint figures (``summary.json``, checkpoint
records), which DLIO's folders have too; and the comparison figure of several runs.

Example:
    >>> import tempfile, json, os
    >>> from dlio_core.report.rundata import RunData
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "summary.json"), "w").write(json.dumps({"metric": {}}))
    >>> checkpoint_figure(RunData.load(d)).note
    'this run took no checkpoints'
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .figures import Figure, new_figure, to_png
from .rundata import RunData

__all__ = ["epochs_figure", "checkpoint_figure", "compare_figure"]


def epochs_figure(run: RunData) -> Figure:
    """AU per epoch (bars) against the workload's AU threshold, and samples/s per epoch (line)."""
    out = Figure("fig-epochs", "AU and samples/s per epoch (training)",
                 "Accelerator utilisation per epoch against the workload's threshold (metric.au), and the "
                 "samples per second of all ranks.")
    au = run.metric.get("train_au_percentage") or []
    rate = run.metric.get("train_throughput_samples_per_second") or []
    if not au:
        out.note = "no training epochs in summary.json"
        return out
    x = np.arange(1, len(au) + 1)
    fig, ax = new_figure()
    threshold = run.au_threshold_percentage
    colors = ["#2ca02c" if threshold is None or a >= threshold else "#d62728" for a in au]
    ax.bar(x, au, color=colors, alpha=0.8, label="AU %")
    if threshold is not None:
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1.0, label=f"threshold {threshold:g}%")
    ax.set_ylim(0, max(105.0, max(au) * 1.05))
    ax.set_xlabel("epoch")
    ax.set_ylabel("AU %")
    ax.set_xticks(x)
    right = ax.twinx()
    right.plot(x[:len(rate)], rate, color="#1f77b4", marker="o", label="samples/s")
    right.set_ylabel("samples/s")
    right.set_ylim(bottom=0, top=max(rate or [1]) * 1.2)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="lower right", fontsize="small")
    out.png = to_png(fig)
    if threshold is None:
        out.note = "the folder holds no resolved config: the AU threshold is not known"
    return out


def checkpoint_figure(run: RunData) -> Figure:
    """Save and load GiB/s per checkpoint (all ranks together) and per rank."""
    out = Figure("fig-checkpoints", "Checkpoint save and load GiB/s",
                 "Left: GiB/s of each checkpoint (all ranks' bytes over the time from the common start to the "
                 "last rank done). Right: each rank's own bytes over its own time.")
    records = run.checkpoint_records()
    if not records:
        out.note = "this run took no checkpoints"
        return out
    fig, (ax, ax_rank) = new_figure(1, 2, height=3.4)
    colors = {"save": "#1f77b4", "load": "#ff7f0e"}
    labels = [f"{r['kind']} {r['index']}" for r in records]
    ax.bar(np.arange(len(records)), [r.get("throughput_GiB_per_s") or 0.0 for r in records],
           color=[colors[r["kind"]] for r in records])
    ax.set_xticks(np.arange(len(records)), labels, rotation=45 if len(records) > 6 else 0, fontsize="small")
    ax.set_ylabel("GiB/s")
    ax.set_title("per checkpoint", fontsize="medium")
    drawn = False
    for kind, marker in (("save", "o"), ("load", "s")):
        for r in (r for r in records if r["kind"] == kind):
            ranks = sorted(r.get("rank_GiB_per_s") or {})
            if ranks:
                drawn = True
                ax_rank.plot(ranks, [r["rank_GiB_per_s"][k] for k in ranks], marker=marker, linestyle="-",
                             linewidth=0.6, markersize=4, color=colors[kind], alpha=0.7,
                             label=f"{kind}" if r["index"] == 1 else None)
    ax_rank.set_xlabel("rank")
    ax_rank.set_ylabel("GiB/s")
    ax_rank.set_title("per rank (one line per checkpoint)", fontsize="medium")
    ax_rank.xaxis.get_major_locator().set_params(integer=True)
    if drawn:
        ax_rank.legend(fontsize="small")
    out.png = to_png(fig)
    if not drawn:
        out.note = "the folder holds no per-rank checkpoint times"
    return out


def compare_figure(names: Sequence[str], rows: Sequence[tuple[str, Sequence[float | None]]]) -> Figure:
    """Grouped bars: each figure's ratio to the first run (``rows``: label, ratio per run)."""
    out = Figure("fig-compare", "Each figure against the first run", "Ratio of each run's figure to the first run's.")
    rows = [(label, ratios) for label, ratios in rows if any(r is not None for r in ratios)]
    if not rows:
        out.note = "no figure common to the runs"
        return out
    fig, ax = new_figure(height=max(3.0, 0.35 * len(rows) * max(1, len(names)) ** 0.5 + 1.0))
    width = 0.8 / len(names)
    y = np.arange(len(rows))
    for i, name in enumerate(names):
        ax.barh(y + i * width, [r[1][i] if r[1][i] is not None else 0.0 for r in rows], height=width, label=name)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(y + width * (len(names) - 1) / 2, [r[0] for r in rows], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("ratio to the first run")
    ax.legend(fontsize="small", loc="lower right")
    out.png = to_png(fig)
    return out
