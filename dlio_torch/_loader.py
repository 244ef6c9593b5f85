"""``reader.data_loader: pytorch``: the runner's adapter (private to it), reading through a real ``DataLoader``.

Each epoch the runner hands an :class:`~dlio_core.sampling.EpochPlan`; this adapter points a batched
:class:`~dlio_torch.DlioIterableDataset` (persistent workers, shared-memory epoch) at the same plan,
so the order, the step count and the rank's share are the native engine's. Every batch comes back
from its worker with the step's ``io_s``/``decode_s``/bytes (measured in the worker), then is copied
to the CUDA device when there is one (``h2d_s`` from CUDA events; ``None`` without a device).

Example:
    >>> from dlio_core.config import tiny_run_config
    >>> from dlio_core.runner import run
    >>> metric = run(tiny_run_config(data_loader="pytorch", overrides=("++workload.reader.read_threads=0",)), quiet=True).summary["metric"]
    >>> metric["train_throughput_samples_per_second"][0] > 0
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch

from dlio_core.engine import Batch
from dlio_core.reader import check_samples_per_file, reader_format

from ._dataloader import dataloader_kwargs
from ._dataset import DlioIterableDataset, constant_shape
from ._source import Source
from ._h2d import DeviceCopy
from ._worker_error import raise_if_error

__all__ = ["TorchBatch", "TorchLoader", "make_loader"]


@dataclass(init=False)
class TorchBatch(Batch):
    """One step as the runner sees it: :class:`dlio_core.engine.Batch` (``h2d_s`` set when a CUDA copy
    happened, ``None`` otherwise) plus ``data``, the tensors handed to the model, and ``labels`` (``None``
    unless the loader reads them: :class:`~dlio_torch.DeviceLoader` over npz).

    Positional order kept from before it was a ``Batch``: ``(step, num_samples, bytes_read, sample_bytes,
    io_s, decode_s, h2d_s, data)``.
    """

    data: Any = field(default=None, repr=False)
    labels: Any = field(default=None, repr=False)  # the samples' labels (int64, on data's device) when read

    def __init__(self, step: int, num_samples: int, bytes_read: int = 0, sample_bytes: int = 0,
                 io_s: float = 0.0, decode_s: float = 0.0, h2d_s: float | None = None, data: Any = None,
                 labels: Any = None) -> None:
        super().__init__(step, num_samples, bytes_read, sample_bytes, io_s, decode_s, h2d_s=h2d_s)
        self.data = data
        self.labels = labels

    def release(self) -> None:
        """Drop the batch's tensors (shared memory goes back once the last reference is gone)."""
        self.data = self.labels = None
        super().release()


class TorchLoader:
    """Feeds the runner from a ``torch.utils.data.DataLoader`` built from the config's reader section."""

    def __init__(self, cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str, rank: int = 0) -> None:
        check_samples_per_file(cfg, storage)  # as the native engine's reader checks
        self.cfg = cfg
        self.source = Source.from_files(storage, reader_format(cfg), files)
        self.split = split
        self.copy = DeviceCopy()
        self._key: Any = None
        self._dataset: DlioIterableDataset | None = None
        self._loader: torch.utils.data.DataLoader | None = None
        self._const: torch.Tensor | None = None

    def _ensure(self, plan: Any) -> DlioIterableDataset:
        # One DataLoader (and one set of persistent workers) for every epoch of the same plan shape.
        key = dataclasses.replace(plan, epoch=0)
        if key != self._key:
            reader = self.cfg.reader
            self._dataset = DlioIterableDataset(
                self.source, samples_per_file=plan.samples_per_file, batch_size=plan.batch_size, seed=plan.seed,
                file_shuffle=plan.file_shuffle, sample_shuffle=plan.sample_shuffle,
                seed_change_epoch=plan.seed_change_epoch, drop_last=plan.drop_last, random_seed=plan.random_seed,
                rank=plan.rank, world=plan.world, batched=True,
                content=str(getattr(reader, "batch_content", "constant")), constant_shape=constant_shape(self.cfg),
                constant_dtype=reader.transformed_record_element_type, with_info=True,
                read_ahead=max(1, reader.prefetch_size), constant_in_consumer=True)
            self._dataset.carry_errors = True  # a data error arrives as one line, with its exit code's cause
            self._loader = torch.utils.data.DataLoader(self._dataset, **dataloader_kwargs(reader))
            self._key = key
        assert self._dataset is not None
        return self._dataset

    def epoch(self, plan: Any, *, max_steps: int | None = None) -> Iterator[TorchBatch]:
        """Yield the plan's steps (at most ``max_steps``) in order, as :class:`TorchBatch` objects."""
        ds = self._ensure(plan)
        ds.set_epoch(plan.epoch)
        ds.set_stop(max_steps)
        for item in self._loader:  # type: ignore[union-attr]
            data, info = raise_if_error(item)
            if data is None:  # constant content: made once here, pinned when it will be copied to a device
                data = self._constant(ds)
            data, h2d_s = self.copy(data)
            yield TorchBatch(step=info["step"], num_samples=info["num_samples"], bytes_read=info["bytes_read"],
                             sample_bytes=info["sample_bytes"], io_s=info["io_s"], decode_s=info["decode_s"],
                             h2d_s=h2d_s, data=data)


    def _constant(self, ds: DlioIterableDataset) -> torch.Tensor:
        if self._const is None or self._const.shape[0] != ds.batch_size:
            const = ds._constant_batch()
            self._const = const.pin_memory() if self.copy.active and self.cfg.reader.pin_memory else const
        return self._const


def make_loader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str, rank: int = 0) -> TorchLoader:
    """The factory ``dlio_core.loaders`` registers for ``reader.data_loader: pytorch``."""
    return TorchLoader(cfg, storage, files, split=split, rank=rank)
