"""The report's figures, drawn with matplotlib into PNG bytes (the ``plots`` extra).

Each function takes a :class:`~dlio_core.report.rundata.RunData` and returns a :class:`Figure`: its
id in the page, a title, a caption, the PNG, or no PNG and a note saying why the figure cannot be drawn
from this folder (a DLIO folder has no bytes per step, a run without checkpoints has nothing to show
for them). matplotlib is imported when a figure is drawn, through its object API (``Figure`` and the
Agg canvas: no pyplot, no display, no global state); without it :func:`require_matplotlib` raises one
line naming the extra.

Example:
    >>> import tempfile, json, os
    >>> from dlio_core.report.rundata import RunData
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "summary.json"), "w").write(json.dumps({"metric": {}}))
    >>> _ = open(os.path.join(d, "0_output.json"), "w").write("{}")
    >>> fig = bandwidth_figure(RunData.load(d))
    >>> fig.png is None, fig.note
    (True, "DLIO's files hold no bytes per step")
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from .rundata import RunData, StepTable

__all__ = ["Figure", "MissingPlotsExtra", "require_matplotlib", "new_figure", "to_png", "timeline_figure",
           "latency_cdf_figure", "bandwidth_figure", "rank_spread_figure", "STAGE_COLORS"]

STAGE_COLORS = {"wait_s": "#d62728", "io_s": "#ff7f0e", "decode_s": "#9467bd", "h2d_s": "#8c564b",
                "compute_s": "#2ca02c", "barrier_s": "#7f7f7f"}
_MAX_POINTS = 4000  # more steps than this are averaged into this many bins (a PNG has no more pixels)


class MissingPlotsExtra(ImportError):
    """matplotlib is not installed."""


@dataclass
class Figure:
    """One figure of the page: ``png`` holds the image, or is None with ``note`` saying why."""

    id: str
    title: str
    caption: str = ""
    png: bytes | None = None
    note: str = ""


def require_matplotlib() -> Any:
    """The ``matplotlib.figure`` module, or :class:`MissingPlotsExtra` naming the extra to install."""
    try:
        import matplotlib
        import matplotlib.figure
    except ImportError:
        raise MissingPlotsExtra("the HTML report draws with matplotlib, which is not installed: "
                                "pip install 'dl-driver[plots]'") from None
    del matplotlib
    import matplotlib.figure as mfigure

    return mfigure


def new_figure(rows: int = 1, cols: int = 1, *, height: float = 3.4, width: float = 9.0, **kw: Any) -> tuple:
    """A matplotlib ``Figure`` (no pyplot) and its axes."""
    mfigure = require_matplotlib()
    fig = mfigure.Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(rows, cols, **kw)


def to_png(fig: Any, dpi: int = 90) -> bytes:
    """The figure as PNG bytes (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _binned(x: np.ndarray, ys: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """At most ``_MAX_POINTS`` points: consecutive steps averaged (NaN-aware) when there are more."""
    if x.size <= _MAX_POINTS:
        return x, ys
    edges = np.linspace(0, x.size, _MAX_POINTS + 1).astype(int)

    def mean(a: np.ndarray) -> np.ndarray:
        sums = np.add.reduceat(np.nan_to_num(a), edges[:-1])
        counts = np.add.reduceat(np.isfinite(a).astype(float), edges[:-1])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    return x[edges[:-1]], [mean(a) for a in ys]


def timeline_figure(run: RunData) -> Figure:
    """Rank 0's training steps one after the other: wait, compute and barrier stacked (they make up a
    step), with the loader's io / decode / h2d seconds as lines (they overlap compute when it reads ahead)."""
    out = Figure("fig-timeline", "Per-step timeline (rank 0, training)",
                 "Each step's time split into waiting for the batch, compute and the barrier; io, decode and "
                 "host-to-device seconds as the loader reported them (they overlap compute when it reads ahead). "
                 "Dotted lines: epoch boundaries.")
    table = run.steps("train")
    cols = table.columns
    mine = cols["rank"] == (cols["rank"].min() if len(table) else 0)
    if not mine.any():
        out.note = "no training steps in this folder"
        return out
    order = np.lexsort((cols["step"][mine], cols["epoch"][mine]))
    epochs = cols["epoch"][mine][order]
    stacked = [c for c in ("wait_s", "compute_s", "barrier_s") if table.measured(c)]
    lines = [c for c in ("io_s", "decode_s", "h2d_s") if table.measured(c)]
    x, values = _binned(np.arange(1, order.size + 1, dtype=float),
                        [cols[c][mine][order] * 1e3 for c in stacked + lines])
    fig, ax = new_figure()
    bottom = np.zeros_like(x)
    for name, v in zip(stacked, values):
        top = bottom + np.nan_to_num(v)
        ax.fill_between(x, bottom, top, step="mid", color=STAGE_COLORS[name], alpha=0.75, label=name[:-2],
                        linewidth=0)
        bottom = top
    for name, v in zip(lines, values[len(stacked):]):
        ax.plot(x, v, drawstyle="steps-mid", color=STAGE_COLORS[name], linewidth=1.0, label=name[:-2])
    for boundary in np.flatnonzero(np.diff(epochs)) + 1:
        ax.axvline(boundary + 0.5, color="black", linestyle=":", linewidth=0.8)
    ax.set_xlabel("training step (all epochs)")
    ax.set_ylabel("ms per step")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", ncols=6, fontsize="small")
    out.png = to_png(fig)
    if not table.exact:
        out.note = "DLIO's files hold wait (its 'load') and compute only"
    return out


def latency_cdf_figure(run: RunData) -> Figure:
    """The distribution of each stage's per-step seconds, every rank's training steps together."""
    out = Figure("fig-latency-cdf", "Latency per stage (all ranks, training)",
                 "Cumulative distribution of each stage's seconds per step; the legend gives p50 and p99.")
    table = run.steps("train")
    names = [c for c in STAGE_COLORS if table.measured(c)]
    if not names:
        out.note = "no training steps in this folder"
        return out
    fig, ax = new_figure()
    for name in names:
        v = table.columns[name]
        v = np.sort(v[np.isfinite(v)])
        p50, p99 = np.percentile(v, [50, 99])
        y = np.arange(1, v.size + 1) / v.size
        ax.step(np.maximum(v, 1e-7) * 1e3, y, where="post", color=STAGE_COLORS[name],
                label=f"{name[:-2]}  p50 {p50 * 1e3:.3g} ms, p99 {p99 * 1e3:.3g} ms")
    ax.set_xscale("log")
    ax.set_xlabel("ms per step (log)")
    ax.set_ylabel("fraction of steps")
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    out.png = to_png(fig)
    return out


def bandwidth_figure(run: RunData) -> Figure:
    """Bytes read per second over wall time, every rank and phase together (each step's bytes counted
    when its batch arrived), with the mean over the run."""
    out = Figure("fig-bandwidth", "Read bandwidth over time (all ranks)",
                 "MiB/s read by all ranks in training and evaluation, in time bins; each step's bytes count "
                 "when its batch arrived. Dashed: the mean from the first step to the last.")
    table = run.steps("all")
    if not table.exact:
        out.note = "DLIO's files hold no bytes per step"
        return out
    cols = table.columns
    if not len(table) or not np.nansum(cols["bytes_read"]):
        out.note = "no bytes were read in this run's steps"
        return out
    arrived = cols["wall_start_s"] + np.nan_to_num(cols["wait_s"])
    t0 = float(cols["wall_start_s"].min())
    span = max(float(arrived.max()) - t0, 1e-3)
    bins = int(min(200, max(10, len(table) // 5)))  # several steps a bin: no aliasing with the step period
    width = span / bins
    counts, edges = np.histogram(arrived - t0, bins=bins, range=(0.0, span), weights=cols["bytes_read"])
    fig, ax = new_figure()
    ax.fill_between(edges[:-1], counts / width / 2**20, step="post", color="#1f77b4", alpha=0.6, label="MiB/s")
    ax.axhline(float(cols["bytes_read"].sum()) / span / 2**20, color="black", linestyle="--", linewidth=0.8,
               label="mean")
    ax.set_xlabel("seconds since the first step")
    ax.set_ylabel("MiB/s")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize="small")
    out.png = to_png(fig)
    return out


def _per_step_across_ranks(table: StepTable) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each (epoch, step): the fastest, median and slowest rank's busy time (wait + compute) and
    which rank was slowest; keys in run order."""
    cols = table.columns
    busy = np.nan_to_num(cols["wait_s"]) + np.nan_to_num(cols["compute_s"])
    keys = cols["epoch"].astype(np.int64) * 10**9 + cols["step"].astype(np.int64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    order = np.lexsort((busy, inverse))                  # by step, then busy time: each step's ranks in order
    counts = np.bincount(inverse, minlength=uniq.size)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    last = first + counts - 1
    lo, hi = busy[order[first]], busy[order[last]]
    med = (busy[order[first + (counts - 1) // 2]] + busy[order[first + counts // 2]]) / 2
    slowest = cols["rank"][order[last]]
    return uniq, lo, med, hi, slowest


def rank_spread_figure(run: RunData) -> Figure:
    """Per training step, the spread of the ranks' busy time and the rank that set the pace."""
    out = Figure("fig-rank-spread", "Per-rank spread (training)",
                 "Per step: the fastest, median and slowest rank's time to get its batch and compute "
                 "(the barrier makes every rank wait for the slowest), and which rank was slowest.")
    table = run.steps("train")
    if not len(table):
        out.note = "no training steps in this folder"
        return out
    _, lo, med, hi, slowest = _per_step_across_ranks(table)
    x = np.arange(1, lo.size + 1)
    fig, (ax, ax_rank) = new_figure(2, 1, height=4.4, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.fill_between(x, lo * 1e3, hi * 1e3, step="mid", color="#1f77b4", alpha=0.3, label="fastest to slowest rank")
    ax.plot(x, med * 1e3, drawstyle="steps-mid", color="#1f77b4", linewidth=1.0, label="median rank")
    ax.plot(x, hi * 1e3, drawstyle="steps-mid", color="#d62728", linewidth=0.8, label="slowest rank")
    ax.set_ylabel("wait + compute, ms")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize="small", ncols=3)
    ax_rank.scatter(x, slowest, s=4, color="#d62728")
    ax_rank.set_ylabel("slowest rank")
    ax_rank.set_xlabel("training step (all epochs)")
    ax_rank.yaxis.get_major_locator().set_params(integer=True)
    out.png = to_png(fig)
    if run.num_ranks == 1:
        out.note = "one rank: no spread to compare"
    return out
