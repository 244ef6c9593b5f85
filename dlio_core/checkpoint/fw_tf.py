"""TensorFlow mechanism ``tf_save``: ``tf.train.Checkpoint`` of each file's tensors (DLIO's ``tf_save``).

Each planned file ``x.pt`` becomes a folder ``x.pb`` (DLIO's TensorFlow extension) holding TensorFlow's
bundle ``ckpt.index`` + ``ckpt.data-00000-of-00001``, written by ``Checkpoint.write`` (no ``checkpoint`` state
file, no save counter in the name: DLIO's ``save`` adds both and every rank rewrites the same state file) with
``CheckpointOptions(enable_async=True)``: the loop is blocked until TensorFlow has copied the variables, and
the save is durable once ``Checkpoint.sync()`` returns (plus an fsync of every file with ``fsync``). Then the
folder is published (:mod:`~dlio_core.checkpoint.folders`: a rename locally, the shared local stage on object
stores, since TensorFlow has no native Azure support).

Variables follow DLIO's dict layout (:mod:`~dlio_core.checkpoint.tensors`) under one ``state`` attribute;
tensors above 256 MiB are split into ``{key}_part{k}`` variables (protobuf's 2 GiB limits on one tensor).
Loads restore into zero variables of the same shapes and check that every saved value was matched.
TensorFlow is imported inside the functions, only when this mechanism runs (the example runs in the
integration tests).

Example:
    >>> from dlio_core.checkpoint.mechanisms import Context  # doctest: +SKIP
    >>> ctx = Context.demo(4096); spec = ctx.plan.rank_specs(0)[0]  # doctest: +SKIP
    >>> m = TfSaveMechanism(); path = "c/" + m.entry(spec.name)  # doctest: +SKIP
    >>> m.prepare(ctx, [(path, spec)]); moved = m.save(ctx, path, spec).wait()  # doctest: +SKIP
    >>> path, moved.payload_bytes, sorted(__import__("os").listdir(ctx.storage.local_path(path)))  # doctest: +SKIP
    ('c/model_states-0.pb', 4096, ['ckpt.data-00000-of-00001', 'ckpt.index'])
    >>> m.load(ctx, path, spec).payload_bytes  # doctest: +SKIP
    4096
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .folders import fetched_entry, start_save
from .mechanisms import Context, Moved, PreparedTensors, check_tensor_bytes
from .records import CheckpointError
from .state import FileSpec
from .tensors import TensorSpec, build_arrays, file_tensors, nest

__all__ = ["TfSaveMechanism"]

MAX_VARIABLE_BYTES = 256 << 20
_TF_DTYPES = {"int8": "int8", "uint8": "uint8", "fp16": "float16", "bf16": "bfloat16", "fp32": "float32",
              "fp64": "float64"}


def _tf() -> Any:
    import tensorflow as tf  # only when tf_save runs

    return tf


def _tf_dtype(name: str) -> Any:
    return getattr(_tf(), _TF_DTYPES[name])


def _parts(t: TensorSpec) -> list[tuple[tuple[str, ...], int, int]]:
    """``(key path, first element, elements)`` of each variable one tensor becomes."""
    per = max(1, MAX_VARIABLE_BYTES // (t.nbytes // t.count if t.count else 1))
    if t.count <= per:
        return [(t.path, 0, t.count)]
    return [((*t.path[:-1], f"{t.path[-1]}_part{k}"), start, min(per, t.count - start))
            for k, start in enumerate(range(0, t.count, per))]


def _variables(ctx: Context, path: str, spec: FileSpec) -> dict[str, Any]:
    tf = _tf()
    tensors = file_tensors(ctx.plan, spec)
    pairs = []
    for (_, arr), t in zip(build_arrays(tensors, ctx.source, path), tensors):
        typed = arr.view(_tf_dtype(t.dtype).as_numpy_dtype)
        for key, start, count in _parts(t):
            pairs.append((key, tf.Variable(typed[start:start + count], trainable=False)))
        del arr, typed  # the variable holds its own copy
    return nest(pairs)


def _zeros(ctx: Context, spec: FileSpec) -> dict[str, Any]:
    tf = _tf()
    return nest((key, tf.Variable(tf.zeros([count], dtype=_tf_dtype(t.dtype)), trainable=False))
                for t in file_tensors(ctx.plan, spec) for key, _, count in _parts(t))


def _variable_bytes(tree: Any) -> int:
    if isinstance(tree, dict):
        return sum(_variable_bytes(v) for v in tree.values())
    return int(np.prod(tree.shape)) * tree.dtype.size


class TfSaveMechanism(PreparedTensors):
    """``tf_save``: ``tf.train.Checkpoint.write`` per file (see the module doc)."""

    name = "tf_save"

    def __init__(self) -> None:
        _tf()  # imported now, so no save or memory figure pays for it
        super().__init__()

    def entry(self, name: str) -> str:
        return os.path.splitext(name)[0] + ".pb"

    def build(self, ctx: Context, path: str, spec: FileSpec) -> Any:
        return _variables(ctx, path, spec)

    def save(self, ctx: Context, path: str, spec: FileSpec) -> Any:
        tf = _tf()

        def start(folder: str) -> Any:
            checkpoint = tf.train.Checkpoint(state=self.state(ctx, path, spec))
            checkpoint.write(os.path.join(folder, "ckpt"), options=tf.train.CheckpointOptions(enable_async=True))
            return checkpoint.sync  # returns once the async write is done

        return start_save(ctx, path, spec, start)

    def load(self, ctx: Context, path: str, spec: FileSpec) -> Moved:
        tf = _tf()
        template = _zeros(ctx, spec)
        with fetched_entry(ctx, path, "ckpt.index", "ckpt.index") as (folder, stored):
            try:
                status = tf.train.Checkpoint(state=template).read(os.path.join(folder, "ckpt"))
                status.assert_existing_objects_matched().expect_partial()
            except (AssertionError, ValueError, tf.errors.OpError) as e:
                raise CheckpointError(f"{ctx.storage.url.rstrip('/')}/{path} does not match this configuration's "
                                      f"tensors: {e}") from None
        check_tensor_bytes(ctx, path, spec, _variable_bytes(template))
        if ctx.on_chunk is not None:
            ctx.on_chunk(spec.nbytes)
        return Moved(spec.nbytes, stored)
