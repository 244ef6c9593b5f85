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

Importing ``dlio_jax`` imports no JAX (names load on first use), so ``dlio_jax.dali`` serves PyTorch
users without JAX installed; a JAX name used without jax raises ``ImportError`` naming the extra.

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

import importlib

__all__ = ["make_iterator", "from_uri", "JaxIterator", "DeviceBatch", "DlioSource", "OrbaxCheckpointer", "SaveTiming",
           "state_from_config", "checkpoint"]

# Names -> the private module holding them, imported on first use: ``import dlio_jax`` (and so
# ``import dlio_jax.dali``, which PyTorch users of DALI need) imports no JAX. Everything but
# DlioSource (Grain needs no JAX either) needs jax, and asking for it without jax names the extra.
_WHERE = {"make_iterator": "_iterator", "JaxIterator": "_iterator", "DeviceBatch": "_device",
          "from_uri": "_from_uri", "DlioSource": "_source", "checkpoint": "checkpoint",
          "OrbaxCheckpointer": "checkpoint", "SaveTiming": "checkpoint", "state_from_config": "checkpoint"}
_NO_JAX_NEEDED = ("DlioSource",)


def __getattr__(name: str):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'dlio_jax' has no attribute {name!r}")
    if name not in _NO_JAX_NEEDED:
        try:
            import jax  # noqa: F401 - the plugin's framework: a missing extra is named plainly
        except ImportError as exc:
            raise ImportError(f"dlio_jax.{name} needs jax: pip install 'dl-driver[jax]'") from exc
    module = importlib.import_module(f".{where}", __name__)
    return module if name == where else getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
