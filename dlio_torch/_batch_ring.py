"""Shared-memory batch buffers: how a DataLoader worker hands a step to the main process cheaply.

PyTorch sends a tensor from a worker by moving its storage to a new shared-memory segment and passing
its file descriptor; the main process maps it. For a small batch that costs more than the batch's
bytes. Here each worker process stacks its steps into a ring of a few slots of one shared-memory
buffer, sent to the main process once (with the first step); every step then travels as a
:class:`RingBatch`, a few numbers plus the labels inline. Unpickled in the main process (as the
DataLoader receives it) it is a tensor over the slot itself, no copy; the slot is marked free when the
last tensor using that memory is gone (the loop moved on to the next step). A slot still busy (the loop
keeps its batches, or a large ``prefetch_factor`` has more steps in flight than slots) or a batch
larger than a slot falls back to PyTorch's own sharing, so correctness never depends on the ring's size.

Example:
    >>> import numpy as np, torch.multiprocessing
    >>> from multiprocessing.reduction import ForkingPickler  # what a worker's result queue pickles with
    >>> ring = BatchRing(slots=2, slot_bytes=64)
    >>> sent = ring.put([np.full((2, 2), i, np.uint8) for i in range(3)], np.arange(3))
    >>> x, y = ForkingPickler.loads(ForkingPickler.dumps(sent))  # what the main process gets
    >>> tuple(x.shape), x[2].tolist(), y.tolist(), int(ring.busy[0])
    ((3, 2, 2), [[2, 2], [2, 2]], [0, 1, 2], 1)
    >>> del x; int(ring.busy[0])  # the batch is gone: the worker may write its slot again
    0
"""

from __future__ import annotations

import uuid
import weakref
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["BatchRing", "RingBatch", "RING_SLOTS", "RING_MAX_SLOT_BYTES"]

RING_SLOTS = 4  # DataLoader's default prefetch_factor (2) plus the step being received, plus one
RING_MAX_SLOT_BYTES = 64 << 20  # larger steps use PyTorch's sharing (a ring would hold 4 of them per worker)
_KEPT_RINGS = 16  # rings the main process remembers (workers of earlier epochs go away)

# The main process's rings: id -> (data, busy) as numpy views of the shared tensors (which they keep alive).
_rings: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()


class BatchRing:
    """``slots`` slots of ``slot_bytes`` in one shared buffer, plus one busy flag per slot (shared too)."""

    def __init__(self, slots: int, slot_bytes: int) -> None:
        self.id = uuid.uuid4().hex
        self.slots, self.slot_bytes = int(slots), int(slot_bytes)
        self.data = torch.empty(self.slots * self.slot_bytes, dtype=torch.uint8).share_memory_()
        self.busy = torch.zeros(self.slots, dtype=torch.uint8).share_memory_()
        self._data, self._busy = self.data.numpy(), self.busy.numpy()  # numpy views: cheap per-step access
        self._next = 0
        self._announced = False

    def put(self, views: Sequence[np.ndarray], labels: np.ndarray | None) -> "RingBatch | None":
        """The samples stacked into the next free slot, as a :class:`RingBatch`; None when they do not fit
        or the slot is still busy (the caller then sends a tensor as usual)."""
        first = views[0]
        shape, dtype = (len(views),) + first.shape, first.dtype
        nbytes = int(np.prod(shape)) * dtype.itemsize
        slot = self._next
        if nbytes > self.slot_bytes or self._busy[slot]:
            return None
        start = slot * self.slot_bytes
        out = self._data[start:start + nbytes].view(dtype).reshape(shape)
        np.stack(views, out=out)
        self._busy[slot] = 1
        self._next = (slot + 1) % self.slots
        shared = None if self._announced else (self.data, self.busy)
        self._announced = True
        return RingBatch(self.id, shared, slot, start, shape, dtype.str, labels)


class RingBatch:
    """One step in a ring's slot; unpickled, it is ``X`` (or ``(X, Y)``) as fresh tensors."""

    def __init__(self, ring_id: str, shared: Any, slot: int, start: int, shape: tuple[int, ...], dtype: str,
                 labels: np.ndarray | None) -> None:
        self.args = (ring_id, shared, slot, start, tuple(shape), dtype, labels)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _received, self.args


def _received(ring_id: str, shared: Any, slot: int, start: int, shape: tuple[int, ...], dtype: str,
              labels: np.ndarray | None) -> Any:
    if shared is not None:
        _rings[ring_id] = (shared[0].numpy(), shared[1].numpy())
        while len(_rings) > _KEPT_RINGS:
            _rings.popitem(last=False)
    data, busy = _rings[ring_id]
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dt.itemsize
    view = data[start:start + nbytes].view(dt).reshape(shape)
    # Every tensor made from this one (slices, views) keeps ``view`` alive through its storage; when the
    # last is gone, the slot is free again. ``data`` is kept by the finalizer, so the memory outlives it.
    weakref.finalize(view, _free, data, busy, slot)
    x = torch.from_numpy(view)
    return x if labels is None else (x, torch.from_numpy(labels))


def _free(data: np.ndarray, busy: np.ndarray, slot: int) -> None:
    busy[slot] = 0
