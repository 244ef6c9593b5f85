"""One frozen dataclass per DLIO config section; each field checks its value when the section is built.

Field names are DLIO HEAD's key names; the defaults are DLIO's code defaults (``utils/config.py``), not its
docs. A field's checker turns YAML values into the field's type (``"8"`` -> 8, ``True`` -> ``Shuffle.SEED``)
and raises a one-line ``ConfigError`` naming the key, the value and what is allowed.

Extensions (dl-driver keys in DLIO's sections; DLIO ignores them):

- ``train.computation_device``: ``cpu`` (default: emulate compute by sleeping) or ``gpu`` (a busy kernel).
- ``output.record_access_order``: ``False`` (default); ``True`` logs the (file, sample) order each rank read.
- ``reader.data_loader: native`` (dlio_core's engine) and ``jax``; ``framework: jax``.
- ``reader.batch_content``: ``constant`` (default: DLIO's constant tensor after the real read) or ``samples``
  (the data read); what the pytorch loader hands the model.
- ``dataset.hdf5.layout``: ``records_k`` (default: DLIO HEAD's ``records_0..k-1``) or ``records`` (DLIO 2.0.0's
  single dataset); which HDF5 layout generation writes (reading accepts both).

>>> ReaderConfig(batch_size="8").batch_size
8
>>> ReaderConfig(batch_size=-3)
Traceback (most recent call last):
...
dlio_core.config.errors.ConfigError: reader.batch_size: -3 is not allowed; expected an integer >= 1
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from . import convert as cv
from .enums import (
    BatchContent, CheckpointMode, CheckpointType, Compression, ComputationDevice, DataLoader, DataLoaderSampler, DataType,
    EndpointDistribution, FileAccess, Format, Hdf5Layout, ImageEncoding, MultiprocessingContext, Profiler, ReadType,
    Shuffle, StorageType,
)
from .errors import ConfigError
from .frozen import FrozenMap
from .timespec import TimeSpec

__all__ = [
    "Section", "ParallelismConfig", "TransformerConfig", "ModelConfig", "WorkflowConfig", "Hdf5Config",
    "DatasetConfig", "ReaderConfig", "TrainConfig", "EvaluationConfig", "CheckpointConfig", "StorageConfig",
    "OutputConfig", "MetricConfig", "ProfilingConfig", "PARQUET_KEYS",
]

# dataset.parquet keys the MLCommons DLIO fork reads (its flux / dlrm configs)
PARQUET_KEYS = ("columns", "row_group_size", "partition_by", "generation_batch_size", "read_mode", "use_s3dlio_gen")


def spec(default: Any, check: cv.Check | None = None, *, key: str | None = None, time: str | None = None,
         doc: str = "") -> Any:
    """A dataclass field with its checker. ``key`` overrides the dotted key (e.g. ``output.metric.*``);
    ``time`` marks a time value (``"negative"`` when DLIO's ``-1`` default is allowed)."""
    meta = {"check": check, "key": key, "time": time, "doc": doc}
    return field(default=default, metadata=meta)


def _enum(cls: Any) -> cv.Check:
    return lambda key, value: cls.parse(value, key=key)


def _time(allow_negative: bool = False) -> cv.Check:
    return lambda key, value: TimeSpec.parse(value, key=key, allow_negative=allow_negative)


def _folder(key: str, value: Any) -> str:
    """DLIO strips trailing slashes from folders (``data/unet3d/`` -> ``data/unet3d``), but not from a bare root."""
    text = cv.text(nonempty=True)(key, value)
    stripped = text.rstrip("/")
    return text if not stripped or stripped.endswith(":") else stripped


def _section(cls: type[Section]) -> cv.Check:
    def check(key: str, value: Any) -> Section:
        if isinstance(value, cls):
            return value
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise cv.fail(key, value, "a mapping of keys")
        names = {f.name for f in fields(cls)}
        for name in value:
            if name not in names:
                raise ConfigError(f"{key}.{name}: unknown key; known keys in {key}: {', '.join(sorted(names))}",
                                  key=f"{key}.{name}")
        return cls(**value)

    return check


@dataclass(frozen=True)
class Section:
    """Base: runs each field's checker in ``__post_init__`` (frozen, so via ``object.__setattr__``)."""

    _key: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            check = f.metadata.get("check")
            if check is not None:
                object.__setattr__(self, f.name, check(self.key_of(f.name), getattr(self, f.name)))
        self._validate()

    def _validate(self) -> None:
        """Cross-field checks within the section (override)."""

    @classmethod
    def key_of(cls, name: str) -> str:
        """The dotted config key of field ``name``."""
        for f in fields(cls):
            if f.name == name:
                return f.metadata.get("key") or f"{cls._key}.{name}"
        raise KeyError(name)

    @classmethod
    def default_of(cls, name: str) -> Any:
        """The (checked) default value of field ``name``."""
        return getattr(_defaults(cls), name)


_DEFAULTS: dict[type, Section] = {}


def _defaults(cls: type[Section]) -> Section:
    if cls not in _DEFAULTS:
        _DEFAULTS[cls] = cls()
    return _DEFAULTS[cls]


@dataclass(frozen=True)
class ParallelismConfig(Section):
    """``model.parallelism``: tensor x pipeline x data parallel degrees and the ZeRO stage."""

    _key: ClassVar[str] = "model.parallelism"
    tensor: int = spec(1, cv.integer(min=1))
    pipeline: int = spec(1, cv.integer(min=1))
    data: int = spec(-1, cv.integer(min=1, also=(-1,)), doc="-1: world / (tensor * pipeline)")
    zero_stage: int = spec(0, cv.integer(min=0, max=3))


@dataclass(frozen=True)
class TransformerConfig(Section):
    """``model.transformer``: the shape that sizes a transformer checkpoint (DLIO's Llama formula)."""

    _key: ClassVar[str] = "model.transformer"
    vocab_size: int = spec(32000, cv.integer(min=1))
    hidden_size: int = spec(2048, cv.integer(min=1))
    ffn_hidden_size: int = spec(8192, cv.integer(min=1))
    num_attention_heads: int = spec(32, cv.integer(min=1))
    num_kv_heads: int = spec(8, cv.integer(min=1))


@dataclass(frozen=True)
class ModelConfig(Section):
    """``model``: name (reports), checkpoint sizing (``type: transformer`` uses the formula, else bytes)."""

    _key: ClassVar[str] = "model"
    name: str = spec("default", cv.text(nonempty=True))
    type: str | None = spec(None, cv.optional(cv.text()))
    model_size_bytes: int = spec(10240, cv.integer(min=0, floor_float=True))
    model_datatype: DataType = spec(DataType.FP16, _enum(DataType))
    optimizer_datatype: DataType = spec(DataType.FP32, _enum(DataType))
    optimization_groups: tuple[int, ...] = spec((), cv.int_tuple(min=0))
    num_layers: int = spec(-1, cv.integer(min=0, also=(-1,)))
    layer_parameters: tuple[int, ...] = spec((), cv.int_tuple(min=0))
    parallelism: ParallelismConfig = spec(None, _section(ParallelismConfig))
    transformer: TransformerConfig = spec(None, _section(TransformerConfig))


@dataclass(frozen=True)
class WorkflowConfig(Section):
    """``workflow``: which phases run. ``train: False`` with ``checkpoint`` is checkpoint-only mode."""

    _key: ClassVar[str] = "workflow"
    generate_data: bool = spec(False, cv.boolean())
    train: bool = spec(True, cv.boolean())
    evaluation: bool = spec(False, cv.boolean())
    checkpoint: bool = spec(False, cv.boolean())
    profiling: bool = spec(False, cv.boolean())
    debug: bool = spec(False, cv.boolean())


@dataclass(frozen=True)
class Hdf5Config(Section):
    """``dataset.hdf5``: chunking, datasets per record, max shape (HEAD's hdf5 writer); ``layout`` (extension)."""

    _key: ClassVar[str] = "dataset.hdf5"
    chunk_dims: tuple[int, ...] = spec((), cv.int_tuple(min=1))
    num_dset_per_record: int = spec(1, cv.integer(min=1))
    max_shape: tuple[int | None, ...] = spec((), cv.int_tuple(min=1, allow_none_items=True))
    layout: Hdf5Layout = spec(Hdf5Layout.RECORDS_K, _enum(Hdf5Layout),
                              doc="records_k: DLIO HEAD's records_0..k-1; records: DLIO 2.0.0's single dataset")

    def _validate(self) -> None:
        if self.layout is Hdf5Layout.RECORDS and self.num_dset_per_record > 1:
            raise ConfigError(f"dataset.hdf5.num_dset_per_record: {self.num_dset_per_record} needs "
                              "dataset.hdf5.layout: records_k (DLIO 2.0.0's layout has one 'records' dataset)",
                              key="dataset.hdf5.num_dset_per_record")


@dataclass(frozen=True)
class DatasetConfig(Section):
    """``dataset``: where the files are, their format, count, and sample sizes."""

    _key: ClassVar[str] = "dataset"
    data_folder: str = spec("./data", _folder)
    format: Format = spec(Format.TFRECORD, _enum(Format))
    num_files_train: int = spec(8, cv.integer(min=0))
    num_files_eval: int = spec(0, cv.integer(min=0))
    num_samples_per_file: int = spec(1, cv.integer(min=1))
    record_length_bytes: int = spec(65536, cv.integer(min=1, floor_float=True))
    record_length_bytes_stdev: int = spec(0, cv.integer(min=0, floor_float=True))
    record_length_bytes_resize: int = spec(0, cv.integer(min=0, floor_float=True))
    num_subfolders_train: int = spec(0, cv.integer(min=0))
    num_subfolders_eval: int = spec(0, cv.integer(min=0))
    file_prefix: str = spec("img", cv.text(nonempty=True, forbid="/"))
    compression: Compression = spec(Compression.NONE, _enum(Compression))
    compression_level: int = spec(4, cv.integer(min=0, max=22))
    enable_chunking: bool = spec(False, cv.boolean())
    chunk_size: int = spec(0, cv.integer(min=0))
    keep_files: bool = spec(True, cv.boolean())
    generation_buffer_size: int = spec(2 * 1024**3, cv.integer(min=1))
    record_dims: tuple[int, ...] = spec((), cv.int_tuple(min=1))
    record_element_type: str = spec("uint8", cv.numpy_dtype())
    hdf5: Hdf5Config = spec(None, _section(Hdf5Config))
    parquet: Mapping[str, Any] = spec(FrozenMap(), cv.mapping(known=PARQUET_KEYS))
    image_encoding: ImageEncoding = spec(ImageEncoding.ENCODED, _enum(ImageEncoding),
                                         doc="jpeg/png: encoded images (argonne) or raw sample bytes (the fork)")
    skip_listing: bool = spec(False, cv.boolean(), doc="MLCommons fork: names from the naming rule, no LIST")
    listing_validation_interval: int = spec(1000, cv.integer(min=0),
                                            doc="with skip_listing: check every Nth file exists (0: none)")

    def _validate(self) -> None:
        if self.record_dims and self.record_length_bytes_stdev:
            raise ConfigError("dataset.record_dims: cannot be combined with dataset.record_length_bytes_stdev "
                              f"({self.record_length_bytes_stdev}); set one of them", key="dataset.record_dims")
        n = self.hdf5.num_dset_per_record
        if self.format is Format.HDF5 and self.record_dims and self.record_dims[0] % n:
            raise ConfigError(f"dataset.record_dims: first dimension {self.record_dims[0]} is not a multiple of "
                              f"dataset.hdf5.num_dset_per_record ({n})", key="dataset.record_dims")


@dataclass(frozen=True)
class ReaderConfig(Section):
    """``reader`` (DLIO 2.0.0 also calls it ``data_reader``): the loader, batching, threads, shuffles."""

    _key: ClassVar[str] = "reader"
    data_loader: DataLoader = spec(DataLoader.TENSORFLOW, _enum(DataLoader))
    batch_size: int = spec(1, cv.integer(min=1))
    batch_size_eval: int = spec(1, cv.integer(min=1))
    read_threads: int = spec(1, cv.integer(min=0))
    computation_threads: int = spec(1, cv.integer(min=1))
    prefetch_size: int = spec(2, cv.integer(min=0))
    file_shuffle: Shuffle = spec(Shuffle.OFF, _enum(Shuffle))
    sample_shuffle: Shuffle = spec(Shuffle.OFF, _enum(Shuffle))
    shuffle_size: int = spec(1024, cv.integer(min=1))
    read_type: ReadType = spec(ReadType.ON_DEMAND, _enum(ReadType))
    file_access: FileAccess = spec(FileAccess.MULTI, _enum(FileAccess))
    transfer_size: int | None = spec(None, cv.optional(cv.integer(min=1)))
    multiprocessing_context: MultiprocessingContext = spec(MultiprocessingContext.FORK, _enum(MultiprocessingContext))
    pin_memory: bool = spec(True, cv.boolean())
    dont_use_mmap: bool = spec(False, cv.boolean())
    odirect: bool = spec(False, cv.boolean())
    preprocess_time: TimeSpec = spec(TimeSpec(), _time(), time="plain")
    transformed_record_dims: tuple[int, ...] = spec((), cv.int_tuple(min=1))
    transformed_record_element_type: str = spec("uint8", cv.numpy_dtype())
    decode: bool = spec(False, cv.boolean(), doc="False: read and count the bytes (the MLCommons fork's measure); "
                                                 "True: decode as a trainer would (pixels, parquet columns)")
    write_threads: int | None = spec(None, cv.optional(cv.integer(min=1)),
                                     doc="MLCommons fork: generation writer threads (None: min(8, 2 x CPUs))")
    batch_content: BatchContent = spec(BatchContent.CONSTANT, _enum(BatchContent),
                                       doc="constant: DLIO's constant tensor after the real read; samples: the data read")
    data_loader_classname: str | None = spec(None, cv.optional(cv.text(nonempty=True)))
    reader_classname: str | None = spec(None, cv.optional(cv.text(nonempty=True)))
    data_loader_sampler: DataLoaderSampler | None = spec(None, cv.optional(_enum(DataLoaderSampler)))


@dataclass(frozen=True)
class TrainConfig(Section):
    """``train``: epochs, step cap, seeds, and the emulated compute time per step."""

    _key: ClassVar[str] = "train"
    epochs: int = spec(1, cv.integer(min=1))
    total_training_steps: int = spec(-1, cv.integer(min=0, also=(-1,)), doc="-1: no cap")
    seed: int = spec(123, cv.integer(min=0, max=2**32 - 1))
    seed_change_epoch: bool = spec(True, cv.boolean())
    computation_time: TimeSpec = spec(TimeSpec(), _time(), time="plain")
    computation_device: ComputationDevice = spec(ComputationDevice.CPU, _enum(ComputationDevice))


@dataclass(frozen=True)
class EvaluationConfig(Section):
    """``evaluation``: emulated eval time per step and the eval cadence."""

    _key: ClassVar[str] = "evaluation"
    eval_time: TimeSpec = spec(TimeSpec(), _time(), time="plain")
    eval_after_epoch: int = spec(1, cv.integer(min=0))
    epochs_between_evals: int = spec(1, cv.integer(min=1))


@dataclass(frozen=True)
class CheckpointConfig(Section):
    """``checkpoint``: folder, cadence (epochs or steps), checkpoint-only counts, fsync, rank sync."""

    _key: ClassVar[str] = "checkpoint"
    checkpoint_folder: str = spec("./checkpoints", _folder)
    checkpoint_after_epoch: int = spec(1, cv.integer(min=0))
    epochs_between_checkpoints: int = spec(1, cv.integer(min=1))
    steps_between_checkpoints: int = spec(-1, cv.integer(min=1, also=(-1,)), doc="-1: epoch-based")
    type: CheckpointType = spec(CheckpointType.RANK_ZERO, _enum(CheckpointType))
    mode: CheckpointMode = spec(CheckpointMode.DEFAULT, _enum(CheckpointMode))
    fsync: bool = spec(False, cv.boolean())
    time_between_checkpoints: TimeSpec = spec(TimeSpec.fixed(-1.0), _time(allow_negative=True), time="negative")
    num_checkpoints_write: int = spec(-1, cv.integer(min=0, also=(-1,)))
    num_checkpoints_read: int = spec(-1, cv.integer(min=0, also=(-1,)))
    recovery_rank_shift: bool = spec(False, cv.boolean())
    rank_sync: bool = spec(False, cv.boolean())
    randomize_tensor: bool = spec(True, cv.boolean())
    # the names are checked by dlio_core.checkpoint.mechanisms.resolve (one table, with DLIO's spellings)
    checkpoint_mechanism: str = spec("none", cv.text(nonempty=True), doc="none: follow framework, as DLIO")
    compression: Compression = spec(Compression.NONE, _enum(Compression), doc="none or zstd (raw and stream)")
    compression_level: int = spec(3, cv.integer(min=-7, max=22), doc="zstd level")
    drop_page_cache: bool = spec(False, cv.boolean(), doc="drop every node's page cache before each load (root)")
    drop_page_cache_timeout_s: float = spec(60.0, cv.number(min=0.1), doc="bound on that drop")


@dataclass(frozen=True)
class StorageConfig(Section):
    """``storage``: backend type, root (bucket for object stores), and free ``storage_options``."""

    _key: ClassVar[str] = "storage"
    storage_type: StorageType = spec(StorageType.LOCAL_FS, _enum(StorageType))
    storage_root: str = spec("./", cv.text(nonempty=True))
    storage_options: Mapping[str, Any] = spec(FrozenMap(), cv.mapping())
    # MLCommons fork: several endpoints of one object store, one per rank (dlio_core.listing.rank_endpoint)
    endpoint_uris: tuple[str, ...] = spec((), cv.str_tuple())
    load_balance_strategy: EndpointDistribution = spec(EndpointDistribution.ROUND_ROBIN, _enum(EndpointDistribution))
    use_mpi_endpoint_distribution: bool = spec(False, cv.boolean(), doc="True: contiguous blocks of ranks per endpoint")


@dataclass(frozen=True)
class OutputConfig(Section):
    """``output``: results folder (None: the CLI decides, as DLIO falls back to hydra's run dir) and metric window."""

    _key: ClassVar[str] = "output"
    folder: str | None = spec(None, cv.optional(cv.text(nonempty=True)))
    log_file: str = spec("dlio.log", cv.text(nonempty=True))
    exclude_start_steps: int = spec(1, cv.integer(min=0), key="output.metric.exclude_start_steps")
    exclude_end_steps: int = spec(0, cv.integer(min=0), key="output.metric.exclude_end_steps")
    record_access_order: bool = spec(False, cv.boolean())


@dataclass(frozen=True)
class MetricConfig(Section):
    """``metric``: ``au`` is the pass threshold for ``*_au_meet_expectation``, a fraction (0.90)."""

    _key: ClassVar[str] = "metric"
    au: float = spec(0.90, cv.number(min=0.0, max=1.0))


@dataclass(frozen=True)
class ProfilingConfig(Section):
    """``profiling``: profiler (when ``workflow.profiling``) and the iostat devices."""

    _key: ClassVar[str] = "profiling"
    profiler: Profiler = spec(Profiler.IOSTAT, _enum(Profiler))
    iostat_devices: tuple[str, ...] = spec((), cv.str_tuple())
