"""examples/torch_trainer.py trains a real model on generated data, checkpoints and resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "torch_trainer.py"


def test_torch_trainer_example(tmp_path):
    res = subprocess.run([sys.executable, str(EXAMPLE), "--workdir", str(tmp_path), "--steps", "5"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads((tmp_path / "result.json").read_text())
    assert len(out["losses"]) == 10 and all(loss == loss for loss in out["losses"])  # finite, trained
    assert out["resume_step"] == 5 and out["remaining_steps"] == out["steps_per_epoch"] - 5
    assert out["report"]["steps"] == 10 and out["report"]["stages"]["wait"]["p95_s"] is not None
    assert (tmp_path / "checkpoints" / "epoch1.pt").exists() and (tmp_path / "instrument.json").exists()
