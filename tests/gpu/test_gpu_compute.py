"""``train.computation_device: gpu``: a calibrated matmul loop on the GPU (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu, pytest.mark.integration,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


def test_gpu_compute_takes_about_the_drawn_time():
    from dlio_core.emulate import KernelCompute, gpu_kernel

    k = gpu_kernel()
    assert k.seconds_per_iter > 0
    c = KernelCompute(lambda rng: 0.05, np.random.default_rng(0), k)
    spent = [c.step() for _ in range(5)]
    assert c.last_iterations > 10
    assert 0.03 < float(np.median(spent)) < 0.1  # calibrated on an idle GPU: within a loose tolerance


def test_a_run_with_gpu_compute(tmp_path):
    from dlio_core.config import load_config
    from dlio_core.emulate import KernelCompute, make_compute

    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}", "++workload.train.computation_time=0.01",
                                  "++workload.train.computation_device=gpu"])
    assert isinstance(make_compute(cfg, np.random.default_rng(0)), KernelCompute)
