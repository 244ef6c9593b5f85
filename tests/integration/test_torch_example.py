"""examples/torch_trainer.py trains a real classifier on the labels its npz files carry (the loss falls
well below its start), checkpoints and resumes."""

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
    res = subprocess.run([sys.executable, str(EXAMPLE), "--workdir", str(tmp_path), "--steps", "12"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads((tmp_path / "result.json").read_text())
    losses = out["losses"]
    assert len(losses) == 24 and all(loss == loss for loss in losses)  # finite
    # It learns the labels the files carry: cross-entropy of 4 classes starts near ln 4 = 1.39.
    assert sum(losses[-3:]) / 3 < 0.25 * sum(losses[:3]) / 3, losses
    assert out["classes_seen"] == [0, 1, 2, 3]  # real labels, not DLIO's zeros
    assert out["resume_step"] == 12 and out["remaining_steps"] == out["steps_per_epoch"] - 12 == 4
    assert out["report"]["steps"] == 24 and out["report"]["stages"]["wait"]["p95_s"] is not None
    assert (tmp_path / "checkpoints" / "epoch1.pt").exists() and (tmp_path / "instrument.json").exists()
