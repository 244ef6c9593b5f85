"""A mergeable latency histogram: fixed log-spaced buckets, so ranks send counts instead of every step.

Rank 0 used to gather every rank's per-step seconds to compute percentiles (memory grew with ranks x
steps). Each rank now sends one :class:`LatencyHistogram` per stage; rank 0 adds them up and reads
p50/p95/p99 off the merged counts.

Buckets grow by ``GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)`` from ``ZERO_BELOW_S`` to
``LARGEST_S`` (as in DDSketch); a value is represented by its bucket's point that is at most
``RELATIVE_ERROR`` away from anything in the bucket. Error bound of :meth:`LatencyHistogram.percentile`
against ``numpy.percentile`` (linear interpolation) of the same values, for values in
``[0, LARGEST_S]``::

    |estimate - exact| <= RELATIVE_ERROR * exact + ZERO_BELOW_S        (1% + 1 ns)

because each of the two order statistics numpy interpolates between is estimated within that bound,
and an interpolation of two such estimates stays within it. The smallest and largest values, the
count, the sum (hence the mean) and the not-measured count are exact. The payload holds only the
buckets between the smallest and the largest value: at most ``BUCKETS + 1`` counts whatever the
number of steps (about 14 KiB; a few hundred bytes for latencies within a decade).

Example:
    >>> a, b = LatencyHistogram(), LatencyHistogram()
    >>> a.add([0.010, 0.020, None]); b.add([0.030, 0.040])
    >>> merged = LatencyHistogram.merged([a, b])
    >>> (merged.count, merged.not_measured, round(merged.mean_s, 3), merged.max_s)
    (4, 1, 0.025, 0.04)
    >>> abs(merged.percentile(50) - 0.025) <= RELATIVE_ERROR * 0.025 + ZERO_BELOW_S
    True
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["LatencyHistogram", "RELATIVE_ERROR", "ZERO_BELOW_S", "LARGEST_S", "BUCKETS"]

RELATIVE_ERROR = 0.01          # bound on a percentile's relative error (see the module docstring)
ZERO_BELOW_S = 1e-9            # values at or below 1 ns share one bucket, estimated as 0 (clamped to min)
LARGEST_S = 1e6                # values above ~11.6 days share the last bucket (clamped to max)
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LN_GAMMA = math.log(GAMMA)
BUCKETS = math.ceil(math.log(LARGEST_S / ZERO_BELOW_S) / _LN_GAMMA)


def _bucket_of(values: np.ndarray) -> np.ndarray:
    """Bucket index of each value: 0 for <= ZERO_BELOW_S, else i with value in (Z*g^(i-1), Z*g^i]."""
    out = np.zeros(values.shape, dtype=np.int64)
    positive = values > ZERO_BELOW_S
    if positive.any():
        idx = np.ceil(np.log(values[positive] / ZERO_BELOW_S) / _LN_GAMMA)
        out[positive] = np.clip(idx, 1, BUCKETS).astype(np.int64)
    return out


def _representative(bucket: int) -> float:
    """The point of bucket ``bucket`` within RELATIVE_ERROR of every value in it (0 for the zero bucket)."""
    if bucket == 0:
        return 0.0
    return 2.0 * ZERO_BELOW_S * GAMMA ** bucket / (GAMMA + 1.0)


class LatencyHistogram:
    """Counts of one stage's per-step seconds in fixed log-spaced buckets; add, merge, read percentiles.

    ``None`` values (a loader that cannot see the stage) are counted in ``not_measured`` only.

    >>> h = LatencyHistogram(); h.add([1.0, 2.0, 3.0, 4.0])
    >>> h.summary()["count"], h.summary()["max_s"]
    (4, 4.0)
    """

    __slots__ = ("count", "not_measured", "total_s", "min_s", "max_s", "_first", "_counts")

    def __init__(self) -> None:
        self.count = 0
        self.not_measured = 0
        self.total_s = 0.0
        self.min_s = math.inf
        self.max_s = -math.inf
        self._first = 0                                   # bucket index of _counts[0]
        self._counts = np.zeros(0, dtype=np.int64)        # only the buckets from min to max are kept

    @property
    def mean_s(self) -> float | None:
        return self.total_s / self.count if self.count else None

    def _widen(self, first: int, last: int) -> None:
        """Make room for buckets ``first..last`` (inclusive) in the kept range."""
        if self._counts.size == 0:
            self._first, self._counts = first, np.zeros(last - first + 1, dtype=np.int64)
            return
        lo, hi = min(first, self._first), max(last, self._first + self._counts.size - 1)
        if (lo, hi) != (self._first, self._first + self._counts.size - 1):
            wider = np.zeros(hi - lo + 1, dtype=np.int64)
            wider[self._first - lo:self._first - lo + self._counts.size] = self._counts
            self._first, self._counts = lo, wider

    def add(self, values: Iterable[float | None]) -> None:
        """Count ``values`` (seconds; ``None`` counts as not measured)."""
        items = list(values)
        measured = np.asarray([v for v in items if v is not None], dtype=np.float64)
        self.not_measured += len(items) - measured.size
        if measured.size == 0:
            return
        buckets = _bucket_of(measured)
        first, last = int(buckets.min()), int(buckets.max())
        self._widen(first, last)
        self._counts[first - self._first:last - self._first + 1] += np.bincount(buckets - first,
                                                                                minlength=last - first + 1)
        self.count += int(measured.size)
        self.total_s += float(measured.sum())
        self.min_s = min(self.min_s, float(measured.min()))
        self.max_s = max(self.max_s, float(measured.max()))

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s counts to this histogram (what rank 0 does with every rank's)."""
        self.not_measured += other.not_measured
        if other.count == 0:
            return
        self._widen(other._first, other._first + other._counts.size - 1)
        start = other._first - self._first
        self._counts[start:start + other._counts.size] += other._counts
        self.count += other.count
        self.total_s += other.total_s
        self.min_s, self.max_s = min(self.min_s, other.min_s), max(self.max_s, other.max_s)

    @classmethod
    def merged(cls, parts: Sequence[LatencyHistogram]) -> LatencyHistogram:
        """One histogram holding the counts of all ``parts``."""
        out = cls()
        for part in parts:
            out.merge(part)
        return out

    def _order_statistic(self, k: int, cumulative: np.ndarray) -> float:
        """Estimate of the ``k``-th smallest value (0-based); the smallest and largest are exact."""
        if k <= 0:
            return self.min_s
        if k >= self.count - 1:
            return self.max_s
        bucket = self._first + int(np.searchsorted(cumulative, k, side="right"))
        return min(max(_representative(bucket), self.min_s), self.max_s)

    def percentile(self, q: float) -> float | None:
        """``numpy.percentile(values, q)`` (linear interpolation) within the module's error bound."""
        if self.count == 0:
            return None
        cumulative = np.cumsum(self._counts)
        position = (self.count - 1) * q / 100.0
        k = int(math.floor(position))
        low = self._order_statistic(k, cumulative)
        frac = position - k
        if frac == 0.0:
            return low
        return low + frac * (self._order_statistic(k + 1, cumulative) - low)

    def summary(self) -> dict[str, float | int | None]:
        """The same keys as :func:`dlio_core.metrics.stage_summary`, from the counts."""
        if self.count == 0:
            out: dict[str, Any] = {"count": 0, "mean_s": None, "p50_s": None, "p95_s": None, "p99_s": None,
                                   "max_s": None}
        else:
            out = {"count": self.count, "mean_s": self.mean_s, "p50_s": self.percentile(50),
                   "p95_s": self.percentile(95), "p99_s": self.percentile(99), "max_s": self.max_s}
        if self.not_measured:
            out["not_measured_steps"] = self.not_measured
        return out
