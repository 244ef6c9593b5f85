"""Enumerations for every config value drawn from a fixed set (DLIO's values plus dl-driver's).

Each enum is also a ``str``: ``cfg.reader.data_loader == "pytorch"`` holds and ``str()`` gives the value,
so code that compares strings keeps working, while misspellings are caught once, at load time.

>>> from dlio_core.config.enums import Shuffle, DataLoader
>>> Shuffle.parse(True, key="reader.file_shuffle"), bool(Shuffle.OFF)
(<Shuffle.SEED: 'seed'>, False)
>>> DataLoader.parse("PyTorch", key="reader.data_loader") == "pytorch"
True
"""

from __future__ import annotations

import difflib
import enum
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = [
    "ConfigEnum", "Framework", "DataLoader", "Format", "Shuffle", "Compression", "ReadType", "FileAccess",
    "DataLoaderSampler", "CheckpointType", "CheckpointMode", "StorageType", "Profiler", "DataType",
    "ComputationDevice", "MultiprocessingContext", "Hdf5Layout", "BatchContent",
]

E = TypeVar("E", bound="ConfigEnum")


class ConfigEnum(str, enum.Enum):
    """Base: a ``str`` enum whose ``str()`` is its value, parsed case-insensitively with a hint."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def parse(cls: type[E], value: Any, *, key: str) -> E:
        """The member for ``value`` (a member or its value in any case), else ``ConfigError`` naming ``key``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            text = value.strip().lower()
            for member in cls:
                if member.value == text:
                    return member
        allowed = [m.value for m in cls]
        hint = difflib.get_close_matches(str(value).lower(), allowed, n=1)
        did_you_mean = f" (did you mean {hint[0]}?)" if hint else ""
        raise ConfigError(f"{key}: {value!r} is not allowed; expected one of {', '.join(allowed)}{did_you_mean}",
                          key=key)


class Framework(ConfigEnum):
    """``framework``: which framework's checkpoint mechanism writes checkpoints (not the data loader)."""

    TENSORFLOW = "tensorflow"
    PYTORCH = "pytorch"
    JAX = "jax"  # extension


class DataLoader(ConfigEnum):
    """``reader.data_loader``: the Loader that feeds batches. ``native`` and ``jax`` are dl-driver's own."""

    TENSORFLOW = "tensorflow"
    PYTORCH = "pytorch"
    DALI = "dali"
    NATIVE_DALI = "native_dali"
    SYNTHETIC = "synthetic"
    CUSTOM = "custom"
    NATIVE = "native"  # extension: dlio_core's framework-free engine
    JAX = "jax"  # extension: dlio_jax iterator


class Format(ConfigEnum):
    """``dataset.format``. All are parsed; whether one can be generated or read is decided in ``formats``."""

    TFRECORD = "tfrecord"
    HDF5 = "hdf5"
    CSV = "csv"
    NPZ = "npz"
    NPY = "npy"
    JPEG = "jpeg"
    PNG = "png"
    INDEXED_BINARY = "indexed_binary"
    MMAP_INDEXED_BINARY = "mmap_indexed_binary"
    SYNTHETIC = "synthetic"
    PARQUET = "parquet"  # MLCommons fork (flux, dlrm_b200)


class Hdf5Layout(ConfigEnum):
    """``dataset.hdf5.layout`` (extension): which DLIO version's HDF5 files are written.

    ``RECORDS_K`` (default): DLIO HEAD's ``records_0 .. records_{k-1}`` datasets
    (``k = dataset.hdf5.num_dset_per_record``) plus ``labels``. ``RECORDS``: DLIO 2.0.0's single
    ``records`` dataset plus ``labels``. Readers accept either, whatever this says.
    """

    RECORDS_K = "records_k"
    RECORDS = "records"


class Shuffle(ConfigEnum):
    """``reader.file_shuffle`` / ``reader.sample_shuffle``.

    ``OFF``: files/samples in listing order. ``SEED``: a permutation from ``train.seed`` (plus the epoch
    when ``train.seed_change_epoch``), identical across runs. ``RANDOM``: the same from a seed drawn once
    per run and shared by every rank and worker. YAML booleans map as DLIO treats them: ``True`` -> SEED,
    ``False`` -> OFF. ``bool(Shuffle.OFF)`` is ``False`` so ``if shuffle:`` means "shuffled" (DLIO keeps
    the raw string, so its ``"off"`` tested true).
    """

    OFF = "off"
    SEED = "seed"
    RANDOM = "random"

    def __bool__(self) -> bool:
        return self is not Shuffle.OFF

    @classmethod
    def parse(cls, value: Any, *, key: str) -> Shuffle:  # type: ignore[override]
        if isinstance(value, bool):
            return cls.SEED if value else cls.OFF
        if value is None:
            return cls.OFF
        return super().parse(value, key=key)


