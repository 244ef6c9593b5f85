"""The ``tf.data`` pipeline behind :func:`dlio_tf.make_dataset` and the ``tensorflow`` loader.

Two paths, chosen by format and storage:

* **native** (``tfrecord`` on local files): the file list is shuffled by the epoch's shared file
  permutation, sharded by file before reading when there are at least as many files as input
  pipelines, read by ``TFRecordDataset(num_parallel_reads=read_threads, buffer_size=transfer_size)``,
  shuffled through a ``shuffle_size`` buffer, batched, parsed batch-wise (DLIO's ``image`` bytes and
  ``size`` int64 features), prefetched. TensorFlow does the reads, so their time is not ours to see.
  With fewer files than pipelines, records are sharded instead (DLIO does the same), which needs a
  deterministic order upstream, so it is forced; a short shard is padded by repeating itself.
* **core** (every other format, and every object store): dl-driver's engine reads the plan's batches
  on its threads and hands each whole batch to ``tf.data`` (:mod:`dlio_tf._batches`); read and parse
  time are measured per batch. Every pipeline yields exactly ``steps * replicas_per_pipeline`` batches.

A sample has the shape and dtype of the format's own samples, the same in every plugin (the torch
plugin yields them too): ``(d1, d2)`` npz/npy/hdf5 records, TFRecord records as their flat ``image``
bytes. Elements are dicts: ``image`` (``[batch, *sample_shape]``; a ragged ``[batch, None]`` of
flattened samples when sizes vary), ``size`` (int64 ``[batch]``, bytes per sample) and ``label``
(int64 ``[batch]``, when asked for and the files carry labels: npz ``y``). The dataset knows its
cardinality (``len(ds)``; Keras needs no ``steps_per_epoch``).

Example:
    >>> from dlio_core.config import tiny_run_config
    >>> from dlio_core.generate import generate_dataset
    >>> from dlio_core.reader import epoch_plan
    >>> cfg = tiny_run_config(overrides=("++workload.dataset.num_files_train=8",))
    >>> _ = generate_dataset(cfg, progress=False)
    >>> ds = build_dataset(Source.from_config(cfg), epoch_plan(cfg, epoch=1), pipelines=1, index=0, batches=2)
    >>> len(ds), [tuple(b["image"].shape) for b in ds.take(1)]
    (2, [(4, 64, 64)])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from dlio_core.listing import dataset_files, dataset_storage
from dlio_core.reader import check_samples_per_file, reader_format
from dlio_core.sampling import EpochPlan, Shuffle, draw_random_seed, normalise_shuffle

from ._batches import STAT_KEYS, engine_batches

__all__ = ["Source", "build_dataset", "input_pipelines", "shared_random_seed", "STAT_KEYS"]
# TFRecord framing around each serialized record: 8-byte length, 4-byte length CRC, 4-byte data CRC.
_TFRECORD_FRAMING_BYTES = 16
_FEATURES = {"image": tf.io.FixedLenFeature([], tf.string), "size": tf.io.FixedLenFeature([], tf.int64)}


def _name(value: Any) -> str:
    return str(getattr(value, "value", value)).lower()


@dataclass(frozen=True)
class Source:
    """What a pipeline reads: the config, its storage and the split's ``(relpath, size)`` files."""

    cfg: Any
    storage: Any
    files: tuple[tuple[str, int], ...]
    split: str = "train"

    @classmethod
    def from_config(cls, cfg: Any, split: str = "train") -> "Source":
        """The split's files; ``DatasetError`` when they hold another ``num_samples_per_file`` than the
        config says (checked here, when the dataset is built, not inside TensorFlow's iteration)."""
        storage = dataset_storage(cfg)
        check_samples_per_file(cfg, storage)
        return cls(cfg, storage, tuple(dataset_files(cfg, storage, split)), split)

    @property
    def format(self) -> str:
        return _name(self.cfg.dataset.format)

    @property
    def native(self) -> bool:
        """TFRecord on local files: TensorFlow's own reader does the I/O."""
        return self.format == "tfrecord" and self.storage.local_path("") is not None

    @property
    def batch_size(self) -> int:
        r = self.cfg.reader
        return int(r.batch_size if self.split == "train" else r.batch_size_eval)

    variable_size: bool | None = None  # None: from the config (record_length_bytes_stdev > 0)

    @cached_property
    def sample(self) -> np.ndarray:
        """The first sample of the first file, read through dlio_core: what every sample looks like."""
        if not self.files:
            raise ValueError(f"split {self.split!r} has no files to read")
        fmt = reader_format(self.cfg)
        rel, size = self.files[0]
        path = self.storage.join(rel)
        if getattr(fmt, "whole_file", True):
            buf = np.empty(int(size), dtype=np.uint8)
            self.storage.read_into(path, buf)
            return np.array(fmt.parse(buf, path)[..., 0])
        reader = fmt.open_reader(self.storage, path, int(size))
        try:
            return np.array(reader.read([0], True)[2][0])
        finally:
            reader.close()

    @property
    def varies(self) -> bool:
        if self.variable_size is not None:
            return bool(self.variable_size)
        return float(self.cfg.dataset.record_length_bytes_stdev or 0) > 0

    @property
    def record_shape(self) -> tuple[int, ...] | None:
        """Shape of one sample, as the format reads it (the torch plugin's too); None when sizes vary."""
        return None if self.varies else tuple(self.sample.shape)

    @property
    def dtype(self) -> tf.DType:
        return tf.as_dtype(self.sample.dtype)

    @property
    def has_labels(self) -> bool:
        """Whether the files carry labels (npz ``y``)."""
        from dlio_core.labels import has_labels

        return has_labels(self.format)


