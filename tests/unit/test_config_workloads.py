"""Every bundled workload loads, and the key figures of the stock ones are DLIO's."""

from __future__ import annotations

import math
import warnings

import pytest

from dlio_core.config import (
    ConfigWarning, DataLoader, Format, Framework, Shuffle, bundled_workloads, derive, load_config,
)

HEAD_NAMES = {
    "bert_v100", "cosmoflow_a100", "cosmoflow_h100", "cosmoflow_v100", "default", "dlrm", "llama_1t", "llama_405b",
    "llama_70b", "llama_70b_zero3", "llama_7b", "llama_7b_zero3", "llama_8b_zero3", "megatron_deepspeed_LLNL",
    "resnet50_a100", "resnet50_h100", "resnet50_tf", "resnet50_v100", "unet3d_a100", "unet3d_a100_s3",
    "unet3d_h100", "unet3d_h100_s3", "unet3d_v100", "unet3d_v100_s3",
}
MLPERF_NAMES = {
    "unet3d_b200", "retinanet_b200", "retinanet_mi355", "flux_b200", "flux_mi355", "dlrm_b200", "llama3_8b",
    "llama3_70b", "llama3_405b", "llama3_1t", "unet3d_datagen", "resnet50_datagen", "cosmoflow_datagen",
    "retinanet_datagen", "flux_datagen", "dlrm_datagen",
}


def _load(name: str, overrides: tuple[str, ...] = ()):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return load_config(name, overrides)


def test_every_named_workload_is_bundled():
    names = set(bundled_workloads())
    assert HEAD_NAMES <= names
    assert "megatron_deepspeed" in names  # DLIO 2.0.0's
    assert MLPERF_NAMES <= names


@pytest.mark.parametrize("name", bundled_workloads())
def test_bundled_workload_loads(name):
    cfg = _load(name)
    assert cfg.source == name
    # the resolved config reloads to an equal config (no warnings from defaults)
    assert _load(cfg.to_dict()) == cfg


def test_unet3d_h100_figures():
    cfg = _load("unet3d_h100")
    assert cfg.framework is Framework.PYTORCH
    assert cfg.dataset.num_files_train == 168
    assert cfg.dataset.format is Format.NPZ
    assert cfg.reader.batch_size == 7
    assert cfg.reader.data_loader is DataLoader.PYTORCH
    assert cfg.reader.file_shuffle is Shuffle.SEED and cfg.reader.sample_shuffle is Shuffle.SEED
    assert cfg.train.computation_time.mean_s == pytest.approx(0.323)
    assert cfg.model.model_size_bytes == 499153191  # from model.model_size, which DLIO HEAD itself ignores
    assert cfg.dataset.record_length_bytes == 146600628
    assert cfg.dataset.record_length_bytes_stdev == 68341808
    assert cfg.checkpoint.checkpoint_folder == "checkpoints/unet3d"
    assert cfg.dataset.data_folder == "data/unet3d"  # DLIO strips the trailing slash
    assert cfg.metric.au == pytest.approx(0.90)
    assert derive.steps_per_epoch(cfg, world=1) == 24
    assert derive.demanded_bandwidth_bytes_per_s(cfg) == pytest.approx(7 * 146600628 / 0.323)
    assert derive.sample_dims(cfg) == (12107, 12107)


def test_resnet50_h100_figures():
    cfg = _load("resnet50_h100")
    assert cfg.dataset.record_length_bytes == 114660  # float 114660.07 accepted, floored
    assert derive.samples(cfg) == 1024 * 1251
    assert derive.steps_per_epoch(cfg, world=1) == math.floor(1024 * 1251 / 400) == 3202
    assert derive.steps_per_epoch(cfg, world=8) == 1024 * 1251 // (400 * 8)
    assert derive.dataset_bytes(cfg) == 1024 * 1251 * 114660


def test_checkpoint_workloads():
    cfg = _load("llama3_70b")
    assert not cfg.workflow.train and cfg.workflow.checkpoint
    assert cfg.model.type == "transformer"
    assert (cfg.model.parallelism.tensor, cfg.model.parallelism.pipeline, cfg.model.parallelism.zero_stage) == (8, 1, 3)
    assert cfg.model.transformer.hidden_size == 8192
    assert cfg.checkpoint.num_checkpoints_write == cfg.checkpoint.num_checkpoints_read == 10
    assert cfg.checkpoint.fsync is True
    assert cfg.checkpoint.time_between_checkpoints.mean_s == 5
    assert _load("llama_1t").model.name == "llama_405b"  # DLIO HEAD's quirk, kept


def test_dlio_200_dialect_workload():
    cfg = _load("megatron_deepspeed")
    assert cfg.model.name == "megatron_deepspeed"  # top-level `model: NAME`
    assert cfg.dataset.record_length_bytes == 2048  # `record_length`
    assert cfg.model.model_size_bytes == 30102  # `checkpoint.model_size`
    assert cfg.model.num_layers == 44 and cfg.model.layer_parameters == (129761280, 20971520)
    assert cfg.model.optimization_groups == (1009254400, 865075200, 793600)


def test_mlperf_v3_workloads():
    assert _load("unet3d_b200").train.computation_time.mean_s == pytest.approx(0.162)
    flux = _load("flux_b200")
    assert flux.dataset.format is Format.PARQUET and flux.dataset.record_length_bytes == 2164832
    assert sum(c["size"] for c in flux.dataset.parquet["columns"]) * 4 == 2164832
    dlrm = _load("dlrm_b200")
    sizes = {"float16": 2, "float32": 4, "float64": 8, "int8": 1}
    assert sum(sizes[c["dtype"]] for c in dlrm.dataset.parquet["columns"]) == dlrm.dataset.record_length_bytes == 761
    assert _load("retinanet_mi355").reader.batch_size == 32
    gen = _load("unet3d_datagen")
    assert gen.workflow.generate_data and not gen.workflow.train


def test_default_workload_matches_dlio():
    cfg = _load("default")
    assert (cfg.dataset.num_files_train, cfg.dataset.num_files_eval, cfg.dataset.num_subfolders_train) == (64, 8, 2)
    assert cfg.workflow.evaluation and cfg.evaluation.eval_time.mean_s == 0.5
    assert cfg.train.epochs == 10 and cfg.reader.batch_size_eval == 1
    assert derive.steps_per_epoch(cfg, 1, "valid") == 8
