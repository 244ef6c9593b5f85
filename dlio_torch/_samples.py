"""What a step hands to the model when a dataset yields real samples: tensors, labels, a transform, a collate.

:class:`SampleMaker` runs where the reading happens (a DataLoader worker, or the main process with
``num_workers=0``), on one engine batch whose samples are views of pooled buffers:

- ``labels``: each sample's label from its file (npz's ``y``, :func:`dlio_core.labels.labels_of_file`),
  found in the bytes already read and kept per process (up to ``LABEL_CACHE_SAMPLES``); items are
  then ``(x, y)`` with ``y`` an int64 scalar tensor (a batch: ``(X, Y)``).
- ``transform(x)``: applied to each sample tensor in the worker (as torchvision's ``transform``).
- ``collate_fn(items)``: turns a step's items into the batch (``torch.utils.data.default_collate`` when
  a transform is given and no collate); without either, samples are stacked straight into one
  shared-memory tensor (no per-sample tensors, no extra copy on the way out of the worker), and
  samples of different shapes come as a list of tensors.

Example:
    >>> import numpy as np
    >>> from types import SimpleNamespace as NS
    >>> maker = SampleMaker(labels=None, transform=lambda x: x * 2)
    >>> batch = NS(samples=[np.ones((2,), np.int64), np.zeros((2,), np.int64)])
    >>> maker.batch(batch, None).tolist()
    [[2, 2], [0, 0]]
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from dlio_core.labels import LABEL_CACHE_SAMPLES, StepLabels

__all__ = ["SampleMaker", "torch_dtype", "LABEL_CACHE_SAMPLES"]


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch dtype of a numpy dtype."""
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


class SampleMaker:
    """Turns one engine batch into what the consumer gets (see the module)."""

    def __init__(self, *, labels: Any, transform: Callable[[Any], Any] | None = None,
                 collate_fn: Callable[[list], Any] | None = None, samples_per_file: int = 1) -> None:
        self.labels = labels  # None, or the Source whose files' labels are read
        self.transform = transform
        self.collate_fn = collate_fn
        self.samples_per_file = int(samples_per_file)
        self._known: StepLabels | None = None  # this process's labels, each file's read once
        self._ring: Any = None  # a DataLoader worker's shared-memory batch buffers (_batch_ring)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_known": None, "_ring": None}  # each process has its own

    def _in_ring(self, views: Sequence[np.ndarray], ys: np.ndarray | None) -> Any:
        """In a DataLoader worker, the step in a shared-memory slot (:mod:`._batch_ring`); else None."""
        if torch.utils.data.get_worker_info() is None or len({(v.shape, v.dtype) for v in views}) != 1:
            return None
        from ._batch_ring import RING_MAX_SLOT_BYTES, RING_SLOTS, BatchRing

        if self._ring is None:
            nbytes = len(views) * views[0].nbytes
            if nbytes > RING_MAX_SLOT_BYTES:
                return None
            self._ring = BatchRing(RING_SLOTS, nbytes)
        return self._ring.put(views, None if ys is None else ys.copy())

    def _labels(self, batch: Any, ids: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray | None:
        if self.labels is None:
            return None
        if self._known is None:
            src = self.labels
            self._known = StepLabels(src.storage.read, lambda f: str(src.paths[f]), lambda f: int(src.sizes[f]),
                                     len(src), self.samples_per_file)
        files, indices = ids  # type: ignore[misc]
        return self._known(batch.samples, files, indices)

    def items(self, batch: Any, ids: tuple[np.ndarray, np.ndarray] | None) -> list[Any]:
        """One item per sample: ``x`` (transformed) or ``(x, y)``; tensors own their memory."""
        ys = self._labels(batch, ids)
        xs = [torch.from_numpy(np.array(v)) for v in batch.samples]  # copies: the buffers go back to the pool
        if self.transform is not None:
            xs = [self.transform(x) for x in xs]
        if ys is None:
            return xs
        return [(x, torch.tensor(int(y))) for x, y in zip(xs, ys)]

    def batch(self, batch: Any, ids: tuple[np.ndarray, np.ndarray] | None) -> Any:
        """The step as one batch: ``X`` or ``(X, Y)``, or what ``collate_fn`` makes of the items."""
        if self.transform is None and self.collate_fn is None:
            ys = self._labels(batch, ids)
            sent = self._in_ring(batch.samples, ys)
            if sent is not None:
                return sent
            x = _stacked(batch.samples)
            return x if ys is None else (x, _shared(torch.from_numpy(ys)))
        collate = self.collate_fn or torch.utils.data.default_collate
        return collate(self.items(batch, ids))


def _shared(t: torch.Tensor) -> torch.Tensor:
    return t.share_memory_() if torch.utils.data.get_worker_info() is not None else t


def _stacked(views: Sequence[np.ndarray]) -> Any:
    if len({(v.shape, v.dtype) for v in views}) == 1:
        out = torch.empty((len(views),) + views[0].shape, dtype=torch_dtype(views[0].dtype))
        _shared(out)  # written straight into shared memory: no extra copy on the way out of a worker
        np.stack(views, out=out.numpy())
        return out
    return [torch.from_numpy(np.array(v)) for v in views]  # variable shapes: one tensor each
