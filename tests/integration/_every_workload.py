"""Scale-down overrides for running a bundled workload at test size (test_every_workload and its DALI twin).

Only sizes change: file and row counts, record sizes, batch sizes (at most 4, so 4 files make whole
steps), epochs, compute time, checkpoint counts and the model's dimensions; the format, the loader,
the read threads, the shuffles, the storage type and every other value stay the workload's own. Paths move into the test's folder (and object stores onto the test S3 server), since a
workload's own paths (``checkpoints/llama_8b``, ``s3://training-bucket``) are not the test's to write.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from dlio_core.config import ConfigWarning, load_config

__all__ = ["Scaled", "scaled", "stock"]

TRAIN_FILES = 4          # per workload; with batch <= 4 and at most 4 samples a file, every epoch is whole steps
SAMPLES_PER_FILE = 4
RECORD_BYTES = 4096
OBJECT_STORES = ("s3", "s3dlio")


def stock(name: str, overrides: tuple[str, ...] = ()):
    """The bundled workload as shipped, or with ``overrides`` (its warnings silenced: validate's tests say them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return load_config(name, list(overrides))


@dataclass(frozen=True)
class Scaled:
    """A workload's test-size run: its overrides, and what the run must read."""

    name: str
    overrides: tuple[str, ...]
    data: Path | str
    out: Path
    checkpoints: str
    train_files: int
    samples_per_file: int
    epochs: int
    batch_size: int


def _shrink(value: int, ceiling: int) -> int:
    return max(1, min(int(value), ceiling))


def _dataset(cfg, data: Path) -> list[str]:
    d = cfg.dataset
    spf = _shrink(d.num_samples_per_file, SAMPLES_PER_FILE)
    record = _shrink(d.record_length_bytes, RECORD_BYTES)
    scale = record / max(d.record_length_bytes, 1)
    out = [f"++workload.dataset.data_folder={data}",
           f"++workload.dataset.num_files_train={TRAIN_FILES}",
           f"++workload.dataset.num_files_eval={min(d.num_files_eval, 2)}",
           f"++workload.dataset.num_samples_per_file={spf}",
           f"++workload.dataset.record_length_bytes={record}",
           f"++workload.dataset.record_length_bytes_stdev={int(d.record_length_bytes_stdev * scale)}",
           f"++workload.dataset.record_length_bytes_resize={int(d.record_length_bytes_resize * scale)}",
           f"++workload.dataset.num_subfolders_train={min(d.num_subfolders_train, 2)}",
           f"++workload.dataset.num_subfolders_eval={min(d.num_subfolders_eval, 2)}"]
    if d.record_dims:  # a shape instead of a length: the same number of axes, each small
        out.append(f"++workload.dataset.record_dims=[{','.join(str(min(x, 16)) for x in d.record_dims)}]")
    if "row_group_size" in d.parquet:
        out.append(f"++workload.dataset.parquet.row_group_size={_shrink(d.parquet['row_group_size'], 2)}")
    if d.hdf5 is not None and d.hdf5.chunk_dims:
        out.append(f"++workload.dataset.hdf5.chunk_dims=[{','.join(str(min(x, 16)) for x in d.hdf5.chunk_dims)}]")
    return out


def _model(cfg) -> list[str]:
    """Few layers, a small hidden size, and tensor/pipeline parallelism that fit one rank."""
    m = cfg.model
    out = [f"++workload.model.model_size_bytes={min(m.model_size_bytes, 65536)}"]
    if m.num_layers > 0:
        out.append(f"++workload.model.num_layers={min(m.num_layers, 2)}")
    if m.layer_parameters:
        out.append(f"++workload.model.layer_parameters=[{','.join(str(min(x, 4096)) for x in m.layer_parameters)}]")
    if m.optimization_groups:
        out.append(f"++workload.model.optimization_groups=[{','.join(str(min(x, 4096)) for x in m.optimization_groups)}]")
    if m.parallelism is not None:
        out += ["++workload.model.parallelism.tensor=1", "++workload.model.parallelism.pipeline=1"]
    if m.transformer is not None:
        t = m.transformer
        heads = min(t.num_attention_heads, 4)
        kv = max(1, min(t.num_kv_heads, heads))
        while heads % kv:  # grouped-query attention needs heads to be a multiple of the kv heads
            kv -= 1
        out += [f"++workload.model.transformer.vocab_size={min(t.vocab_size, 512)}",
                f"++workload.model.transformer.hidden_size={min(t.hidden_size, 64)}",
                f"++workload.model.transformer.ffn_hidden_size={min(t.ffn_hidden_size, 128)}",
                f"++workload.model.transformer.num_attention_heads={heads}",
                f"++workload.model.transformer.num_kv_heads={kv}"]
    return out


def _checkpoint(cfg, folder: str, epochs: int) -> list[str]:
    c = cfg.checkpoint
    out = [f"++workload.checkpoint.checkpoint_folder={folder}",
           f"++workload.checkpoint.checkpoint_after_epoch={min(c.checkpoint_after_epoch, epochs)}",
           f"++workload.checkpoint.epochs_between_checkpoints={min(c.epochs_between_checkpoints, 1)}"]
    if c.steps_between_checkpoints > 0:
        out.append(f"++workload.checkpoint.steps_between_checkpoints={min(c.steps_between_checkpoints, 2)}")
    if c.num_checkpoints_write > 0:
        out.append(f"++workload.checkpoint.num_checkpoints_write={min(c.num_checkpoints_write, 2)}")
    if c.num_checkpoints_read > 0:
        out.append(f"++workload.checkpoint.num_checkpoints_read={min(c.num_checkpoints_read, 2)}")
    if c.time_between_checkpoints.mean_s > 0:
        out.append("++workload.checkpoint.time_between_checkpoints=0")
    return out


def scaled(name: str, folder: Path, *, s3: tuple[str, dict] | None = None) -> Scaled:
    """``name`` at test size in ``folder``; ``s3`` = (bucket URI, storage options) of the test S3 server
    for workloads whose storage is an object store."""
    cfg = stock(name)
    epochs = min(cfg.train.epochs, 2)
    batch = _shrink(cfg.reader.batch_size, 4)
    data: Path | str = folder / "data"
    out = folder / "out"
    checkpoints = str(folder / "checkpoints")
    if cfg.checkpoint.checkpoint_folder.startswith("file://"):  # hybrid_storage: local, whatever the data's store
        checkpoints = f"file://{checkpoints}"
    storage: list[str] = []
    if cfg.storage.storage_type.value in OBJECT_STORES:
        assert s3 is not None, f"{name} keeps its data in an object store: pass the test S3 server"
        bucket, options = s3
        data = "data"  # under storage_root, as the workloads place it
        root = f"s3://{bucket}/" if cfg.storage.storage_root.startswith("s3://") else bucket  # the workload's form
        storage = [f"++workload.storage.storage_root={root}",
                   *(f"++workload.storage.storage_options.{k}={v}" for k, v in options.items())]
        if cfg.storage.endpoint_uris:  # the same server behind each of the workload's endpoints
            eps = ",".join([options["endpoint_url"]] * len(cfg.storage.endpoint_uris))
            storage.append(f"++workload.storage.endpoint_uris=[{eps}]")
        if cfg.checkpoint.checkpoint_folder.startswith("s3://"):
            checkpoints = f"s3://{bucket}/checkpoints"
    overrides = [*_dataset(cfg, data), *_model(cfg), *storage,
                 f"++workload.reader.batch_size={batch}",
                 f"++workload.reader.batch_size_eval={_shrink(cfg.reader.batch_size_eval, 4)}",
                 f"++workload.train.epochs={epochs}", "++workload.train.computation_time=0",
                 "++workload.train.total_training_steps=-1", "++workload.evaluation.eval_time=0",
                 *_checkpoint(cfg, checkpoints, epochs), f"++hydra.run.dir={out}"]
    spf = _shrink(cfg.dataset.num_samples_per_file, SAMPLES_PER_FILE)
    return Scaled(name, tuple(overrides), data, out, checkpoints, TRAIN_FILES, spf, epochs, batch)
