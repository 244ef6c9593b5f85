"""Helpers shared by the test_workloads_* tests."""

from __future__ import annotations

import warnings

from dlio_core.config import ConfigWarning, load_config


def small_cfg(tmp_path, *overrides):
    """The default workload on ``tmp_path/data`` shrunk to 4 train files, batch 4, no eval, no subfolders."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data",
                                       "++workload.dataset.num_files_train=4", "++workload.dataset.num_files_eval=0",
                                       "++workload.dataset.num_subfolders_train=0", "++workload.reader.batch_size=4",
                                       *overrides])
