"""Synthetic output folders for the report tests: dl-driver's (step files, report.json, checkpoints) and
DLIO's own files (summary.json, {rank}_output.json, {rank}_per_epoch_stats.json), with known figures."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import yaml

from dlio_core.metrics import PhaseRecord
from dlio_core.report.steps import write_steps

STEPS, EPOCHS, BATCH, SAMPLE_BYTES = 6, 2, 2, 1000


def _config(au: float = 0.9, threads: int = 1) -> dict:
    return {"workload": {"model": {"name": "unet3d"}, "dataset": {"format": "npz", "data_folder": "/data"},
                         "reader": {"data_loader": "pytorch", "read_threads": threads},
                         "storage": {"storage_type": "local_fs"}, "metric": {"au": au},
                         "workflow": {"checkpoint": True}, "checkpoint": {"checkpoint_mechanism": "raw"}}}


def _summary(ranks: int, au: list[float], rate: list[float]) -> dict:
    metric = {"train_au_percentage": au, "train_au_mean_percentage": sum(au) / len(au),
              "train_au_stdev_percentage": 0.0, "train_au_meet_expectation": "success" if min(au) >= 90 else "fail",
              "train_throughput_samples_per_second": rate,
              "train_throughput_mean_samples_per_second": sum(rate) / len(rate),
              "train_io_mean_MB_per_second": sum(rate) / len(rate) * SAMPLE_BYTES / 2**20,
              "save_checkpoint_io_mean_GB_per_second": 1.5, "load_checkpoint_io_mean_GB_per_second": 3.0}
    return {"start": "2026-01-01T00:00:00", "end": "2026-01-01T00:01:00", "num_accelerators": ranks,
            "num_hosts": 1, "metric": metric, "num_files_train": 24, "num_files_eval": 0, "num_samples_per_file": 1,
            "epochs": len(au), "run_status": {"status": "complete"}}


def _record(rank: int, epoch: int, slow: float = 0.0) -> PhaseRecord:
    rec = PhaseRecord(batch_size=BATCH)
    t = 100.0 * epoch
    for i in range(STEPS):
        wait = 0.002 + 0.001 * i + (slow if i == 3 else 0.0)
        compute = 0.010
        barrier = 0.001
        rec.add_step(start=t, wait=wait, compute=compute, barrier=barrier, end=t + wait + compute + barrier,
                     samples=BATCH, bytes_read=BATCH * SAMPLE_BYTES, io_s=wait / 2, decode_s=wait / 4,
                     sample_bytes=BATCH * SAMPLE_BYTES)
        t += wait + compute + barrier
    return rec


def ckpt_record(kind: str, index: int, rank_bytes: int, seconds: float) -> SimpleNamespace:
    return SimpleNamespace(kind=kind, index=index, rank_bytes=rank_bytes, rank_duration_s=seconds)


def dl_driver_folder(path: Path, *, ranks: int = 2, au: float = 0.9, threads: int = 1, rate_scale: float = 1.0) -> Path:
    """A dl-driver folder of ``ranks`` ranks, two epochs of six steps, two saves and a load."""
    path.mkdir(parents=True, exist_ok=True)
    for rank in range(ranks):
        epochs = [SimpleNamespace(epoch=e, train=_record(rank, e, slow=0.01 * rank), eval=None)
                  for e in range(1, EPOCHS + 1)]
        records = [ckpt_record("save", 1, 2**30, 1.0 + rank), ckpt_record("save", 2, 2**30, 0.8),
                   ckpt_record("load", 1, 2**30, 0.5)]
        write_steps(str(path), rank, epochs, records)
        (path / f"{rank}_output.json").write_text("{}")
    summary = _summary(ranks, [95.0, 92.0], [100.0 * rate_scale, 110.0 * rate_scale])
    (path / "summary.json").write_text(json.dumps(summary))
    records = [{"kind": k, "index": i, "bytes": ranks * 2**30, "files": 2 * ranks, "duration_s": d,
                "throughput_GiB_per_s": ranks / d} for k, i, d in (("save", 1, 1.0), ("save", 2, 0.8), ("load", 1, 0.5))]
    report = {"schema": "dl-driver/report/1", "data_loader": "pytorch", "run_status": {"status": "complete"},
              "train": {"stages": {"wait": {"count": 24, "mean_s": 0.004, "p50_s": 0.004, "p95_s": 0.007,
                                            "p99_s": 0.008, "max_s": 0.02}}},
              "provenance": {"workload": "unet3d_h100", "storage_type": "local_fs"},
              "checkpoint": {"records": records}, "warnings": ["a warning"]}
    (path / "report.json").write_text(json.dumps(report))
    (path / ".hydra").mkdir(exist_ok=True)
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(_config(au, threads)))
    (path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"++workload.reader.read_threads={threads}"]))
    return path


def dlio_folder(path: Path, *, ranks: int = 2) -> Path:
    """DLIO's own files: per-step lists in {rank}_output.json, checkpoints in {rank}_per_epoch_stats.json."""
    path.mkdir(parents=True, exist_ok=True)
    for rank in range(ranks):
        output: dict = {"hostname": "h"}
        stats: dict = {}
        for e in range(1, EPOCHS + 1):
            rec = _record(rank, e, slow=0.005 * rank)
            output[str(e)] = {"load": {"block1": rec.wait[:3], "block2": rec.wait[3:]},
                              "proc": {"block1": rec.proc()[:3], "block2": rec.proc()[3:]},
                              "compute": {"block1": rec.compute[:3], "block2": rec.compute[3:]},
                              "au": {"block1": 90.0}, "throughput": {"block1": 50.0}}
            stats[str(e)] = {"start": "s", "end": "e", "duration": "1.00",
                             "save_ckpt1": {"start": "s", "end": "e", "duration": 0.5, "throughput": 2.0 + rank}}
        (path / f"{rank}_output.json").write_text(json.dumps(output))
        (path / f"{rank}_per_epoch_stats.json").write_text(json.dumps(stats))
    (path / "summary.json").write_text(json.dumps(_summary(ranks, [91.0, 93.0], [100.0, 105.0])))
    (path / ".hydra").mkdir(exist_ok=True)
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(_config()))
    return path
