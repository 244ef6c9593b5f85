"""Host-to-device placement of batches, timed to completion.

TensorFlow copies a host tensor to a GPU asynchronously, so the copy is timed from the first
``tf.identity`` under ``tf.device`` to ``tf.test.experimental.sync_devices()``, which waits for
every op queued on every device. With no GPU visible to TensorFlow nothing is moved and the time is
``None`` ("not measured"), never 0.

Example:
    >>> import tensorflow as tf
    >>> from dlio_tf import to_device
    >>> placed, h2d_s = to_device({"image": tf.zeros([2, 4], tf.uint8)}, device=None)
    >>> h2d_s is None
    True
"""

from __future__ import annotations

import time
from typing import Any

import tensorflow as tf

__all__ = ["default_device", "to_device"]


def default_device() -> str | None:
    """The first GPU TensorFlow sees (``"/GPU:0"``), or None on a CPU-only host."""
    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else None


def to_device(tensors: Any, device: str | None = "auto") -> tuple[Any, float | None]:
    """Copy a nest of tensors to ``device`` (``"auto"``: :func:`default_device`); return it and the seconds taken.

    The seconds include waiting for the copy to finish; ``None`` when there is no device to copy to.
    """
    if device == "auto":
        device = default_device()
    if device is None:
        return tensors, None
    t0 = time.perf_counter()
    with tf.device(device):
        placed = tf.nest.map_structure(tf.identity, tensors, expand_composites=True)
    tf.test.experimental.sync_devices()  # the copy is asynchronous: wait for it, or we time a launch
    return placed, time.perf_counter() - t0
