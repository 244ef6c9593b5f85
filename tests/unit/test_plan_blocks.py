"""dlio_core.engine.plan_blocks.PlanTail: a plan's steps from a start, planned a block at a time, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from dlio_core.engine.plan_blocks import BLOCK_STEPS, PlanTail
from dlio_core.sampling import EpochPlan


@pytest.mark.parametrize("spf", [1, 3])
def test_every_step_is_the_plans_own_in_any_order(spf):
    plan = EpochPlan(num_files=300, samples_per_file=spf, batch_size=5, sample_shuffle="seed", file_shuffle="seed",
                     seed=2, epoch=3)
    for start in (0, 7, plan.steps - 1, plan.steps):
        tail = PlanTail(plan, start)
        assert tail.steps == plan.steps - start and tail.batch_size == 5
        for step in list(range(tail.steps)) + list(range(tail.steps))[::-1]:
            files, samples = tail.batch(step)
            want_files, want_samples = plan.batch(step + start)
            assert np.array_equal(files, want_files) and np.array_equal(samples, want_samples)


def test_steps_are_planned_a_block_at_a_time(monkeypatch):
    plan = EpochPlan(num_files=400, samples_per_file=1, batch_size=2, sample_shuffle="seed", file_shuffle="seed")
    calls = []
    real = EpochPlan.batch_block
    monkeypatch.setattr(EpochPlan, "batch_block", lambda self, k, n: calls.append((k, n)) or real(self, k, n))
    tail = PlanTail(plan, 10)
    for step in range(BLOCK_STEPS + 1):
        tail.batch(step)
    assert calls == [(10, BLOCK_STEPS), (10 + BLOCK_STEPS, BLOCK_STEPS)]


def test_a_start_outside_the_epoch_is_refused():
    plan = EpochPlan(num_files=8, samples_per_file=1, batch_size=2)
    with pytest.raises(ValueError, match="cannot resume at step 5: the epoch has 4 steps"):
        PlanTail(plan, 5)
