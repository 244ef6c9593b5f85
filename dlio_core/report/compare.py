"""``dl-driver compare DIR_A DIR_B ...``: runs side by side (loaders, backends, mechanisms, dl-driver
against a DLIO folder), each figure's ratio to the first run, and the resolved config keys that differ.

The figures come from ``summary.json`` (so a DLIO folder has them too) and from the steps (wait and
compute percentiles: step files, else DLIO's per-step lists). Text goes to stdout, or JSON / CSV
(``--format``: one CSV line per run); ``--html PATH`` also writes a page with the ratios drawn.

Example:
    >>> cmp = Comparison(names=["a", "b"], folders=["a", "b"],
    ...                  figures=[{"train_au_mean_percentage": 80.0}, {"train_au_mean_percentage": 90.0}],
    ...                  config_differences={"reader.read_threads": [1, 4]})
    >>> cmp.ratios()["train_au_mean_percentage"]
    [1.0, 1.125]
    >>> print([line for line in cmp.text().splitlines() if line.startswith("train_au")][0])
    train_au_mean_percentage  80  90 (x1.125)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .rundata import RunData, ReportInputError

__all__ = ["Comparison", "compare_runs", "run_figures", "LABELS", "NUMBERS", "config_differences", "flat_config"]

# Descriptive figures (compared as text) and numeric ones (compared as ratios), in table order.
LABELS = ("producer", "workload", "data_loader", "format", "storage_type", "checkpoint_mechanism", "ranks",
          "run_status")
NUMBERS = ("epochs", "train_au_mean_percentage", "train_throughput_mean_samples_per_second",
           "train_io_mean_MB_per_second", "train_wait_p50_ms", "train_wait_p99_ms", "train_compute_p50_ms",
           "eval_au_mean_percentage", "eval_throughput_mean_samples_per_second",
           "save_checkpoint_io_mean_GB_per_second", "save_checkpoint_duration_mean_seconds",
           "load_checkpoint_io_mean_GB_per_second", "load_checkpoint_duration_mean_seconds", "checkpoint_size_GB")


def _get(d: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


def run_figures(run: RunData) -> dict[str, Any]:
    """The figures :func:`compare_runs` puts side by side, for one run (None where the folder has none)."""
    m, r, cfg = run.metric, run.report or {}, run.config
    out: dict[str, Any] = {
        "producer": run.producer,
        "workload": _get(r, "provenance.workload") or _get(cfg, "model.name"),
        "data_loader": r.get("data_loader") or _get(cfg, "reader.data_loader"),
        "format": _get(cfg, "dataset.format"),
        "storage_type": _get(r, "provenance.storage_type") or _get(cfg, "storage.storage_type"),
        "checkpoint_mechanism": (_get(cfg, "checkpoint.checkpoint_mechanism")
                                 if _get(cfg, "workflow.checkpoint") else None),
        "ranks": run.num_ranks,
        "run_status": (run.summary.get("run_status") or {}).get("status", "complete" if run.summary else None),
        "epochs": run.summary.get("epochs"),
    }
    for key in NUMBERS:
        if key in m:
            out[key] = m[key]
    table = run.steps("train")
    for stage, q, key in (("wait_s", 50, "train_wait_p50_ms"), ("wait_s", 99, "train_wait_p99_ms"),
                          ("compute_s", 50, "train_compute_p50_ms")):
        if table.measured(stage):
            values = table.columns[stage]
            out[key] = float(np.percentile(values[np.isfinite(values)], q)) * 1e3
    return {k: out.get(k) for k in (*LABELS, *NUMBERS)}


def flat_config(config: dict, prefix: str = "") -> dict[str, Any]:
    """A resolved config as dotted keys (lists kept whole)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_config(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_differences(configs: Sequence[dict]) -> dict[str, list[Any]]:
    """The dotted keys whose value is not the same in every config (a key one config lacks counts)."""
    flats = [flat_config(c) for c in configs]
    keys = sorted(set().union(*flats)) if flats else []
    missing = object()
    return {k: [f.get(k) for f in flats] for k in keys
            if len({repr(f.get(k, missing)) for f in flats}) > 1}


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}"
    return str(v)


