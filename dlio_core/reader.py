"""The one place that turns a config into a reader: the engine, its format, its seed and its plan.

The runner's ``native`` loader and every plugin (the torch device loader and dataset, the TF
pipeline, the JAX iterator and loader, the DALI feeder) build their reader here, so they all read
the dataset section's format options (hdf5 layout, tfrecord samples per file), draw preprocessing
times from the same per-rank seed and follow the same epoch plan.

Example:
    >>> import tempfile
    >>> from dlio_core.config import load_config
    >>> from dlio_core.generate import generate_dataset
    >>> from dlio_core.listing import dataset_files, dataset_storage
    >>> cfg = load_config("default", [f"++workload.dataset.data_folder={tempfile.mkdtemp()}",
    ...                               "++workload.dataset.num_files_train=4"])
    >>> _ = generate_dataset(cfg, progress=False)
    >>> storage = dataset_storage(cfg)
    >>> reader = native_reader(cfg, storage, dataset_files(cfg, storage, "train"), rank=0)
    >>> [b.num_samples for b in reader.epoch(epoch_plan(cfg, split="train", epoch=1))]
    [4]
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from dlio_core.engine import NativeLoader
from dlio_core.formats import Format, format_for
from dlio_core.manifest import split_dir
from dlio_core.sampling import EpochPlan

__all__ = ["native_reader", "reader_format", "read_mode", "reader_seed", "epoch_plan"]

# Ranks' seeds are spaced by a prime, so each rank draws its own preprocessing times.
RANK_SEED_STRIDE = 7919


def reader_format(cfg: Any) -> Format:
    """The dataset's format bound to its section's options (hdf5 layout, tfrecord samples per file) and
    to ``reader.decode`` (:func:`read_mode`).

    Example:
        >>> from dlio_core.config import load_config
        >>> reader_format(load_config("default", ["++workload.dataset.format=tfrecord"])).samples_per_file
        1
    """
    return format_for(cfg.dataset, getattr(cfg, "reader", None))


def read_mode(cfg: Any) -> str:
    """``"bytes"`` (``reader.decode: false``, the default: files are read and their bytes counted, nothing
    decoded, as the MLCommons fork and so MLPerf Storage v3 measure) or ``"decode"`` (decoded as a trainer
    would: JPEG/PNG pixels, parquet columns to arrays, csv text to numbers). Formats whose samples are
    views of the bytes read (npy, npz, tfrecord, hdf5, indexed_binary) read the same way in both modes.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> read_mode(NS(reader=NS(decode=False))), read_mode(NS(reader=NS(decode=True)))
        ('bytes', 'decode')
    """
    return "decode" if getattr(getattr(cfg, "reader", None), "decode", False) else "bytes"


def reader_seed(cfg: Any, rank: int) -> int:
    """The engine's seed on ``rank``: ``train.seed`` plus ``RANK_SEED_STRIDE`` per rank.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> reader_seed(NS(train=NS(seed=123)), 2)
        15961
    """
    return int(cfg.train.seed) + RANK_SEED_STRIDE * int(rank)


def native_reader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, rank: int = 0,
                  keep_samples: bool = False, read_threads: int | None = None,
                  allocator: Callable[[int], np.ndarray] | None = None) -> NativeLoader:
    """The framework-free engine over ``files`` (``(relpath, size)`` pairs, as listing returns them).

    Threads, prefetch depth and preprocessing time come from ``cfg.reader`` (``read_threads`` overrides
    the config's); ``keep_samples`` keeps each sample's view for a device copy, and ``allocator(nbytes)``
    gives those views their buffers (pinned host memory, for instance).

    Example: see the module docstring.
    """
    rd = cfg.reader
    return NativeLoader(
        storage,
        reader_format(cfg),
        [storage.join(rel) for rel, _ in files],
        sizes=[size for _, size in files],
        read_threads=rd.read_threads if read_threads is None else read_threads,
        prefetch_size=rd.prefetch_size,
        keep_samples=keep_samples,
        preprocess_s=rd.preprocess_time,
        seed=reader_seed(cfg, rank),
        allocator=allocator,
    )


def epoch_plan(cfg: Any, *, split: str = "train", epoch: int = 0, world: int = 1, rank: int = 0,
               random_seed: int | None = None) -> EpochPlan:
    """This rank's :class:`~dlio_core.sampling.EpochPlan` of ``split`` (any name listing accepts) for ``epoch``.

    Example:
        >>> from dlio_core.config import load_config
        >>> epoch_plan(load_config("default"), split="eval", world=2, rank=1).batch_size
        1
    """
    return EpochPlan.from_config(cfg, world=world, rank=rank, epoch=epoch, split=split_dir(split),
                                 random_seed=random_seed)
