"""Per-rank summaries: what rank 0 merges instead of every rank's steps (report/rank_summary.py, histogram.py)."""

from __future__ import annotations

import json
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dlio_core.config import load_config
from dlio_core.metrics import STAGES, PhaseRecord, stage_summary
from dlio_core.report.dlio import write_all
from dlio_core.report.histogram import BUCKETS, RELATIVE_ERROR, ZERO_BELOW_S, LatencyHistogram
from dlio_core.report.rank_summary import RankSummary, aggregate, epoch_figures, stage_summaries
from dlio_core.runner import EpochRecord

# Float rounding in the bucket index can put a value on a boundary into the next bucket.
BOUND = RELATIVE_ERROR * (1 + 1e-9)


def _within(estimate: float, exact: float) -> bool:
    return abs(estimate - exact) <= BOUND * abs(exact) + ZERO_BELOW_S


def _epochs(rng: np.random.Generator, steps: int, epochs: int = 2, *, io_missing: bool = False,
            bounded: bool = False) -> list:
    out = []
    for epoch in range(1, epochs + 1):
        rec = PhaseRecord(batch_size=4)
        t = 0.0
        for _ in range(steps):
            if bounded:  # the same support whatever the number of steps
                wait, io = float(rng.uniform(0.001, 0.1)), float(rng.uniform(0.0001, 0.01))
            else:
                wait, io = float(rng.lognormal(-5, 1)), float(rng.lognormal(-6, 0.5))
            compute = float(rng.uniform(0.001, 0.01))
            io = None if io_missing else io
            rec.add_step(start=t, wait=wait, compute=compute, barrier=0.0, end=t + wait + compute, samples=4,
                         bytes_read=int(rng.integers(1, 10_000)), io_s=io, decode_s=0.0, sample_bytes=4000)
            t += wait + compute
        out.append(EpochRecord(epoch=epoch, train=rec))
    return out


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.floats(0.0, 1e4), st.just(0.0), st.none()), min_size=0, max_size=300),
       split=st.integers(0, 300))
def test_merged_histogram_matches_numpy_within_the_bound(values, split):
    a, b = LatencyHistogram(), LatencyHistogram()
    a.add(values[:split])
    b.add(values[split:])
    merged = LatencyHistogram.merged([a, b]).summary()
    exact = stage_summary(values)
    assert merged["count"] == exact["count"]
    assert merged.get("not_measured_steps") == exact.get("not_measured_steps")
    assert merged["max_s"] == exact["max_s"]
    if exact["count"]:
        assert merged["mean_s"] == pytest.approx(exact["mean_s"], rel=1e-12, abs=1e-300)
    for key in ("p50_s", "p95_s", "p99_s"):
        if exact[key] is None:
            assert merged[key] is None
        else:
            assert _within(merged[key], exact[key]), (key, merged[key], exact[key])


def test_two_ranks_merge_like_their_concatenated_records():
    rng = np.random.default_rng(7)
    ranks = [_epochs(rng, 50), _epochs(rng, 50)]
    mine = [RankSummary.from_epochs(e, exclude_start=1, exclude_end=0) for e in ranks]
    # summary.json's figures: the same sums and windows as the full records give, exactly.
    agg = aggregate([s.train_rows for s in mine])
    for i in range(2):
        windows = [ranks[r][i].train.window(1, 0) for r in range(2)]
        assert agg["au"][i] == sum(w.au_percentage for w in windows) / 2
        assert agg["throughput"][i] == sum(w.throughput_samples_per_s for w in windows)
        assert agg["io_bps"][i] == sum(w.io_bytes_per_s for w in windows)
    # report.json's stages: counts and sums exact, percentiles within the documented bound.
    merged = stage_summaries(mine)
    for name in STAGES:
        values = [v for e in ranks for rec in e for v in rec.train.stage_lists()[name]]
        exact = stage_summary(values)
        assert (merged[name]["count"], merged[name]["max_s"]) == (exact["count"], exact["max_s"])
        if exact["count"]:
            assert merged[name]["mean_s"] == pytest.approx(exact["mean_s"], rel=1e-12)
            assert all(_within(merged[name][k], exact[k]) for k in ("p50_s", "p95_s", "p99_s"))


