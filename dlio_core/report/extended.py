"""``report.json``: everything DLIO's files have no place for.

Per-stage latency distributions (wait, io, decode, compute, barrier: mean, p50, p95, p99, max),
bytes actually read and the read amplification against the samples' own bytes, AU with and without
barrier time, and provenance (versions, host, storage URI, the exact command). Every figure carries
its unit in its name. With several ranks the stage percentiles come from merged per-rank histograms,
within 1% (+1 ns) of the exact ones (``histogram.py``); count, mean and max stay exact.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any, Sequence

from ..metrics import mean_std
from ..output import redact_override
from .host import host_memory_bytes, proc_dict
from .rank_summary import host_table, rank_spread

__all__ = ["build_report", "provenance"]


def _version(module: str) -> str | None:
    mod = sys.modules.get(module)
    return getattr(mod, "__version__", None) if mod is not None else None


def provenance(cfg: Any) -> dict[str, Any]:
    """Versions of dl-driver, Python and any framework this process imported; host; storage; command."""
    from importlib import metadata

    try:
        ours = metadata.version("dl-driver")
    except metadata.PackageNotFoundError:
        ours = "source"
    frameworks = {name: _version(name) for name in ("numpy", "torch", "tensorflow", "jax", "nvidia.dali", "h5py")}
    return {
        "dl_driver_version": ours,
        "python_version": platform.python_version(),
        "frameworks": {k: v for k, v in frameworks.items() if v is not None},
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "cpu_model": proc_dict("/proc/cpuinfo").get("model name", platform.processor()),
        "cpu_count": os.cpu_count(),
        "memory_bytes": host_memory_bytes(),
        "storage_uri": str(cfg.dataset.data_folder),
        "storage_type": str(getattr(cfg.storage.storage_type, "value", cfg.storage.storage_type)),
        "workload": cfg.source,
        "overrides": [redact_override(o) for o in cfg.overrides],
        "command": [redact_override(a) for a in sys.argv],
    }


def _phase_block(stages: dict[str, dict], rows: Sequence[Sequence[dict]],
                 agg: dict[str, list[float]], complete: bool = True) -> dict[str, Any]:
    flat = [r for rank_rows in rows for r in rank_rows]
    bytes_read = sum(r["bytes"] for r in flat)
    sample_bytes = sum(r["sample_bytes"] for r in flat)
    au_nb_mean, au_nb_std = mean_std(agg["au_nb"])
    return {
        "stages": stages,
        "bytes_read_in_windows": bytes_read,
        "sample_bytes_in_windows": sample_bytes,
        "read_amplification": (bytes_read / sample_bytes) if sample_bytes else None,
        "au_percentage": agg["au"],
        "au_without_barrier_percentage": agg["au_nb"],
        "au_without_barrier_mean_percentage": au_nb_mean,
        "au_without_barrier_stdev_percentage": au_nb_std,
        "throughput_samples_per_s": agg["throughput"],
        "io_bytes_per_s": agg["io_bps"],
        # A run that stopped early measured part of its window at best.
        "measured_window_complete": complete and all(r["full_window"] for r in flat) if flat else False,
    }


def build_report(cfg: Any, dist: Any, summary: dict, gathered: Sequence[Any], train_agg: dict,
                 eval_agg: dict, dataset_bytes: int, *, stages: dict[str, dict]) -> dict[str, Any]:
    """Assemble ``report.json`` on rank 0 from every rank's :class:`~.rank_summary.RankSummary`.

    ``stages`` is the per-stage latency block (:func:`~.rank_summary.stage_summaries`).
    """
    report: dict[str, Any] = {
        "schema": "dl-driver/report/1",
        "start": summary["start"],
        "end": summary["end"],
        "num_ranks": dist.world,
        "num_hosts": summary["num_hosts"],
        "data_loader": str(getattr(cfg.reader.data_loader, "value", cfg.reader.data_loader)),
        # reader.decode: "bytes" (read and counted, the MLCommons fork's measure) or "decode"
        "read_mode": "decode" if getattr(cfg.reader, "decode", False) else "bytes",
        "dataset_bytes": dataset_bytes,
        "measured_window": {"exclude_start_steps": cfg.output.exclude_start_steps,
                            "exclude_end_steps": cfg.output.exclude_end_steps},
        "run_status": summary["run_status"],
        "train": _phase_block(stages, [g.train_rows for g in gathered], train_agg,
                              summary["run_status"]["status"] == "complete"),
        "provenance": provenance(cfg),
        "warnings": list(cfg.warnings),
        # per host: its ranks, their peak memory, its once-per-node work (page-cache eviction)
        "hosts": host_table(gathered, list(dict.fromkeys(g.hostname for g in gathered))),
        "peak_rss_bytes_by_rank": [g.peak_rss_bytes for g in gathered],
    }
    report["train"]["rank_spread"] = rank_spread(gathered)  # slowest rank, p99 across ranks, straggler-inclusive
    if eval_agg["au"]:
        report["eval"] = {
            "au_percentage": eval_agg["au"],
            "throughput_samples_per_s": eval_agg["throughput"],
            "io_bytes_per_s": eval_agg["io_bps"],
        }
    if any(summary["potential_caching"]):
        report["warnings"].append("dataset fits in host memory: later epochs may be served from the page cache")
    return report
