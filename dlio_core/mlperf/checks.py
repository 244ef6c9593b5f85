"""reportgen's checks: a set of runs against the rules, each check PASS or FAIL with its reason.

Training (a ``.../training/<model>/run/`` folder): six runs (the first is the warm-up, the five after it are
measured), all complete, consecutive (each gap shorter than a run), the same configuration, every measured
run at or above the workload's AU threshold, the dataset at least 5x the clients' memory (the larger of
declared and measured) and at least 500 steps per epoch. Checkpointing (``.../checkpointing/<model>/``): one
or two run folders holding the write and the read phase, the read started within 30 s of the write's end, and
a CLOSED process count.

Example:
    >>> run = RunRecord(path="r1", model="unet3d", summary={"metric": {"train_au_mean_percentage": 91.0}})
    >>> run.au, au_threshold(run)
    (91.0, 90.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from statistics import mean, pstdev
from typing import Any, Sequence

from .datasize import MEMORY_MULTIPLIER, MIN_STEPS_PER_EPOCH
from .models import AU_THRESHOLD, LLAMA3

__all__ = ["Check", "RunRecord", "au_threshold", "training_checks", "training_means", "checkpoint_checks",
           "checkpoint_means", "MEASURED_RUNS", "READ_AFTER_WRITE_S"]

GIB = 1024**3
MEASURED_RUNS = 5
READ_AFTER_WRITE_S = 30.0


@dataclass(frozen=True)
class Check:
    """One rule applied to a set of runs."""

    name: str
    passed: bool
    reason: str

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reason": self.reason}


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None


@dataclass
class RunRecord:
    """What one run folder holds: DLIO's ``summary.json``, the run metadata, the resolved workload config."""

    path: str
    model: str
    summary: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> float | None:
        value = (self.summary.get("metric") or {}).get(name, self.summary.get(name))
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def au(self) -> float | None:
        return self.metric("train_au_mean_percentage")

    @property
    def start(self) -> datetime | None:
        return _time(self.summary.get("start") or self.metadata.get("start"))

    @property
    def end(self) -> datetime | None:
        return _time(self.summary.get("end") or self.metadata.get("end"))

    @property
    def duration_s(self) -> float | None:
        return (self.end - self.start).total_seconds() if self.start and self.end else None

    @property
    def num_accelerators(self) -> int:
        return int(self.summary.get("num_accelerators") or self.metadata.get("num_processes") or 0)

    def _section(self, name: str) -> dict[str, Any]:
        return self.config.get(name) or {}

    @property
    def dataset_bytes(self) -> float:
        ds = self._section("dataset")
        files = self.summary.get("num_files_train", ds.get("num_files_train", 0))
        spf = self.summary.get("num_samples_per_file", ds.get("num_samples_per_file", 1))
        return float(files) * float(spf) * float(ds.get("record_length_bytes", 0))

    @property
    def memory_bytes(self) -> tuple[int, int]:
        """(declared, measured) client memory: the run's flags, and DLIO's ``host_memory_GB`` summed."""
        cluster = self.metadata.get("cluster_information") or {}
        args = self.metadata.get("args") or {}
        per_host = cluster.get("client_host_memory_in_gb") or args.get("client_host_memory_in_gb") or 0
        hosts = cluster.get("num_client_hosts") or args.get("num_client_hosts") or 1
        measured = sum(float(x) for x in self.summary.get("host_memory_GB") or [] if isinstance(x, (int, float)))
        return int(float(per_host) * GIB * int(hosts)), int(measured * GIB)

    def steps_per_epoch(self) -> int:
        ds, reader = self._section("dataset"), self._section("reader")
        samples = int(self.summary.get("num_files_train", ds.get("num_files_train", 0))) * int(
            self.summary.get("num_samples_per_file", ds.get("num_samples_per_file", 1)))
        return samples // max(1, int(reader.get("batch_size", 1)) * max(1, self.num_accelerators))


def au_threshold(run: RunRecord) -> float:
    """The AU (%) a run must reach: the rules' figure for its model, else its template's ``metric.au``."""
    if run.model in AU_THRESHOLD:
        return AU_THRESHOLD[run.model]
    return float((run.config.get("metric") or {}).get("au", 0.9)) * 100


def _names(runs: Sequence[RunRecord]) -> str:
    return ", ".join(r.path.rstrip("/").rsplit("/", 1)[-1] for r in runs)


def _count(runs: Sequence[RunRecord]) -> Check:
    n, need = len(runs), MEASURED_RUNS + 1
    if n == need:
        return Check("runs", True, f"{n} runs: the warm-up {_names(runs[:1])} and {MEASURED_RUNS} measured")
    return Check("runs", False, f"{n} run(s); a result needs exactly {need} consecutive runs "
                                f"(1 warm-up + {MEASURED_RUNS} measured)")


def _consecutive(runs: Sequence[RunRecord]) -> Check:
    for a, b in zip(runs, runs[1:]):
        if not (a.end and b.start and a.duration_s and b.duration_s):
            return Check("consecutive", False, f"{_names([a, b])}: start or end time missing")
        gap = (b.start - a.end).total_seconds()
        shortest = min(a.duration_s, b.duration_s)
        if gap < 0 or gap >= shortest:
            return Check("consecutive", False, f"gap of {gap:.1f} s between {_names([a, b])} is not shorter than "
                                               f"a run ({shortest:.1f} s)")
    return Check("consecutive", True, "each gap between runs is shorter than a run")


