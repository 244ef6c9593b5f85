"""``DeviceLoader``: files to the GPU with one host copy (the read), no DataLoader worker processes.

dlio_core's reader threads read each file straight into a pooled staging buffer. On CUDA the pool's
buffers come from a pinned allocator (``torch.empty(n, dtype=torch.uint8, pin_memory=True).numpy()``,
passed to :class:`~dlio_core.engine.NativeLoader` as ``allocator``), so the read is the only host copy:
a copier thread issues each sample's ``copy_(..., non_blocking=True)`` straight from its staging
buffer on a side CUDA stream, between two CUDA events, into a batch tensor on the device. At most
``buffers`` (2) batches are on the device at once: the one the consumer's step uses and the next one
being copied. The copier waits for the end event (so the staging buffers go back to the pool only once
the DMA has read them, and ``h2d_s`` belongs to this batch) and the consumer's stream waits on the same
event, so a step never reads a batch before its copy is done, with no host synchronisation in the step.

With ``device="cpu"`` the same path runs with plain numpy buffers: samples are copied with
``torch.from_numpy(...)`` into a host batch tensor (the pool's buffers go back at once) and ``h2d_s``
is ``None`` (no copy to a device happened). Samples of different shapes are zero-padded to the batch's
largest shape (as ``dlio_jax`` does). Strided samples (several samples per npz/npy file lie on the last
axis) cannot be DMA'd in one piece: torch stages them through a contiguous temporary (a second host
copy); one sample per file (the common case) has none.

Example:
    >>> import tempfile
    >>> from dlio_torch import DeviceLoader
    >>> loader = DeviceLoader("default", device="cpu", overrides=[f"++workload.dataset.data_folder={tempfile.mkdtemp()}",
    ...     "++workload.workflow.generate_data=True", "++workload.dataset.num_files_train=8"])
    >>> [(tuple(b.data.shape), b.h2d_s) for b in loader]
    [((4, 64, 64), None), ((4, 64, 64), None)]
"""

from __future__ import annotations

from collections import abc
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from dlio_core.prefetch import background_map

from ._loader import TorchBatch
from ._world import resolve_rank_world

__all__ = ["DeviceLoader", "make_device_loader", "pinned_allocator"]

CUDA_ERROR = ('DeviceLoader(device="cuda") needs a CUDA device, and torch.cuda.is_available() is False here; '
              'pass device="cpu" to run the same path on the host')


def pinned_allocator(nbytes: int) -> np.ndarray:
    """``nbytes`` of page-locked host memory as a numpy array (the tensor lives as long as the array).

    Needs CUDA (pinning is a CUDA driver call).
    """
    return torch.empty(int(nbytes), dtype=torch.uint8, pin_memory=True).numpy()


