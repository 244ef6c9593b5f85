"""The ``tf.data`` pipeline behind :func:`dlio_tf.make_dataset` and the ``tensorflow`` loader.

Two paths, chosen by format and storage:

* **native** (``tfrecord`` on local files): the file list is shuffled by the epoch's shared file
  permutation, sharded by file before reading when there are at least as many files as input
  pipelines, read by ``TFRecordDataset(num_parallel_reads=read_threads, buffer_size=transfer_size)``,
  shuffled through a ``shuffle_size`` buffer, batched, parsed batch-wise (DLIO's ``image`` bytes and
  ``size`` int64 features), prefetched. TensorFlow does the reads, so their time is not ours to see.
* **core** (every other format, and every object store): per-file readers backed by dlio_core
  (``Storage.read_into`` + ``Format.parse``) run as ``from_generator`` datasets under
  ``interleave(cycle_length=read_threads)``; read and parse time are measured per file.

With fewer files than pipelines, records are sharded instead (DLIO does the same), which needs a
deterministic order upstream, so it is forced. Every pipeline yields exactly
``steps * replicas_per_pipeline`` batches, ``steps`` being DLIO's ``floor(samples / (batch *
replicas))``: a short shard is padded by repeating itself, so no replica waits at a barrier for
another that ran out.

Elements are dicts: ``image`` (``record_element_type``, shape ``[batch, *record_shape]``; a ragged
``[batch, None]`` when record sizes vary) and ``size`` (int64 ``[batch]``, bytes per record).

Example:
    >>> from dlio_core.config import tiny_run_config
    >>> from dlio_core.generate import generate_dataset
    >>> cfg = tiny_run_config(overrides=("++workload.dataset.num_files_train=8",))
    >>> _ = generate_dataset(cfg, progress=False)
    >>> ds = make_dataset(cfg)
    >>> [tuple(b["image"].shape) for b in ds.take(1)]
    [(4, 64, 64)]
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from dlio_core.config import load_config
from dlio_core.listing import dataset_files, dataset_storage
from dlio_core.reader import epoch_plan, reader_format
from dlio_core.sampling import EpochPlan, Shuffle, draw_random_seed, normalise_shuffle

__all__ = ["make_dataset", "Source", "build_dataset", "input_pipelines", "shared_random_seed", "STAT_KEYS"]

# Per-record figures carried next to the data when the runner asks for them (summed per batch).
STAT_KEYS = ("dl_bytes", "dl_io_s", "dl_decode_s")
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
        storage = dataset_storage(cfg)
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

    @property
    def record_shape(self) -> tuple[int, ...] | None:
        """Shape of one record (DLIO: ``record_dims``, else ``d x d``); None when sizes vary per file."""
        ds = self.cfg.dataset
        dims = tuple(int(v) for v in (ds.record_dims or ()))
        if dims:
            return dims
        if float(ds.record_length_bytes_stdev or 0) > 0:
            return None
        d = int(math.sqrt(float(ds.record_length_bytes)))
        return (d, d)

    @property
    def dtype(self) -> tf.DType:
        return tf.as_dtype(np.dtype(self.cfg.dataset.record_element_type or "uint8"))


def _shard(order: np.ndarray, samples_per_file: int, pipelines: int, index: int) -> tuple[np.ndarray, bool, int]:
    """This pipeline's files, whether records must be sharded instead, and its record count."""
    if len(order) >= pipelines:
        mine = order[index::pipelines]
        return mine, False, len(mine) * samples_per_file
    return order, True, len(range(index, len(order) * samples_per_file, pipelines))


def build_dataset(src: Source, plan: EpochPlan, *, pipelines: int, index: int, batches: int,
                  deterministic: bool = False, stats: bool = False) -> tf.data.Dataset:
    """The batches of pipeline ``index`` of ``pipelines`` for ``plan``'s epoch (``batches`` of them).

    ``plan`` supplies the shared file permutation and the sample-shuffle seed; ``stats`` adds the
    per-record :data:`STAT_KEYS` the runner's loader sums into its batch figures.
    """
    cfg, reader = src.cfg, src.cfg.reader
    spf = int(cfg.dataset.num_samples_per_file)
    order = plan.file_permutation if plan.file_permutation is not None else np.arange(len(src.files))
    order = np.asarray(order, dtype=np.int64)[: len(src.files)]
    files, record_shard, count = _shard(order, spf, pipelines, index)
    threads = max(1, int(reader.read_threads or 0))  # DLIO forces read_threads=0 to 1 on this path
    shape = src.record_shape
    if src.native:
        records = _tfrecord_records(src, files, threads)
    else:
        records = _core_records(src, files, threads, deterministic or record_shard, stats)
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
    parallel = max(1, int(reader.computation_threads or 1))
    if src.native and shape is not None:
        # Parse a whole batch in one op pair (parse_example + decode_raw): no per-record graph calls.
        out = records.batch(src.batch_size, drop_remainder=True)
        batch_shape = (src.batch_size, *shape)
        out = out.map(lambda s: _parse_batch(s, src.dtype, batch_shape, stats), num_parallel_calls=parallel,
                      deterministic=deterministic or None)
    else:
        if src.native:
            records = records.map(lambda s: _parse_one(s, src.dtype, stats), num_parallel_calls=parallel,
                                  deterministic=deterministic or None)
        if shape is None:
            out = records.ragged_batch(src.batch_size, drop_remainder=True)
        else:
            out = records.batch(src.batch_size, drop_remainder=True)
    out = out.take(batches)
    prefetch = int(reader.prefetch_size or 0)
    out = out.prefetch(prefetch if prefetch > 0 else tf.data.AUTOTUNE)
    opts = tf.data.Options()
    opts.deterministic = bool(deterministic or record_shard)
    # We shard ourselves; tf.distribute must not shard again (AutoShardPolicy.FILE would drop files).
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return out.with_options(opts)


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


