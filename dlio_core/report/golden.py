"""Golden references: ``dl-driver check-golden OUTPUT_DIR [--golden NAME]``.

A golden (``goldens/<name>/golden.json`` at the top of the repository) holds the figures of one small,
seeded run of a bundled workload (``goldens/specs.yaml`` says which overrides scale it down) and
``goldens/tolerances.yaml`` says how far a run may be from it, figure by figure:

- ``exact``: counts, steps, bytes and the access order (its SHA-256): the same seed and overrides give
  the same figures on any machine;
- ``compute_bound``: figures such as AU that a compute-bound run keeps within a few points anywhere
  (absolute, in their unit);
- ``relative``: rates (samples/s, MiB/s, GiB/s, p99 latency): ``|run - golden| / golden``, for
  comparing a user's machine with itself, not for ``make test``.

:func:`check_golden` returns one :class:`Check` per figure with its distance and tolerance;
``only_exact`` keeps ``exact`` and ``compute_bound`` (what the tests compare).

Example:
    >>> golden = {"name": "g", "figures": {"epochs": 2, "train_throughput_mean_samples_per_second": 100.0}}
    >>> tol = {"exact": ["epochs"], "relative": {"train_throughput_mean_samples_per_second": 0.05}}
    >>> checks = compare_figures({"epochs": 2, "train_throughput_mean_samples_per_second": 97.0}, golden, tol)
    >>> [(c.name, c.passed, c.distance) for c in checks]
    [('epochs', True, 'equal'), ('train_throughput_mean_samples_per_second', True, '3.0% (tolerance 5%)')]
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .compare import NUMBERS, run_figures
from .rundata import RunData, ReportInputError

__all__ = ["Check", "golden_figures", "compare_figures", "check_golden", "load_golden", "goldens_dir",
           "load_specs", "load_tolerances", "spec_command"]


@dataclass
class Check:
    """One figure against its golden: the kind of tolerance, both values, the distance, the verdict."""

    name: str
    kind: str            # exact, compute_bound, relative
    golden: Any
    value: Any
    distance: str
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "golden": self.golden, "value": self.value,
                "distance": self.distance, "status": "PASS" if self.passed else "FAIL"}


def goldens_dir(path: str | None = None) -> str:
    """``path``, else ``./goldens``, else the ``goldens/`` of the source tree this package runs from."""
    if path:
        return path
    if os.path.isdir("goldens"):
        return "goldens"
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "goldens")


def _yaml(path: str) -> Any:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise ReportInputError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def load_specs(folder: str | None = None) -> dict[str, dict]:
    """``goldens/specs.yaml``: name -> {workload, overrides, [skip]}."""
    return _yaml(os.path.join(goldens_dir(folder), "specs.yaml")) or {}


def load_tolerances(folder: str | None = None) -> dict[str, Any]:
    """``goldens/tolerances.yaml``."""
    return _yaml(os.path.join(goldens_dir(folder), "tolerances.yaml")) or {}


def load_golden(name: str, folder: str | None = None) -> dict[str, Any]:
    """``goldens/<name>/golden.json``; :class:`ReportInputError` naming the goldens there when missing."""
    root = goldens_dir(folder)
    path = os.path.join(root, name, "golden.json")
    if not os.path.isfile(path):
        have = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "golden.json"))) \
            if os.path.isdir(root) else []
        raise ReportInputError(f"--golden {name}: no {path}; goldens: {', '.join(have) or 'none'}")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def spec_command(spec: dict, workdir: str) -> list[str]:
    """The ``dl-driver run`` arguments of a golden's run, with its data, checkpoints and output in ``workdir``."""
    return [spec["workload"], *spec.get("overrides", []),
            f"++workload.dataset.data_folder={workdir}/data",
            f"++workload.checkpoint.checkpoint_folder={workdir}/checkpoints",
            f"++hydra.run.dir={workdir}/out"]


def _per_epoch(table: Any, column: str | None) -> list[int]:
    epochs = table.columns["epoch"].astype(int)
    values = np.ones(epochs.size) if column is None else np.nan_to_num(table.columns[column])
    return [int(values[epochs == e].sum()) for e in sorted(set(epochs.tolist()))]


