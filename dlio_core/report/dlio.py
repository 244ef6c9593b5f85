"""DLIO-compatible result files: ``summary.json``, ``{rank}_per_epoch_stats.json``,
``{rank}_output.json`` and the ``[METRIC]`` console block; plus our ``report.json``.

Same keys, types and meanings as DLIO HEAD, computed without its bugs (README, "Differences from
DLIO"): the measured step window is the same in numerator and denominator, MB/s comes from bytes
actually read (MiB, as MLPerf's reportgen assumes), evaluation is aggregated across ranks like
training (AU averaged, samples/s summed), and nothing is trimmed from the dataset.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, Sequence

from ..metrics import mean_std
from .host import host_info, timestamp
from .rank_summary import RankSummary, aggregate, stage_summaries
from .steps import write_steps

__all__ = ["write_all", "metric_block"]

MIB = 2**20


def _json_dump(path: str, obj: Any) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=4)
    os.replace(tmp, path)


def _phase_metrics(prefix: str, agg: dict[str, list[float]], au_target: float, complete: bool = True) -> dict[str, Any]:
    """DLIO's per-phase metric keys; ``*_au_meet_expectation`` is never "success" for a run that did not complete."""
    au_mean, au_std = mean_std(agg["au"])
    thr_mean, thr_std = mean_std(agg["throughput"])
    io_mean, io_std = mean_std(agg["io_bps"])
    return {
        f"{prefix}_au_percentage": agg["au"],
        f"{prefix}_au_mean_percentage": au_mean,
        f"{prefix}_au_meet_expectation": "success" if complete and au_mean >= au_target * 100 else "fail",
        f"{prefix}_au_stdev_percentage": au_std,
        f"{prefix}_throughput_samples_per_second": agg["throughput"],
        f"{prefix}_throughput_mean_samples_per_second": thr_mean,
        f"{prefix}_throughput_stdev_samples_per_second": thr_std,
        f"{prefix}_io_mean_MB_per_second": io_mean / MIB,
        f"{prefix}_io_stdev_MB_per_second": io_std / MIB,
    }


def metric_block(world: int, metric: dict[str, Any], end: Any = None) -> list[str]:
    """DLIO's ``[METRIC]`` console block for ``summary["metric"]``; a run that did not complete says so last."""
    bar = "[METRIC] =========================================================="
    lines = ["Averaged metric over all epochs", bar, f"[METRIC] Number of Simulated Accelerators: {world} "]
    if "train_au_mean_percentage" in metric:
        m = metric
        lines += [
            f"[METRIC] Training Accelerator Utilization [AU] (%): {m['train_au_mean_percentage']:.4f} ({m['train_au_stdev_percentage']:.4f})",
            f"[METRIC] Training Throughput (samples/second): {m['train_throughput_mean_samples_per_second']:.4f} ({m['train_throughput_stdev_samples_per_second']:.4f})",
            f"[METRIC] Training I/O Throughput (MB/second): {m['train_io_mean_MB_per_second']:.4f} ({m['train_io_stdev_MB_per_second']:.4f})",
            f"[METRIC] train_au_meet_expectation: {m['train_au_meet_expectation']}",
        ]
    if "eval_au_mean_percentage" in metric:
        m = metric
        lines += [
            f"[METRIC] Eval Accelerator Utilization [AU] (%): {m['eval_au_mean_percentage']:.4f} ({m['eval_au_stdev_percentage']:.4f})",
            f"[METRIC] Eval Throughput (samples/second): {m['eval_throughput_mean_samples_per_second']:.6f} ({m['eval_throughput_stdev_samples_per_second']:.6f})",
            f"[METRIC] Eval Throughput (MB/second): {m['eval_io_mean_MB_per_second']:.6f} ({m['eval_io_stdev_MB_per_second']:.6f})",
            f"[METRIC] eval_au_meet_expectation: {m['eval_au_meet_expectation']}",
        ]
    for kind, label in (("save", "Checkpoint save"), ("load", "Checkpoint load")):
        if f"{kind}_checkpoint_duration_mean_seconds" in metric:
            m = metric
            lines += [
                f"[METRIC] {label} duration (seconds): {m[f'{kind}_checkpoint_duration_mean_seconds']:.4f} ({m[f'{kind}_checkpoint_duration_stdev_seconds']:.4f})",
                f"[METRIC] {label} I/O Throughput (GB/second): {m[f'{kind}_checkpoint_io_mean_GB_per_second']:.4f} ({m[f'{kind}_checkpoint_io_stdev_GB_per_second']:.4f})",
            ]
    if end is not None and not end.complete:
        lines.append(f"[METRIC] Run status: {end.status} at epoch {end.epoch} step {end.step} ({end.phase}): {end.reason}")
    lines.append(bar)
    return lines