class _Move:
    """Copies one engine batch's samples into a batch tensor on ``device``: the same code on CPU and CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device) if self.cuda else None

    def __call__(self, samples: Sequence[np.ndarray]) -> tuple[torch.Tensor, Any, Any]:
        """``(batch, start_event, end_event)``; the events are ``None`` on CPU."""
        hosts = [torch.from_numpy(s) for s in samples]  # views of the staging buffers: no copy
        first = hosts[0]
        ragged = any(h.shape != first.shape or h.dtype != first.dtype for h in hosts)
        if ragged:
            ndim = max(h.dim() for h in hosts)
            shape = tuple(max(h.shape[a] if a < h.dim() else 1 for h in hosts) for a in range(ndim))
            dtype = first.dtype
            for h in hosts[1:]:
                dtype = torch.promote_types(dtype, h.dtype)
        else:
            shape, dtype = tuple(first.shape), first.dtype
        if not self.cuda:
            out = (torch.zeros if ragged else torch.empty)((len(hosts), *shape), dtype=dtype)
            self._fill(out, hosts, ragged)
            return out, None, None
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            out = (torch.zeros if ragged else torch.empty)((len(hosts), *shape), dtype=dtype, device=self.device)
            start.record(self.stream)
            self._fill(out, hosts, ragged)
            end.record(self.stream)
        return out, start, end

    def labels(self, ys: np.ndarray) -> torch.Tensor:
        """The step's labels on the device: on the side stream, so the batch's end event covers them."""
        host = torch.from_numpy(ys)
        if not self.cuda:
            return host
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            return host.to(self.device)

    @staticmethod
    def _fill(out: torch.Tensor, hosts: list[torch.Tensor], ragged: bool) -> None:
        if ragged:
            for i, h in enumerate(hosts):
                out[(i, *(slice(0, n) for n in h.shape))].copy_(h, non_blocking=True)
        else:
            for i, h in enumerate(hosts):
                out[i].copy_(h, non_blocking=True)


def device_batches(batches: Iterator[Any], move: _Move, *, buffers: int = 2,
                   labels_of: Callable[[Any], np.ndarray | None] | None = None) -> Iterator[TorchBatch]:
    """Engine batches (with ``samples``) -> :class:`TorchBatch` on ``move.device``, in order, copied on a
    background thread (:func:`dlio_core.prefetch.background_map`) with at most ``buffers`` batches on the
    device. ``labels_of(batch)`` gives the step's labels (read before its buffers go back to the pool); they
    are copied on the same stream, before the samples, so the consumer's wait covers them too."""

    def copy(b: Any) -> tuple[TorchBatch, Any]:
        try:
            ys = labels_of(b) if labels_of is not None else None
            y = None if ys is None else move.labels(ys)
            data, start, end = move(b.samples)
            h2d_s = None
            if end is not None:
                end.synchronize()  # the DMA has read the staging buffers; the figure is this batch's
                h2d_s = start.elapsed_time(end) / 1000.0
        finally:
            b.release()  # staging buffers back to the engine's pool
        return TorchBatch(step=b.step, num_samples=b.num_samples, bytes_read=b.bytes_read,
                          sample_bytes=b.sample_bytes, io_s=b.io_s, decode_s=b.decode_s, h2d_s=h2d_s,
                          data=data, labels=y), end

    def wait(item: tuple[TorchBatch, Any]) -> None:
        batch, end = item
        if end is not None:  # the consumer's stream orders its work after the copy; memory is
            consumer = torch.cuda.current_stream(move.device)  # not reused while that work runs
            consumer.wait_event(end)
            batch.data.record_stream(consumer)
            if batch.labels is not None:
                batch.labels.record_stream(consumer)

    copies = background_map(batches, copy, depth=buffers, name="dl-driver-device-copy", on_ready=wait,
                            on_drop=lambda b: b.release())
    try:
        for batch, _ in copies:
            yield batch
    finally:
        copies.close()  # closing this generator stops the copier thread now, not when ``copies`` is collected


