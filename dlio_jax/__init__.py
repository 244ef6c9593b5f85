"""dlio_jax: dl-driver's JAX plugin (``pip install 'dl-driver[jax]'``).

- :func:`make_iterator` / :class:`JaxIterator`: one epoch of a DLIO workload as ``jax.Array`` batches
  (double-buffered ``device_put`` or a global array from a ``sharding``), resumable through
  :class:`dlio_core.state.Stateful` (``state_dict``/``load_state_dict``; ``get_state``/``set_state``
  under Grain's names); ``iterator.last`` is the last :class:`DeviceBatch` with the step's figures.
- :func:`from_uri`: the same over every file of a format under a URI, by keyword options (batch size,
  shuffle, seed), as the torch and TF plugins' ``from_uri``.
- :class:`DlioSource`: a Grain-compatible random-access source (grain is not required).
- :mod:`dlio_jax.checkpoint`: Orbax ``CheckpointManager`` hooks with save/finish timing
  (:class:`OrbaxCheckpointer`, :class:`SaveTiming`, :func:`state_from_config`; Orbax is imported on first use).
- :mod:`dlio_jax.dali`: DALI pipelines (its own extra, ``dl-driver[dali]``).

Modules, as in every dl-driver plugin: import from the package (``__all__`` is the public API); the
implementation modules are private (``_iterator``, ``_source``, ...); the public submodules are
``checkpoint``, the framework's checkpoint hooks, and ``dali``, a façade of its own for its own extra.
``_loader.make_loader`` is the runner's adapter for ``reader.data_loader: jax`` (``dali._loader`` has
``dali``'s and ``native_dali``'s), registered in :mod:`dlio_core.loaders` and not part of this API.

Example:
    >>> import tempfile, dlio_jax
    >>> it = dlio_jax.make_iterator("default", overrides=[f"++workload.dataset.data_folder={tempfile.mkdtemp()}",
    ...     "++workload.workflow.generate_data=True", "++workload.dataset.num_files_train=4"])
    >>> [(images.shape, labels.shape) for images, labels in it]
    [((4, 64, 64), (4,))]
"""

from __future__ import annotations

try:
    import jax  # noqa: F401 - the plugin's framework, imported first so a missing extra is plain
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("dlio_jax needs jax: pip install 'dl-driver[jax]'") from exc

from ._device import DeviceBatch
from ._from_uri import from_uri
from ._iterator import JaxIterator, make_iterator
from ._source import DlioSource

__all__ = ["make_iterator", "from_uri", "JaxIterator", "DeviceBatch", "DlioSource", "OrbaxCheckpointer", "SaveTiming",
           "state_from_config", "checkpoint"]

_CHECKPOINT = ("OrbaxCheckpointer", "SaveTiming", "state_from_config")


def __getattr__(name: str):  # Orbax is imported only when its hooks are used (it is slow to import)
    if name == "checkpoint" or name in _CHECKPOINT:
        from . import checkpoint

        return checkpoint if name == "checkpoint" else getattr(checkpoint, name)
    raise AttributeError(f"module 'dlio_jax' has no attribute {name!r}")
