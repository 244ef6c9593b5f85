"""``--format json|csv``: a command's summary in a form scripts read without scraping.

JSON is the summary as it is; CSV is one header line and one line per record, nested keys dotted and
lists as JSON text in one cell (as ``mlperf reportgen``'s ``results.csv``).

Example:
    >>> emit({"a": {"b": 1}, "c": [1, 2]}, "csv")
    a.b,c
    1,"[1, 2]"
    >>> emit({"a": 1}, "json")
    {
      "a": 1
    }
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from typing import Any, ContextManager, Sequence, TextIO

from ..mlperf.reportgen import flatten

__all__ = ["FORMATS", "emit", "flatten", "human_output", "run_summary"]

FORMATS = ("text", "json", "csv")


def emit(data: Any, fmt: str, rows: Sequence[dict[str, Any]] | None = None, *, stream: TextIO | None = None) -> None:
    """Print ``data`` as ``fmt`` ("json" or "csv") on ``stream`` (stdout); ``rows`` are the CSV lines
    (default: ``data`` flattened into one line)."""
    stream = stream or sys.stdout
    if fmt == "json":
        json.dump(data, stream, indent=2, default=str)
        stream.write("\n")
        return
    if fmt != "csv":
        raise ValueError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    lines = [flatten(r) for r in rows] if rows is not None else [flatten(data)]
    columns: list[str] = []
    for line in lines:
        columns += [c for c in line if c not in columns]
    writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)


def human_output(fmt: str) -> ContextManager[Any]:
    """Where a command's human text goes: stdout for ``text``, else stderr (stdout carries the summary)."""
    return contextlib.nullcontext() if fmt == "text" else contextlib.redirect_stdout(sys.stderr)


def run_summary(output_folder: str, summary: dict[str, Any]) -> dict[str, Any]:
    """What ``dl-driver run --format json|csv`` prints: where the files are, how the run ended, its metrics
    (``summary.json`` without the per-host /proc dumps)."""
    keep = ("start", "end", "num_accelerators", "num_hosts", "hostname", "num_files_train", "num_files_eval",
            "num_samples_per_file", "epochs", "run_status", "metric")
    return {"output_folder": output_folder, **{k: summary[k] for k in keep if k in summary}}
