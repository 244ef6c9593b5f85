"""Checkpoints as DLIO sizes and names them, written and read by a plain (framework-free) writer.

- :mod:`~dlio_core.checkpoint.state`: what each rank writes (``CheckpointPlan``: names and bytes, by DLIO's
  CNN and Llama/ZeRO/TP/PP rules), pure arithmetic.
- :mod:`~dlio_core.checkpoint.engine`: ``CheckpointEngine`` -- cadence (``due_after_step``,
  ``due_after_epoch``), collective timed ``save``/``load``, checkpoint-only mode, DLIO's summary figures.
- :mod:`~dlio_core.checkpoint.records`: ``CheckpointRecord`` and the DLIO summary / per-epoch entries.
- :mod:`~dlio_core.checkpoint.content` and :mod:`~dlio_core.checkpoint.transfer`: incompressible chunks,
  streamed atomic writes, reads into a reused buffer, the page-cache drop.
- :mod:`~dlio_core.checkpoint.mechanisms`: ``checkpoint.checkpoint_mechanism`` (``raw``, ``stream`` -- DLIO's
  ``pt_save`` as the MLCommons fork means it --, ``torch_save``, ``dcp``, ``tf_save``, ``orbax``), each in its own
  module (``streams``, ``fw_torch``, ``fw_tf``, ``fw_orbax``; frameworks imported only when chosen), with
  :mod:`~dlio_core.checkpoint.tensors` (DLIO's tensors per file), :mod:`~dlio_core.checkpoint.codec` (zstd),
  :mod:`~dlio_core.checkpoint.hygiene` (temporaries, the sweep, safe paths) and
  :mod:`~dlio_core.checkpoint.folders` (framework folders published whole).

Example:
    >>> from dlio_core.config import load_config
    >>> from dlio_core.checkpoint import CheckpointPlan
    >>> round(CheckpointPlan.from_config(load_config("llama3_70b"), world=64).total_bytes / 2**30)
    911
"""

from __future__ import annotations

from .content import DEFAULT_CHUNK_BYTES, ChunkSource
from .engine import DEFAULT_READ_BUFFER_BYTES, MARKER, CheckpointEngine
from .mechanisms import DLIO_NAMES, MECHANISMS, Choice
from .mechanisms import resolve as resolve_mechanism
from .records import CheckpointError, CheckpointRecord, per_epoch_entries, summary_metrics
from .state import CheckpointPlan, FileSpec, ModelShape, dtype_bytes, num_parameters
from .transfer import checkpoint_storage, drop_cache

__all__ = [
    "CheckpointEngine", "CheckpointPlan", "CheckpointRecord", "CheckpointError", "ModelShape", "FileSpec",
    "ChunkSource", "MARKER", "DEFAULT_CHUNK_BYTES", "DEFAULT_READ_BUFFER_BYTES", "summary_metrics",
    "per_epoch_entries", "num_parameters", "dtype_bytes", "checkpoint_storage", "drop_cache", "MECHANISMS",
    "DLIO_NAMES", "Choice", "resolve_mechanism",
]
