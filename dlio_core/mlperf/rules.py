"""CLOSED / OPEN validation: every ``--params`` override labelled, and the checkpointing process counts.

Training overrides (rules §1.6, mlpstorage v3's ``TrainingRunRulesChecker``): the CLOSED list tunes the client
(threads, prefetch, folders, storage); the OPEN list also changes the framework, format and loader; anything
else is INVALID, and so is ``workflow.*`` (the workflow comes from the template) and ``reader.odirect`` on a
model other than unet3d. A closed run refuses an OPEN or INVALID override; open and whatif refuse an INVALID
one unless ``--allow-invalid-params``.

Checkpointing (v3 ``check_num_processes``): CLOSED runs exactly the full job (8, 64, 512, 1024 processes;
mlcommons/storage#841 removed the 8-process form of the large models); OPEN allows any multiple of TP x PP;
fewer processes than the full job run in subset mode (``checkpoint.mode=subset``, ``model.parallelism.data``
of the full job).

Example:
    >>> [(p.key, p.label.value) for p in label_params({"reader.read_threads": "8", "dataset.format": "npy",
    ...                                                "reader.batch_size": "2"}, "training", "unet3d")]
    [('reader.read_threads', 'CLOSED'), ('dataset.format', 'OPEN'), ('reader.batch_size', 'INVALID')]
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import RulesError
from .models import LLAMA3

__all__ = [
    "Label", "ParamLabel", "RulesError", "TRAINING_CLOSED_PARAMS", "TRAINING_OPEN_PARAMS", "CHECKPOINT_CLOSED_PARAMS",
    "label_params", "category", "enforce", "checkpoint_process_overrides", "check_checkpoint_counts",
]


class Label(str, enum.Enum):
    """Where an override leaves a run: CLOSED (allowed in closed), OPEN (open only), INVALID (neither)."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    INVALID = "INVALID"


TRAINING_CLOSED_PARAMS = (
    "dataset.num_files_train", "dataset.num_subfolders_train", "dataset.data_folder",
    "reader.read_threads", "reader.computation_threads", "reader.transfer_size", "reader.odirect",
    "reader.prefetch_size", "checkpoint.checkpoint_folder", "storage.storage_type", "storage.storage_root",
    "storage.storage_options.prefetch_window",
)
TRAINING_OPEN_PARAMS = ("framework", "dataset.format", "dataset.num_samples_per_file", "reader.data_loader")
# mlpstorage has no checkpointing allow-list (closed checkpointing takes no --params); the folder and the
# storage keys are the ones its own command line sets.
CHECKPOINT_CLOSED_PARAMS = ("checkpoint.checkpoint_folder", "storage.storage_type", "storage.storage_root")


@dataclass(frozen=True)
class ParamLabel:
    """One override and its label, with the reason when it is not CLOSED."""

    key: str
    value: Any
    label: Label
    reason: str = ""

    def line(self) -> str:
        return f"{self.label.value:8s}{self.key}={self.value}" + (f"  ({self.reason})" if self.reason else "")


def _bare(key: str) -> str:
    # --params accepts workload.x and ++workload.x as well as x.
    key = key.lstrip("+")
    return key[len("workload."):] if key.startswith("workload.") else key


def label_params(params: Mapping[str, Any], benchmark: str, model: str) -> list[ParamLabel]:
    """Label every user override of a ``training`` or ``checkpointing`` run."""
    out = []
    for raw, value in params.items():
        key = _bare(raw)
        if key.startswith("workflow."):
            out.append(ParamLabel(key, value, Label.INVALID, "the workflow comes from the workload template"))
        elif benchmark == "checkpointing":
            out.append(ParamLabel(key, value, Label.CLOSED) if key in CHECKPOINT_CLOSED_PARAMS else
                       ParamLabel(key, value, Label.INVALID, "not a checkpointing parameter the rules allow"))
        elif key == "reader.odirect" and model != "unet3d" and str(value).lower() not in ("false", "0"):
            out.append(ParamLabel(key, value, Label.INVALID, "reader.odirect is allowed for unet3d only"))
        elif key in TRAINING_CLOSED_PARAMS:
            out.append(ParamLabel(key, value, Label.CLOSED))
        elif key in TRAINING_OPEN_PARAMS:
            out.append(ParamLabel(key, value, Label.OPEN, "allowed in OPEN only"))
        else:
            out.append(ParamLabel(key, value, Label.INVALID, "not in the CLOSED or OPEN lists"))
    return out


