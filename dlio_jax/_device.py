"""Host batches -> device arrays on a background thread, double-buffered, with H2D timing.

``jax.device_put`` is asynchronous, so the copy is timed from the call to ``block_until_ready()``
on the copying thread; the consumer's step runs meanwhile. Where the destination is the host CPU there
is no host-to-device copy to time, and ``h2d_s`` is ``None`` ("not measured"), never a made-up figure. ``buffers=2`` (the default) means at most
two batches are on the device at once: the one the step uses and the next one being copied.

Example:
    >>> import numpy as np
    >>> from types import SimpleNamespace as NS
    >>> batches = iter([NS(step=0, num_samples=2, bytes_read=8, sample_bytes=8, io_s=0.0, decode_s=0.0,
    ...                    samples=[np.zeros(4, np.uint8)] * 2, release=lambda: None)])
    >>> [(b.array.shape, b.h2d_s) for b in device_batches(batches, DevicePut())]  # a CPU-only JAX: no copy
    [((2, 4), None)]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from dlio_core.engine import Batch
from dlio_core.prefetch import background_map

from ._stack import stack_samples

__all__ = ["DeviceBatch", "DevicePut", "device_batches"]


class DevicePut:
    """Puts a per-process host batch on the device(s).

    With no ``sharding``: ``jax.device_put`` onto the default device. With a ``jax.sharding.Sharding``:
    ``jax.make_array_from_process_local_data``, so each process passes its own rows and the result is
    the global array (leading axis = batch x processes).
    """

    def __init__(self, sharding: Any = None) -> None:
        self.sharding = sharding
        self._on_host: bool | None = None

    def __call__(self, host: Any) -> Any:
        """Put ``host`` (an array, or a tuple of them: one call for a batch and its labels)."""
        import jax

        if self.sharding is None:
            return jax.device_put(host)
        return jax.tree.map(lambda h: jax.make_array_from_process_local_data(self.sharding, h), host)

    def on_host(self) -> bool:
        """Whether every destination device is the host CPU (then nothing crosses to a device)."""
        if self._on_host is None:  # asked once: jax.devices() costs more than a small batch's put
            import jax

            devices = self.sharding.device_set if self.sharding is not None else {jax.devices()[0]}
            self._on_host = all(d.platform == "cpu" for d in devices)
        return self._on_host

    def timed(self, host: Any) -> tuple[Any, float | None]:
        """``(device_array, h2d_s)``: the put, timed to ``block_until_ready()``; ``h2d_s`` is None when the
        destination is the host CPU (no device copy happens)."""
        import jax

        if self.on_host():  # nothing to time: no block_until_ready (an aligned batch is not even copied)
            return self(host), None
        t0 = time.perf_counter()
        array = self(host)
        jax.block_until_ready(array)
        seconds = time.perf_counter() - t0
        return array, seconds


@dataclass
class DeviceBatch(Batch):
    """One step on the device: :class:`dlio_core.engine.Batch` with the engine's figures, ``h2d_s`` (the
    copy, to ready; None on a CPU device), ``array``, the device array, and ``labels`` (a device array of
    int64 labels, or None)."""

    array: Any = field(repr=False, default=None)
    labels: Any = field(repr=False, default=None)

    @property
    def item(self) -> Any:
        """What an iterator hands out: ``array``, or ``(array, labels)`` when there are labels."""
        return self.array if self.labels is None else (self.array, self.labels)

    def release(self) -> None:
        """Drop this object's references to the device arrays (the runner calls this after a step)."""
        self.array = self.labels = None
        super().release()


def device_batches(batches: Iterator[Any], put: DevicePut, *, buffers: int = 2,
                   labeller: Callable[[Any], np.ndarray] | None = None,
                   transform: Callable[[np.ndarray], np.ndarray] | None = None,
                   inline_on_host: bool = False) -> Iterator[DeviceBatch]:
    """Yield ``batches`` (engine batches with ``samples``) as :class:`DeviceBatch` objects, in order, put on
    the device on a background thread (:func:`dlio_core.prefetch.background_map`), at most ``buffers`` at once.
    ``inline_on_host``: where the destination is the host CPU, stack and put on the caller's thread instead
    (no copy crosses to a device, so there is nothing to overlap but the stacking, and a thread hand-off a
    batch costs more than that on a small machine).

    ``labeller(batch)`` gives a batch's labels (read before its buffers go back); ``transform`` maps the
    stacked host batch (a numpy array) on that thread before the copy."""

    def copy(b: Any) -> DeviceBatch:
        try:
            host = stack_samples(b.samples)
            labels = labeller(b) if labeller is not None else None
        finally:
            b.release()  # the stack is a copy: pooled file buffers go back at once
        if transform is not None:
            host = np.asarray(transform(host))
        # One put for the batch and its labels: a device_put call costs more than the labels' bytes.
        placed, h2d_s = put.timed(host if labels is None else (host, labels))
        array, on_device = (placed, None) if labels is None else placed
        return DeviceBatch(step=b.step, num_samples=b.num_samples, bytes_read=b.bytes_read,
                           sample_bytes=b.sample_bytes, io_s=b.io_s, decode_s=b.decode_s, h2d_s=h2d_s, array=array,
                           labels=on_device)

    if inline_on_host and put.on_host():
        return _mapped(batches, copy)
    return background_map(batches, copy, depth=buffers, name="dl-driver-device-put", on_drop=lambda b: b.release())


def _mapped(batches: Iterator[Any], copy: Callable[[Any], DeviceBatch]) -> Iterator[DeviceBatch]:
    """``copy`` of each batch on the caller's thread; closing it closes ``batches`` (the engine's threads)."""
    try:
        for b in batches:
            yield copy(b)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
