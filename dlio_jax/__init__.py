"""dlio_jax: dl-driver's JAX plugin (``pip install 'dl-driver[jax]'``).

- :func:`make_iterator`: one epoch of a DLIO workload as ``jax.Array`` batches (double-buffered
  ``device_put`` or a global array from a ``sharding``), with ``get_state``/``set_state``.
- :class:`DlioSource`: a Grain-compatible random-access source (grain is not required).
- :mod:`dlio_jax.checkpoint`: Orbax ``CheckpointManager`` hooks with save/finish timing.
- :mod:`dlio_jax.dali`: DALI pipelines (its own extra, ``dl-driver[dali]``).

Example:
    >>> import tempfile, dlio_jax
    >>> it = dlio_jax.make_iterator("default", overrides=[f"++workload.dataset.data_folder={tempfile.mkdtemp()}",
    ...     "++workload.workflow.generate_data=True", "++workload.dataset.num_files_train=4"])
    >>> [b.shape for b in it]
    [(4, 64, 64)]
"""

from __future__ import annotations

try:
    import jax  # noqa: F401 - the plugin's framework, imported first so a missing extra is plain
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("dlio_jax needs jax: pip install 'dl-driver[jax]'") from exc

from ._device import DeviceBatch
from .iterator import JaxIterator, make_iterator
from .loader import JaxLoader, jax_loader
from .source import DlioSource

__all__ = ["DeviceBatch", "DlioSource", "JaxIterator", "JaxLoader", "OrbaxCheckpointer", "SaveTiming", "jax_loader",
           "make_iterator", "state_from_config"]

_CHECKPOINT = ("OrbaxCheckpointer", "SaveTiming", "state_from_config")


def __getattr__(name: str):  # Orbax is imported only when its hooks are used (it is slow to import)
    if name in _CHECKPOINT:
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'dlio_jax' has no attribute {name!r}")