def test_one_rank_keeps_exact_percentiles():
    epochs = _epochs(np.random.default_rng(3), 40, io_missing=True)
    mine = RankSummary.from_epochs(epochs, exclude_start=0, exclude_end=0)
    stages = stage_summaries([mine], local_epochs=epochs)
    waits = [v for rec in epochs for v in rec.train.wait]
    assert stages["wait"] == stage_summary(waits)
    assert stages["io"] == {**stage_summary([]), "not_measured_steps": 80}


def test_payload_per_rank_does_not_grow_with_steps():
    rng = np.random.default_rng(11)
    sizes = [len(pickle.dumps(RankSummary.from_epochs(_epochs(rng, n, bounded=True), exclude_start=1,
                                                      exclude_end=0)))
             for n in (2_000, 40_000)]
    assert sizes[1] <= sizes[0] * 1.05  # the same spread of latencies fills the same buckets
    full_range = LatencyHistogram()
    full_range.add(np.geomspace(ZERO_BELOW_S / 2, 1e7, 200_000).tolist())
    assert len(pickle.dumps(full_range)) <= 8 * (BUCKETS + 1) + 1024  # hard bound, whatever the values


def test_histogram_edge_cases():
    empty = LatencyHistogram()
    assert empty.summary() == stage_summary([]) and empty.percentile(50) is None
    zeros = LatencyHistogram()
    zeros.add([0.0] * 5)
    assert zeros.summary() == stage_summary([0.0] * 5)  # barrier waits of 0 stay exactly 0
    one = LatencyHistogram()
    one.add([0.25])
    assert one.summary() == stage_summary([0.25])  # min and max are exact, so one value is exact
    assert LatencyHistogram.merged([empty, one]).summary() == one.summary()


def test_epoch_figures_skip_empty_phases():
    epochs = _epochs(np.random.default_rng(5), 3, epochs=1)
    assert epoch_figures(epochs, "eval", 0, 0) == []
    assert aggregate([[], epoch_figures(epochs, "train", 0, 0)]) == {"au": [], "au_nb": [], "throughput": [],
                                                                     "io_bps": []}


class _TwoRanks:
    """Rank 0 of a 2-rank job whose other rank measured the same steps."""

    rank, world, is_root, hostname = 0, 2, True, "host0"

    def allgather(self, obj):
        return [obj, obj]

    def gather(self, obj, root=0):
        return [obj, pickle.loads(pickle.dumps(obj))]  # what travels is the pickled summary


def test_write_all_with_two_ranks_uses_the_merged_histograms(tmp_path):
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data",
                                  "++workload.output.metric.exclude_start_steps=0"])
    epochs = _epochs(np.random.default_rng(9), 30)
    log = SimpleNamespace(warning=lambda *_: None, output=lambda *_: None, metric_block=lambda *_: None)
    summary = write_all(cfg, _TwoRanks(), log, str(tmp_path), epochs, "start", train_files=[("a", 10)], eval_files=[])
    windows = [rec.train.window(0, 0) for rec in epochs]
    assert summary["metric"]["train_throughput_samples_per_second"] == [2 * w.throughput_samples_per_s for w in windows]
    assert summary["metric"]["train_au_percentage"] == [w.au_percentage for w in windows]
    stages = json.loads((tmp_path / "report.json").read_text())["train"]["stages"]
    waits = [v for rec in epochs for v in rec.train.wait]
    exact = stage_summary(waits * 2)
    assert stages["wait"]["count"] == 120 and stages["wait"]["max_s"] == exact["max_s"]
    assert all(_within(stages["wait"][k], exact[k]) for k in ("p50_s", "p95_s", "p99_s"))
