"""Step records and the figures derived from them.

One :class:`PhaseRecord` holds one phase (an epoch's training, or its evaluation) on one rank: for
each step the time the loop waited for its batch (``wait``, DLIO's "load"), the emulated compute,
the barrier wait, and what the loader reported (bytes, io and decode seconds).

The measured window is steps ``s .. e`` with ``s = exclude_start_steps`` and
``e = steps - 1 - exclude_end_steps`` (DLIO's ``output.metric`` keys). Numerator and denominator use
the same window (DLIO divides by the window but counts "len - 2" steps regardless of it):

- window wall time = end of step ``e`` (after its barrier) - start of step ``s`` - checkpoint time
  inside the window;
- AU = sum(compute in window) / window wall time (barrier waits count as stall, as in DLIO);
- AU without barriers = sum(compute) / (window wall - barrier time) (in ``report.json`` only);
- throughput = samples in window / window wall time;
- I/O bytes/s = bytes actually read in window / window wall time (DLIO multiplies samples/s by the
  configured record length instead).

Records stay on their rank: rank 0 receives only a per-rank summary (``report/rank_summary.py``: the
window figures above and a fixed-size histogram per stage), never the per-step lists.

Example:
    >>> rec = PhaseRecord(batch_size=2)
    >>> for i in range(4):
    ...     rec.add_step(start=i * 1.0, wait=0.25, compute=0.75, barrier=0.0, end=(i + 1) * 1.0,
    ...                  samples=2, bytes_read=100, io_s=0.1, decode_s=0.0)
    >>> w = rec.window(exclude_start=1, exclude_end=0)
    >>> (w.steps, round(w.au_percentage, 1), round(w.throughput_samples_per_s, 1))
    (3, 75.0, 2.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["PhaseRecord", "Window", "stage_summary", "STAGES"]

# The per-step stages summarised in report.json (mean and percentiles).
STAGES = ("wait", "io", "decode", "h2d", "compute", "barrier")


@dataclass
class Window:
    """The figures of one phase over its measured step window (one rank)."""

    steps: int
    samples: int
    wall_s: float
    compute_s: float
    barrier_s: float
    bytes_read: int
    sample_bytes: int
    au_percentage: float
    au_without_barrier_percentage: float
    throughput_samples_per_s: float
    io_bytes_per_s: float
    full_window: bool  # False when too few steps to exclude any: all steps were measured


@dataclass
class PhaseRecord:
    """Per-step timings of one phase on one rank (lists grow by one entry per step)."""

    batch_size: int
    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    wait: list[float] = field(default_factory=list)
    compute: list[float] = field(default_factory=list)
    barrier: list[float] = field(default_factory=list)
    checkpoint: list[float] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    bytes_read: list[int] = field(default_factory=list)
    sample_bytes: list[int] = field(default_factory=list)
    io: list[float | None] = field(default_factory=list)      # None: the loader cannot see this stage
    decode: list[float | None] = field(default_factory=list)
    h2d: list[float | None] = field(default_factory=list)     # None: no device copy (no GPU, or native runs)

    @property
    def steps(self) -> int:
        return len(self.start)

    def add_step(self, *, start: float, wait: float, compute: float, barrier: float, end: float,
                 samples: int, bytes_read: int, io_s: float | None, decode_s: float | None,
                 sample_bytes: int = 0, checkpoint_s: float = 0.0, h2d_s: float | None = None) -> None:
        self.add_row(start, wait, compute, barrier, end, samples, bytes_read, io_s, decode_s, sample_bytes,
                     checkpoint_s, h2d_s)

    def add_row(self, start: float, wait: float, compute: float, barrier: float, end: float, samples: int,
                bytes_read: int, io_s: float | None, decode_s: float | None, sample_bytes: int,
                checkpoint_s: float, h2d_s: float | None) -> None:
        """``add_step`` with every field given by position, in that order: the runner's call every step
        (keywords cost more than the appends)."""
        self.start.append(start)
        self.end.append(end)
        self.wait.append(wait)
        self.compute.append(compute)
        self.barrier.append(barrier)
        self.checkpoint.append(checkpoint_s)
        self.samples.append(samples)
        self.bytes_read.append(bytes_read)
        self.sample_bytes.append(sample_bytes)
        self.io.append(io_s)
        self.decode.append(decode_s)
        self.h2d.append(h2d_s)

    def proc(self) -> list[float]:
        """DLIO's "proc" per step: wait + compute."""
        return [w + c for w, c in zip(self.wait, self.compute)]

    def window_bounds(self, exclude_start: int, exclude_end: int) -> tuple[int, int, bool]:
        """First and last step of the measured window; falls back to all steps when too few."""
        n = self.steps
        s, e = exclude_start, n - 1 - exclude_end
        if n == 0:
            return 0, -1, False
        if e < s:
            return 0, n - 1, False
        return s, e, True

    def window(self, exclude_start: int, exclude_end: int) -> Window:
        s, e, full = self.window_bounds(exclude_start, exclude_end)
        if e < s:
            return Window(0, 0, 0.0, 0.0, 0.0, 0, 0, 0.0, 0.0, 0.0, 0.0, False)
        sl = slice(s, e + 1)
        # Checkpoints taken after steps s..e-1 fall inside the window's wall time; not compute, not stall.
        wall = self.end[e] - self.start[s] - sum(self.checkpoint[s:e])
        compute = float(sum(self.compute[sl]))
        barrier = float(sum(self.barrier[sl]))
        samples = int(sum(self.samples[sl]))
        nbytes = int(sum(self.bytes_read[sl]))
        wall = max(wall, 1e-12)
        busy_wall = max(wall - barrier, 1e-12)
        return Window(
            steps=e - s + 1,
            samples=samples,
            wall_s=wall,
            compute_s=compute,
            barrier_s=barrier,
            bytes_read=nbytes,
            sample_bytes=int(sum(self.sample_bytes[sl])),
            au_percentage=100.0 * compute / wall,
            au_without_barrier_percentage=100.0 * compute / busy_wall,
            throughput_samples_per_s=samples / wall,
            io_bytes_per_s=nbytes / wall,
            full_window=full,
        )

    def stage_lists(self) -> dict[str, list[float]]:
        return {"wait": self.wait, "io": self.io, "decode": self.decode, "compute": self.compute,
                "barrier": self.barrier, "h2d": self.h2d}


