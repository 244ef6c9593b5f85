"""The core path of :mod:`dlio_tf._pipeline`: dl-driver's engine reads, ``tf.data`` receives whole batches.

Every format and storage backend dlio_core reads goes through here. The engine's reader threads do
the I/O and parsing (GIL released in the reads), in the plan's order, with bounded read-ahead; each
``from_generator`` call hands TensorFlow a group of up to ``GROUP_BATCHES`` batches, each stacked straight
into its row of the group's arrays, which ``unbatch`` splits into batches in C++: Python runs once per
batch (a stacking copy, a label gather), never per sample or per record, and ``from_generator``'s own
cost (about a millisecond a call; it has no parallel calls: tensorflow #13101) once per group. Ragged
batches (samples that vary in size) are handed one per call.

A batch element holds ``image`` (``[batch, *sample_shape]``, the shape and dtype of the format's own
samples, as the torch plugin yields them; a ``tf.RaggedTensor`` ``[batch, None]`` of flattened
samples when sizes vary), ``size`` (bytes per sample), ``label`` (int64, when asked for and the files
carry labels: npz ``y``) and, for the runner, the batch's :data:`STAT_KEYS` figures.

Example:
    >>> from dlio_core.config import tiny_run_config
    >>> from dlio_core.generate import generate_dataset
    >>> from dlio_core.reader import epoch_plan
    >>> from dlio_tf._pipeline import Source
    >>> cfg = tiny_run_config(overrides=("++workload.dataset.num_files_train=8",))
    >>> _ = generate_dataset(cfg, progress=False)
    >>> src = Source.from_config(cfg)
    >>> ds = engine_batches(src, [epoch_plan(cfg, epoch=1)], labels=True, stats=False)
    >>> [(tuple(b["image"].shape), b["label"].numpy().tolist()) for b in ds]
    [((4, 64, 64), [0, 0, 0, 0]), ((4, 64, 64), [0, 0, 0, 0])]
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import tensorflow as tf

__all__ = ["STAT_KEYS", "engine_batches"]

# Per-batch figures carried next to the data when the runner asks for them.
STAT_KEYS = ("dl_bytes", "dl_io_s", "dl_decode_s")


# Batches handed to tf.data per Python call when samples have one shape: ``from_generator`` costs about a
# millisecond a call on a small machine, more than reading a batch; ``unbatch`` splits each group in C++.
GROUP_BATCHES = 16
GROUP_MAX_BYTES = 8 << 20  # fewer batches a group when they are large (memory held per group)
# Larger batches go one a call: there the call's cost is small beside the batch, and grouped 1 MiB batches
# measured slower (7.0k against 12.2k samples/s, interleaved), grouped 256 KiB ones faster (12.5-14k vs 9.7k).
GROUP_MAX_BATCH_BYTES = 256 << 10


def _spec(src: Any, labels: bool, stats: bool, group: bool = False) -> dict[str, Any]:
    """The element spec of one batch; with ``group``, of a group of batches (one more leading axis)."""
    shape, dtype = src.record_shape, src.dtype
    lead = (None, None) if group else (None,)
    image = (tf.RaggedTensorSpec((None, None), dtype, ragged_rank=1) if shape is None
             else tf.TensorSpec((*lead, *shape), dtype))
    spec: dict[str, Any] = {"image": image, "size": tf.TensorSpec(lead, tf.int64)}
    if labels:
        spec["label"] = tf.TensorSpec(lead, tf.int64)
    if stats:
        each = lead[:-1]
        spec.update(dl_bytes=tf.TensorSpec(each, tf.int64), dl_io_s=tf.TensorSpec(each, tf.float64),
                    dl_decode_s=tf.TensorSpec(each, tf.float64))
    return spec


def group_batches(src: Any) -> int:
    """Batches per ``from_generator`` call: up to ``GROUP_BATCHES`` small batches of fixed-shape samples, 1
    for batches over ``GROUP_MAX_BATCH_BYTES`` and when sizes vary (ragged batches go one at a time)."""
    shape = src.record_shape
    if shape is None:
        return 1
    batch_bytes = max(1, src.batch_size * int(np.prod(shape)) * src.dtype.size)
    if batch_bytes > GROUP_MAX_BATCH_BYTES:
        return 1
    return max(1, min(GROUP_BATCHES, GROUP_MAX_BYTES // batch_bytes))


class _Batches:
    """The generator body: this pipeline's plans, read one after the other by a fresh engine per iteration
    (so the dataset can be iterated again: each ``iter()`` is a new epoch pass). With ``group`` > 1 it
    yields groups of up to ``group`` batches, each stacked straight into its row of the group's arrays."""

    def __init__(self, src: Any, plans: Sequence[Any], steps: Sequence[int], labels: bool, stats: bool,
                 group: int = 1) -> None:
        self.src, self.plans, self.steps, self.labels, self.stats = src, list(plans), list(steps), labels, stats
        self.group = int(group)
        self._step_labels: Any = None  # each file's labels read once, kept across passes

    def __call__(self) -> Iterator[dict[str, Any]]:
        from dlio_core.engine.plan_blocks import PlanTail
        from dlio_core.reader import native_reader

        src = self.src
        if self.labels and self._step_labels is None:
            from dlio_core.labels import StepLabels

            self._step_labels = StepLabels.of_files(src.storage, src.files, src.cfg.dataset.num_samples_per_file)
        for plan, steps in zip(self.plans, self.steps):
            engine = native_reader(src.cfg, src.storage, src.files, rank=plan.rank, keep_samples=True)
            plan = PlanTail(plan)  # steps planned a block at a time, shared by the engine and the labels
            batches = engine.epoch(plan, max_steps=steps)
            try:
                if self.group > 1:
                    yield from self._groups(batches, plan, steps)
                    continue
                for batch in batches:
                    try:
                        yield self._element(batch, plan, src.record_shape)
                    finally:
                        batch.release()
            finally:
                batches.close()
                engine.close()

    def _groups(self, batches: Iterator[Any], plan: Any, steps: int) -> Iterator[dict[str, Any]]:
        """Groups of ``self.group`` batches (the last may be shorter), fresh arrays each (tf.data may keep
        a reference to a numpy array's memory instead of copying it)."""
        shape, dtype = self.src.record_shape, self.src.sample.dtype
        size = int(plan.batch_size)
        left = steps
        while left > 0:
            n = min(self.group, left)
            out = {"image": np.empty((n, size, *shape), dtype), "size": np.empty((n, size), np.int64)}
            if self.labels:
                out["label"] = np.empty((n, size), np.int64)
            if self.stats:
                out.update(dl_bytes=np.empty(n, np.int64), dl_io_s=np.empty(n), dl_decode_s=np.empty(n))
            for i in range(n):
                batch = next(batches)
                try:
                    self._fill(out, i, batch, plan, shape)
                finally:
                    batch.release()
            left -= n
            yield out

    def _fill(self, out: dict[str, Any], i: int, batch: Any, plan: Any, shape: tuple[int, ...]) -> None:
        samples = _checked(batch.samples, shape)
        if len(samples) != out["image"].shape[1]:
            raise ValueError(f"step {batch.step} has {len(samples)} samples, not the batch size "
                             f"{out['image'].shape[1]}")
        np.stack(samples, out=out["image"][i])  # a copy: the engine's buffers go back to its pool at once
        out["size"][i] = samples[0].nbytes
        if self.labels:
            out["label"][i] = self._step_labels(samples, *plan.batch(batch.step))
        if self.stats:
            out["dl_bytes"][i], out["dl_io_s"][i] = batch.bytes_read, batch.io_s or 0.0
            out["dl_decode_s"][i] = batch.decode_s or 0.0

    def _element(self, batch: Any, plan: Any, shape: tuple[int, ...] | None) -> dict[str, Any]:
        samples = batch.samples
        if shape is None:
            flat = [np.ravel(s) for s in samples]
            image: Any = tf.RaggedTensor.from_row_lengths(np.concatenate(flat), [f.size for f in flat])
        else:
            image = np.stack(_checked(samples, shape))  # a copy: the engine's buffers go back to its pool at once
        out: dict[str, Any] = {"image": image, "size": np.array([s.nbytes for s in samples], np.int64)}
        if self.labels:
            out["label"] = self._step_labels(samples, *plan.batch(batch.step))
        if self.stats:
            out.update(dl_bytes=np.int64(batch.bytes_read), dl_io_s=np.float64(batch.io_s or 0.0),
                       dl_decode_s=np.float64(batch.decode_s or 0.0))
        return out


