"""The MLPerf Storage tables: models and accelerators per mode, AU thresholds, the Llama 3 checkpoint models.

Values are mlpstorage v3's (``mlpstorage_py/config.py``) and the rules' (``Rules.md``, ``editions.yaml``); see
``shared/reference/mlperf_storage.md`` §1 and §4.

Example:
    >>> training_workload("unet3d", "b200"), datagen_workload("retinanet"), LLAMA3["llama3-70b"].closed_processes
    ('unet3d_b200', 'retinanet_datagen', 64)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MODES", "TRAINING_MODELS", "ACCELERATORS", "AU_THRESHOLD", "LLAMA3", "LlamaModel", "STORAGE_KINDS",
    "training_workload", "datagen_workload", "checkpoint_workload",
]

#: ``dl-driver mlperf <mode>``: closed and open are submission categories, whatif explores beyond them.
MODES = ("closed", "open", "whatif")

#: Training models each mode accepts (v3: closed and open run unet3d and retinanet; whatif adds the rest).
TRAINING_MODELS = {
    "closed": ("unet3d", "retinanet"),
    "open": ("unet3d", "retinanet"),
    "whatif": ("unet3d", "retinanet", "cosmoflow", "resnet50", "dlrm", "flux"),
}

#: Emulated accelerators each mode accepts (v3: b200 and mi355 are CLOSED; h100 and a100 are whatif only).
ACCELERATORS = {
    "closed": ("b200", "mi355"),
    "open": ("b200", "mi355"),
    "whatif": ("b200", "mi355", "h100", "a100"),
}

#: ``file`` (POSIX paths) or ``object`` (S3), the storage positional of v3's datagen/run/configview.
STORAGE_KINDS = ("file", "object")

#: Minimum accelerator utilisation (%) each training workload must reach (rules §1.1, the templates' metric.au).
AU_THRESHOLD = {"unet3d": 90.0, "retinanet": 85.0, "resnet50": 90.0, "cosmoflow": 70.0, "flux": 90.0,
                "dlrm": 70.0}


@dataclass(frozen=True)
class LlamaModel:
    """One checkpointing model as mlpstorage sizes and gates it.

    ``gpus_per_dp`` is mlpstorage's "GPUs per data-parallel instance" (an OPEN run uses a multiple of it),
    ``model_parallel`` the workload's TP x PP, ``closed_processes`` the CLOSED process count, ``zero_stage`` the
    ZeRO level datasize assumes, and ``model_gb`` / ``optimizer_gb`` the sizes of ``LLM_SIZE_BY_RANK`` (GB, as
    mlpstorage prints them).

    >>> LLAMA3["llama3-1t"].subset_data_parallelism
    2
    """

    name: str
    zero_stage: int
    gpus_per_dp: int
    closed_processes: int
    model_gb: float
    optimizer_gb: float
    model_parallel: int
    subset_processes: int = 8

    @property
    def workload(self) -> str:
        """The bundled workload: ``llama3-8b`` -> ``llama3_8b``."""
        return self.name.replace("-", "_")

    @property
    def closed_counts(self) -> tuple[int, ...]:
        """Process counts a CLOSED run may use: the full job only (v3, Rules.md 4.6.1 and mlcommons/storage#841:
        the 8-process subset form is the 8B model's, whose full job is 8)."""
        return (self.closed_processes,)

    @property
    def subset_data_parallelism(self) -> int:
        """``model.parallelism.data`` of the full job (processes / TP x PP), set when a run writes a subset."""
        return self.closed_processes // self.model_parallel


# v3's LLM_ALLOWED_VALUES (ZeRO 1 for 405b and 1t, ZeRO 3 for 70b and 8b, the fix of v2's swap) and
# LLM_SIZE_BY_RANK; TP x PP from the rules' Table 2 (the bundled llama3_* workloads). mlpstorage derives the
# subset's data parallelism from its GPUs-per-instance figure, the same as TP x PP except for 8b (8 vs 1).
LLAMA3 = {
    m.name: m for m in (
        LlamaModel("llama3-8b", zero_stage=3, gpus_per_dp=8, closed_processes=8, model_gb=15, optimizer_gb=90,
                   model_parallel=1),
        LlamaModel("llama3-70b", zero_stage=3, gpus_per_dp=8, closed_processes=64, model_gb=130, optimizer_gb=781,
                   model_parallel=8),
        LlamaModel("llama3-405b", zero_stage=1, gpus_per_dp=8 * 32, closed_processes=512, model_gb=755,
                   optimizer_gb=4533, model_parallel=8 * 32),
        LlamaModel("llama3-1t", zero_stage=1, gpus_per_dp=8 * 64, closed_processes=1024, model_gb=2571,
                   optimizer_gb=15426, model_parallel=8 * 64),
    )
}


def training_workload(model: str, accelerator: str) -> str:
    """The bundled workload a training model runs on an accelerator: ``<model>_<accelerator>``."""
    return f"{model}_{accelerator}"


def datagen_workload(model: str) -> str:
    """The bundled workload that generates a model's dataset: ``<model>_datagen``."""
    return f"{model}_datagen"


def checkpoint_workload(model: str) -> str:
    """The bundled workload of a checkpointing model: ``llama3-70b`` -> ``llama3_70b``."""
    return LLAMA3[model].workload
