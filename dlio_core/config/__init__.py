"""dl-driver's configuration: DLIO / MLPerf Storage workloads, validated, in DLIO HEAD spelling.

>>> from dlio_core.config import load_config, Shuffle
>>> cfg = load_config("unet3d_h100", overrides=["++workload.reader.batch_size=8"])
>>> cfg.reader.batch_size, cfg.reader.file_shuffle is Shuffle.SEED, cfg.train.computation_time.mean_s
(8, True, 0.323)

``load_config`` accepts a YAML path, a bundled workload name, ``--config-dir`` names, a dict or a
``RunConfig``; ``parse_command_line`` splits DLIO/hydra-style arguments. Both DLIO dialects (HEAD and the
PyPI 2.0.0 spellings) load; unknown keys are errors with a suggestion; keys without effect are warnings.
"""

from __future__ import annotations

from . import derive
from .derive import dataset_bytes, demanded_bandwidth_bytes_per_s, record_bytes, sample_dims, samples, steps_per_epoch
from .enums import (
    CheckpointMode, CheckpointType, Compression, ComputationDevice, DataLoader, DataLoaderSampler, DataType,
    FileAccess, Format, Framework, MultiprocessingContext, Profiler, ReadType, Shuffle, StorageType,
)
from .errors import ConfigError, ConfigWarning
from .load import bundled_workload_path, bundled_workloads, load_config
from .overrides import CommandLine, parse_command_line, parse_override
from .schema import RunConfig
from .sections import (
    CheckpointConfig, DatasetConfig, EvaluationConfig, Hdf5Config, MetricConfig, ModelConfig, OutputConfig,
    ParallelismConfig, ProfilingConfig, ReaderConfig, StorageConfig, TrainConfig, TransformerConfig, WorkflowConfig,
)
from .timespec import TimeSpec
from .tiny import tiny_run_config

__all__ = [
    # loading
    "load_config", "parse_command_line", "parse_override", "CommandLine", "bundled_workloads",
    "bundled_workload_path", "tiny_run_config",
    # the config and its parts
    "RunConfig", "TimeSpec", "ModelConfig", "ParallelismConfig", "TransformerConfig", "WorkflowConfig",
    "DatasetConfig", "Hdf5Config", "ReaderConfig", "TrainConfig", "EvaluationConfig", "CheckpointConfig",
    "StorageConfig", "OutputConfig", "MetricConfig", "ProfilingConfig",
    # enums
    "Shuffle", "Framework", "DataLoader", "Format", "Compression", "ReadType", "FileAccess", "DataLoaderSampler",
    "CheckpointType", "CheckpointMode", "StorageType", "Profiler", "DataType", "ComputationDevice",
    "MultiprocessingContext",
    # problems
    "ConfigError", "ConfigWarning",
    # derived figures
    "derive", "samples", "steps_per_epoch", "record_bytes", "dataset_bytes", "sample_dims",
    "demanded_bandwidth_bytes_per_s",
]
