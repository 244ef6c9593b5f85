"""GPU compute emulation: calibration logic and the compute factory, on the CPU (no framework needed)."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace as NS

import numpy as np
import pytest

from dlio_core.emulate import GPU_ERROR, Compute, ComputeUnavailable, KernelCompute, calibrate, make_compute


class FakeKernel:
    """Advances a fake clock: ``per_iter`` seconds per iteration plus ``overhead`` per call."""

    def __init__(self, per_iter: float, overhead: float) -> None:
        self.now, self.per_iter, self.overhead, self.calls = 0.0, per_iter, overhead, []

    def run(self, n: int) -> None:
        self.calls.append(n)
        self.now += self.overhead + n * self.per_iter


@pytest.mark.parametrize("per_iter,overhead", [(1e-3, 5e-4), (2e-4, 5e-3), (1e-6, 1e-5)])
def test_calibration_converges_to_the_per_iteration_time(per_iter, overhead):
    k = FakeKernel(per_iter, overhead)
    est = calibrate(k.run, min_s=0.05, clock=lambda: k.now)
    assert abs(est - per_iter) / per_iter < 0.15  # the per-call overhead is spread over >= min_s of work
    assert k.calls[0] == 1  # warm-up first
    assert k.calls[-1] * per_iter + overhead >= 0.05


def test_calibration_ignores_a_one_off_stall():
    k = FakeKernel(1e-3, 0.0)
    calls = [0]

    def run(n):
        calls[0] += 1
        k.run(n)
        if calls[0] == 4:  # one call stalls (another process took the CPU)
            k.now += 1.0

    est = calibrate(run, clock=lambda: k.now)
    assert abs(est - 1e-3) / 1e-3 < 0.05


def test_kernel_compute_runs_iterations_in_proportion_to_the_drawn_time():
    k = FakeKernel(1e-3, 0.0)
    k.seconds_per_iter = calibrate(k.run, clock=lambda: k.now)
    times = iter([0.01, 0.1, 0.0])
    c = KernelCompute(lambda rng: next(times), np.random.default_rng(0), k)
    counts = []
    for _ in range(3):
        c.step()
        counts.append(c.last_iterations)
    assert counts == [10, 100, 0]


def _cfg(device: str) -> NS:
    return NS(train=NS(computation_time=NS(sample=lambda rng: 0.0), computation_device=device),
              evaluation=NS(eval_time=NS(sample=lambda rng: 0.0)))


def test_cpu_compute_is_the_sleep():
    assert type(make_compute(_cfg("cpu"), np.random.default_rng(0), phase="eval")) is Compute
    with pytest.raises(ValueError, match="phase"):
        make_compute(_cfg("cpu"), np.random.default_rng(0), phase="valid")


def _has_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_has_cuda(), reason="this machine has CUDA: the error cannot happen")
def test_gpu_compute_without_a_gpu_says_use_cpu():
    with pytest.raises(ComputeUnavailable) as exc:
        make_compute(_cfg("gpu"), np.random.default_rng(0))
    assert str(exc.value).startswith(GPU_ERROR)


def test_zero_compute_spends_nothing_and_a_nonzero_one_sleeps():
    from dlio_core.config import load_config
    from dlio_core.emulate import NoCompute

    zero = make_compute(load_config("default", ["++workload.train.computation_time=0"]), np.random.default_rng(0))
    assert type(zero) is NoCompute and zero.step() == 0.0
    some = make_compute(load_config("default", ["++workload.train.computation_time=0.002"]), np.random.default_rng(0))
    assert type(some) is Compute and some.step() >= 0.002
    spread = make_compute(load_config("default", ["++workload.train.computation_time={mean: 0, stdev: 0.001}"]),
                          np.random.default_rng(0))
    assert type(spread) is Compute  # draws that may be > 0: timed
