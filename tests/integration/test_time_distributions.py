"""DLIO's time values in a real run: distribution dicts for compute, eval and per-sample preprocessing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlio_core.config import load_config
from dlio_core.runner import run

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("spec, mean_s", [
    ("{type: uniform, min: 0.004, max: 0.008}", 0.006),
    ("{mean: 0.006, stdev: 0.001}", 0.006),
    ("{type: gamma, shape: 6.0, scale: 0.001}", 0.006),
    ("{type: exponential, scale: 0.006}", 0.006),
])
def test_compute_follows_the_distribution(tmp_path, spec, mean_s):
    cfg = load_config("default", [
        f"++workload.dataset.data_folder={tmp_path}/data", "++workload.reader.data_loader=native",
        "++workload.workflow.generate_data=True", "++workload.train.epochs=2", "++workload.dataset.num_files_train=128",
        f"++workload.train.computation_time={spec}", "++workload.workflow.evaluation=False",
        f"++hydra.run.dir={tmp_path}/out"])
    run(cfg, quiet=True)
    output = json.loads((tmp_path / "out" / "0_output.json").read_text())
    compute = np.array(output["1"]["compute"]["block1"] + output["2"]["compute"]["block1"])
    assert (compute >= 0).all()
    assert compute.std() > 0  # drawn per step, not a fixed value
    # 64 draws: the sample mean lies well within 40% of the distribution's mean (sleep overshoot is small).
    assert abs(compute.mean() - mean_s) < 0.4 * mean_s


def test_preprocess_time_is_spent_per_sample(tmp_path):
    cfg = load_config("default", [
        f"++workload.dataset.data_folder={tmp_path}/data", "++workload.reader.data_loader=native",
        "++workload.workflow.generate_data=True", "++workload.train.epochs=1", "++workload.train.computation_time=0",
        "++workload.reader.preprocess_time=0.002", "++workload.reader.read_threads=1",
        "++workload.workflow.evaluation=False", f"++hydra.run.dir={tmp_path}/out"])
    run(cfg, quiet=True)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    # batch 4 x 2 ms of preprocessing per sample lands in the decode stage of each step.
    assert report["train"]["stages"]["decode"]["p50_s"] >= 4 * 0.002
