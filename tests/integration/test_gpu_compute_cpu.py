"""The GPU compute kernel's calibration, run with a ``device="cpu"`` torch kernel (no GPU needed).

Asserts behaviour, not speed: a calibrated kernel asked for k times the time runs k times the
iterations (convergence itself is tested with a fake clock in tests/unit/test_emulate_gpu.py).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from dlio_core.emulate import KernelCompute, TorchMatmul, calibrate  # noqa: E402

pytestmark = pytest.mark.integration


def test_cpu_torch_kernel_calibration_scales():
    k = TorchMatmul("cpu", size=32, min_s=0.02)
    assert k.seconds_per_iter > 0
    n1 = k.iterations(100 * k.seconds_per_iter)
    assert n1 == 100 and k.iterations(400 * k.seconds_per_iter) == 400
    assert k.iterations(0.0) == 0


def test_calibration_of_a_cpu_torch_kernel_terminates_with_enough_work():
    k = TorchMatmul("cpu", size=32, min_s=0.01)
    calls = []
    est = calibrate(lambda n: (calls.append(n), k.run(n)), min_s=0.01, min_iters=8)
    assert est > 0 and calls[-1] >= 8 and calls[-1] == calls[-2] == calls[-3]  # the kept n, timed 3 times


def test_kernel_compute_step_runs_the_calibrated_count():
    k = TorchMatmul("cpu", size=32, min_s=0.02)
    c = KernelCompute(lambda rng: 0.005, np.random.default_rng(0), k)
    spent = c.step()
    assert c.last_iterations == k.iterations(0.005) and spent > 0
