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


# --- the plugins' public surfaces (read from their source: no framework is imported here) -------------

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ("dlio_torch", "dlio_tf", "dlio_jax", "dlio_jax/dali")
RUNNER_ADAPTERS = {"make_loader", "make_native_loader", "TorchLoader", "TFLoader", "JaxLoader", "DaliLoader",
                   "tf_loader", "jax_loader", "dali_loader", "native_dali_loader", "dataloader_kwargs"}


def _facade(package: str) -> tuple[list[str], set[str]]:
    """``__all__`` of a package's ``__init__`` and the names it binds (imports, definitions, lazy names)."""
    tree = ast.parse((ROOT / package / "__init__.py").read_text())
    exported: list[str] = []
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if "__all__" in names:
                exported = list(ast.literal_eval(node.value))
            if "_CHECKPOINT" in names or "_WHERE" in names:  # dlio_jax's names served lazily by its __getattr__
                bound |= set(ast.literal_eval(node.value)) | {"checkpoint"}
        elif isinstance(node, ast.ImportFrom):
            bound |= {a.asname or a.name for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
    return exported, bound


def test_plugin_facades_export_what_they_bind_and_no_runner_adapter():
    for package in PLUGINS:
        exported, bound = _facade(package)
        assert exported, f"{package}/__init__.py has no __all__"
        assert set(exported) <= bound, f"{package}: __all__ names nothing bound: {set(exported) - bound}"
        assert not set(exported) & RUNNER_ADAPTERS, f"{package} exports runner internals"


def test_plugin_modules_are_private_except_checkpoint():
    for package in PLUGINS:
        public = {p.stem for p in (ROOT / package).glob("*.py") if not p.stem.startswith("_")}
        assert public <= {"checkpoint"}, f"{package}: public modules {public} (implementation modules are _private)"


def test_builtin_loaders_point_at_each_plugins_private_loader_module():
    from dlio_core.loaders import LOADERS

    targets = {name: LOADERS[name].target for name in ("pytorch", "tensorflow", "jax", "dali", "native_dali")}
    assert targets == {"pytorch": "dlio_torch._loader:make_loader", "tensorflow": "dlio_tf._loader:make_loader",
                       "jax": "dlio_jax._loader:make_loader", "dali": "dlio_jax.dali._loader:make_loader",
                       "native_dali": "dlio_jax.dali._loader:make_native_loader"}
    for target in targets.values():  # the function is defined where the table says (read, not imported)
        module, _, func = target.partition(":")
        source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
        assert f"\ndef {func}(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str," in source
