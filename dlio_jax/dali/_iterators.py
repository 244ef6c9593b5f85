"""DALI's framework iterators over a pipeline built by :func:`~dlio_jax.dali.pipeline`.

Native pipelines pass ``reader_name`` so DALI takes the epoch size, shard and padding from the reader
(its single source of truth); external ones end their epoch with the feed's ``StopIteration``. The last
partial batch is dropped (``LastBatchPolicy.DROP``), as DLIO drops it, and JAX has no PARTIAL policy.

Example:
    >>> import tempfile
    >>> from dlio_jax.dali import pipeline, torch_iterator
    >>> d = tempfile.mkdtemp()
    >>> pipe = pipeline("default", overrides=[f"++workload.dataset.data_folder={d}", "++workload.workflow.generate_data=True",
    ...     "++workload.dataset.num_files_train=4"], reader="external")
    >>> [tuple(b[0]["data"].shape) for b in torch_iterator(pipe)]
    [(4, 64, 64)]
"""

from __future__ import annotations

from typing import Any

__all__ = ["jax_iterator", "torch_iterator"]


def _common(pipe: Any, auto_reset: bool) -> dict[str, Any]:
    from nvidia.dali.plugin.base_iterator import LastBatchPolicy

    kwargs: dict[str, Any] = {"last_batch_policy": LastBatchPolicy.DROP, "auto_reset": auto_reset}
    info = getattr(pipe, "dlio", None)
    if info is not None and info.reader_name:
        kwargs["reader_name"] = info.reader_name
    return kwargs


def jax_iterator(pipe: Any, *, sharding: Any = None, auto_reset: bool = False) -> Any:
    """``nvidia.dali.plugin.jax.DALIGenericIterator`` yielding ``{"data": jax.Array}``."""
    from nvidia.dali.plugin.jax import DALIGenericIterator

    kwargs = _common(pipe, auto_reset)
    if sharding is not None:
        kwargs["sharding"] = sharding
    return DALIGenericIterator([pipe], ["data"], **kwargs)


def torch_iterator(pipe: Any, *, auto_reset: bool = False) -> Any:
    """``nvidia.dali.plugin.pytorch.DALIGenericIterator`` yielding ``[{"data": torch.Tensor}]``."""
    from nvidia.dali.plugin.pytorch import DALIGenericIterator

    return DALIGenericIterator([pipe], ["data"], **_common(pipe, auto_reset))
