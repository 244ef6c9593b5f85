"""The files mlpstorage's checks read that dl-driver's own run folder lacks, added to a finished run.

DLIO 2.0.0's ``per_epoch_stats.json`` (a copy of rank 0's ``0_per_epoch_stats.json``), Hydra's
``<output_subdir>/hydra.yaml`` (the run dir, the hydra and task overrides, ``runtime.choices.workload``) and
``<output_subdir>/overrides.yaml`` as Hydra writes it (the task overrides, ``workload=NAME`` first, no
``hydra.*`` entry). Both the drop-in ``dlio_benchmark`` and ``dl-driver mlperf`` runs call it.

Example:
    >>> hydra_value(["++hydra.run.dir=/o"], "run.dir")
    '/o'
"""
from __future__ import annotations

import os
import shutil
from typing import Sequence

import yaml

__all__ = ["write_mlpstorage_files", "hydra_value"]


def hydra_value(argv: Sequence[str], key: str) -> str | None:
    """The value of ``[+]+hydra.KEY=V`` on the command line, else None.

    >>> hydra_value(["++hydra.run.dir=/o"], "run.dir")
    '/o'
    """
    for token in argv:
        name, sep, value = token.lstrip("+").partition("=")
        if sep and name == f"hydra.{key}":
            return value
    return None


def _workload(argv: Sequence[str]) -> str | None:
    for token in argv:
        if token.startswith("workload="):
            return token.partition("=")[2]
    return None


def write_mlpstorage_files(folder: str, argv: Sequence[str]) -> None:
    """Add DLIO's file names mlpstorage reads to a finished run's ``folder``.

    >>> write_mlpstorage_files("/tmp/out", ["workload=default"])  # doctest: +SKIP
    """
    stats = os.path.join(folder, "0_per_epoch_stats.json")
    if os.path.exists(stats):
        shutil.copyfile(stats, os.path.join(folder, "per_epoch_stats.json"))
    subdir = os.path.join(folder, hydra_value(argv, "output_subdir") or ".hydra")
    os.makedirs(subdir, exist_ok=True)
    workload = _workload(argv)
    task = [t for t in argv if not t.startswith("-") and "=" in t]
    overrides_path = os.path.join(subdir, "overrides.yaml")
    written = []
    if os.path.exists(overrides_path):
        with open(overrides_path, encoding="utf-8") as fh:
            written = yaml.safe_load(fh) or []
    # As Hydra writes it: the task's overrides only (``workload=NAME`` first); ``hydra.*`` go to hydra.yaml.
    task_only = [o for o in written if not str(o).lstrip("+").startswith("hydra.")]
    if workload and f"workload={workload}" not in task_only:
        task_only.insert(0, f"workload={workload}")
    if task_only != written:
        with open(overrides_path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(task_only, fh, sort_keys=False)
    hydra = {"hydra": {
        "run": {"dir": folder}, "output_subdir": os.path.basename(subdir),
        "overrides": {"hydra": [t for t in task if t.lstrip("+").startswith("hydra.")],
                      "task": [t for t in task if not t.lstrip("+").startswith("hydra.")]},
        "job": {"name": "dlio_benchmark", "config_name": _config_name(argv)},
        "runtime": {"output_dir": folder, "choices": {"workload": workload}},
    }}
    with open(os.path.join(subdir, "hydra.yaml"), "w", encoding="utf-8") as fh:
        yaml.safe_dump(hydra, fh, sort_keys=False)


def _config_name(argv: Sequence[str]) -> str:
    for i, token in enumerate(argv):
        if token in ("--config-name", "-cn") and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith("--config-name="):
            return token.partition("=")[2]
    return "config"
