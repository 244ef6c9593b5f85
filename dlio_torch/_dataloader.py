"""``make_dataloader(config)``: the reader section mapped onto a real ``torch.utils.data.DataLoader``.

=========================================  ===============================================================
``reader.*``                               ``DataLoader``
=========================================  ===============================================================
``batch_size``                             the dataset's steps (``batch_size=None`` on the loader: one
                                           item per step, so worker count never changes the batches)
``read_threads``                           ``num_workers`` (0: read in the main process, as DLIO)
``prefetch_size``                          ``prefetch_factor = ceil(prefetch_size / read_threads)`` (DLIO)
``pin_memory``                             ``pin_memory`` when a CUDA device is present (pinning needs one)
``multiprocessing_context``                ``multiprocessing_context`` (fork, spawn, forkserver)
=========================================  ===============================================================

Workers are persistent, so epochs do not pay the worker start-up again; ``set_epoch`` reaches them
through shared memory.

Example:
    >>> from dlio_core.config import tiny_run_config
    >>> from dlio_core.generate import generate_dataset
    >>> cfg = tiny_run_config(overrides=("++workload.reader.read_threads=0", "++workload.dataset.num_files_train=8",
    ...                                  "++workload.reader.batch_size=4"))
    >>> _ = generate_dataset(cfg, progress=False)
    >>> loader = make_dataloader(cfg)
    >>> x, y = next(iter(loader))  # npz: the samples and their labels (``y``)
    >>> tuple(x.shape), y.tolist()
    ((4, 64, 64), [0, 0, 0, 0])
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from ._dataset import DlioIterableDataset
from ._worker_error import raise_if_error

__all__ = ["DlioDataLoader", "make_dataloader", "dataloader_kwargs"]


def dataloader_kwargs(reader: Any, *, workers: int | None = None) -> dict[str, Any]:
    """``DataLoader`` keyword arguments for a ``reader`` config section (see the table above)."""
    n = int(reader.read_threads if workers is None else workers)
    kwargs: dict[str, Any] = {"batch_size": None, "num_workers": n,
                              "pin_memory": bool(reader.pin_memory) and torch.cuda.is_available()}
    if n > 0:
        kwargs["prefetch_factor"] = math.ceil(reader.prefetch_size / n) if reader.prefetch_size > 0 else 2
        kwargs["persistent_workers"] = True
        kwargs["multiprocessing_context"] = str(getattr(reader.multiprocessing_context, "value",
                                                        reader.multiprocessing_context))
    return kwargs


class DlioDataLoader(torch.utils.data.DataLoader):
    """A ``DataLoader`` over a batched :class:`DlioIterableDataset` that knows where it is in the epoch.

    ``state_dict()`` counts the batches this loader handed out (workers read ahead, so the dataset
    copies in the workers cannot know); ``load_state_dict()`` resumes at exactly the next step, and
    ``set_epoch`` reshuffles (:class:`dlio_core.state.Stateful`). The same keys as the dataset's state,
    so either can restore the other.
    """

    dataset: DlioIterableDataset

    def __init__(self, dataset: DlioIterableDataset, **kwargs: Any) -> None:
        if not dataset.batched:
            raise ValueError("DlioDataLoader needs a batched dataset (DlioIterableDataset(..., batched=True))")
        super().__init__(dataset, **kwargs)
        dataset.carry_errors = True  # a worker's error is raised whole, as in one process
        self._position = dataset.state_dict()
        self._resume: dict[str, Any] | None = None  # a loaded state no iteration has started from yet

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (call once per epoch, as with ``DistributedSampler``).

        After ``load_state_dict``, ``set_epoch`` of the saved epoch keeps the resume point (the usual
        loop calls ``set_epoch`` at the top of every epoch, the resumed one included), so the batches
        already consumed are not replayed; any other epoch starts from its beginning.
        """
        resume, self._resume = self._resume, None
        if resume is not None and int(resume["epoch"]) == int(epoch):
            self.load_state_dict(resume)
            return
        self.dataset.set_epoch(epoch)
        self._position = self.dataset.state_dict()

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # Where every worker starts (the resume point), not where the main process's copy stopped.
        state = {**self.dataset.state_dict(), **self.dataset.resume_point().to_dict()}
        end = self.dataset.end_step()
        self._position, self._resume = state, None
        for item in super().__iter__():
            raise_if_error(item)
            state = dict(state, next_step=min(state["next_step"] + 1, end))
            self._position = state
            yield item

    def state_dict(self) -> dict[str, Any]:
        """``{"epoch", "next_step", ...}``: the first step this loader has not yet handed to the loop."""
        return dict(self._position)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume: the next ``iter()`` yields the steps from ``state["next_step"]`` of ``state["epoch"]``."""
        self.dataset.load_state_dict(state)
        self._position = dict(state)
        self._resume = dict(state)


def make_dataloader(config: Any, *, overrides: Sequence[str] = (), split: str = "train",
                    rank: int | None = None, world: int | None = None, content: str = "samples",
                    labels: bool | None = None, transform: Callable[[Any], Any] | None = None,
                    collate_fn: Callable[[list], Any] | None = None, **dataloader_overrides: Any) -> DlioDataLoader:
    """A :class:`DlioDataLoader` for a workload (path, bundled name or ``RunConfig``).

    Batches as :meth:`DlioIterableDataset.from_config` makes them (``content``, ``labels``,
    ``transform`` in the workers, ``collate_fn``); ``dataloader_overrides`` replace the mapped
    ``DataLoader`` arguments (e.g. ``num_workers=2``).
    """
    from dlio_core.config import load_config

    cfg = load_config(config, list(overrides))
    ds = DlioIterableDataset.from_config(cfg, split=split, rank=rank, world=world, batched=True, content=content,
                                         labels=labels, transform=transform, collate_fn=collate_fn)
    kwargs = dataloader_kwargs(cfg.reader, workers=dataloader_overrides.pop("num_workers", None))
    kwargs.update(dataloader_overrides)
    return DlioDataLoader(ds, **kwargs)
