"""The measured window, AU and throughput formulas (DESIGN.md, Metrics)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from dlio_core.metrics import PhaseRecord, stage_summary


def _record(n: int, *, wait: float, compute: float, barrier: float = 0.0, ckpt_after: int | None = None,
            ckpt_s: float = 0.0, batch: int = 4) -> PhaseRecord:
    rec = PhaseRecord(batch_size=batch)
    t = 0.0
    for i in range(n):
        start = t
        end = start + wait + compute + barrier
        rec.add_step(start=start, wait=wait, compute=compute, barrier=barrier, end=end, samples=batch,
                     bytes_read=1000, io_s=wait, decode_s=0.0, sample_bytes=500,
                     checkpoint_s=ckpt_s if i == ckpt_after else 0.0)
        t = end + (ckpt_s if i == ckpt_after else 0.0)
    return rec


def test_au_and_throughput_use_the_same_window():
    rec = _record(10, wait=0.1, compute=0.4)
    w = rec.window(exclude_start=1, exclude_end=0)
    assert w.steps == 9
    assert w.au_percentage == pytest.approx(80.0)
    # 9 steps x 4 samples over 9 x 0.5 s: no "len - 2" bias.
    assert w.throughput_samples_per_s == pytest.approx(8.0)
    assert w.io_bytes_per_s == pytest.approx(9 * 1000 / 4.5)


def test_barrier_counts_as_stall_but_not_in_the_alternative_au():
    rec = _record(5, wait=0.0, compute=0.5, barrier=0.5)
    w = rec.window(0, 0)
    assert w.au_percentage == pytest.approx(50.0)
    assert w.au_without_barrier_percentage == pytest.approx(100.0)


def test_checkpoint_time_inside_the_window_is_excluded():
    rec = _record(6, wait=0.0, compute=1.0, ckpt_after=2, ckpt_s=10.0)
    assert rec.window(0, 0).au_percentage == pytest.approx(100.0)


def test_exclusions_larger_than_the_run_fall_back_to_all_steps():
    rec = _record(2, wait=0.5, compute=0.5)
    w = rec.window(exclude_start=1, exclude_end=1)
    assert not w.full_window and w.steps == 2
    assert w.au_percentage == pytest.approx(50.0)


def test_empty_record_gives_zero_figures():
    assert PhaseRecord(batch_size=1).window(1, 0).steps == 0


@given(st.integers(1, 50), st.floats(0.0, 1.0), st.floats(0.001, 1.0), st.integers(0, 3), st.integers(0, 3))
def test_au_is_a_percentage(n, wait, compute, ex_s, ex_e):
    w = _record(n, wait=wait, compute=compute).window(ex_s, ex_e)
    assert 0.0 <= w.au_percentage <= 100.0 + 1e-6
    assert w.steps >= 1


def test_stage_summary_percentiles():
    s = stage_summary(list(range(101)))
    assert (s["p50_s"], s["p95_s"], s["p99_s"], s["count"]) == (50.0, 95.0, 99.0, 101)
    assert stage_summary([])["mean_s"] is None
