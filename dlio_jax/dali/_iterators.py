"""DALI's framework iterators over a pipeline built by :func:`~dlio_jax.dali.pipeline`, with a true ``len()``.

Native pipelines pass ``reader_name`` so DALI takes the epoch size, shard and padding from the reader
(its single source of truth); external ones end their epoch with the feed's ``StopIteration``. The last
partial batch is dropped (``LastBatchPolicy.DROP``), as DLIO drops it, and JAX has no PARTIAL policy.
DALI's iterator knows no epoch size for an external source (its ``len()`` is 0), so the iterators
come wrapped in :class:`DaliIterator`, whose ``len()`` is the pipeline's steps per epoch
(``pipe.dlio.steps``) and which otherwise is DALI's iterator (``reset()``, ``auto_reset``...).
Outputs are named by the pipeline's ``output_names`` (default ``data``).

Example:
    >>> import tempfile
    >>> from dlio_jax.dali import pipeline, torch_iterator
    >>> d = tempfile.mkdtemp()
    >>> pipe = pipeline("default", overrides=[f"++workload.dataset.data_folder={d}", "++workload.workflow.generate_data=True",
    ...     "++workload.dataset.num_files_train=4"], reader="external")
    >>> it = torch_iterator(pipe)
    >>> len(it), [tuple(b[0]["data"].shape) for b in it]
    (1, [(4, 64, 64)])
"""

from __future__ import annotations

from typing import Any

__all__ = ["DaliIterator", "jax_iterator", "torch_iterator"]


class DaliIterator:
    """DALI's ``DALIGenericIterator`` (``inner``) with ``len()`` = batches per epoch of this pipeline."""

    def __init__(self, inner: Any, steps: int) -> None:
        self.inner, self.steps = inner, int(steps)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> "DaliIterator":
        return self

    def __next__(self) -> Any:
        return next(self.inner)

    def __getattr__(self, name: str) -> Any:  # reset(), size, ... : DALI's own
        return getattr(self.inner, name)


def _common(pipe: Any, auto_reset: bool) -> dict[str, Any]:
    from nvidia.dali.plugin.base_iterator import LastBatchPolicy

    kwargs: dict[str, Any] = {"last_batch_policy": LastBatchPolicy.DROP, "auto_reset": auto_reset}
    info = getattr(pipe, "dlio", None)
    if info is not None and info.reader_name:
        kwargs["reader_name"] = info.reader_name
    return kwargs


def _names(pipe: Any) -> list[str]:
    info = getattr(pipe, "dlio", None)
    return list(info.output_names) if info is not None else ["data"]


def _steps(pipe: Any, inner: Any) -> int:
    info = getattr(pipe, "dlio", None)
    return info.steps if info is not None else len(inner)


def jax_iterator(pipe: Any, *, sharding: Any = None, auto_reset: bool = False) -> DaliIterator:
    """``nvidia.dali.plugin.jax.DALIGenericIterator`` yielding ``{"data": jax.Array}`` (needs jax)."""
    from nvidia.dali.plugin.jax import DALIGenericIterator

    kwargs = _common(pipe, auto_reset)
    if sharding is not None:
        kwargs["sharding"] = sharding
    inner = DALIGenericIterator([pipe], _names(pipe), **kwargs)
    return DaliIterator(inner, _steps(pipe, inner))


def torch_iterator(pipe: Any, *, auto_reset: bool = False) -> DaliIterator:
    """``nvidia.dali.plugin.pytorch.DALIGenericIterator`` yielding ``[{"data": torch.Tensor}]`` (no JAX needed)."""
    from nvidia.dali.plugin.pytorch import DALIGenericIterator

    inner = DALIGenericIterator([pipe], _names(pipe), **_common(pipe, auto_reset))
    return DaliIterator(inner, _steps(pipe, inner))
