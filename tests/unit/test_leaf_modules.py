"""Imports point one way in dlio_core.config and dlio_core.formats (no cycle, counting imports inside functions
and under TYPE_CHECKING); the shared pieces live in leaf modules; the HDF5 leaf names its extra when h5py is
missing."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

import dlio_core

ROOT = pathlib.Path(dlio_core.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    parts = ("dlio_core", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> set[str]:
    """Every dlio_core module ``path`` imports anywhere in its body (functions and TYPE_CHECKING included)."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out.update(t for t in targets if t.startswith("dlio_core"))
    return out


def _graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        if not name.startswith(packages):
            continue
        deps = set()
        for target in _imports(path):
            while target and target not in files:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + ".") and target.startswith(packages):
                deps.add(target)
        graph[name] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


@pytest.mark.parametrize("package", ["dlio_core.config", "dlio_core.formats"])
def test_no_import_cycle(package):
    assert _cycle(_graph((package,))) is None


def test_the_cycle_check_sees_function_local_imports():
    """A check that missed imports inside functions would pass the cycles this issue removed."""
    graph = {"a": {"b"}, "b": {"a"}}
    assert _cycle(graph) == ["a", "b", "a"]
    deps = _imports(ROOT / "config" / "schema.py")
    assert "dlio_core.config.keys" in deps and "dlio_core.config.layout" in deps


@pytest.mark.parametrize("leaf, forbidden", [
    ("redact.py", ("dlio_core",)),
    ("config/layout.py", ("dlio_core.config.schema", "dlio_core.config.keys", "dlio_core.config.load")),
    ("formats/_tfrecord_frame.py", ("dlio_core.formats.tfrecord", "dlio_core.formats._tfrecord_read")),
    ("formats/_tfrecord_read.py", ("dlio_core.formats.tfrecord",)),
    ("formats/_h5py.py", ("dlio_core.formats.hdf5", "dlio_core.formats._hdf5_read")),
    ("formats/_hdf5_read.py", ("dlio_core.formats.hdf5",)),
])
def test_leaves_do_not_import_upward(leaf, forbidden):
    deps = _imports(ROOT / leaf)
    bad = sorted(d for d in deps if any(d == f or d.startswith(f + ".") for f in forbidden))
    assert not bad, f"{leaf} imports {bad}"


def test_hdf5_without_h5py_imports_and_names_the_extra():
    code = ("import sys; sys.modules['h5py'] = None  # as if the extra were not installed\n"
            "from dlio_core.formats import hdf5, _hdf5_read\n"
            "from dlio_core.formats.base import FormatError\n"
            "try:\n    hdf5.h5py_module()\nexcept FormatError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "dataset.format hdf5 needs h5py" in out.stdout and "dl-driver[hdf5]" in out.stdout
