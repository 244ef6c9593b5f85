"""``datasize``: how big an MLPerf Storage dataset must be, and what each checkpointing rank writes.

Training (rules §3.1.2, mlpstorage v3's ``calculate_training_data_size``, in whole files rounded up):

- ``files_by_memory = ceil(5 x client memory / (samples_per_file x record_length))``: the dataset must be at
  least five times the clients' RAM, so the page cache cannot hold it. The memory is the larger of the
  declared (``--client-host-memory-in-gb x --num-client-hosts``, GiB) and the measured one (v3,
  mlcommons/storage#786).
- ``files_by_steps = ceil(500 x accelerators x batch_size / samples_per_file)``: every epoch runs at least 500
  steps.
- ``num_files_train = max(both)``. mlpstorage leaves ``num_subfolders_train`` at 0 and, past 10,000 files,
  suggests ``files / 10,000`` subfolders (:attr:`TrainingDatasize.suggested_subfolders`).

v3 rounds up where v2 (and the v2 README's worked examples, 2,557 and 121,477 files) rounded down; the
rounded-down counts fall short of the rule they size for (2,557 resnet50 files of 1,251 samples are 499.8
steps of 16 x 400), which the v3 submission checker rejects.

Checkpointing (mlpstorage v3's ``datasize``): with ZeRO 1 every rank writes its optimizer share and the
ranks of the first data-parallel instance (the first TP x PP ranks) also write a share of the model; with
ZeRO 3 every rank writes ``(model + optimizer) / N``.

Example (the rules' worked example, resnet50 on 16 H100 with one 64 GB client):
    >>> from dlio_core.config import load_config
    >>> size = training_datasize(load_config("resnet50_h100"), max_accelerators=16, client_host_memory_gb=64)
    >>> size.files_by_memory, size.files_by_steps, size.num_files_train
    (2396, 2558, 2558)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .models import LLAMA3

__all__ = ["TrainingDatasize", "CheckpointDatasize", "training_datasize", "checkpoint_datasize",
           "MIN_STEPS_PER_EPOCH", "MEMORY_MULTIPLIER", "FILES_PER_SUBFOLDER"]

MIN_STEPS_PER_EPOCH = 500
MEMORY_MULTIPLIER = 5
FILES_PER_SUBFOLDER = 10_000
GIB = 1024**3


@dataclass(frozen=True)
class TrainingDatasize:
    """The minimum training dataset for a configuration, with both terms of the formula.

    ``memory_bytes`` is the memory the formula used: ``max(declared_memory_bytes, measured_memory_bytes)``.
    """

    max_accelerators: int
    batch_size: int
    samples_per_file: int
    record_length_bytes: float
    declared_memory_bytes: int
    measured_memory_bytes: int | None
    files_by_memory: int
    files_by_steps: int

    @property
    def memory_bytes(self) -> int:
        return max(self.declared_memory_bytes, self.measured_memory_bytes or 0)

    @property
    def num_files_train(self) -> int:
        return max(self.files_by_memory, self.files_by_steps)

    @property
    def num_files_train_v2(self) -> int:
        """mlpstorage v2.0's count (its README's worked examples): each term rounded down, so it can fall a
        file short of the rule it sizes for (2,557 for resnet50 on 16 h100 and 64 GiB, where v3 gives 2,558)."""
        by_memory = MEMORY_MULTIPLIER * self.memory_bytes // self.file_bytes
        by_steps = MIN_STEPS_PER_EPOCH * self.max_accelerators * self.batch_size // self.samples_per_file
        return int(max(by_memory, by_steps))

    @property
    def num_subfolders_train(self) -> int:
        """0: mlpstorage's datasize leaves the files in one folder (and suggests subfolders past 10,000)."""
        return 0

    @property
    def suggested_subfolders(self) -> int:
        """About 10,000 files per folder past 10,000 files (mlpstorage's warning), else 0."""
        files = self.num_files_train
        return files // FILES_PER_SUBFOLDER if files > FILES_PER_SUBFOLDER else 0

    @property
    def file_bytes(self) -> float:
        return self.samples_per_file * self.record_length_bytes

    @property
    def total_disk_bytes(self) -> int:
        return int(self.num_files_train * self.file_bytes)

    @property
    def decided_by(self) -> str:
        """Which rule sets the size: ``memory`` (5x client RAM) or ``steps`` (500 steps per epoch)."""
        return "memory" if self.files_by_memory > self.files_by_steps else "steps"

    def describe(self) -> list[str]:
        """Human-readable lines: both terms, the result, subfolders and bytes."""
        measured = ("not measured (remote hosts)" if self.measured_memory_bytes is None
                    else f"{self.measured_memory_bytes / GIB:,.2f} GiB measured")
        rule = "5x client memory" if self.decided_by == "memory" else f"{MIN_STEPS_PER_EPOCH} steps per epoch"
        return [
            f"client memory: {self.declared_memory_bytes / GIB:,.2f} GiB declared, {measured}; "
            f"using {self.memory_bytes / GIB:,.2f} GiB",
            f"files for {MEMORY_MULTIPLIER}x memory: {self.files_by_memory:,} "
            f"({MEMORY_MULTIPLIER} x {self.memory_bytes:,} B / {self.file_bytes:,.2f} B per file)",
            f"files for {MIN_STEPS_PER_EPOCH} steps: {self.files_by_steps:,} ({MIN_STEPS_PER_EPOCH} x "
            f"{self.max_accelerators} accelerators x batch {self.batch_size} / {self.samples_per_file} per file)",
            f"num_files_train: {self.num_files_train:,} (set by {rule})" + (
                f"; mlpstorage v2.0 rounds down to {self.num_files_train_v2:,}, which falls short of it"
                if self.num_files_train_v2 != self.num_files_train else ""),
            f"num_subfolders_train: {self.num_subfolders_train}" + (
                f" (past 10,000 files, consider --params dataset.num_subfolders_train={self.suggested_subfolders}"
                " for datagen and every run)" if self.suggested_subfolders else ""),
            f"total disk: {self.total_disk_bytes:,} bytes ({self.total_disk_bytes / GIB:,.2f} GiB)",
        ]