def _same_config(runs: Sequence[RunRecord]) -> Check:
    keys = {(r.num_accelerators, r.summary.get("num_files_train"), r.summary.get("num_samples_per_file"),
             (r.metadata.get("args") or {}).get("accelerator_type")) for r in runs}
    if len(keys) <= 1:
        return Check("same_configuration", True, "same accelerators, accelerator type and files in every run")
    return Check("same_configuration", False, f"runs differ in (accelerators, files, samples per file, "
                                              f"accelerator type): {sorted(keys, key=str)}")


def training_checks(runs: Sequence[RunRecord]) -> list[Check]:
    """The rules applied to the runs of one ``run/`` folder, in time order."""
    runs = sorted(runs, key=lambda r: r.start or datetime.min)
    checks = [_count(runs)]
    incomplete = [r for r in runs if r.au is None]
    checks.append(Check("completed", not incomplete and bool(runs),
                        f"no training metrics in {_names(incomplete)}" if incomplete else
                        "every run has DLIO's training metrics" if runs else "no runs"))
    checks += [_consecutive(runs), _same_config(runs)]
    measured = [r for r in runs[1:] if r.au is not None]
    if not measured:
        return checks + [Check("au", False, "no measured run after the warm-up")]
    low = [r for r in measured if r.au < au_threshold(r)]
    limit = au_threshold(measured[0])
    checks.append(Check("au", not low, f"AU below {limit:g}% in {_names(low)} "
                                       f"({', '.join(f'{r.au:.2f}%' for r in low)})" if low else
                        f"every measured run at or above {limit:g}% AU"))
    run = measured[0]
    declared, found = run.memory_bytes
    memory = max(declared, found)
    need = MEMORY_MULTIPLIER * memory
    checks.append(Check("dataset_5x_memory", run.dataset_bytes >= need > 0,
                        f"dataset {run.dataset_bytes / GIB:,.3f} GiB vs {MEMORY_MULTIPLIER} x {memory / GIB:,.2f} GiB "
                        f"client memory (declared {declared / GIB:,.2f}, measured {found / GIB:,.2f}) "
                        f"= {need / GIB:,.2f} GiB"))
    steps = run.steps_per_epoch()
    checks.append(Check("steps_per_epoch", steps >= MIN_STEPS_PER_EPOCH,
                        f"{steps:,} steps per epoch for {run.num_accelerators} accelerator(s); "
                        f"the rules ask at least {MIN_STEPS_PER_EPOCH}"))
    return checks


_TRAINING_METRICS = ("train_au_mean_percentage", "train_throughput_mean_samples_per_second",
                     "train_io_mean_MB_per_second")


def training_means(runs: Sequence[RunRecord]) -> dict[str, Any]:
    """Means (and population stdev) of the measured runs (all but the first), plus Read B/W in GiB/s."""
    runs = sorted(runs, key=lambda r: r.start or datetime.min)
    measured = [r for r in runs[1:] if r.au is not None]
    out: dict[str, Any] = {"measured_runs": [r.path for r in measured], "warmup_run": runs[0].path if runs else None}
    for name in _TRAINING_METRICS:
        values = [v for v in (r.metric(name) for r in measured) if v is not None]
        out[f"train_mean_of_{name}"] = mean(values) if values else None
        out[f"train_stdev_of_{name}"] = pstdev(values) if values else None
    io = out["train_mean_of_train_io_mean_MB_per_second"]
    out["read_bandwidth_GiB_per_second"] = None if io is None else io / 1024
    return out


def checkpoint_checks(runs: Sequence[RunRecord]) -> list[Check]:
    """The checkpointing rules applied to the run folders of one model."""
    runs = sorted(runs, key=lambda r: r.start or datetime.min)
    checks = [Check("runs", 1 <= len(runs) <= 2, f"{len(runs)} run folder(s); a result has one (write and read) "
                                                  "or two (the write phase, then the read phase)")]
    writes = [r for r in runs if r.metric("save_checkpoint_io_mean_GB_per_second") is not None]
    reads = [r for r in runs if r.metric("load_checkpoint_io_mean_GB_per_second") is not None]
    missing = [p for p, found in (("write", writes), ("read", reads)) if not found]
    checks.append(Check("phases", not missing, f"no {' or '.join(missing)} phase measured" if missing else
                        "write and read phases measured"))
    if writes and reads and writes[0] is not reads[0]:
        w, r = writes[0], reads[0]
        gap = (r.start - w.end).total_seconds() if r.start and w.end else None
        checks.append(Check("read_after_write", gap is not None and 0 <= gap <= READ_AFTER_WRITE_S,
                            f"read started {gap:.1f} s after the write ended (at most {READ_AFTER_WRITE_S:g} s)"
                            if gap is not None else "start or end time missing"))
    model = LLAMA3.get(runs[0].model) if runs else None
    if model is not None:
        n = runs[0].num_accelerators
        counts = " or ".join(map(str, model.closed_counts))
        checks.append(Check("num_processes", n in model.closed_counts,
                            f"{n} processes; CLOSED runs {model.name} on {counts}"))
    return checks


def checkpoint_means(runs: Sequence[RunRecord]) -> dict[str, Any]:
    """Write / read GiB/s and seconds: the means over the folders holding each phase (v3's table)."""
    out: dict[str, Any] = {}
    for kind, label in (("save", "write"), ("load", "read")):
        for metric, name in ((f"{kind}_checkpoint_io_mean_GB_per_second", f"{label}_bandwidth_GiB_per_second"),
                             (f"{kind}_checkpoint_duration_mean_seconds", f"{label}_duration_seconds")):
            values = [v for v in (r.metric(metric) for r in runs) if v is not None]
            out[name] = mean(values) if values else None
    sizes = [r.metric("checkpoint_size_GB") for r in runs if r.metric("checkpoint_size_GB") is not None]
    out["checkpoint_size_GiB"] = sizes[0] if sizes else None
    return out
