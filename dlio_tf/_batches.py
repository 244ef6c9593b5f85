"""The core path of :mod:`dlio_tf._pipeline`: dl-driver's engine reads, ``tf.data`` receives whole batches.

Every format and storage backend dlio_core reads goes through here. The engine's reader threads do
the I/O and parsing (GIL released in the reads), in the plan's order, with bounded read-ahead; one
``from_generator`` call per batch hands TensorFlow one stacked array, so Python runs once per batch,
never per sample or per record (``from_generator`` has no parallel calls: tensorflow #13101).

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


def _spec(src: Any, labels: bool, stats: bool) -> dict[str, Any]:
    shape, dtype = src.record_shape, src.dtype
    image = (tf.RaggedTensorSpec((None, None), dtype, ragged_rank=1) if shape is None
             else tf.TensorSpec((None, *shape), dtype))
    spec: dict[str, Any] = {"image": image, "size": tf.TensorSpec((None,), tf.int64)}
    if labels:
        spec["label"] = tf.TensorSpec((None,), tf.int64)
    if stats:
        spec.update(dl_bytes=tf.TensorSpec((), tf.int64), dl_io_s=tf.TensorSpec((), tf.float64),
                    dl_decode_s=tf.TensorSpec((), tf.float64))
    return spec


class _Batches:
    """The generator body: this pipeline's plans, read one after the other by a fresh engine per iteration
    (so the dataset can be iterated again: each ``iter()`` is a new epoch pass)."""

    def __init__(self, src: Any, plans: Sequence[Any], steps: Sequence[int], labels: bool, stats: bool) -> None:
        self.src, self.plans, self.steps, self.labels, self.stats = src, list(plans), list(steps), labels, stats

    def __call__(self) -> Iterator[dict[str, Any]]:
        from dlio_core.labels import labels_of_step
        from dlio_core.reader import native_reader

        src = self.src
        shape = src.record_shape
        for plan, steps in zip(self.plans, self.steps):
            engine = native_reader(src.cfg, src.storage, src.files, rank=plan.rank, keep_samples=True)
            batches = engine.epoch(plan, max_steps=steps)
            try:
                for batch in batches:
                    try:
                        yield self._element(batch, plan, shape, labels_of_step)
                    finally:
                        batch.release()
            finally:
                batches.close()
                engine.close()

    def _element(self, batch: Any, plan: Any, shape: tuple[int, ...] | None, labels_of_step: Any) -> dict[str, Any]:
        samples = batch.samples
        if shape is None:
            flat = [np.ravel(s) for s in samples]
            image: Any = tf.RaggedTensor.from_row_lengths(np.concatenate(flat), [f.size for f in flat])
        else:
            if any(s.shape != shape for s in samples):
                bad = next(s.shape for s in samples if s.shape != shape)
                raise ValueError(f"a sample of shape {bad} in a dataset of {shape} samples; samples vary in size: "
                                 "set dataset.record_length_bytes_stdev > 0 (or from_uri(variable_size=True))")
            image = np.stack(samples)  # a copy: the engine's buffers go back to its pool at once
        out: dict[str, Any] = {"image": image, "size": np.array([s.nbytes for s in samples], np.int64)}
        if self.labels:
            files, indices = plan.batch(batch.step)
            out["label"] = labels_of_step(self.src.storage, self.src.files, samples, files, indices)
        if self.stats:
            out.update(dl_bytes=np.int64(batch.bytes_read), dl_io_s=np.float64(batch.io_s or 0.0),
                       dl_decode_s=np.float64(batch.decode_s or 0.0))
        return out


def engine_batches(src: Any, plans: Sequence[Any], *, steps: Sequence[int] | None = None, labels: bool = False,
                   stats: bool = False) -> tf.data.Dataset:
    """The batches of ``plans`` (one after the other; ``steps[i]`` of plan ``i``, default all) as a dataset."""
    counts = [p.steps for p in plans] if steps is None else [min(int(s), p.steps) for s, p in zip(steps, plans)]
    gen = _Batches(src, plans, counts, labels, stats)
    return tf.data.Dataset.from_generator(gen, output_signature=_spec(src, labels, stats))