class DeviceLoader:
    """One workload's batches as torch tensors on ``device``, read by dlio_core's threads (see the module).

    ``config`` is what :func:`dlio_core.config.load_config` takes, with ``overrides``; ``threads``
    replaces ``reader.read_threads``; ``rank``/``world`` pick this process's share as DLIO's ranks do
    (default: from an initialised ``torch.distributed`` group, else ``RANK``/``WORLD_SIZE``, else 0 of 1,
    so under ``torchrun`` each rank reads its own share).
    Iterating yields one epoch (``epoch``, default 1) of :class:`~dlio_torch.TorchBatch`
    (``data`` on the device, ``labels`` there too when the format carries them: npz's ``y`` as int64, as the
    datasets give them; ``labels=False`` leaves them out, ``labels=True`` fails for a format without them;
    ``io_s``, ``decode_s``, ``h2d_s``, bytes); :meth:`epoch` takes any plan, as
    the runner's Loader protocol does. ``pinned`` says whether staging buffers are page-locked, and
    ``notes`` why not. ``files`` (``(relpath, size)`` pairs, as the runner passes them) skips generation
    and listing.
    """

    def __init__(self, config: Any, *, device: str | torch.device = "cuda", overrides: Sequence[str] = (),
                 split: str = "train", threads: int | None = None, epoch: int = 1, rank: int | None = None,
                 world: int | None = None,
                 buffers: int = 2, storage: Any = None, files: Sequence[tuple[str, int]] | None = None,
                 random_seed: int | None = None, labels: bool | None = None) -> None:
        from dlio_core.config import load_config
        from dlio_core.generate import generate_dataset
        from dlio_core.listing import dataset_files, dataset_storage
        from dlio_core.reader import epoch_plan

        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(CUDA_ERROR)
        if self.device.type not in ("cuda", "cpu"):
            raise ValueError(f'DeviceLoader: device must be "cuda" (or "cuda:N") or "cpu", got {str(device)!r}')
        self.cfg = cfg = load_config(config, list(overrides))
        rank, world = resolve_rank_world(rank, world)
        self.rank, self.world = rank, world
        if cfg.workflow.generate_data and files is None:
            if rank == 0:
                generate_dataset(cfg, progress=False)
            group = torch.distributed
            if world > 1 and group.is_available() and group.is_initialized():
                group.barrier()  # the other ranks list the data once rank 0 has written it
        self.split = split
        self.storage = storage if storage is not None else dataset_storage(cfg)
        # A Sequence (a list, the run's FileTable) is used as it is: no list of names made from a table.
        self.files = (files if isinstance(files, abc.Sequence) else list(files)) if files is not None else \
            dataset_files(cfg, self.storage, split)
        self.plan = epoch_plan(cfg, split=split, epoch=epoch, world=world, rank=rank, random_seed=random_seed)
        self.buffers = buffers
        self.notes: list[str] = []
        allocator: Callable[[int], np.ndarray] | None = pinned_allocator if self.device.type == "cuda" else None
        self.pinned = allocator is not None
        self.engine = self._engine(threads, rank, allocator)
        self._move = _Move(self.device)
        self._labels = self._label_maker(labels)
        self.labels = self._labels is not None

    def _label_maker(self, labels: bool | None) -> Any:
        """A :class:`~dlio_torch._samples.SampleMaker` that finds each sample's label (npz ``y``), or None."""
        from dlio_core.labels import formats_with_labels, has_labels

        from ._samples import SampleMaker
        from ._source import Source

        fmt = self.engine.fmt
        if labels is None:
            labels = has_labels(fmt)
        if not labels:
            return None
        if not has_labels(fmt):
            raise ValueError(f"labels=True: {fmt.name} files carry no labels (formats with labels: "
                             f"{', '.join(formats_with_labels())}); pass labels=False")
        source = Source.from_files(self.storage, fmt, self.files)
        return SampleMaker(labels=source, samples_per_file=self.cfg.dataset.num_samples_per_file)

    def _engine(self, threads: int | None, rank: int, allocator: Callable[[int], np.ndarray] | None) -> Any:
        from dlio_core.reader import native_reader

        engine = native_reader(self.cfg, self.storage, self.files, rank=rank, keep_samples=True, read_threads=threads,
                               allocator=allocator)
        if not getattr(engine.fmt, "whole_file", True):
            self.notes.append(f"{engine.fmt.name} is read by ranges: its samples come from the format's reader, not "
                              "from the staging pool (pageable)")
        return engine

    @property
    def steps(self) -> int:
        """Steps in the epoch."""
        return self.plan.steps

    def __len__(self) -> int:
        return self.plan.steps

    def __iter__(self) -> Iterator[TorchBatch]:
        return self.epoch(self.plan)

    def epoch(self, plan: Any, *, max_steps: int | None = None) -> Iterator[TorchBatch]:
        """The plan's steps (at most ``max_steps``) in order, as :class:`TorchBatch` objects on the device."""
        maker = self._labels
        labels_of = None if maker is None else (lambda b: maker._labels(b, plan.batch(b.step)))
        return device_batches(self.engine.epoch(plan, max_steps=max_steps), self._move, buffers=self.buffers,
                              labels_of=labels_of)


def make_device_loader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str,
                       rank: int = 0) -> DeviceLoader:
    """A runner-facing factory (the shape ``dlio_core.loaders`` calls): CUDA when present, else the CPU path.

    The runner passes each epoch's plan to :meth:`DeviceLoader.epoch`; rank and world come from that plan.
    """
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # world only sizes the default plan, which the runner's plans replace (they carry its rank and world).
    # labels=False: the runner uses the figures, not the labels, so it pays no label lookups.
    return DeviceLoader(cfg, device=device, split=split, rank=rank, world=rank + 1, storage=storage, files=files,
                        labels=False)
