"""One output folder read back for reports: ours (dl-driver) or DLIO's own files.

:meth:`RunData.load` reads ``summary.json``, every ``{rank}_output.json`` and
``{rank}_per_epoch_stats.json`` (DLIO v1/PyPI 2.0: one ``per_epoch_stats.json``), and, when dl-driver
wrote the folder, ``report.json`` and each ``{rank}_steps.npz``; the resolved config comes from
``.hydra/``, ``dlio_config/`` or ``configs/`` (``config.yaml`` and ``overrides.yaml``).

:meth:`RunData.steps` gives one table of every rank's steps. From a step file it is exact; from DLIO's
``{rank}_output.json`` only ``wait`` (DLIO's "load") and ``compute`` are known, step start times are
rebuilt by adding up "proc" (load + compute, no barrier), and bytes are unknown (``exact`` False).

Example:
    >>> import json, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "summary.json"), "w").write(json.dumps({"metric": {}, "num_accelerators": 1}))
    >>> _ = open(os.path.join(d, "0_output.json"), "w").write(json.dumps(
    ...     {"1": {"load": {"block1": [0.5, 0.1]}, "proc": {"block1": [1.5, 1.1]}, "compute": {"block1": [1.0, 1.0]}}}))
    >>> run = RunData.load(d)
    >>> run.producer, run.steps().columns["wait_s"].tolist(), run.steps().columns["start_s"].tolist()
    ('dlio', [0.5, 0.1], [0.0, 1.5])
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .steps import STEP_COLUMNS, read_steps

__all__ = ["RunData", "RankFiles", "StepTable", "ReportInputError", "read_json"]

_RANK_FILE = re.compile(r"^(\d+)_(output|per_epoch_stats|steps|access_order)\.(json|npz)$")
_CONFIG_DIRS = (".hydra", "dlio_config", "configs")


class ReportInputError(ValueError):
    """The folder given is not a run's output folder (the message says what is missing)."""


