"""The spread across ranks in report.json: slowest rank, p99 across ranks, straggler-inclusive timing."""

from __future__ import annotations

import json
import pickle
from types import SimpleNamespace

import numpy as np
import pytest

from dlio_core.config import load_config
from dlio_core.metrics import PhaseRecord
from dlio_core.report.dlio import write_all
from dlio_core.report.rank_summary import RankSummary, aggregate, host_table, rank_spread
from dlio_core.runner import EpochRecord


def _rank(step_s: float, *, steps: int = 10, epochs: int = 2, io_s: float | None = 0.01) -> list[EpochRecord]:
    """A rank whose every step takes ``step_s`` (half wait, half compute), then waits 0 at the barrier."""
    out = []
    for epoch in range(1, epochs + 1):
        rec = PhaseRecord(batch_size=4)
        for i in range(steps):
            rec.add_step(start=i * step_s, wait=step_s / 2, compute=step_s / 2, barrier=0.0, end=(i + 1) * step_s,
                         samples=4, bytes_read=100, io_s=io_s, decode_s=None)
        out.append(EpochRecord(epoch=epoch, train=rec))
    return out


def _summaries(*ranks: list[EpochRecord]) -> list[RankSummary]:
    return [pickle.loads(pickle.dumps(RankSummary.from_epochs(r, exclude_start=1, exclude_end=0))) for r in ranks]


def test_the_slowest_rank_and_the_tail_across_ranks():
    times = [0.010, 0.011, 0.030, 0.012]
    spread = rank_spread(_summaries(*[_rank(t) for t in times]))
    step = spread["step_time_s"]
    assert spread["ranks"] == 4 and step["slowest_rank"] == 2 and step["ranks_measured"] == 4
    assert step["max"] == pytest.approx(0.030) and step["min"] == pytest.approx(0.010)
    assert step["p99"] == pytest.approx(np.percentile(times, 99))
    assert step["p50"] == pytest.approx(np.percentile(times, 50))
    rate = spread["throughput_samples_per_s"]
    assert rate["slowest_rank"] == 2 and rate["min"] == pytest.approx(4 / 0.030)  # the slowest is the lowest rate
    assert spread["io_s"]["max"] == pytest.approx(0.01)


def test_straggler_inclusive_throughput_is_every_sample_over_the_slowest_window():
    summaries = _summaries(_rank(0.01), _rank(0.04))
    spread = rank_spread(summaries)["straggler_inclusive"]
    window_s = 9 * 0.04  # 10 steps, the first excluded
    assert spread["slowest_rank"] == [1, 1]
    assert spread["wall_s"] == pytest.approx([window_s, window_s])
    assert spread["throughput_samples_per_s"] == pytest.approx([2 * 9 * 4 / window_s] * 2)
    dlio_rule = aggregate([s.train_rows for s in summaries])["throughput"]
    assert all(mine < theirs for mine, theirs in zip(spread["throughput_samples_per_s"], dlio_rule))


def test_ranks_that_measured_nothing_are_left_out_not_zeroed():
    spread = rank_spread(_summaries(_rank(0.02, io_s=None), _rank(0.01), _rank(0.01, steps=0)))
    assert spread["io_s"]["ranks_measured"] == 1 and spread["io_s"]["slowest_rank"] == 1
    assert spread["step_time_s"]["ranks_measured"] == 2 and spread["step_time_s"]["slowest_rank"] == 0
    assert spread["straggler_inclusive"]["wall_s"] == []  # rank 2 has no epoch with steps
    nothing = rank_spread([])
    assert nothing["step_time_s"]["slowest_rank"] is None and nothing["ranks"] == 0


def test_hosts_table_groups_ranks_and_keeps_the_leaders_work():
    a, b, c = (RankSummary(hostname=h, peak_rss_bytes=m, node=n) for h, m, n in
               (("h1", 10, {"evicted_files": 3}), ("h2", 30, {"evicted_files": 4}), ("h1", 20, {})))
    table = host_table([a, b, c], ["h1", "h2"])
    assert [t["ranks"] for t in table] == [[0, 2], [1]]
    assert table[0]["peak_rss_bytes"] == {"max": 20, "sum": 30, "max_rank": 2}
    assert [t["node_work"] for t in table] == [{"evicted_files": 3}, {"evicted_files": 4}]


class _Ranks:
    """Rank 0 of a job whose other ranks' summaries are given (what gather would deliver)."""

    rank, is_root, hostname = 0, True, "host0"

    def __init__(self, others: list[list[EpochRecord]]) -> None:
        self.others = others
        self.world = 1 + len(others)

    def allgather(self, obj):
        return [obj] * self.world

    def gather(self, obj, root=0):
        return [obj, *(RankSummary.from_epochs(e, exclude_start=0, exclude_end=0) for e in self.others)]


def test_report_json_carries_the_spread_and_the_hosts(tmp_path):
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data",
                                  "++workload.output.metric.exclude_start_steps=0"])
    log = SimpleNamespace(warning=lambda *_: None, output=lambda *_: None, metric_block=lambda *_: None)
    write_all(cfg, _Ranks([_rank(0.05)]), log, str(tmp_path), _rank(0.01), "start", train_files=[("a", 10)],
              eval_files=[])
    report = json.loads((tmp_path / "report.json").read_text())
    spread = report["train"]["rank_spread"]
    assert spread["step_time_s"]["slowest_rank"] == 1 and spread["straggler_inclusive"]["slowest_rank"] == [1, 1]
    assert len(report["peak_rss_bytes_by_rank"]) == 2 and report["peak_rss_bytes_by_rank"][0] > 0
    assert [h["ranks"] for h in report["hosts"]] == [[0, 1]]  # one process here: both summaries name this host
