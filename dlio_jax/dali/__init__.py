"""dlio_jax.dali: DALI pipelines over DLIO datasets (``pip install 'dl-driver[dali]'``).

- :func:`pipeline`: ``fn.external_source`` fed by dl-driver's readers (every format and backend), or
  DALI's native ``fn.readers.numpy`` / ``fn.readers.tfrecord`` with ``shard_id``/``num_shards`` from
  the rank. CPU pipelines (``device_id=None``) work without a GPU.
- :func:`jax_iterator`, :func:`torch_iterator`: DALI's ``DALIGenericIterator`` for JAX or PyTorch, as a
  :class:`DaliIterator` whose ``len()`` is the batches per epoch. ``pipeline(transform=...)`` adds DALI
  operators after the reader. Importing this package imports no JAX (PyTorch users need none).
- :class:`DaliInfo` (``pipe.dlio``) says what a pipeline reads; :class:`DaliDeviceError` is a GPU
  pipeline asked for where no GPU can run it.

Modules, as in ``dlio_jax``: import from this package; its modules are private. ``_loader`` holds the
runner's adapters for ``reader.data_loader: dali`` (``make_loader``) and ``native_dali``
(``make_native_loader``), registered in :mod:`dlio_core.loaders` and not part of this API.

Example:
    >>> import tempfile
    >>> from dlio_jax.dali import pipeline, jax_iterator
    >>> d = tempfile.mkdtemp()
    >>> pipe = pipeline("default", overrides=[f"++workload.dataset.data_folder={d}", "++workload.workflow.generate_data=True",
    ...     "++workload.dataset.num_files_train=8"])
    >>> [b["data"].shape for b in jax_iterator(pipe)]
    [(4, 64, 64), (4, 64, 64)]
"""

from __future__ import annotations

try:
    import nvidia.dali  # noqa: F401 - this submodule's framework, imported first so a missing extra is plain
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("dlio_jax.dali needs NVIDIA DALI: pip install 'dl-driver[dali]'") from exc

from ._iterators import DaliIterator, jax_iterator, torch_iterator
from ._pipelines import READER_NAME, DaliDeviceError, DaliInfo, pipeline

__all__ = ["DaliDeviceError", "DaliInfo", "DaliIterator", "READER_NAME", "jax_iterator", "pipeline", "torch_iterator"]