def _per_epoch_stats(epochs: Sequence[Any]) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for rec in epochs:
        if rec.train.steps == 0:
            continue
        duration = f"{rec.train.end[-1] - rec.train.start[0]:.2f}"
        entry = {"start": rec.train_start, "end": rec.train_end, "duration": duration,
                 "block1": {"start": rec.train_start, "end": rec.train_end, "duration": duration}}
        if rec.eval is not None and rec.eval.steps:
            entry["eval"] = {"start": rec.eval_start, "end": rec.eval_end,
                             "duration": f"{rec.eval.end[-1] - rec.eval.start[0]:.2f}"}
        stats[str(rec.epoch)] = entry
    return stats


def _rank_output(cfg: Any, epochs: Sequence[Any], host: dict, potential_caching: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "host_memory_GB": host["host_memory_GB"], "host_cpu_count": host["host_cpu_count"],
        "host_processor_name": host["host_processor_name"], "potential_caching": potential_caching,
        "host_cpuinfo": host["host_cpuinfo"], "host_meminfo": host["host_meminfo"],
    }
    ex_s, ex_e = cfg.output.exclude_start_steps, cfg.output.exclude_end_steps
    for rec in epochs:
        phases = {"block1": rec.train}
        if rec.eval is not None:
            phases["eval"] = rec.eval
        entry: dict[str, Any] = {k: {} for k in ("load", "proc", "compute", "au", "throughput")}
        for key, record in phases.items():
            w = record.window(ex_s, ex_e)
            entry["load"][key] = list(record.wait)
            entry["proc"][key] = record.proc()
            entry["compute"][key] = list(record.compute)
            entry["au"][key] = w.au_percentage
            entry["throughput"][key] = w.throughput_samples_per_s
        entry["start"], entry["end"] = rec.train_start, rec.eval_end or rec.train_end
        out[str(rec.epoch)] = entry
    out["hostname"] = socket.gethostname()
    return out


def _write_rank_files(cfg: Any, dist: Any, folder: str, epochs: Sequence[Any], host: dict, potential_caching: int,
                     checkpoints: Any, checkpoint_records: Sequence[Any]) -> None:
    """This rank's ``{rank}_per_epoch_stats.json`` and ``{rank}_output.json`` (no collective)."""
    os.makedirs(folder, exist_ok=True)
    stats = _per_epoch_stats(epochs)
    if checkpoints is not None:
        for epoch, entries in checkpoints.per_epoch_entries(list(checkpoint_records)).items():
            stats.setdefault(str(epoch), {}).update(entries)
    _json_dump(os.path.join(folder, f"{dist.rank}_per_epoch_stats.json"), stats)
    _json_dump(os.path.join(folder, f"{dist.rank}_output.json"), _rank_output(cfg, epochs, host, potential_caching))
    write_steps(folder, dist.rank, epochs, checkpoint_records)  # per-step figures of the HTML report


