"""`reader.data_loader: jax` runs; the Flax example; a missing jax names the extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_run_with_the_jax_loader(tmp_path):
    from dlio_core.config import load_config
    from dlio_core.runner import run

    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data", "++workload.reader.data_loader=jax",
                                  "++workload.workflow.generate_data=True", "++workload.train.epochs=2",
                                  "++workload.train.computation_time=0.001", "++workload.evaluation.eval_time=0",
                                  f"++hydra.run.dir={tmp_path}/out"])
    result = run(cfg, quiet=True)
    assert [e.train.steps for e in result.epochs] == [16, 16]
    assert result.summary["metric"]["train_io_mean_MB_per_second"] > 0
    assert all(e.eval is not None and e.eval.steps == 8 for e in result.epochs)


def test_missing_jax_gives_the_install_hint_on_first_use():
    code = ("import sys\nsys.modules['jax'] = None\nimport dlio_jax\nprint(dlio_jax.DlioSource.__name__)\n"
            "try:\n    from dlio_jax import make_iterator\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.splitlines() == ["DlioSource", "dlio_jax.make_iterator needs jax: pip install 'dl-driver[jax]'"]


def _example(tmp_path, *args):
    pytest.importorskip("flax")
    pytest.importorskip("optax")
    pytest.importorskip("orbax.checkpoint")
    cmd = [sys.executable, str(REPO / "examples/flax_train.py"), "--data", str(tmp_path / "data"),
           "--ckpt", str(tmp_path / "ckpt"), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO, timeout=300).stdout
    lines = out.strip().splitlines()
    losses = {int(l.split()[1][:-1]): l.split()[3] for l in lines if l.startswith("step ")}
    return json.loads(lines[-1]), losses


def test_flax_example_trains_checkpoints_and_resumes_exactly(tmp_path):
    first, losses = _example(tmp_path, "--steps", "6", "--save-every", "4")
    assert first["steps"] == 6 and first["checkpoints"] == [4]
    assert (tmp_path / "ckpt" / "4").is_dir()
    resumed, again = _example(tmp_path, "--steps", "2", "--resume")
    assert resumed["steps"] == 6
    assert again == {5: losses[5], 6: losses[6]}  # same data, same parameters: same losses


def test_flax_example_learns_from_the_files_labels(tmp_path):
    result, _ = _example(tmp_path, "--steps", "40", "--save-every", "40")
    assert result["steps"] == 40 and result["last_loss"] < 0.25 * result["first_loss"]  # 4 classes: ln 4 at start
