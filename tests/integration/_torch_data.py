"""Small datasets for the dlio_torch tests: every sample holds its own global id, so order and cover
can be checked exactly."""

from __future__ import annotations

import numpy as np

from dlio_core.formats import get_format
from dlio_core.storage import open_storage


def write_id_dataset(root: str, num_files: int, samples_per_file: int, fmt: str = "npy") -> None:
    """``f{i:03d}.{fmt}`` whose sample ``j`` is the int64 array ``[[i * spf + j]]``."""
    st, f = open_storage(root), get_format(fmt)
    for i in range(num_files):
        ids = np.arange(i * samples_per_file, (i + 1) * samples_per_file, dtype=np.int64)
        f.write_file(st, f"f{i:03d}.{f.extension}", ids.reshape(1, samples_per_file))


def ids_of(batch) -> list[int]:
    """Global sample ids in a batch tensor (shape ``(B, 1)``) or a single sample (shape ``(1,)``)."""
    return [int(v) for v in batch.reshape(-1).tolist()]
