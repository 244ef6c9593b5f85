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
from dlio_core.engine.paths import table_names
from dlio_core.file_table import FileTable
from dlio_core.formats import Format, format_for
from dlio_core.manifest import MANIFEST_NAME, DatasetError, load_manifest, split_dir
from dlio_core.sampling import EpochPlan

__all__ = ["native_reader", "reader_format", "read_mode", "reader_seed", "epoch_plan", "check_samples_per_file"]

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


def check_samples_per_file(cfg: Any, storage: Any) -> None:
    """``DatasetError`` when the generation manifest says the files hold another number of samples than
    ``dataset.num_samples_per_file`` (a dataset of 4 per file read with 1 would read a quarter of it,
    with plausible figures). No manifest (a DLIO-made dataset): nothing to compare with.

    Example:
        >>> import tempfile
        >>> from types import SimpleNamespace as NS
        >>> from dlio_core.manifest import Manifest, write_manifest
        >>> from dlio_core.storage import open_storage
        >>> st = open_storage(tempfile.mkdtemp())
        >>> write_manifest(st, Manifest(format="npz", train=(), valid=(), dataset={"num_samples_per_file": 4}))
        >>> try:
        ...     check_samples_per_file(NS(dataset=NS(format="npz", num_samples_per_file=1)), st)
        ... except DatasetError as e:
        ...     str(e)[:68]
        'dataset.num_samples_per_file is 1, but the files hold 4 samples each'
    """
    m = load_manifest(storage)
    made = None if m is None else m.dataset.get("num_samples_per_file")
    fmt = str(getattr(cfg.dataset.format, "value", cfg.dataset.format)).lower()
    asked = int(cfg.dataset.num_samples_per_file)
    if made is None or m.format != fmt or int(made) == asked:  # type: ignore[union-attr]
        return
    raise DatasetError(f"dataset.num_samples_per_file is {asked}, but the files hold {int(made)} samples each "
                       f"({storage.url.rstrip('/')}/{MANIFEST_NAME} from generation): set "
                       f"++workload.dataset.num_samples_per_file={int(made)}")


def native_reader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, rank: int = 0,
                  keep_samples: bool = False, read_threads: int | None = None,
                  allocator: Callable[[int], np.ndarray] | None = None) -> NativeLoader:
    """The framework-free engine over ``files`` (``(relpath, size)`` pairs, as listing returns them).

    Threads, prefetch depth and preprocessing time come from ``cfg.reader`` (``read_threads`` overrides
    the config's); ``keep_samples`` keeps each sample's view for a device copy, and ``allocator(nbytes)``
    gives those views their buffers (pinned host memory, for instance).

    Raises ``DatasetError`` when the files hold another number of samples than the config says
    (:func:`check_samples_per_file`).

    Example: see the module docstring.
    """
    fmt = reader_format(cfg)
    check_samples_per_file(cfg, storage)
    rd = cfg.reader
    if isinstance(files, FileTable):  # the run's table: names made when read, sizes one array
        names: Sequence[str] = table_names(files.names(), storage.join)
        sizes: Any = files.sizes_array()
    else:
        names, sizes = [storage.join(rel) for rel, _ in files], [size for _, size in files]
    return NativeLoader(
        storage,
        fmt,
        names,
        sizes=sizes,
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