@dataclass
class Comparison:
    """Several runs' figures, in the order given (the first is the reference for ratios)."""

    names: list[str]
    folders: list[str]
    figures: list[dict[str, Any]]
    config_differences: dict[str, list[Any]]

    def ratios(self) -> dict[str, list[float | None]]:
        """Each numeric figure of each run over the first run's (None where either is missing or zero)."""
        out: dict[str, list[float | None]] = {}
        for key in NUMBERS:
            base = self.figures[0].get(key)
            values = [f.get(key) for f in self.figures]
            if all(v is None for v in values):
                continue
            out[key] = [None if v is None or not base else float(v) / float(base) for v in values]
        return out

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: each run's figures and ratios, and the config differences."""
        ratios = self.ratios()
        runs = [{"name": n, "folder": d, "figures": f, "ratio_to_first": {k: r[i] for k, r in ratios.items()}}
                for i, (n, d, f) in enumerate(zip(self.names, self.folders, self.figures))]
        return {"runs": runs, "config_differences": self.config_differences}

    def csv_rows(self) -> list[dict[str, Any]]:
        """One line per run: name, folder, figures, ratios."""
        ratios = self.ratios()
        return [{"name": n, "folder": d, **f, **{f"ratio.{k}": r[i] for k, r in ratios.items()}}
                for i, (n, d, f) in enumerate(zip(self.names, self.folders, self.figures))]

    def text(self) -> str:
        """The side-by-side table and the config differences, as plain text."""
        ratios = self.ratios()
        rows = [("figure", *self.names)]
        for key in LABELS:
            rows.append((key, *(_fmt(f.get(key)) for f in self.figures)))
        for key in ratios:
            cells = [_fmt(self.figures[0].get(key))]
            for i in range(1, len(self.figures)):
                ratio = ratios[key][i]
                cells.append(_fmt(self.figures[i].get(key)) + (f" (x{ratio:.4g})" if ratio is not None else ""))
            rows.append((key, *cells))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                 for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        if self.config_differences:
            lines += ["", f"config keys that differ ({len(self.config_differences)}):"]
            lines += [f"  {k}: " + " | ".join(_fmt(v) for v in vals) for k, vals in self.config_differences.items()]
        else:
            lines += ["", "the resolved configs are the same"]
        return "\n".join(lines)

    def html(self) -> str:
        """A page with the table, the ratios drawn and the config differences."""
        from .figures_runs import compare_figure
        from .html import STYLE, figure_html, table_html

        ratios = self.ratios()
        rows = [(k, *(f.get(k) for f in self.figures)) for k in LABELS]
        rows += [(k, *(f.get(k) for f in self.figures)) for k in ratios]
        fig = compare_figure(self.names, list(ratios.items()))
        diffs = [(k, *map(_fmt, v)) for k, v in self.config_differences.items()]
        return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>dl-driver compare</title>"
                f"<style>{STYLE}</style></head><body><h1>dl-driver compare</h1>"
                + table_html([(n, d) for n, d in zip(self.names, self.folders)], ("run", "folder"))
                + "<h2>Figures</h2>" + table_html(rows, ("figure", *self.names)) + figure_html(fig)
                + "<h2>Config keys that differ</h2>"
                + (table_html(diffs, ("key", *self.names)) if diffs else "<p>none</p>") + "</body></html>\n")


def compare_runs(folders: Sequence[str]) -> Comparison:
    """Load each folder and line their figures up (the first is the reference)."""
    if len(folders) < 2:
        raise ReportInputError("compare needs at least two output folders")
    runs = [RunData.load(f) for f in folders]
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # same leaf name in different places: add the parent folder
        names = [os.path.join(os.path.basename(os.path.dirname(os.path.abspath(r.folder))), r.name) for r in runs]
    if len(set(names)) < len(names):
        names = [f"{i + 1}:{n}" for i, n in enumerate(names)]
    return Comparison(names=names, folders=[os.path.abspath(f) for f in folders],
                      figures=[run_figures(r) for r in runs],
                      config_differences=config_differences([r.config for r in runs]))
