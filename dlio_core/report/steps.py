"""``{rank}_steps.npz``: every step this rank ran, written by the rank itself at the end of the run.

Rank 0 no longer receives per-step records (``rank_summary.py``), so the HTML report's per-step figures
(timeline, bytes over time, the slowest rank per step) read one small file per rank instead. Each file
holds one row per step, training and evaluation, as columns (a few dozen bytes a step, no pickle):

- ``epoch``, ``phase`` (0 train, 1 eval), ``step`` (1-based within the phase);
- ``start_s``, ``end_s``: ``time.perf_counter`` seconds; ``wall_offset_s`` turns them into wall-clock
  time (``time.time() - time.perf_counter()`` when written), so ranks on synchronised hosts line up;
- ``wait_s``, ``io_s``, ``decode_s``, ``h2d_s``, ``compute_s``, ``barrier_s``, ``checkpoint_s``
  (NaN where the loader cannot see the stage), ``samples``, ``bytes_read``;
- this rank's checkpoints: ``ckpt_kind`` (0 save, 1 load), ``ckpt_index``, ``ckpt_rank_bytes``,
  ``ckpt_rank_duration_s``.

Example:
    >>> import tempfile
    >>> from types import SimpleNamespace
    >>> from dlio_core.metrics import PhaseRecord
    >>> rec = PhaseRecord(batch_size=1)
    >>> rec.add_step(start=1.0, wait=0.5, compute=0.5, barrier=0.0, end=2.0, samples=1, bytes_read=10,
    ...              io_s=0.4, decode_s=None)
    >>> folder = tempfile.mkdtemp()
    >>> write_steps(folder, 0, [SimpleNamespace(epoch=1, train=rec, eval=None)])
    >>> table = read_steps(f"{folder}/0_steps.npz")
    >>> table["bytes_read"].tolist(), bool(np.isnan(table["decode_s"][0]))
    ([10], True)
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np

__all__ = ["write_steps", "read_steps", "STEP_COLUMNS", "steps_file"]

# Stage columns in the order the report stacks them.
STEP_COLUMNS = ("wait_s", "io_s", "decode_s", "h2d_s", "compute_s", "barrier_s")
_FROM_RECORD = {"wait_s": "wait", "io_s": "io", "decode_s": "decode", "h2d_s": "h2d", "compute_s": "compute",
                "barrier_s": "barrier", "checkpoint_s": "checkpoint"}


def steps_file(folder: str, rank: int) -> str:
    """The path of ``rank``'s step file in ``folder``."""
    return os.path.join(folder, f"{rank}_steps.npz")


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def write_steps(folder: str, rank: int, epochs: Sequence[Any], checkpoint_records: Sequence[Any] = ()) -> None:
    """Write this rank's ``{rank}_steps.npz`` from its epoch records (no collective)."""
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("epoch", "phase", "step", "start_s", "end_s",
                                                            "samples", "bytes_read", *_FROM_RECORD)}
    for rec in epochs:
        for phase, record in ((0, rec.train), (1, rec.eval)):
            if record is None or record.steps == 0:
                continue
            n = record.steps
            columns["epoch"].append(np.full(n, rec.epoch, dtype=np.int32))
            columns["phase"].append(np.full(n, phase, dtype=np.int8))
            columns["step"].append(np.arange(1, n + 1, dtype=np.int32))
            columns["start_s"].append(np.asarray(record.start, dtype=np.float64))
            columns["end_s"].append(np.asarray(record.end, dtype=np.float64))
            columns["samples"].append(np.asarray(record.samples, dtype=np.int64))
            columns["bytes_read"].append(np.asarray(record.bytes_read, dtype=np.int64))
            for name, attr in _FROM_RECORD.items():
                columns[name].append(_floats(getattr(record, attr)))
    dtypes = {"epoch": np.int32, "phase": np.int8, "step": np.int32, "samples": np.int64, "bytes_read": np.int64}
    arrays = {k: (np.concatenate(v) if v else np.zeros(0, dtype=dtypes.get(k, np.float64))) for k, v in columns.items()}
    records = list(checkpoint_records)
    arrays["ckpt_kind"] = np.asarray([0 if r.kind == "save" else 1 for r in records], dtype=np.int8)
    arrays["ckpt_index"] = np.asarray([r.index for r in records], dtype=np.int32)
    arrays["ckpt_rank_bytes"] = np.asarray([r.rank_bytes for r in records], dtype=np.int64)
    arrays["ckpt_rank_duration_s"] = np.asarray([r.rank_duration_s for r in records], dtype=np.float64)
    arrays["rank"] = np.asarray(rank, dtype=np.int32)
    arrays["wall_offset_s"] = np.asarray(time.time() - time.perf_counter(), dtype=np.float64)
    os.makedirs(folder, exist_ok=True)
    path = steps_file(folder, rank)
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def read_steps(path: str) -> dict[str, np.ndarray]:
    """The columns of one step file (see the module docstring); scalars come back as 0-d arrays."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