def training_datasize(cfg: Any, *, max_accelerators: int, client_host_memory_gb: float, num_client_hosts: int = 1,
                      measured_memory_bytes: int | None = None) -> TrainingDatasize:
    """The rules' minimum dataset for ``cfg`` (a ``RunConfig``) on ``max_accelerators`` emulated accelerators.

    Args:
        cfg: the workload (its ``dataset.num_samples_per_file``, ``record_length_bytes``, ``reader.batch_size``).
        max_accelerators: the most accelerators any run on this dataset will emulate.
        client_host_memory_gb: declared memory per client host, GiB (the rules' "GB").
        num_client_hosts: client hosts.
        measured_memory_bytes: the clients' measured memory, summed; ``None`` when it could not be measured.

    >>> from dlio_core.config import load_config
    >>> training_datasize(load_config("unet3d_h100"), max_accelerators=4, client_host_memory_gb=64).num_files_train
    14000
    >>> training_datasize(load_config("cosmoflow_h100"), max_accelerators=16, client_host_memory_gb=64).num_files_train
    121478
    """
    if max_accelerators < 1:
        raise ValueError(f"--max-accelerators must be at least 1, got {max_accelerators}")
    if client_host_memory_gb <= 0 or num_client_hosts < 1:
        raise ValueError("--client-host-memory-in-gb must be positive and --num-client-hosts at least 1")
    spf = int(cfg.dataset.num_samples_per_file)
    record = cfg.dataset.record_length_bytes
    batch = int(cfg.reader.batch_size)
    declared = int(client_host_memory_gb * GIB) * num_client_hosts
    memory = max(declared, measured_memory_bytes or 0)
    files_by_memory = math.ceil(MEMORY_MULTIPLIER * memory / (spf * record))
    files_by_steps = math.ceil(MIN_STEPS_PER_EPOCH * max_accelerators * batch / spf)
    return TrainingDatasize(max_accelerators=max_accelerators, batch_size=batch, samples_per_file=spf,
                            record_length_bytes=record, declared_memory_bytes=declared,
                            measured_memory_bytes=measured_memory_bytes, files_by_memory=files_by_memory,
                            files_by_steps=files_by_steps)


@dataclass(frozen=True)
class CheckpointDatasize:
    """GB each rank writes per checkpoint (mlpstorage's table), and dl-driver's exact total when known."""

    model: str
    num_processes: int
    zero_stage: int
    rank_gb: tuple[float, ...]
    exact_total_bytes: int | None = None

    @property
    def total_gb(self) -> float:
        return sum(self.rank_gb)

    def describe(self) -> list[str]:
        """The ranks that write a model share, the others (each group identical), the total, and the exact
        DLIO sizing when computed."""
        n = self.num_processes
        lines = [f"{self.model}: ZeRO {self.zero_stage}, {n} processes, GB written per rank per checkpoint:"]
        if self.zero_stage == 1:
            first = min(n, LLAMA3[self.model].gpus_per_dp)
            share = f"model / {LLAMA3[self.model].gpus_per_dp} + optimizer / {n}"
            lines.append(f"  ranks 0-{first - 1}: {self.rank_gb[0]:,.2f} GB each ({share})")
            if n > first:
                lines.append(f"  ranks {first}-{n - 1}: {self.rank_gb[first]:,.2f} GB each (optimizer / {n})")
        else:
            lines.append(f"  every rank: {self.rank_gb[0]:,.2f} GB ((model + optimizer) / {n})")
        lines.append(f"  all ranks: {self.total_gb:,.2f} GB")
        if self.exact_total_bytes is not None:
            lines.append(f"  dl-driver writes {self.exact_total_bytes:,} bytes per checkpoint "
                         f"({self.exact_total_bytes / GIB:,.2f} GiB, DLIO's Llama sizing)")
        return lines


def checkpoint_datasize(model: str, num_processes: int, *, exact_total_bytes: int | None = None) -> CheckpointDatasize:
    """Per-rank GB for ``model`` on ``num_processes`` ranks, by the ZeRO rule mlpstorage v3 applies.

    >>> [round(g, 3) for g in checkpoint_datasize("llama3-405b", 512).rank_gb[255:257]]
    [11.803, 8.854]
    >>> round(checkpoint_datasize("llama3-8b", 8).total_gb)
    105
    """
    if num_processes < 1:
        raise ValueError(f"--num-processes must be at least 1, got {num_processes}")
    m = LLAMA3[model]
    if m.zero_stage == 1:  # the first data-parallel instance shares the model; everyone its optimizer part
        share = m.optimizer_gb / num_processes
        ranks = tuple(share + (m.model_gb / m.gpus_per_dp if r < m.gpus_per_dp else 0.0)
                      for r in range(num_processes))
    else:
        ranks = ((m.model_gb + m.optimizer_gb) / num_processes,) * num_processes
    return CheckpointDatasize(model=model, num_processes=num_processes, zero_stage=m.zero_stage, rank_gb=ranks,
                              exact_total_bytes=exact_total_bytes)