def read_json(path: str) -> Any:
    """The JSON in ``path``, or None when it is missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _read_yaml(path: str) -> Any:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except (OSError, yaml.YAMLError):
        return None


@dataclass
class RankFiles:
    """What one rank left in the folder."""

    rank: int
    output: dict = field(default_factory=dict)
    per_epoch: dict = field(default_factory=dict)
    steps_path: str | None = None
    access_order_path: str | None = None


@dataclass
class StepTable:
    """Steps of one phase from every rank, as columns (``rank``, ``epoch``, ``step``, ``start_s`` relative
    to the rank's first step, the stage columns, ``samples``, ``bytes_read``); ``exact`` says whether they
    came from step files (all stages, bytes, real start times) or were rebuilt from DLIO's lists."""

    columns: dict[str, np.ndarray]
    exact: bool

    def __len__(self) -> int:
        return int(self.columns["rank"].size)

    def measured(self, name: str) -> bool:
        """Whether any step has a value for column ``name``."""
        col = self.columns.get(name)
        return col is not None and col.size > 0 and bool(np.isfinite(col).any())


def _phase_lists(entry: dict, key: str, phase: str) -> list[float]:
    """DLIO's per-step list of ``key`` for ``phase``: training concatenates block1, block2, ... in order."""
    lists = entry.get(key) or {}
    if phase == "eval":
        return [float(v) for v in lists.get("eval") or []]
    blocks = sorted((k for k in lists if k.startswith("block")), key=lambda k: int(k[5:] or 0))
    return [float(v) for k in blocks for v in lists[k]]


def _from_output(rank: int, output: dict, phase: str) -> dict[str, np.ndarray]:
    parts: dict[str, list] = {k: [] for k in ("rank", "epoch", "step", "start_s", *STEP_COLUMNS, "samples",
                                              "bytes_read", "end_s")}
    clock = 0.0
    for epoch in sorted((k for k in output if k.isdigit()), key=int):
        entry = output[epoch]
        if not isinstance(entry, dict):
            continue
        wait, compute = _phase_lists(entry, "load", phase), _phase_lists(entry, "compute", phase)
        proc = _phase_lists(entry, "proc", phase) or [w + c for w, c in zip(wait, compute)]
        n = min(len(wait), len(compute), len(proc))
        starts = clock + np.concatenate([[0.0], np.cumsum(proc[:n])])
        clock = float(starts[-1])
        parts["rank"].append(np.full(n, rank))
        parts["epoch"].append(np.full(n, int(epoch)))
        parts["step"].append(np.arange(1, n + 1))
        parts["start_s"].append(starts[:n])
        parts["end_s"].append(starts[1:n + 1])
        parts["wait_s"].append(np.asarray(wait[:n]))
        parts["compute_s"].append(np.asarray(compute[:n]))
        for name in ("io_s", "decode_s", "h2d_s", "barrier_s", "samples", "bytes_read"):
            parts[name].append(np.full(n, np.nan))
    return {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}


def _from_steps(rank: int, path: str, phase: str) -> dict[str, np.ndarray]:
    data = read_steps(path)
    keep = data["phase"] >= 0 if phase == "all" else data["phase"] == (1 if phase == "eval" else 0)
    out = {k: data[k][keep] for k in ("epoch", "step", "start_s", "end_s", *STEP_COLUMNS, "samples", "bytes_read")}
    first = out["start_s"].min() if out["start_s"].size else 0.0
    out["wall_start_s"] = out["start_s"] + float(data["wall_offset_s"])
    out["start_s"] = out["start_s"] - first
    out["end_s"] = out["end_s"] - first
    out["rank"] = np.full(int(keep.sum()), rank)
    return out


@dataclass
class RunData:
    """Everything a report needs from one output folder (see the module docstring)."""

    folder: str
    producer: str                      # "dl-driver" or "dlio"
    summary: dict
    report: dict | None
    config: dict
    overrides: list
    ranks: list[RankFiles]

    @property
    def name(self) -> str:
        """A short label: the folder's name."""
        return os.path.basename(os.path.normpath(self.folder)) or self.folder

    @property
    def metric(self) -> dict:
        return self.summary.get("metric") or {}

    @property
    def au_threshold_percentage(self) -> float | None:
        """``metric.au`` of the resolved config, in percent (None when the folder has no config)."""
        au = (self.config.get("metric") or {}).get("au")
        return None if au is None else float(au) * 100.0

    @property
    def num_ranks(self) -> int:
        return int(self.summary.get("num_accelerators") or len(self.ranks) or 1)

    @classmethod
    def load(cls, folder: str) -> RunData:
        """Read ``folder``; :class:`ReportInputError` when it holds no summary and no per-rank files."""
        if not os.path.isdir(folder):
            raise ReportInputError(f"{folder}: not a folder")
        ranks: dict[int, RankFiles] = {}
        for name in sorted(os.listdir(folder)):
            m = _RANK_FILE.match(name)
            if not m:
                continue
            rank = ranks.setdefault(int(m.group(1)), RankFiles(int(m.group(1))))
            path = os.path.join(folder, name)
            if m.group(2) == "output":
                rank.output = read_json(path) or {}
            elif m.group(2) == "per_epoch_stats":
                rank.per_epoch = read_json(path) or {}
            elif m.group(2) == "steps":
                rank.steps_path = path
            else:
                rank.access_order_path = path
        single = read_json(os.path.join(folder, "per_epoch_stats.json"))  # DLIO PyPI 2.0 / v1.0: rank 0 only
        if isinstance(single, dict):
            ranks.setdefault(0, RankFiles(0)).per_epoch = ranks.get(0, RankFiles(0)).per_epoch or single
        summary = read_json(os.path.join(folder, "summary.json"))
        if not isinstance(summary, dict) and not ranks:
            raise ReportInputError(f"{folder}: no summary.json and no {{rank}}_output.json: not a DLIO or "
                                   "dl-driver output folder")
        report = read_json(os.path.join(folder, "report.json"))
        report = report if isinstance(report, dict) and str(report.get("schema", "")).startswith("dl-driver") else None
        config, overrides = {}, []
        for sub in _CONFIG_DIRS:
            data = _read_yaml(os.path.join(folder, sub, "config.yaml"))
            if isinstance(data, dict):
                config = data.get("workload", data) if isinstance(data.get("workload", data), dict) else {}
                overrides = _read_yaml(os.path.join(folder, sub, "overrides.yaml")) or []
                break
        return cls(folder=folder, producer="dl-driver" if report is not None else "dlio",
                   summary=summary if isinstance(summary, dict) else {}, report=report, config=config,
                   overrides=list(overrides) if isinstance(overrides, list) else [],
                   ranks=[ranks[r] for r in sorted(ranks)])

    def steps(self, phase: str = "train") -> StepTable:
        """Every rank's steps of ``phase`` ("train", "eval", or "all" from step files), from step files when
        every rank has one."""
        exact = bool(self.ranks) and all(r.steps_path for r in self.ranks)
        parts = [_from_steps(r.rank, r.steps_path, phase) if exact else _from_output(r.rank, r.output, phase)
                 for r in self.ranks]
        keys = set.intersection(*(set(p) for p in parts)) if parts else {"rank"}
        columns = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in keys}
        return StepTable(columns=columns, exact=exact)

    def checkpoint_records(self) -> list[dict]:
        """Every save and load: ``kind``, ``index``, ``throughput_GiB_per_s``, ``duration_s`` and, per rank,
        ``rank_GiB_per_s`` (from step files: each rank's own bytes and time; from DLIO's per-rank
        ``save_ckpt{k}``/``load_ckpt{k}`` entries otherwise: its ``throughput``)."""
        if self.report and (self.report.get("checkpoint") or {}).get("records"):
            records = [dict(r) for r in self.report["checkpoint"]["records"]]
            per_rank = self._rank_checkpoint_rates()
            for r in records:
                r["rank_GiB_per_s"] = per_rank.get((r["kind"], r["index"]), {})
            return records
        return self._dlio_checkpoint_records()

    def _rank_checkpoint_rates(self) -> dict[tuple[str, int], dict[int, float]]:
        out: dict[tuple[str, int], dict[int, float]] = {}
        for r in self.ranks:
            if not r.steps_path:
                continue
            data = read_steps(r.steps_path)
            for kind, index, nbytes, secs in zip(data["ckpt_kind"].tolist(), data["ckpt_index"].tolist(),
                                                 data["ckpt_rank_bytes"].tolist(),
                                                 data["ckpt_rank_duration_s"].tolist()):
                key = ("save" if kind == 0 else "load", int(index))
                out.setdefault(key, {})[r.rank] = nbytes / 2**30 / secs if secs > 0 else float("nan")
        return out

    def _dlio_checkpoint_records(self) -> list[dict]:
        records: dict[tuple[str, int], dict] = {}
        pattern = re.compile(r"^(save|load)_ckpt(\d+)$")
        for r in self.ranks:
            seen: dict[str, int] = {}
            for epoch in sorted((k for k in r.per_epoch if k.isdigit()), key=int):
                entries = [(pattern.match(k), v) for k, v in (r.per_epoch[epoch] or {}).items()]
                for m, value in sorted(((m, v) for m, v in entries if m and isinstance(v, dict)),
                                       key=lambda mv: (mv[0].group(1) != "save", int(mv[0].group(2)))):
                    seen[m.group(1)] = seen.get(m.group(1), 0) + 1  # a run-wide count, as our records keep
                    rec = records.setdefault((m.group(1), seen[m.group(1)]), {
                        "kind": m.group(1), "index": seen[m.group(1)], "epoch": int(epoch),
                        "throughput_GiB_per_s": None, "duration_s": None, "rank_GiB_per_s": {}})
                    rate = value.get("throughput")
                    rec["rank_GiB_per_s"][r.rank] = float(rate) if rate is not None else float("nan")
                    if r.rank == 0 or rec["throughput_GiB_per_s"] is None:
                        rec["throughput_GiB_per_s"] = rate
                        rec["duration_s"] = value.get("duration")
        return [records[k] for k in sorted(records, key=lambda k: (k[0] != "save", k[1]))]

    def access_order(self) -> dict[int, str]:
        """Each rank's ``{rank}_access_order.json`` text (empty when the run did not record it)."""
        out = {}
        for r in self.ranks:
            if r.access_order_path:
                with open(r.access_order_path, encoding="utf-8") as fh:
                    out[r.rank] = fh.read()
        return out
