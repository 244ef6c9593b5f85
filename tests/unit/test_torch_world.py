"""Rank/world resolution and instrument() on plain iterables (fast; torch imported once)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from dlio_torch import instrument  # noqa: E402
from dlio_torch._world import resolve_rank_world  # noqa: E402


def test_explicit_wins_over_environment(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert resolve_rank_world() == (3, 4)
    assert resolve_rank_world(1, 2) == (1, 2)
    assert resolve_rank_world(world=8) == (3, 8)


def test_default_is_world_of_one(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert resolve_rank_world() == (0, 1)


def test_bad_rank_names_the_source(monkeypatch):
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="RANK/WORLD_SIZE"):
        resolve_rank_world()


def test_instrument_records_waits_and_bytes(tmp_path):
    import time

    def slow_loader():
        for _ in range(6):
            time.sleep(0.01)  # the data stall
            yield (torch.zeros(4, 16, dtype=torch.uint8), torch.zeros(4))

    class Loader:
        def __iter__(self):
            return slow_loader()

    timed = instrument(Loader())
    for i, _ in enumerate(timed):
        time.sleep(0.002)
        if i == 4:
            break  # an early break still records the step
    report = timed.write_report(str(tmp_path / "r.json"))
    assert report == json.loads((tmp_path / "r.json").read_text())
    assert report["steps"] == 5 and report["samples"] == 20 and report["batch_bytes"] == 5 * (64 + 16)
    assert report["stages"]["wait"]["p50_s"] >= 0.009 and report["data_stall_percentage"] > 50
    assert report["stages"]["h2d"]["mean_s"] is None and report["stages"]["io"]["mean_s"] is None
