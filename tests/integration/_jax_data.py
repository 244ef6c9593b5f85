"""Small npy datasets whose samples say where they came from: ``x[0, 0] = file``, ``x[0, 1] = sample``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_labelled_npy(folder: Path, files: int, spf: int, split: str = "train") -> None:
    d = folder / split
    d.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        x = np.zeros((4, 4, spf), np.uint8)
        x[0, 0, :] = f
        x[0, 1, :] = np.arange(spf)
        np.save(os.path.join(d, f"img_{f}_of_{files}.npy"), x)


def overrides(folder: Path, files: int, spf: int, batch: int, *extra: str) -> list[str]:
    return [f"++workload.dataset.data_folder={folder}", "++workload.dataset.format=npy",
            f"++workload.dataset.num_files_train={files}", f"++workload.dataset.num_samples_per_file={spf}",
            "++workload.dataset.num_subfolders_train=0", "++workload.dataset.num_files_eval=0",
            f"++workload.reader.batch_size={batch}", "++workload.workflow.generate_data=False", *extra]


def ids(batch) -> list[tuple[int, int]]:
    """(file, sample) of every sample of a batch shaped (B, 4, 4) (or (B, 4, 4, 1): whole npy files)."""
    a = np.asarray(batch)
    n = len(a)
    return list(zip(a[:, 0, 0].reshape(n, -1)[:, 0].tolist(), a[:, 0, 1].reshape(n, -1)[:, 0].tolist()))