def stage_summary(values: list[float | None] | np.ndarray) -> dict[str, float | int | None]:
    """Mean and p50/p95/p99 of one stage's per-step seconds (``None`` when there are no steps).

    Steps whose value is ``None`` (a loader that cannot see the stage, e.g. tf.data's own reader)
    are left out and counted in ``not_measured_steps``; a stage never measured has ``count`` 0.

    >>> stage_summary([1.0, 2.0, 3.0, 4.0])["p50_s"]
    2.5
    >>> stage_summary([None, None])["not_measured_steps"], stage_summary([None, None])["mean_s"]
    (2, None)
    """
    if not isinstance(values, np.ndarray) and any(v is None for v in values):
        measured = [v for v in values if v is not None]
        return {**stage_summary(measured), "not_measured_steps": len(values) - len(measured)}
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"count": 0, "mean_s": None, "p50_s": None, "p95_s": None, "p99_s": None, "max_s": None}
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"count": int(arr.size), "mean_s": float(arr.mean()), "p50_s": float(p50),
            "p95_s": float(p95), "p99_s": float(p99), "max_s": float(arr.max())}


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population standard deviation (numpy's default, as DLIO reports); NaN-free."""
    if not values:
        return 0.0, 0.0
    arr = np.asarray(values, dtype=np.float64)
    mean, std = float(arr.mean()), float(arr.std())
    return (0.0 if math.isnan(mean) else mean), (0.0 if math.isnan(std) else std)
