"""dlio_tf: dl-driver's TensorFlow plugin (``pip install 'dl-driver[tf]'``).

``make_dataset`` gives a workload's data as a ``tf.data.Dataset`` to drop into an existing input
function; ``reader.data_loader: tensorflow`` runs a workload through it with dl-driver's metrics;
``TFCheckpointer`` saves and restores ``tf.train.Checkpoint`` state to any storage URI.

Example:
    >>> import dlio_tf
    >>> callable(dlio_tf.make_dataset)
    True
"""

from __future__ import annotations

try:
    import tensorflow  # noqa: F401 - the plugin's framework, imported first so a missing extra is plain
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("dlio_tf needs tensorflow: pip install 'dl-driver[tf]'") from exc

from dlio_tf._checkpoint import CheckpointTiming, TFCheckpointer, state_from_config
from dlio_tf._device import default_device, to_device
from dlio_tf._iterator import TFIterator, make_iterator
from dlio_tf._loader import TFBatch, TFLoader, tf_loader
from dlio_tf._pipeline import make_dataset

__all__: list[str] = ["make_dataset", "make_iterator", "TFIterator", "tf_loader", "TFLoader", "TFBatch", "to_device", "default_device",
                      "TFCheckpointer", "CheckpointTiming", "state_from_config"]
