"""``reader.data_loader: dali`` and ``native_dali``: the runner's adapters (private to it) over DALI pipelines.

One pipeline is built per loader (on the first epoch) and reset between epochs. ``dali`` feeds
``fn.external_source`` from dl-driver's engine with the runner's plan for the epoch, so its steps,
samples and figures (bytes read, io and decode seconds) are the engine's. ``native_dali`` runs DALI's
own reader on this rank's shard; DALI reports no per-stage split, so ``io_s``/``decode_s`` are 0 and
the whole time shows as the runner's ``wait``; ``bytes_read`` is the bytes of the samples DALI
returned (for npy, whole files: ``spf`` DLIO samples each, counted as such). If a native shard holds
fewer batches than the runner's step count (DALI shards by files, the runner by samples), the reader
simply continues into its next epoch so the runner gets every step it asks for.

Example:
    >>> from dlio_core.config import tiny_run_config
    >>> from dlio_core.runner import run
    >>> metric = run(tiny_run_config(data_loader="dali", epochs=2), quiet=True).summary["metric"]
    >>> metric["train_throughput_samples_per_second"][0] > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from dlio_core.engine import Batch

__all__ = ["DaliBatch", "DaliLoader", "make_loader", "make_native_loader"]


@dataclass
class DaliBatch(Batch):
    """One step from a DALI pipeline: :class:`dlio_core.engine.Batch` plus ``output`` (the pipeline's)."""

    output: Any = None

    def release(self) -> None:
        self.output = None
        super().release()


def _nbytes(tl: Any) -> int:
    shapes = tl.shape()
    if not shapes:
        return 0
    itemsize = 1  # DLIO's samples are uint8 (npy records, tfrecord bytes)
    return int(np.prod(np.asarray(shapes, dtype=np.int64).reshape(len(shapes), -1), axis=1).sum()) * itemsize


class DaliLoader:
    """Loader protocol adapter over :func:`~dlio_jax.dali.pipeline` (``reader`` ``external`` or ``native``)."""

    def __init__(self, cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str, reader: str) -> None:
        self.cfg, self.storage, self.files, self.split, self.reader = cfg, storage, list(files), split, reader
        self.pipe: Any = None
        self._plan: Any = None
        self._max_steps: int | None = None

    def _build(self, plan: Any) -> Any:
        from ._pipelines import pipeline

        cfg = self.cfg
        pipe = pipeline(cfg, reader=self.reader, split=self.split, epoch=plan.epoch, rank=plan.rank, world=plan.world,
                        random_seed=getattr(plan, "random_seed", None), storage=self.storage, files=self.files,
                        whole_files=True,  # DLIO's native_dali counts whole npy files as their samples
                        labels=False)  # the runner reads; the model is emulated
        if pipe.dlio.feed is not None:
            # The runner owns the plan (and its shared random seed); the feed reads whatever is current.
            pipe.dlio.feed.make_plan = lambda epoch: self._plan
            pipe.dlio.feed.max_steps = None
        return pipe

    def epoch(self, plan: Any, *, max_steps: int | None = None) -> Iterator[DaliBatch]:
        steps = plan.steps if max_steps is None else min(plan.steps, max_steps)
        if steps <= 0:
            return
        self._plan = plan if max_steps is None else _Capped(plan, steps)
        if self.pipe is None:
            self.pipe = self._build(plan)
        pipe, info = self.pipe, self.pipe.dlio
        done = 0
        try:
            while done < steps:
                try:
                    (out,) = pipe.run()
                except StopIteration:  # end of the reader's epoch: start its next one
                    pipe.reset()
                    if info.feed is not None:  # the external feed ends exactly at the plan's last step
                        break
                    continue
                done += 1  # before the yield: a consumer may close the generator there
                if info.feed is not None:
                    n, nbytes, sbytes, io_s, decode_s = info.feed.figures.popleft()
                    yield DaliBatch(step=done - 1, num_samples=n, bytes_read=nbytes, sample_bytes=sbytes,
                                    io_s=io_s, decode_s=decode_s, h2d_s=None, output=out)
                else:  # DALI's own reader: its I/O and decoding happen inside pipe.run(), unseen by us
                    nbytes = _nbytes(out)
                    n = len(out) * info.samples_per_item
                    yield DaliBatch(step=done - 1, num_samples=n, bytes_read=nbytes, sample_bytes=nbytes,
                                    io_s=None, decode_s=None, h2d_s=None, output=out)
        finally:
            if info.feed is not None:
                if done >= steps:
                    self._drain(pipe)
                else:  # stopped mid-epoch: a fresh pipeline next time rather than reading the rest
                    info.feed.close()
                    self.pipe = None

    @staticmethod
    def _drain(pipe: Any) -> None:
        """Run the pipeline to the feed's end and reset it, so the next epoch starts clean."""
        try:
            while True:
                pipe.run()
        except StopIteration:
            pass
        pipe.reset()
        pipe.dlio.feed.figures.clear()


class _Capped:
    """A plan cut to its first ``steps`` steps (the runner's ``total_training_steps``)."""

    def __init__(self, plan: Any, steps: int) -> None:
        self.plan, self.steps = plan, steps

    def batch(self, step: int) -> Any:
        return self.plan.batch(step)


def make_loader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str, rank: int = 0) -> DaliLoader:
    """``reader.data_loader: dali``: ``fn.external_source`` fed by dl-driver's engine."""
    return DaliLoader(cfg, storage, files, split=split, reader="external")


def make_native_loader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str,
                       rank: int = 0) -> DaliLoader:
    """``reader.data_loader: native_dali``: DALI's own npy / tfrecord readers on this rank's shard."""
    return DaliLoader(cfg, storage, files, split=split, reader="native")