def _shard(order: np.ndarray, samples_per_file: int, pipelines: int, index: int) -> tuple[np.ndarray, bool, int]:
    """This pipeline's files, whether records must be sharded instead, and its record count."""
    if len(order) >= pipelines:
        mine = order[index::pipelines]
        return mine, False, len(mine) * samples_per_file
    return order, True, len(range(index, len(order) * samples_per_file, pipelines))


def build_dataset(src: Source, plan: EpochPlan, *, pipelines: int, index: int, batches: int,
                  deterministic: bool = False, stats: bool = False, labels: bool = False,
                  plans: Sequence[EpochPlan] | None = None, transform: Callable[[dict], Any] | None = None,
                  autotune: bool = False) -> tf.data.Dataset:
    """The batches of pipeline ``index`` of ``pipelines`` for ``plan``'s epoch (``batches`` of them).

    ``plan`` supplies the shared file permutation and the sample-shuffle seed (on the core path,
    ``plans`` are this pipeline's replicas' plans, read one after the other); ``stats`` adds the
    :data:`STAT_KEYS` the runner's loader sums into its batch figures; ``labels`` adds ``label`` where
    the files carry labels; ``transform`` maps each batch dict (``Dataset.map``, parallel). ``autotune``
    lets tf.data size the parse parallelism and the prefetch (the plugin's API); without it they are
    DLIO's ``reader.computation_threads`` and ``reader.prefetch_size`` (the runner's emulation).
    """
    if src.native:
        out = _native_batches(src, plan, pipelines=pipelines, index=index, batches=batches,
                              deterministic=deterministic, stats=stats, autotune=autotune)
        record_shard = len(src.files) < pipelines
    else:
        mine = list(plans) if plans else [plan]
        per_plan = [max(0, min(p.steps, batches - sum(q.steps for q in mine[:i]))) for i, p in enumerate(mine)]
        out = engine_batches(src, mine, steps=per_plan, labels=labels and src.has_labels, stats=stats)
        record_shard = False
    out = out.take(batches).apply(tf.data.experimental.assert_cardinality(batches))
    if transform is not None:
        out = out.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    prefetch = 0 if autotune else int(src.cfg.reader.prefetch_size or 0)
    out = out.prefetch(prefetch if prefetch > 0 else tf.data.AUTOTUNE)
    opts = tf.data.Options()
    opts.deterministic = bool(deterministic or record_shard or not src.native)
    # We shard ourselves; tf.distribute must not shard again (AutoShardPolicy.FILE would drop files).
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return out.with_options(opts)


