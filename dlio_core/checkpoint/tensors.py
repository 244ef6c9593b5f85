"""The tensors inside each checkpoint file, as DLIO builds them, for the mechanisms that write real tensors.

:mod:`~dlio_core.checkpoint.state` sizes files; this module says what a framework mechanism puts in one
(``torch_save``, ``dcp``, ``tf_save``, ``orbax``), keyed as DLIO HEAD's ``base_checkpointing.py`` keys them:

- CNN model file (``model_states-{rank}.pt``): ``{"a": int8[model_size_bytes]}``.
- Layer files: ``{str(layer): {str(i): tensor}}`` (one ``layer_{l}-...`` file per layer under ZeRO 1/2 with
  pipeline parallelism holds ``{str(i): tensor}`` of its layer alone); ``i`` numbers the layer's parameters
  (norm, QKV, O, norm, MLP in, MLP out) and tensors use ``model_datatype`` (int8 for the legacy lists).
- Optimizer file: ``{str(i): tensor}`` for the groups ``[n, hidden*5] * 3`` in ``optimizer_datatype``; the
  legacy ``optimization_groups`` give ``{str(i): {"a", "b"}, "combined"}`` in int8.

So the tensors of a file add up to exactly ``FileSpec.nbytes`` (the bytes ``raw`` and ``stream`` write); a
framework adds only its own metadata. Unlike DLIO, every layer gets its own tensors (DLIO's legacy lists share
one dict between layers, which ``torch.save`` would then write once) and contents come from
:class:`~dlio_core.checkpoint.content.ChunkSource`: incompressible and unique per checkpoint, or the element
type's ones with ``randomize_tensor: False``.

Example:
    >>> from dlio_core.checkpoint.state import CheckpointPlan, ModelShape
    >>> plan = CheckpointPlan(ModelShape(model_type="cnn", model_size_bytes=1000), world=1)
    >>> spec = plan.rank_specs(0)[0]
    >>> file_tensors(plan, spec)
    [TensorSpec(path=('a',), count=1000, dtype='int8')]
    >>> from dlio_core.checkpoint.content import ChunkSource
    >>> arrays = build_arrays(file_tensors(plan, spec), ChunkSource(1 << 16), "ck/model_states-0.pt")
    >>> arrays[0][1].nbytes, nest(arrays)["a"].dtype.name
    (1000, 'uint8')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .content import ChunkSource
from .state import CheckpointPlan, FileSpec, dtype_bytes

__all__ = ["TensorSpec", "file_tensors", "build_arrays", "nest", "leaves", "NUMPY_DTYPES"]

# numpy names of DLIO's element types; bf16 has no numpy type (frameworks view the bytes as their own bf16).
NUMPY_DTYPES = {"int8": "int8", "uint8": "uint8", "fp16": "float16", "fp32": "float32", "fp64": "float64",
                "bf16": None}


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a file: its key path from the file's root, element count and DLIO element type."""

    path: tuple[str, ...]
    count: int
    dtype: str

    @property
    def nbytes(self) -> int:
        return self.count * dtype_bytes(self.dtype)


def file_tensors(plan: CheckpointPlan, spec: FileSpec) -> list[TensorSpec]:
    """The tensors of ``spec`` (one file of one rank), in DLIO's order; their bytes sum to ``spec.nbytes``."""
    s = plan.shape
    out: list[TensorSpec] = []
    if spec.part == "optimizer":
        groups = plan.optimizer_groups()
        if s.optimization_groups:
            for i, g in enumerate(groups):
                if g > 0:
                    out += [TensorSpec((str(i), "a"), g, "int8"), TensorSpec((str(i), "b"), g, "int8")]
            out.append(TensorSpec(("combined",), sum(g for g in groups if g > 0), "int8"))
        else:
            out = [TensorSpec((str(i),), g, spec.dtype) for i, g in enumerate(groups) if g > 0]
    elif spec.layers:
        for layer in spec.layers:
            head = () if spec.one_layer else (str(layer),)
            out += [TensorSpec((*head, str(i)), c, spec.dtype) for i, c in plan.layer_counts(layer)]
    else:
        out = [TensorSpec(("a",), spec.nbytes, spec.dtype)]
    total = sum(t.nbytes for t in out)
    if total != spec.nbytes:  # the two modules disagree: a bug, not a user error
        raise AssertionError(f"{spec.name}: tensors hold {total} bytes but the plan says {spec.nbytes}")
    return out


def build_arrays(tensors: Iterable[TensorSpec], source: ChunkSource, path: str) -> list[tuple[tuple[str, ...], np.ndarray]]:
    """``(key path, uint8 array)`` per tensor, filled from ``source`` as the file ``path``'s byte stream.

    Each array holds the tensor's bytes; a framework views them as its element type (no copy for torch and
    numpy, one copy into a ``tf.Variable``).
    """
    key = source.file_key(path)
    index = 0
    out = []
    for t in tensors:
        arr = np.empty(t.nbytes, dtype=np.uint8)
        for off in range(0, t.nbytes, source.chunk_bytes):
            source.fill(path, index, arr[off:off + source.chunk_bytes], dtype=t.dtype, key=key)
            index += 1
        out.append((t.path, arr))
    return out


def nest(pairs: Iterable[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    """A nested dict from ``(key path, leaf)`` pairs.

    >>> nest([(("0", "a"), 1), (("0", "b"), 2), (("combined",), 3)])
    {'0': {'a': 1, 'b': 2}, 'combined': 3}
    """
    root: dict[str, Any] = {}
    for path, leaf in pairs:
        node = root
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = leaf
    return root


def leaves(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """``(key path, leaf)`` of a nested dict, depth first in key order (the inverse of :func:`nest`).

    >>> leaves({"0": {"a": 1}, "b": 2})
    [(('0', 'a'), 1), (('b',), 2)]
    """
    if isinstance(tree, dict):
        out = []
        for k, v in tree.items():
            out += leaves(v, (*prefix, str(k)))
        return out
    return [(prefix, tree)]
