"""A drop-in ``dlio_benchmark``: DLIO's own command line, run by dl-driver.

mlpstorage launches ``<dlio-bin-path>/dlio_benchmark workload=NAME ++workload.x=y
++hydra.run.dir=DIR ++hydra.output_subdir=dlio_config --config-dir DIR``; this entry runs it as
``dl-driver run`` does, then adds the files mlpstorage's checks read that dl-driver's own layout
lacks: DLIO 2.0.0's ``per_epoch_stats.json`` (next to HEAD's ``{rank}_per_epoch_stats.json``),
``<output_subdir>/hydra.yaml`` and a ``workload=NAME`` line in ``<output_subdir>/overrides.yaml``.

Example::

    python -m dlio_core.dlio_benchmark workload=unet3d_h100 ++hydra.run.dir=/tmp/out
"""
from __future__ import annotations

import os
import shutil
import sys
from typing import Sequence

import yaml

_RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID", "RANK")


def _hydra_value(argv: Sequence[str], key: str) -> str | None:
    """The value of ``[+]+hydra.KEY=V`` on the command line, else None.

    >>> _hydra_value(["++hydra.run.dir=/o"], "run.dir")
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


def _this_rank() -> int:
    for name in _RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def write_mlpstorage_files(folder: str, argv: Sequence[str]) -> None:
    """Add DLIO's file names mlpstorage reads to a finished run's ``folder``.

    >>> write_mlpstorage_files("/tmp/out", ["workload=default"])  # doctest: +SKIP
    """
    stats = os.path.join(folder, "0_per_epoch_stats.json")
    if os.path.exists(stats):
        shutil.copyfile(stats, os.path.join(folder, "per_epoch_stats.json"))
    subdir = os.path.join(folder, _hydra_value(argv, "output_subdir") or ".hydra")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dlio_benchmark`` console script; returns the exit code."""
    from .cli import main as dl_driver_main

    argv = list(sys.argv[1:] if argv is None else argv)
    code = dl_driver_main(["run", *argv])
    folder = _hydra_value(argv, "run.dir")
    if code == 0 and folder and _this_rank() == 0:
        write_mlpstorage_files(folder, argv)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