def _native_batches(src: Source, plan: EpochPlan, *, pipelines: int, index: int, batches: int,
                    deterministic: bool, stats: bool, autotune: bool = False) -> tf.data.Dataset:
    """TFRecord files read and parsed by TensorFlow itself (see the module doc)."""
    cfg, reader = src.cfg, src.cfg.reader
    spf = int(cfg.dataset.num_samples_per_file)
    order = plan.file_permutation if plan.file_permutation is not None else np.arange(len(src.files))
    order = np.asarray(order, dtype=np.int64)[: len(src.files)]
    files, record_shard, count = _shard(order, spf, pipelines, index)
    threads = max(1, int(reader.read_threads or 0))  # DLIO forces read_threads=0 to 1 on this path
    records = _tfrecord_records(src, files, threads)
    if record_shard:
        records = records.shard(pipelines, index)
    seed = plan.sample_seed
    if normalise_shuffle(reader.sample_shuffle) is not Shuffle.OFF and seed is not None:
        records = records.shuffle(max(1, int(reader.shuffle_size or 1)), seed=int(seed) % (1 << 31))
    if count < batches * src.batch_size:
        if count == 0:
            raise ValueError(f"pipeline {index} of {pipelines} has no records to read ({len(src.files)} files x "
                             f"{spf} samples); use fewer input pipelines or more files")
        records = records.repeat()  # pad a short shard so every pipeline yields the same batch count
    parallel = tf.data.AUTOTUNE if autotune else max(1, int(reader.computation_threads or 1))
    shape = src.record_shape
    if shape is not None:
        # Parse a whole batch in one op pair (parse_example + decode_raw): no per-record graph calls.
        out = records.batch(src.batch_size, drop_remainder=True)
        batch_shape = (src.batch_size, *shape)
        return out.map(lambda s: _parse_batch(s, src.dtype, batch_shape, stats), num_parallel_calls=parallel,
                       deterministic=deterministic or None)
    records = records.map(lambda s: _parse_one(s, src.dtype, stats), num_parallel_calls=parallel,
                          deterministic=deterministic or None)
    return records.ragged_batch(src.batch_size, drop_remainder=True)


def _tfrecord_records(src: Source, files: np.ndarray, threads: int) -> tf.data.Dataset:
    paths = [src.storage.local_path(src.files[int(i)][0]) for i in files]
    names = tf.data.Dataset.from_tensor_slices(tf.constant(paths, dtype=tf.string))
    transfer = src.cfg.reader.transfer_size
    return tf.data.TFRecordDataset(names, buffer_size=int(transfer) if transfer else None,
                                   num_parallel_reads=threads if threads > 1 else None)


def _framed_bytes(serialized: tf.Tensor) -> tf.Tensor:
    """Bytes the reader consumed for these records: payload plus TFRecord framing."""
    return tf.cast(tf.strings.length(serialized), tf.int64) + _TFRECORD_FRAMING_BYTES


def _parse_batch(serialized: tf.Tensor, dtype: tf.DType, shape: tuple[int, ...], stats: bool) -> dict:
    feats = tf.io.parse_example(serialized, _FEATURES)
    image = tf.reshape(tf.io.decode_raw(feats["image"], dtype), shape)  # shape: (batch, *record)
    out = {"image": image, "size": feats["size"]}
    if stats:
        out["dl_bytes"] = _framed_bytes(serialized)
    return out


def _parse_one(serialized: tf.Tensor, dtype: tf.DType, stats: bool) -> dict:
    feats = tf.io.parse_single_example(serialized, _FEATURES)
    out = {"image": tf.io.decode_raw(feats["image"], dtype), "size": feats["size"]}
    if stats:
        out["dl_bytes"] = _framed_bytes(serialized)
    return out


def input_pipelines(input_context: Any) -> tuple[int, int, int]:
    """``(pipelines, index, replicas)`` from a ``tf.distribute.InputContext`` (or one of each)."""
    if input_context is None:
        return 1, 0, 1
    pipelines = int(input_context.num_input_pipelines)
    replicas = int(input_context.num_replicas_in_sync)
    if replicas % pipelines:
        raise ValueError(f"input_context: {replicas} replicas do not split evenly over {pipelines} pipelines")
    return pipelines, int(input_context.input_pipeline_id), replicas


def shared_random_seed(cfg: Any, pipelines: int, random_seed: int | None) -> int | None:
    """The seed for ``shuffle: random``: the given one, else one drawn here (one input pipeline only: several
    must share one seed, or their shards would overlap); ``None`` when nothing shuffles at random."""
    policies = (normalise_shuffle(cfg.reader.file_shuffle), normalise_shuffle(cfg.reader.sample_shuffle))
    if Shuffle.RANDOM not in policies or random_seed is not None:
        return random_seed
    if pipelines > 1:
        raise ValueError("reader.*_shuffle=random with several input pipelines needs random_seed= (one seed "
                         "shared by all of them, or their shards would overlap); or use shuffle 'seed'")
    return draw_random_seed()