def write_all(cfg: Any, dist: Any, log: Any, folder: str, epochs: Sequence[Any], start_ts: str, *,
              train_files: Sequence[tuple[str, int]], eval_files: Sequence[tuple[str, int]],
              checkpoints: Any = None, checkpoint_records: Sequence[Any] = (), end: Any = None,
              node_stats: dict | None = None) -> dict[str, Any]:
    """Write every rank's files and, on rank 0, ``summary.json``, ``report.json`` and the ``[METRIC]`` block.

    Collective: every rank must call it. ``end`` (a :class:`~dlio_core.run_end.RunEnd`, default complete)
    is how the run ended: ``run_status`` in both summaries; ``node_stats`` the once-per-node work this rank
    did (``report.json``'s ``hosts``). Returns the summary on rank 0, ``{}`` elsewhere.
    """
    from ..run_end import RunEnd
    from .extended import build_report

    end = end if end is not None else RunEnd()
    host = host_info()
    hosts = dist.allgather((dist.hostname, host["host_memory_GB"], host["host_cpu_count"]))
    per_host = {name: (mem, cpus) for name, mem, cpus in hosts}
    num_hosts = len(per_host)
    dataset_bytes = sum(size for _, size in train_files)
    data_per_host_gb = dataset_bytes / max(1, num_hosts) / 2**30
    caching = [1 if data_per_host_gb <= mem else 0 for mem, _ in per_host.values()]
    my_caching = 1 if data_per_host_gb <= host["host_memory_GB"] else 0

    # O(epochs) figures and fixed-size histograms per rank, never every step (rank_summary.py).
    mine = RankSummary.from_epochs(epochs, exclude_start=cfg.output.exclude_start_steps,
                                   exclude_end=cfg.output.exclude_end_steps, node=node_stats)
    gathered = dist.gather(mine)
    _write_rank_files(cfg, dist, folder, epochs, host, my_caching, checkpoints, checkpoint_records)
    if not dist.is_root:
        return {}

    metric: dict[str, Any] = {}
    train_agg = aggregate([g.train_rows for g in gathered])
    eval_agg = aggregate([g.eval_rows for g in gathered])
    if train_agg["au"]:
        metric.update(_phase_metrics("train", train_agg, cfg.metric.au, end.complete))
    if eval_agg["au"]:
        metric.update(_phase_metrics("eval", eval_agg, cfg.metric.au, end.complete))
    if checkpoints is not None and checkpoint_records:
        metric.update(checkpoints.summary_metrics(list(checkpoint_records)))
    summary = {
        "start": start_ts,
        "end": timestamp(),
        "num_accelerators": dist.world,
        "num_hosts": num_hosts,
        "hostname": dist.hostname,
        "metric": metric,
        "num_files_train": cfg.dataset.num_files_train,
        "num_files_eval": cfg.dataset.num_files_eval,
        "num_samples_per_file": cfg.dataset.num_samples_per_file,
        "host_cpu_count": [int(c) for _, c in per_host.values()],
        "host_processor_name": host["host_processor_name"],
        "potential_caching": caching,
        "host_cpuinfo": host["host_cpuinfo"],
        "host_meminfo": host["host_meminfo"],
        "host_memory_GB": [float(m) for m, _ in per_host.values()],
        "data_size_per_host_GB": data_per_host_gb,
        "epochs": len(train_agg["au"]),
        "run_status": end.to_dict(),
    }
    _json_dump(os.path.join(folder, "summary.json"), summary)
    stages = stage_summaries(gathered, local_epochs=epochs if dist.world == 1 else None)
    report = build_report(cfg, dist, summary, gathered, train_agg, eval_agg, dataset_bytes, stages=stages)
    if checkpoints is not None:
        report["checkpoint"] = {"plan": checkpoints.plan.describe(), "notes": list(checkpoints.plan.notes),
                                "records": [r.to_dict() for r in checkpoint_records]}
    _json_dump(os.path.join(folder, "report.json"), report)
    if any(caching):
        log.warning(f"The dataset ({data_per_host_gb:.4f} GiB per host) is smaller than host memory; "
                    "reads after the first epoch may be served from the page cache")
    amplification = report["train"]["read_amplification"]
    # One sample per file reads ~1.1x its pixels (container headers): that is format overhead, not amplification.
    if amplification is not None and cfg.dataset.num_samples_per_file > 1 and amplification > 1.5:
        log.warning(_amplification_note(cfg, amplification))
    log.output(f"Saved outputs in {folder}")
    log.metric_block(metric_block(dist.world, metric, end))
    return summary


def write_after_lost_rank(cfg: Any, dist: Any, folder: str, epochs: Sequence[Any], start_ts: str, end: Any, *,
                          train_files: Sequence[tuple[str, int]], checkpoints: Any = None,
                          checkpoint_records: Sequence[Any] = ()) -> None:
    """After another rank stopped answering (no collective can run): this rank's own files and, on rank 0,
    a ``summary.json`` and ``report.json`` that say the run failed and why, with no figures across ranks."""
    host = host_info()
    data_gb = sum(size for _, size in train_files) / max(1, dist.num_hosts) / 2**30
    caching = 1 if data_gb <= host["host_memory_GB"] else 0
    _write_rank_files(cfg, dist, folder, epochs, host, caching, checkpoints, checkpoint_records)
    if not dist.is_root:
        return
    status = end.to_dict()
    summary = {"start": start_ts, "end": timestamp(), "num_accelerators": dist.world, "num_hosts": dist.num_hosts,
               "hostname": dist.hostname, "metric": {}, "num_files_train": cfg.dataset.num_files_train,
               "num_files_eval": cfg.dataset.num_files_eval, "num_samples_per_file": cfg.dataset.num_samples_per_file,
               "epochs": 0, "run_status": status}
    _json_dump(os.path.join(folder, "summary.json"), summary)
    _json_dump(os.path.join(folder, "report.json"), {"schema": "dl-driver/report/1", "start": start_ts,
                                                     "end": summary["end"], "num_ranks": dist.world,
                                                     "num_hosts": dist.num_hosts, "run_status": status})


def _amplification_note(cfg: Any, amplification: float) -> str:
    """Why more bytes were read than the samples hold: whole files for single samples, or (formats read by
    ranges) index, footer or header reads and samples read again."""
    from ..formats import FormatError, get_format

    fmt = cfg.dataset.format
    name = str(getattr(fmt, "value", fmt))
    try:
        whole_file = getattr(get_format(name), "whole_file", True)
    except FormatError:  # a format that went away since the run started: say the general cause
        whole_file = True
    if whole_file:
        why = (f"whole files were read for single samples ({cfg.dataset.num_samples_per_file} samples per "
               f"{name} file)")
    else:
        why = f"{name} is read by ranges: its index, footer or headers, or samples read more than once"
    return f"read amplification {amplification:.1f}x: {why}; see report.json"