def category(labels: list[ParamLabel]) -> Label:
    """The run's category: INVALID if any override is, else OPEN if any is, else CLOSED."""
    found = {p.label for p in labels}
    return Label.INVALID if Label.INVALID in found else Label.OPEN if Label.OPEN in found else Label.CLOSED


def enforce(mode: str, labels: list[ParamLabel], *, allow_invalid: bool = False) -> None:
    """Refuse (``RulesError``) what ``mode`` does not accept: closed takes CLOSED overrides only; open and
    whatif take OPEN ones and INVALID ones only with ``--allow-invalid-params``.

    >>> enforce("closed", label_params({"dataset.format": "npy"}, "training", "unet3d"))
    Traceback (most recent call last):
    ...
    dlio_core.mlperf.errors.RulesError: closed run refused: --params dataset.format=npy is OPEN (allowed in OPEN only); run it as 'open'
    """
    if allow_invalid and mode == "closed":
        raise RulesError("--allow-invalid-params is only allowed in open and whatif, not in closed")
    for p in labels:
        if p.label is Label.OPEN and mode == "closed":
            raise RulesError(f"closed run refused: --params {p.key}={p.value} is OPEN ({p.reason}); run it as 'open'")
        if p.label is Label.INVALID and not allow_invalid:
            fix = "" if mode == "closed" else "; --allow-invalid-params runs it anyway"
            raise RulesError(f"{mode} run refused: --params {p.key}={p.value} is INVALID ({p.reason}){fix}")


def checkpoint_process_overrides(model: str, num_processes: int) -> dict[str, Any]:
    """Subset mode below the full job: ``checkpoint.mode=subset`` and the full job's data parallelism.

    >>> checkpoint_process_overrides("llama3-405b", 8)
    {'checkpoint.mode': 'subset', 'model.parallelism.data': 2}
    >>> checkpoint_process_overrides("llama3-405b", 512)
    {}
    """
    m = LLAMA3[model]
    if num_processes < m.closed_processes:
        return {"checkpoint.mode": "subset", "model.parallelism.data": m.subset_data_parallelism}
    return {}


def check_checkpoint_counts(mode: str, model: str, num_processes: int, reads: int, writes: int, *,
                            allow_invalid: bool = False) -> Label:
    """Gate ``--num-processes`` and ``-ncr``/``-ncw`` for a checkpointing run; returns its category.

    CLOSED: the full job, 10 or 0 checkpoints each way and not both 0. OPEN: also any positive multiple of
    TP x PP. Anything else is INVALID (refused unless ``--allow-invalid-params`` outside closed).

    >>> check_checkpoint_counts("closed", "llama3-70b", 64, 10, 10).value
    'CLOSED'
    >>> check_checkpoint_counts("open", "llama3-70b", 32, 10, 10).value
    'OPEN'
    """
    m = LLAMA3[model]
    if num_processes < 1:
        raise RulesError(f"--num-processes must be at least 1, got {num_processes}")
    if reads < 0 or writes < 0:
        raise RulesError("-ncr/--num-checkpoints-read and -ncw/--num-checkpoints-write must be 0 or more")
    counts = " or ".join(str(c) for c in m.closed_counts)
    if mode == "closed":
        if num_processes not in m.closed_counts:
            raise RulesError(f"closed run refused by the process-count gate: --num-processes {num_processes} is "
                             f"not a CLOSED count for "
                             f"{model} ({counts})")
        for flag, value in (("-ncw/--num-checkpoints-write", writes), ("-ncr/--num-checkpoints-read", reads)):
            if value not in (0, 10):
                raise RulesError(f"closed run refused by the process-count gate: {flag} {value}; CLOSED writes "
                                 "and reads 10 (or 0 to split the write and read phases)")
        if reads == 0 and writes == 0:
            raise RulesError("closed run refused by the process-count gate: -ncr and -ncw cannot both be 0")
        return Label.CLOSED
    if num_processes in m.closed_counts and reads in (0, 10) and writes in (0, 10):
        return Label.CLOSED
    if num_processes in m.closed_counts or num_processes % m.gpus_per_dp == 0:
        return Label.OPEN
    if not allow_invalid:
        raise RulesError(f"{mode} run refused: --num-processes {num_processes} for {model} is neither a CLOSED "
                         f"count ({counts}) nor a multiple of TP x PP ({m.gpus_per_dp}); "
                         "--allow-invalid-params runs it anyway")
    return Label.INVALID
