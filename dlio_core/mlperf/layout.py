"""The mlpstorage v3 results tree: where each run lands and how reportgen finds the runs again.

``<results>/<closed|open|whatif>/<org>/results/<system>/training/<model>/<datasize|datagen|run>/<timestamp>/``
and ``<results>/<mode>/<org>/results/<system>/checkpointing/<model>/<timestamp>/``. The timestamp is
``YYYYmmdd_HHMMSS``; a run folder is reserved with an exclusive ``mkdir`` and the time bumped one second on a
collision, as mlpstorage does, so back-to-back ``--loops`` never share a folder.

Example:
    >>> run_parent("/r", "closed", "acme", "sut1", "training", "unet3d", "run")
    '/r/closed/acme/results/sut1/training/unet3d/run'
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

__all__ = ["RUN_DATETIME_FORMAT", "run_parent", "reserve_run_dir", "RunFolder", "find_run_folders", "timestamp_now"]

RUN_DATETIME_FORMAT = "%Y%m%d_%H%M%S"
_BENCHMARKS = ("training", "checkpointing")


def timestamp_now() -> str:
    """The current local time as a run folder name."""
    return _dt.datetime.now().strftime(RUN_DATETIME_FORMAT)


def run_parent(results_dir: str, mode: str, org: str, system: str, benchmark: str, model: str,
               command: str) -> str:
    """The folder that holds one timestamp folder per run of ``command``."""
    base = os.path.join(results_dir, mode, org, "results", system, benchmark, model)
    return base if benchmark == "checkpointing" else os.path.join(base, command)


def reserve_run_dir(parent: str, stamp: str | None = None, *, budget: int = 120) -> tuple[str, str]:
    """Create ``parent/<timestamp>`` exclusively; on a collision move one second on. Returns (path, stamp)."""
    os.makedirs(parent, exist_ok=True)
    stamp = stamp or timestamp_now()
    for _ in range(budget):
        path = os.path.join(parent, stamp)
        try:
            os.mkdir(path)
            return path, stamp
        except FileExistsError:
            when = _dt.datetime.strptime(stamp, RUN_DATETIME_FORMAT) + _dt.timedelta(seconds=1)
            stamp = when.strftime(RUN_DATETIME_FORMAT)
    raise RuntimeError(f"no free run folder under {parent} after {budget} tries; remove stale ones")


@dataclass(frozen=True)
class RunFolder:
    """One run's folder and what its place in the tree says about it."""

    path: str
    mode: str
    org: str
    system: str
    benchmark: str
    model: str
    command: str
    stamp: str

    @property
    def group(self) -> str:
        """The folder holding this run and its siblings (``.../run`` or ``.../checkpointing/<model>``)."""
        return os.path.dirname(self.path)


def _describe(root: str, path: str) -> RunFolder | None:
    parts = os.path.relpath(path, root).split(os.sep)
    bench_at = next((i for i, p in enumerate(parts) if p in _BENCHMARKS), None)
    # training/<model>/<command>/<stamp>, checkpointing/<model>/<stamp>
    if bench_at is None or len(parts) != bench_at + (3 if parts[bench_at] == "checkpointing" else 4):
        return None
    benchmark, model = parts[bench_at], parts[bench_at + 1]
    command = "run" if benchmark == "checkpointing" else parts[bench_at + 2]
    head = parts[:bench_at]
    # <mode>/<org>/results/<system>/ when the tree is complete; whatever is there otherwise.
    mode = head[0] if head else ""
    org = head[1] if len(head) > 1 else ""
    system = head[3] if len(head) > 3 and head[2] == "results" else (head[-1] if head else "")
    return RunFolder(path=path, mode=mode, org=org, system=system, benchmark=benchmark, model=model,
                     command=command, stamp=parts[-1])


def find_run_folders(root: str) -> list[RunFolder]:
    """Every run folder under ``root`` (a folder holding ``summary.json`` or a ``*_metadata.json``), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "summary.json" in filenames or any(f.endswith("_metadata.json") for f in filenames):
            folder = _describe(root, dirpath)
            if folder is not None:
                found.append(folder)
            dirnames[:] = []  # a run folder's subfolders (dlio_config) are part of it
    return sorted(found, key=lambda f: f.path)