def _checked(samples: Sequence[np.ndarray], shape: tuple[int, ...]) -> Sequence[np.ndarray]:
    """``samples``, when every one has ``shape`` (else the error saying how to read samples that vary)."""
    if any(s.shape != shape for s in samples):
        bad = next(s.shape for s in samples if s.shape != shape)
        raise ValueError(f"a sample of shape {bad} in a dataset of {shape} samples; samples vary in size: "
                         "set dataset.record_length_bytes_stdev > 0 (or from_uri(variable_size=True))")
    return samples


def engine_batches(src: Any, plans: Sequence[Any], *, steps: Sequence[int] | None = None, labels: bool = False,
                   stats: bool = False) -> tf.data.Dataset:
    """The batches of ``plans`` (one after the other; ``steps[i]`` of plan ``i``, default all) as a dataset."""
    counts = [p.steps for p in plans] if steps is None else [min(int(s), p.steps) for s, p in zip(steps, plans)]
    group = group_batches(src)
    gen = _Batches(src, plans, counts, labels, stats, group=group)
    if group == 1:
        return tf.data.Dataset.from_generator(gen, output_signature=_spec(src, labels, stats))
    return tf.data.Dataset.from_generator(gen, output_signature=_spec(src, labels, stats, group=True)).unbatch()
