"""``dl-driver mlperf reportgen``: results per run folder, per set of runs, and across the whole tree.

Reads a results tree (``layout``), and writes:

- in every run folder, ``results.json`` and ``results.csv`` (run id, benchmark, model, command, parameters,
  system information and DLIO's metrics; the CSV is the JSON flattened to dotted keys);
- in every set folder (``.../training/<model>/run/`` or ``.../checkpointing/<model>/``), ``results.json`` and
  ``results.csv`` with the means of the measured runs and each check of ``checks``, PASS or FAIL with its
  reason;
- in the output folder (the results dir by default), ``results.json`` and ``results.csv``: one row per set.

Run folders of ``datasize`` and ``datagen`` get their per-run files only.

Example:
    >>> flatten({"a": {"b": 1, "c": [1, 2]}, "d": "x"})
    {'a.b': 1, 'a.c': '[1, 2]', 'd': 'x'}
"""

from __future__ import annotations

import csv
import glob
import json
import os
from typing import Any, Callable

from .errors import UsageError
from .checks import RunRecord, checkpoint_checks, checkpoint_means, training_checks, training_means
from .layout import RunFolder, find_run_folders

__all__ = ["generate_reports", "load_run", "run_results", "flatten"]


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _read_config(folder: str) -> dict[str, Any]:
    import yaml

    for sub in ("dlio_config", ".hydra", "configs"):
        path = os.path.join(folder, sub, "config.yaml")
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            return data.get("workload", data)
    return {}


def load_run(folder: RunFolder) -> RunRecord:
    """A run folder's ``summary.json``, metadata and resolved config."""
    metas = sorted(glob.glob(os.path.join(folder.path, "*_metadata.json")))
    metadata = _read_json(metas[0]) if metas else {}
    config = metadata.get("parameters") if isinstance(metadata.get("parameters"), dict) else None
    return RunRecord(path=folder.path, model=folder.model, summary=_read_json(os.path.join(folder.path, "summary.json")),
                     metadata=metadata, config=config or _read_config(folder.path))


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; lists as JSON text (one CSV cell each)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value, default=str)
        else:
            out[name] = value
    return out


def _write(folder: str, data: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> None:
    """``results.json`` (``data``) and ``results.csv`` (``rows``, else ``data`` flattened) in ``folder``."""
    with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)
    rows = rows if rows is not None else [flatten(data)]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with open(os.path.join(folder, "results.csv"), "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def run_results(folder: RunFolder, run: RunRecord) -> dict[str, Any]:
    """One run's ``results.json``."""
    declared, measured = run.memory_bytes
    cpus = run.summary.get("host_cpu_count") or []
    return {
        "run_id": f"{folder.benchmark}_{folder.model}_{folder.command}_{folder.stamp}",
        "benchmark_type": folder.benchmark, "mode": folder.mode, "org": folder.org, "system": folder.system,
        "model": folder.model, "command": folder.command, "run_datetime": folder.stamp, "path": folder.path,
        "accelerator_type": (run.metadata.get("args") or {}).get("accelerator_type"),
        "num_accelerators": run.num_accelerators, "num_files_train": run.summary.get("num_files_train"),
        "start": run.summary.get("start") or run.metadata.get("start"),
        "end": run.summary.get("end") or run.metadata.get("end"), "duration_s": run.duration_s,
        "verification": run.metadata.get("verification"), "override_parameters": run.metadata.get("override_parameters"),
        "system_info": {"total_memory_bytes": measured, "declared_memory_bytes": declared,
                        "total_cores": sum(c for c in cpus if isinstance(c, int))},
        "metrics": run.summary.get("metric", {}), "parameters": run.config,
    }


def _set_summary(folders: list[RunFolder], runs: list[RunRecord]) -> dict[str, Any]:
    first = folders[0]
    checkpointing = first.benchmark == "checkpointing"
    checks = checkpoint_checks(runs) if checkpointing else training_checks(runs)
    means = checkpoint_means(runs) if checkpointing else training_means(runs)
    return {
        "benchmark_type": first.benchmark, "mode": first.mode, "org": first.org, "system": first.system,
        "model": first.model, "command": first.command, "path": first.group,
        "status": "PASS" if all(c.passed for c in checks) else "FAIL",
        "num_runs": len(runs), "runs": [f.path for f in folders], **means,
        "checks": [c.as_dict() for c in checks],
    }


def _set_row(summary: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in summary.items() if k not in ("checks", "runs", "measured_runs")}
    for check in summary["checks"]:
        row[f"check.{check['name']}"] = check["status"] if check["status"] == "PASS" else f"FAIL: {check['reason']}"
    return row


def _headline(summary: dict[str, Any]) -> str:
    where = f"{summary['mode']}/{summary['system']} {summary['benchmark_type']} {summary['model']}"
    if summary["benchmark_type"] == "training":
        au = summary.get("train_mean_of_train_au_mean_percentage")
        thr = summary.get("train_mean_of_train_throughput_mean_samples_per_second")
        bw = summary.get("read_bandwidth_GiB_per_second")
        figures = (f"mean of {len(summary.get('measured_runs') or [])} measured runs: {au:.2f}% AU, "
                   f"{thr:,.2f} samples/s, {bw:,.4f} GiB/s" if au is not None else "no measured runs")
    else:
        w, r = summary.get("write_bandwidth_GiB_per_second"), summary.get("read_bandwidth_GiB_per_second")
        figures = f"write {w if w is None else round(w, 3)} GiB/s, read {r if r is None else round(r, 3)} GiB/s"
    return f"{summary['status']} {where} ({summary['num_runs']} runs): {figures}"


def generate_reports(results_dir: str, *, output_dir: str | None = None, say: Callable[[str], None] = print) -> int:
    """Write every report for the tree under ``results_dir``; returns 0 (the verdicts are in the files)."""
    folders = find_run_folders(results_dir)
    if not folders:
        raise UsageError(f"--results-dir: no run folders (summary.json or *_metadata.json) under {results_dir}")
    sets: dict[str, list[tuple[RunFolder, RunRecord]]] = {}
    for folder in folders:
        run = load_run(folder)
        _write(folder.path, run_results(folder, run))
        if folder.command == "run":
            sets.setdefault(folder.group, []).append((folder, run))
    summaries = []
    for group, members in sorted(sets.items()):
        summary = _set_summary([f for f, _ in members], [r for _, r in members])
        _write(group, summary, [_set_row(summary)])
        summaries.append(summary)
        say(_headline(summary))
        for check in summary["checks"]:
            say(f"  {check['status']} {check['name']}: {check['reason']}")
    out = output_dir or results_dir
    os.makedirs(out, exist_ok=True)
    _write(out, {"results_dir": os.path.abspath(results_dir), "num_run_folders": len(folders), "sets": summaries},
           [_set_row(s) for s in summaries])
    say(f"wrote results.json and results.csv in {len(folders)} run folder(s) and {len(summaries)} set(s); "
        f"summary in {os.path.join(out, 'results.json')}")
    return 0
