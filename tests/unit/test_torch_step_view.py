"""dlio_torch's StepView: a worker's steps planned a block at a time are exactly the plan's steps."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from dlio_core.sampling import EpochPlan  # noqa: E402
from dlio_torch._step_view import MAX_BLOCK_STRIDE, StepView  # noqa: E402


@pytest.mark.parametrize("spf,shuffle", [(1, "seed"), (3, "seed"), (2, "off")])
def test_every_spacing_of_steps_gives_the_plans_own_steps(spf, shuffle):
    plan = EpochPlan(num_files=500, samples_per_file=spf, batch_size=7, sample_shuffle=shuffle,
                     file_shuffle=shuffle, seed=3, epoch=2)
    n = plan.steps
    spacings = [np.arange(1, n, 2), np.arange(0, n, 3), np.arange(5, n), np.array([4]), np.array([1, 2, 5]),
                np.arange(0, n, MAX_BLOCK_STRIDE), np.arange(2, n, MAX_BLOCK_STRIDE + 1), np.arange(0, 0)]
    for ids in spacings:
        view = StepView(plan, ids)
        assert view.steps == ids.size
        for i in range(ids.size):
            files, samples = view.batch(i)
            want_files, want_samples = plan.batch(int(ids[i]))
            assert np.array_equal(files, want_files) and np.array_equal(samples, want_samples), (ids[:3], i)


def test_a_worker_of_two_plans_its_steps_a_block_at_a_time(monkeypatch):
    plan = EpochPlan(num_files=256, samples_per_file=1, batch_size=4, sample_shuffle="seed", file_shuffle="seed")
    single = []
    real = EpochPlan.batch
    monkeypatch.setattr(EpochPlan, "batch", lambda self, step: single.append(step) or real(self, step))
    view = StepView(plan, np.arange(1, plan.steps, 2))
    for i in range(view.steps):
        view.batch(i)
    assert single == []  # planned by batch_block only
    StepView(plan, np.arange(0, plan.steps, MAX_BLOCK_STRIDE + 1)).batch(1)
    assert single == [MAX_BLOCK_STRIDE + 1]  # too far apart: one step at a time
