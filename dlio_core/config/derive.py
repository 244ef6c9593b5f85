"""Figures derived from a config the way DLIO derives them (samples, steps, bytes, shapes, bandwidth).

>>> from dlio_core.config import load_config
>>> cfg = load_config("resnet50_h100")
>>> samples(cfg), steps_per_epoch(cfg, world=1), sample_dims(cfg)
(1281024, 3202, (338, 338))
>>> round(demanded_bandwidth_bytes_per_s(load_config("unet3d_h100")) / 1e9, 2)
3.18
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .schema import RunConfig

__all__ = ["samples", "steps_per_epoch", "record_bytes", "dataset_bytes", "sample_dims",
           "demanded_bandwidth_bytes_per_s"]

_TRAIN = ("train", "training")
_EVAL = ("eval", "valid", "validation", "evaluation")


def _split(split: str) -> str:
    s = str(split).lower()
    if s in _TRAIN:
        return "train"
    if s in _EVAL:
        return "eval"
    raise ConfigError(f"split: {split!r} is not allowed; expected 'train' or 'eval' (also 'valid')")


def samples(cfg: RunConfig, split: str = "train") -> int:
    """Samples in the ``split`` dataset: files x ``num_samples_per_file``."""
    files = cfg.dataset.num_files_train if _split(split) == "train" else cfg.dataset.num_files_eval
    return files * cfg.dataset.num_samples_per_file


def steps_per_epoch(cfg: RunConfig, world: int = 1, split: str = "train") -> int:
    """Steps each rank runs per epoch: floor(samples / (batch x world)), as DLIO's "Max steps per epoch";
    for training capped by ``train.total_training_steps`` when that is > 0."""
    if int(world) < 1:
        raise ConfigError(f"world: {world!r} is not allowed; expected an integer >= 1")
    which = _split(split)
    batch = cfg.reader.batch_size if which == "train" else cfg.reader.batch_size_eval
    steps = samples(cfg, which) // (batch * int(world))
    cap = cfg.train.total_training_steps
    if which == "train" and cap > 0:
        steps = min(steps, cap)
    return steps


def record_bytes(cfg: RunConfig) -> int:
    """Bytes of one sample as configured: ``prod(record_dims) x element size`` when ``record_dims`` is set,
    else ``record_length_bytes`` (DLIO's generator writes int(sqrt(L))^2, slightly less)."""
    ds = cfg.dataset
    if ds.record_dims:
        import numpy as np

        return math.prod(ds.record_dims) * np.dtype(ds.record_element_type).itemsize
    return ds.record_length_bytes


def dataset_bytes(cfg: RunConfig) -> int:
    """Nominal bytes of the train and eval datasets together: files x samples per file x record bytes."""
    files = cfg.dataset.num_files_train + cfg.dataset.num_files_eval
    return files * cfg.dataset.num_samples_per_file * record_bytes(cfg)


def sample_dims(cfg: RunConfig) -> tuple[int, ...]:
    """Shape of one sample: ``record_dims``, else DLIO's square image ``(d, d)``, d = int(sqrt(record_length_bytes))."""
    if cfg.dataset.record_dims:
        return tuple(cfg.dataset.record_dims)
    d = math.isqrt(cfg.dataset.record_length_bytes)
    return (d, d)


def demanded_bandwidth_bytes_per_s(cfg: RunConfig) -> float | None:
    """Bytes/s one accelerator consumes at 100 % AU: batch x record bytes / mean compute time per step;
    ``None`` when the compute time is 0 (no finite demand)."""
    mean = cfg.train.computation_time.mean_s
    if mean <= 0:
        return None
    return cfg.reader.batch_size * record_bytes(cfg) / mean
