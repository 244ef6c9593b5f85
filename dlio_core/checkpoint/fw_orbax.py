"""Orbax mechanism ``orbax``: an asynchronous ``StandardCheckpointer`` save of each file's tensors.

Each planned file ``x.pt`` becomes a folder ``x.orbax`` holding Orbax's own layout (``_METADATA``,
``manifest.ocdbt``, ``d/...``). The arrays (numpy, in DLIO's dict layout from
:mod:`~dlio_core.checkpoint.tensors`; bf16 through ``ml_dtypes``) are handed to
``StandardCheckpointer.save``, which returns once it has taken them (the time the training loop is blocked);
``wait_until_finished`` returns when the bytes are written (plus an fsync of every file with ``fsync``), then the
folder is published (:mod:`~dlio_core.checkpoint.folders`: a rename locally, the shared local stage on object
stores: Orbax has no S3 or Azure support of its own). Orbax compresses chunks itself, so ``randomize_tensor:
False`` checkpoints store far fewer bytes than their tensors. Loads restore without a target (numpy arrays)
and check the bytes. jax and orbax are imported inside the functions, only when this mechanism runs (the
example runs in the integration tests, in a process of its own).

Example:
    >>> from dlio_core.checkpoint.mechanisms import Context  # doctest: +SKIP
    >>> ctx = Context.demo(4096); spec = ctx.plan.rank_specs(0)[0]  # doctest: +SKIP
    >>> m = OrbaxMechanism(); path = "c/" + m.entry(spec.name)  # doctest: +SKIP
    >>> m.prepare(ctx, [(path, spec)]); moved = m.save(ctx, path, spec).wait()  # doctest: +SKIP
    >>> path, moved.payload_bytes, m.load(ctx, path, spec).payload_bytes  # doctest: +SKIP
    ('c/model_states-0.orbax', 4096, 4096)
    >>> m.release()  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .folders import fetched_entry, start_save
from .mechanisms import Context, Moved, PreparedTensors, check_tensor_bytes
from .records import CheckpointError
from .state import FileSpec
from .tensors import NUMPY_DTYPES, build_arrays, file_tensors, leaves, nest

__all__ = ["OrbaxMechanism"]


def _dtype(name: str) -> Any:
    import ml_dtypes  # a jax dependency

    return ml_dtypes.bfloat16 if name == "bf16" else np.dtype(NUMPY_DTYPES[name])


def _arrays(ctx: Context, path: str, spec: FileSpec) -> dict[str, Any]:
    tensors = file_tensors(ctx.plan, spec)
    return nest((p, a.view(_dtype(t.dtype))) for (p, a), t in zip(build_arrays(tensors, ctx.source, path), tensors))


class OrbaxMechanism(PreparedTensors):
    """``orbax``: ``ocp.StandardCheckpointer`` (asynchronous) per file (see the module doc)."""

    name = "orbax"

    def __init__(self) -> None:
        import orbax.checkpoint  # noqa: F401 - imported now, so no save or memory figure pays for it

        super().__init__()
        self._checkpointer: Any = None

    def entry(self, name: str) -> str:
        return os.path.splitext(name)[0] + ".orbax"

    def build(self, ctx: Context, path: str, spec: FileSpec) -> Any:
        return _arrays(ctx, path, spec)

    def _ckptr(self) -> Any:
        if self._checkpointer is None:
            import orbax.checkpoint as ocp

            self._checkpointer = ocp.StandardCheckpointer()
        return self._checkpointer

    def release(self) -> None:
        super().release()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None

    def save(self, ctx: Context, path: str, spec: FileSpec) -> Any:
        ckptr = self._ckptr()

        def start(folder: str) -> Any:
            ckptr.save(os.path.join(folder, "ckpt"), self.state(ctx, path, spec))
            return ckptr.wait_until_finished

        return start_save(ctx, path, spec, start)

    def load(self, ctx: Context, path: str, spec: FileSpec) -> Moved:
        with fetched_entry(ctx, path, "ckpt/_CHECKPOINT_METADATA", "Orbax _CHECKPOINT_METADATA") as (folder, stored):
            try:
                restored = self._ckptr().restore(os.path.join(folder, "ckpt"))
            except Exception as e:  # noqa: BLE001 - Orbax raises many types; the message says which
                raise CheckpointError(f"{ctx.storage.url.rstrip('/')}/{path} does not restore with Orbax: {e}") from None
        check_tensor_bytes(ctx, path, spec, sum(int(getattr(a, "nbytes", 0)) for _, a in leaves(restored)))
        if ctx.on_chunk is not None:
            ctx.on_chunk(spec.nbytes)
        return Moved(spec.nbytes, stored)
