"""The MLPerf Storage workflow (``dl-driver mlperf``): size, generate, run and report as mlpstorage v3 does.

- :mod:`~dlio_core.mlperf.models`: models and accelerators per mode, AU thresholds, the Llama 3 table.
- :mod:`~dlio_core.mlperf.datasize`: the rules' dataset-size formula and checkpointing GB per rank.
- :mod:`~dlio_core.mlperf.rules`: every override labelled CLOSED, OPEN or INVALID; checkpointing counts.
- :mod:`~dlio_core.mlperf.command`, :mod:`~dlio_core.mlperf.layout`, :mod:`~dlio_core.mlperf.execute`: the
  launch command, the results tree, running and recording each run.
- :mod:`~dlio_core.mlperf.checks`, :mod:`~dlio_core.mlperf.reportgen`: PASS/FAIL checks and the reports.
- :mod:`~dlio_core.mlperf.cli` (``main``) and :mod:`~dlio_core.mlperf.commands`: the command tree.

Example:
    >>> from dlio_core.config import load_config
    >>> from dlio_core.mlperf import training_datasize
    >>> training_datasize(load_config("cosmoflow_h100"), max_accelerators=16, client_host_memory_gb=64).num_files_train
    121478
"""

from __future__ import annotations

from .checks import Check, RunRecord, checkpoint_checks, training_checks
from .cli import main
from .datasize import CheckpointDatasize, TrainingDatasize, checkpoint_datasize, training_datasize
from .layout import find_run_folders, run_parent
from .models import ACCELERATORS, AU_THRESHOLD, LLAMA3, TRAINING_MODELS
from .reportgen import generate_reports
from .rules import Label, ParamLabel, RulesError, category, enforce, label_params

__all__ = [
    "main", "training_datasize", "checkpoint_datasize", "TrainingDatasize", "CheckpointDatasize",
    "label_params", "enforce", "category", "Label", "ParamLabel", "RulesError",
    "training_checks", "checkpoint_checks", "Check", "RunRecord", "generate_reports",
    "find_run_folders", "run_parent", "TRAINING_MODELS", "ACCELERATORS", "AU_THRESHOLD", "LLAMA3",
]
