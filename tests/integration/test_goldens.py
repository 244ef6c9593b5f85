"""Each golden of ``goldens/``: its small run, then ``dl-driver check-golden --exact`` (counts, steps, bytes,
access order, checkpoint bytes and compute-bound AU; rates are for users' machines, not for this test).
And the failure path: a golden whose exact figure differs fails with exit 1, naming the figure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dlio_core.report.golden import load_specs, spec_command

pytestmark = pytest.mark.integration

GOLDENS = Path(__file__).resolve().parents[2] / "goldens"
SPECS = load_specs(str(GOLDENS))


def _run(spec: dict, tmp_path: Path, run_cli) -> Path:
    res = run_cli("run", "--quiet", *spec_command(spec, str(tmp_path)))
    assert res.returncode == 0, res.stderr
    return tmp_path / "out"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_golden_exact_figures(name, tmp_path, run_cli):
    spec = SPECS[name]
    if spec.get("skip"):
        pytest.skip(f"golden {name}: {spec['skip']}")
    assert (GOLDENS / name / "golden.json").exists(), f"run goldens/regenerate.py {name}"
    out = _run(spec, tmp_path, run_cli)
    res = run_cli("check-golden", str(out), "--golden", name, "--goldens", str(GOLDENS), "--exact")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"PASS: {out} against golden {name}" in res.stdout
    kinds = {line.split()[2] for line in res.stdout.splitlines() if line.startswith("PASS  ")}
    assert "exact" in kinds and "relative" not in kinds


def test_a_changed_exact_figure_fails_naming_it(tmp_path, run_cli):
    goldens = tmp_path / "goldens"
    shutil.copytree(GOLDENS, goldens, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    golden_file = goldens / "unet3d" / "golden.json"
    golden = json.loads(golden_file.read_text())
    golden["figures"]["train_bytes_read_per_epoch"][0] += 1
    golden_file.write_text(json.dumps(golden))
    out = _run(SPECS["unet3d"], tmp_path, run_cli)
    res = run_cli("check-golden", str(out), "--goldens", str(goldens), "--exact")  # golden guessed: unet3d_h100
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAIL  train_bytes_read_per_epoch" in res.stdout and "differs" in res.stdout
    assert f"FAIL: {out} against golden unet3d" in res.stdout
    res = run_cli("check-golden", str(out), "--goldens", str(goldens), "--golden", "nope")
    assert res.returncode == 2 and "--golden nope" in res.stderr