def golden_figures(run: RunData) -> dict[str, Any]:
    """The figures a golden keeps for ``run``: exact ones (counts, steps, bytes, access order, checkpoint
    bytes and files), AU, and the rates of :func:`~.compare.run_figures`."""
    s = run.summary
    figures: dict[str, Any] = {k: s.get(k) for k in ("num_files_train", "num_files_eval", "num_samples_per_file",
                                                     "num_accelerators", "epochs")}
    train = run.steps("train")
    if len(train):
        figures["train_steps_per_epoch"] = _per_epoch(train, None)
        if train.exact:
            figures["train_samples_per_epoch"] = _per_epoch(train, "samples")
            figures["train_bytes_read_per_epoch"] = _per_epoch(train, "bytes_read")
    evaluation = run.steps("eval")
    if len(evaluation):
        figures["eval_steps_per_epoch"] = _per_epoch(evaluation, None)
    orders = run.access_order()
    if orders:
        digest = hashlib.sha256()
        for rank in sorted(orders):
            digest.update(json.dumps(json.loads(orders[rank]), sort_keys=True).encode())
        figures["access_order_sha256"] = digest.hexdigest()
    records = run.checkpoint_records()
    for kind in ("save", "load"):
        mine = [r for r in records if r["kind"] == kind]
        if mine:
            figures[f"{kind}_checkpoints"] = len(mine)
            if all("bytes" in r for r in mine):
                figures[f"{kind}_checkpoint_bytes"] = [int(r["bytes"]) for r in mine]
                figures[f"{kind}_checkpoint_files"] = [int(r["files"]) for r in mine]
    for key, value in run_figures(run).items():
        if key in NUMBERS and value is not None:
            figures.setdefault(key, value)
    return {k: v for k, v in figures.items() if v is not None}


def _number_distance(value: float, golden: float, kind: str, tol: float) -> tuple[str, bool]:
    if kind == "relative":
        if golden == 0:
            return ("equal" if value == 0 else "golden is 0"), value == 0
        d = abs(value - golden) / abs(golden)
        return f"{d * 100:.1f}% (tolerance {tol * 100:g}%)", d <= tol
    d = abs(value - golden)
    return f"{d:.3g} (tolerance {tol:g})", d <= tol


def compare_figures(figures: dict[str, Any], golden: dict[str, Any], tolerances: dict[str, Any], *,
                    only_exact: bool = False) -> list[Check]:
    """Every figure the tolerances name and the golden holds, checked against the run's ``figures``."""
    want = golden.get("figures") or {}
    checks: list[Check] = []
    for name in tolerances.get("exact") or []:
        if name in want:
            value = figures.get(name)
            same = value == want[name]
            checks.append(Check(name, "exact", want[name], value, "equal" if same else "differs", same))
    kinds = ("compute_bound",) if only_exact else ("compute_bound", "relative")
    for kind in kinds:
        for name, tol in (tolerances.get(kind) or {}).items():
            if name not in want:
                continue
            value = figures.get(name)
            if not isinstance(value, (int, float)):
                checks.append(Check(name, kind, want[name], value, "missing in the run", False))
                continue
            distance, ok = _number_distance(float(value), float(want[name]), "relative" if kind == "relative"
                                            else "absolute", float(tol))
            checks.append(Check(name, kind, want[name], value, distance, ok))
    return checks


def _guess_golden(run: RunData, folder: str | None) -> str:
    workload = ((run.report or {}).get("provenance") or {}).get("workload")
    names = [n for n, spec in load_specs(folder).items() if spec.get("workload") == workload and not spec.get("skip")]
    if len(names) != 1:
        raise ReportInputError(f"{run.folder}: cannot tell which golden to compare with (workload {workload}); "
                               "name it with --golden NAME")
    return names[0]


def check_golden(output_dir: str, name: str | None = None, *, folder: str | None = None,
                 only_exact: bool = False) -> tuple[str, list[Check]]:
    """Check the run in ``output_dir`` against golden ``name`` (guessed from its workload when None)."""
    run = RunData.load(output_dir)
    name = name or _guess_golden(run, folder)
    golden = load_golden(name, folder)
    checks = compare_figures(golden_figures(run), golden, load_tolerances(folder), only_exact=only_exact)
    if not checks:
        raise ReportInputError(f"{output_dir}: no figure of golden {name} to compare")
    return name, checks