class _FileReader:
    """Reads one whole file through dlio_core and yields its records (a ``from_generator`` body).

    The file's bytes, read seconds and parse seconds ride on its first record so that a batch's
    sums are the figures of the files it started; nothing is formatted per record.
    """

    def __init__(self, src: Source, stats: bool) -> None:
        self.storage = src.storage
        self.fmt = reader_format(src.cfg)  # bound to the dataset section's options
        self.paths = [src.storage.join(rel) for rel, _ in src.files]
        self.sizes = [int(size) for _, size in src.files]
        self.spf = int(src.cfg.dataset.num_samples_per_file)
        self.flat = src.record_shape is None
        self.stats = stats

    def read(self, i: int) -> tuple[list[np.ndarray], int, float, float]:
        path, size = self.paths[i], self.sizes[i]
        if getattr(self.fmt, "whole_file", True):
            t0 = time.perf_counter()
            buf = np.empty(size, dtype=np.uint8)  # fresh per file: TF may alias numpy memory it is given
            n = self.storage.read_into(path, buf)
            t1 = time.perf_counter()
            if n != size:
                raise OSError(f"{path}: read {n} bytes, expected {size} (file changed or truncated?)")
            x = self.fmt.parse(buf, path)
            return [x[..., s] for s in range(self.spf)], n, t1 - t0, time.perf_counter() - t1
        reader = self.fmt.open_reader(self.storage, path, size)
        try:
            n, _, views, io_s, decode_s = reader.read(list(range(self.spf)), True)
        finally:
            reader.close()
        return list(views), n, io_s, decode_s

    def __call__(self, i: Any):
        # One element per file (its records stacked on axis 0), unbatched by tf.data: one Python call
        # per file rather than per record, which is what from_generator's per-call cost demands.
        samples, n, io_s, decode_s = self.read(int(i))
        k = len(samples)
        images = np.stack([s.reshape(-1) if self.flat else s for s in samples])
        rec = {"image": images, "size": np.full(k, samples[0].nbytes if k else 0, np.int64)}
        if self.stats:
            first = np.zeros(k, np.float64)
            first[:1] = 1.0  # the file's figures ride on its first record
            rec.update(dl_bytes=(first * n).astype(np.int64), dl_io_s=first * io_s, dl_decode_s=first * decode_s)
        yield rec


def _core_records(src: Source, files: np.ndarray, threads: int, deterministic: bool, stats: bool) -> tf.data.Dataset:
    shape = src.record_shape
    spec: dict[str, tf.TensorSpec] = {  # per file: records on axis 0
        "image": tf.TensorSpec((None, *shape) if shape is not None else (None, None), src.dtype),
        "size": tf.TensorSpec((None,), tf.int64),
    }
    if stats:
        spec.update(dl_bytes=tf.TensorSpec((None,), tf.int64), dl_io_s=tf.TensorSpec((None,), tf.float64),
                    dl_decode_s=tf.TensorSpec((None,), tf.float64))
    reader = _FileReader(src, stats)
    ids = tf.data.Dataset.from_tensor_slices(tf.constant(files, dtype=tf.int64))
    return ids.interleave(
        lambda i: tf.data.Dataset.from_generator(reader, output_signature=spec, args=(i,)),
        cycle_length=threads, num_parallel_calls=threads, deterministic=deterministic).unbatch()


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


def make_dataset(config: Any, *, overrides: Sequence[str] = (), input_context: Any = None, split: str = "train",
                 epoch: int = 1, deterministic: bool = False, random_seed: int | None = None,
                 config_dir: str | None = None) -> tf.data.Dataset:
    """One epoch of batches of the workload ``config`` as a ``tf.data.Dataset`` (add ``.repeat()``).

    ``config`` is a YAML path, a bundled workload name or a ``RunConfig``; ``overrides`` are DLIO's
    ``++workload.a.b=v`` strings. ``reader.batch_size`` is per replica (DLIO's per-accelerator batch),
    which is what ``strategy.distribute_datasets_from_function`` expects: pass its ``input_context``
    and each input pipeline reads its own shard, ``steps * replicas_per_pipeline`` batches.
    ``epoch`` picks the epoch's shuffles (``seed + epoch`` with ``seed_change_epoch``);
    ``deterministic=True`` fixes the order for a given seed (slower: readers wait their turn).
    ``sample_shuffle: random`` needs one ``random_seed`` shared by every pipeline when there are several.

    Example (``config`` may be any bundled workload; the data must exist):
        >>> from dlio_core.config import tiny_run_config
        >>> from dlio_core.generate import generate_dataset
        >>> cfg = tiny_run_config(overrides=("++workload.dataset.num_files_train=8",))
        >>> _ = generate_dataset(cfg, progress=False)
        >>> ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
        >>> len(list(make_dataset(cfg, input_context=ctx)))
        1
    """
    cfg = load_config(config, overrides, config_dir=config_dir)
    pipelines, index, replicas = input_pipelines(input_context)
    random_seed = shared_random_seed(cfg, pipelines, random_seed)
    src = Source.from_config(cfg, split)
    local = replicas // pipelines
    plan = epoch_plan(cfg, split=split, epoch=epoch, world=replicas, rank=index * local, random_seed=random_seed)
    return build_dataset(src, plan, pipelines=pipelines, index=index, batches=plan.steps * local,
                         deterministic=deterministic)
