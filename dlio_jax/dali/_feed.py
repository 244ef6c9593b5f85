"""The ``fn.external_source`` callable: dl-driver's engine feeding a DALI pipeline, batch by batch.

DALI calls the feed in batch mode with a ``BatchInfo``; ``iteration == 0`` starts epoch
``first_epoch + epoch_idx`` of this rank's plan, and the feed raises ``StopIteration`` after the
plan's last step (DALI's end-of-epoch signal). The engine's reader threads do the I/O (every format
and backend dlio_core reads), so DALI's own Python workers (``parallel=True``) would only add a
process hop. A batch of equal shapes is stacked into one dense array (DALI rejects the strided
``x[..., i]`` views of multi-sample files) and its pooled buffers go back at once; a ragged batch is
fed sample by sample and its buffers go back on the next call, once DALI has copied them. Per-batch
figures (bytes, io and decode seconds) go to ``figures`` in step order for the runner's adapter. With
``labels`` (files that carry them: npz ``y``) each call returns ``(samples, labels)`` for an
``external_source`` with two outputs.

Example:
    >>> import numpy as np
    >>> from types import SimpleNamespace as NS
    >>> class Engine:  # stands in for dlio_core's NativeLoader; a "plan" here is a step count
    ...     def epoch(self, plan, max_steps=None):
    ...         for s in range(plan):
    ...             yield NS(samples=[np.full(2, s)], num_samples=1, bytes_read=1, sample_bytes=1, io_s=0.0, decode_s=0.0,
    ...                      release=lambda: None)
    >>> feed = EngineFeed(Engine(), make_plan=lambda epoch: 2)
    >>> [feed(NS(iteration=i, epoch_idx=0)).tolist() for i in range(2)], len(feed.figures)
    ([[[0, 0]], [[1, 1]]], 2)
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Iterator

import numpy as np

__all__ = ["EngineFeed", "file_labels"]


class EngineFeed:
    """``source`` for ``fn.external_source(batch=True, batch_info=True)``.

    ``make_plan(epoch)`` returns this rank's plan for an epoch; ``engine.epoch(plan)`` yields batches
    with ``samples`` (see :class:`~dlio_core.engine.NativeLoader` with ``keep_samples=True``).
    """

    def __init__(self, engine: Any, make_plan: Callable[[int], Any], *, first_epoch: int = 1,
                 max_steps: int | None = None, labels: Callable[[Any, Any], np.ndarray] | None = None) -> None:
        self.engine = engine
        self.make_plan = make_plan
        self.labels = labels  # labels(batch, plan) -> int64 labels of the batch's samples
        self._plan: Any = None
        self.first_epoch = first_epoch
        self.max_steps = max_steps
        self.figures: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._it: Iterator[Any] | None = None
        self._held: Any = None
        self._epoch_idx = -1

    def __call__(self, info: Any) -> list[Any]:
        with self._lock:  # DALI may call from its own thread; one epoch generator at a time
            self._give_back()
            epoch_idx = getattr(info, "epoch_idx", 0)
            if self._it is None or info.iteration == 0 and epoch_idx != self._epoch_idx:
                self._close_epoch()
                self._epoch_idx = epoch_idx
                plan = self._plan = self.make_plan(self.first_epoch + epoch_idx)
                self._it = self.engine.epoch(plan, max_steps=self.max_steps)
            try:
                batch = next(self._it)
            except StopIteration:
                self._it = None
                raise
            self.figures.append((batch.num_samples, batch.bytes_read, batch.sample_bytes, batch.io_s, batch.decode_s))
            samples = batch.samples
            labels = self.labels(batch, self._plan) if self.labels is not None else None
            first = samples[0]
            if all(x.shape == first.shape for x in samples):
                out: Any = np.stack(samples)  # one dense batch (DALI rejects strided x[..., i] views)
                batch.release()
            else:
                self._held = batch  # ragged: DALI copies each sample when fed; buffers go back next call
                out = [np.ascontiguousarray(x) for x in samples]
            return out if labels is None else (out, labels)

    def _give_back(self) -> None:
        if self._held is not None:
            self._held.release()
            self._held = None

    def _close_epoch(self) -> None:
        if self._it is not None:
            self._it.close()
            self._it = None

    def close(self) -> None:
        """Stop the engine's threads and return every buffer."""
        with self._lock:
            self._give_back()
            self._close_epoch()

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("EngineFeed runs in the pipeline's process (external_source parallel=False); "
                        "it is not meant to be pickled into DALI worker processes")


def file_labels(storage: Any, files: Any, samples_per_file: int = 0) -> Callable[[Any, Any], np.ndarray]:
    """``labels(batch, plan)`` for :class:`EngineFeed`: the labels the files carry (npz ``y``), each file's
    kept once read when ``samples_per_file`` is given (:class:`dlio_core.labels.StepLabels`)."""
    from dlio_core.labels import StepLabels

    step_labels = StepLabels.of_files(storage, files, samples_per_file)
    return lambda batch, plan: step_labels(batch.samples, *plan.batch(batch.step))
