"""dlio_tf: dl-driver's TensorFlow plugin (``pip install 'dl-driver[tf]'``).

- :func:`make_dataset` — a workload's data as a ``tf.data.Dataset`` to drop into an existing input
  function (``input_context`` shards it for ``tf.distribute``); :func:`from_uri` — the same over every
  file of a format under a URI, with keyword options (batch size, shuffle, seed), as the torch plugin's.
- :func:`make_iterator` / :class:`TFIterator` — the same batches for a custom loop, resumable through
  :class:`dlio_core.state.Stateful` (``state_dict`` / ``load_state_dict``).
- :func:`to_device` / :func:`default_device` — a batch copied to the GPU, the copy timed.
- :class:`TFCheckpointer` (:mod:`dlio_tf.checkpoint`) — ``tf.train.Checkpoint`` state saved to and
  restored from any storage URI, with :class:`CheckpointTiming` and :func:`state_from_config`.

Modules, as in every dl-driver plugin: import from the package (``__all__`` is the public API); the
implementation modules are private (``_pipeline``, ``_iterator``, ...); the one public submodule is
``checkpoint``, the framework's checkpoint hooks. ``_loader.make_loader`` is the runner's adapter for
``reader.data_loader: tensorflow``, registered in :mod:`dlio_core.loaders` and not part of this API.

Example:
    >>> import dlio_tf
    >>> callable(dlio_tf.make_dataset), "make_loader" in dlio_tf.__all__
    (True, False)
"""

from __future__ import annotations

try:
    import tensorflow  # noqa: F401 - the plugin's framework, imported first so a missing extra is plain
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("dlio_tf needs tensorflow: pip install 'dl-driver[tf]'") from exc

from . import checkpoint
from ._device import default_device, to_device
from ._iterator import TFIterator, make_iterator
from ._dataset import from_uri, make_dataset
from .checkpoint import CheckpointTiming, TFCheckpointer, state_from_config

__all__: list[str] = ["make_dataset", "from_uri", "make_iterator", "TFIterator", "to_device", "default_device",
                      "TFCheckpointer", "CheckpointTiming", "state_from_config", "checkpoint"]