class Compression(ConfigEnum):
    """``dataset.compression``: DLIO's codecs plus the parquet codecs the MLCommons configs name."""

    NONE = "none"
    GZIP = "gzip"
    LZF = "lzf"
    BZ2 = "bz2"
    ZIP = "zip"
    XZ = "xz"
    SNAPPY = "snappy"
    LZ4 = "lz4"
    ZSTD = "zstd"
    BROTLI = "brotli"  # parquet (MLCommons fork)


class ReadType(ConfigEnum):
    """``reader.read_type``: ``on_demand`` opens a file per access; ``memory`` keeps it open."""

    ON_DEMAND = "on_demand"
    MEMORY = "memory"


class FileAccess(ConfigEnum):
    """``reader.file_access`` (DLIO parses it and never uses it)."""

    MULTI = "multi"
    SHARED = "shared"
    COLLECTIVE = "collective"


class DataLoaderSampler(ConfigEnum):
    """``reader.data_loader_sampler``: DLIO's iterative (TF) vs index (PyTorch/DALI) sample maps."""

    ITERATIVE = "iterative"
    INDEX = "index"


class CheckpointType(ConfigEnum):
    """``checkpoint.type`` (DLIO HEAD parses it and never uses it)."""

    RANK_ZERO = "rank_zero"
    ALL_RANKS = "all_ranks"


class CheckpointMode(ConfigEnum):
    """``checkpoint.mode``: ``subset`` writes the share of a larger virtual job (``model.parallelism.data``)."""

    DEFAULT = "default"
    SUBSET = "subset"


class StorageType(ConfigEnum):
    """``storage.storage_type``; dl-driver picks the backend from the URI, this is kept for reports."""

    LOCAL_FS = "local_fs"
    PARALLEL_FS = "parallel_fs"
    S3 = "s3"
    AISTORE = "aistore"
    ADLS_GEN2 = "adls_gen2"  # DLIO Azure branch configs (unet3d_*_adlsgen2)
    S3DLIO = "s3dlio"  # MLCommons s3dlio configs
    DIRECT_FS = "direct_fs"  # MLCommons fork: local files with O_DIRECT (our direct:// storage)


class Profiler(ConfigEnum):
    """``profiling.profiler``."""

    NONE = "none"
    IOSTAT = "iostat"
    DARSHAN = "darshan"
    TENSORBOARD = "tensorboard"


class DataType(ConfigEnum):
    """``model.model_datatype`` / ``model.optimizer_datatype``."""

    INT8 = "int8"
    UINT8 = "uint8"
    FP16 = "fp16"
    BF16 = "bf16"
    FP32 = "fp32"
    FP64 = "fp64"


class ComputationDevice(ConfigEnum):
    """``train.computation_device`` (extension): emulate compute by sleeping (cpu) or a GPU busy kernel."""

    CPU = "cpu"
    GPU = "gpu"


class BatchContent(ConfigEnum):
    """``reader.batch_content`` (extension): what a framework loader hands the model after reading a step.

    ``CONSTANT`` (default, as DLIO): the files are read and timed, the bytes discarded, and a constant
    tensor of ``reader.transformed_record_dims`` (else a square of ``dataset.record_length_bytes_resize``
    bytes) is handed over, so the figures do not pay for moving large samples between processes.
    ``SAMPLES``: the samples actually read.
    """

    CONSTANT = "constant"
    SAMPLES = "samples"


class ImageEncoding(ConfigEnum):
    """``dataset.image_encoding`` (extension): how jpeg/png files are generated. ``ENCODED`` (default): real
    images, as argonne's DLIO writes them; ``RAW``: the sample's bytes, as the MLCommons fork writes them."""

    ENCODED = "encoded"
    RAW = "raw"


class EndpointDistribution(ConfigEnum):
    """``storage.load_balance_strategy`` (MLCommons fork): which of ``storage.endpoint_uris`` a rank uses.
    ``ROUND_ROBIN``: rank ``r`` takes endpoint ``r % n``; ``RANDOM``: one drawn per rank (seeded by it)."""

    ROUND_ROBIN = "round_robin"
    RANDOM = "random"


class MultiprocessingContext(ConfigEnum):
    """``reader.multiprocessing_context`` for process-based loaders."""

    FORK = "fork"
    SPAWN = "spawn"
    FORKSERVER = "forkserver"
