"""`import dlio_core` imports no framework and stays light."""

from __future__ import annotations

import json
import subprocess
import sys

FRAMEWORKS = ("torch", "tensorflow", "jax", "nvidia.dali", "flax", "orbax", "h5py", "mpi4py")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         check=True, capture_output=True, text=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_import_dlio_core_imports_no_framework():
    mods = _modules_after("import dlio_core")
    assert not [m for m in mods if m.split(".")[0] in {f.split(".")[0] for f in FRAMEWORKS} or m.startswith("nvidia")]


def test_a_native_run_imports_no_framework(tmp_path):
    code = (
        "from dlio_core.config import load_config\nfrom dlio_core.runner import run\n"
        f"cfg = load_config('default', ['++workload.dataset.data_folder={tmp_path}/d', '++workload.reader.data_loader=native',"
        "'++workload.workflow.generate_data=True', '++workload.train.epochs=1', '++workload.train.computation_time=0',"
        f"'++workload.evaluation.eval_time=0', '++hydra.run.dir={tmp_path}/o'])\nrun(cfg, quiet=True)"
    )
    mods = _modules_after(code)
    assert not [m for m in mods if m.split(".")[0] in ("torch", "tensorflow", "jax", "flax", "orbax", "nvidia", "mpi4py")]
