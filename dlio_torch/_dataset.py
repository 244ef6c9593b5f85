"""``DlioIterableDataset``: a ``torch.utils.data.IterableDataset`` over a DLIO dataset on any storage.

Sharding: the sample order of one epoch comes from :class:`dlio_core.sampling.EpochPlan` (every rank
gets the same number of steps, so DDP never hangs on uneven inputs). Rank and world are resolved when
iteration starts (explicit, ``torch.distributed``, ``RANK``/``WORLD_SIZE``); DataLoader workers get
whole steps round-robin (worker ``w`` of ``W`` reads steps ``start + w, start + w + W, ...``), which is
the order the DataLoader's in-order round-robin hands them back in, so a rank's batches are the same
whatever ``num_workers`` is.

What a step hands to the model (``content``):

- ``"samples"``: the samples actually read, as tensors (a batch is stacked when shapes agree).
- ``"constant"``: DLIO's behaviour: the files are read (and timed) and the bytes discarded, and a
  constant tensor of ``transformed_record_dims`` (else a square of ``record_length_bytes_resize`` bytes)
  is handed over. Built once per process and kept in shared memory, so the figures do not pay for
  moving 140 MB samples between processes (config key ``reader.batch_content``).

Epochs and resume: ``set_epoch(e)`` reshuffles (``seed_change_epoch``); ``state_dict()`` /
``load_state_dict()`` (:class:`dlio_core.state.Stateful`) give and take ``{"epoch", "next_step",
"seed", ...}`` and work inside torchdata's ``StatefulDataLoader`` workers. Epoch and resume point set
in the main process reach workers, persistent ones included, through a
:class:`~dlio_torch._control.SharedControl`.

Example:
    >>> import tempfile, numpy as np, torch
    >>> from dlio_core.formats import get_format
    >>> from dlio_core.storage import open_storage
    >>> root = tempfile.mkdtemp()
    >>> for i in range(4):
    ...     _ = get_format("npy").write_file(open_storage(root), f"f{i}.npy", np.full((2, 2, 2), i, np.uint8))
    >>> ds = DlioIterableDataset.from_uri(root, format="npy", batch_size=2, batched=True, rank=0, world=1)
    >>> [b.shape for b in torch.utils.data.DataLoader(ds, batch_size=None)]
    [torch.Size([2, 2, 2]), torch.Size([2, 2, 2]), torch.Size([2, 2, 2]), torch.Size([2, 2, 2])]
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from dlio_core.labels import formats_with_labels, has_labels
from dlio_core.sampling import EpochPlan, Shuffle
from dlio_core.state import IterationState, require_same

from ._control import SharedControl
from ._figures import EngineFigures
from ._samples import SampleMaker
from ._source import Source, decoding
from ._step_view import StepView
from ._worker_error import carrying_errors
from ._world import agreed_random_seed, resolve_rank_world, resolve_rank_world_source, worker_info

__all__ = ["DlioIterableDataset", "CONTENTS"]

CONTENTS = ("samples", "constant")



def _uses_random_shuffle(cfg: Any) -> bool:
    """Whether the config's file or sample shuffle is ``random`` (a run seed must then be drawn)."""
    from dlio_core.sampling.policy import normalise_shuffle

    return any(normalise_shuffle(getattr(cfg.reader, key)) is Shuffle.RANDOM
               for key in ("file_shuffle", "sample_shuffle"))

class DlioIterableDataset(torch.utils.data.IterableDataset):
    """DLIO-layout files as a PyTorch iterable dataset; build it with :meth:`from_config` or :meth:`from_uri`.

    Yields one item per sample (a tensor, or ``(x, y)`` with ``labels``), or with ``batched=True`` one
    per step (use ``DataLoader(ds, batch_size=None)``); ``with_info=True`` yields ``(data, info)`` where ``info``
    holds the step's ``step``, ``num_samples``, ``bytes_read``, ``sample_bytes``, ``io_s``, ``decode_s``.
    With ``batched=False`` give the DataLoader ``batch_size`` equal to this dataset's, so that its
    batches are the plan's steps. ``constant_in_consumer`` (with ``with_info``, ``batched`` and
    ``content="constant"``) yields ``(None, info)``: the consumer hands its own constant to the model.
    ``read_threads`` reader threads read in each process that iterates (thread workers: with
    ``num_workers=0`` the engine's threads read in the main process, and no batch crosses processes).
    """

    def __init__(self, source: Source, *, samples_per_file: int, batch_size: int, seed: int = 123,
                 file_shuffle: Shuffle | str = Shuffle.OFF, sample_shuffle: Shuffle | str = Shuffle.OFF,
                 seed_change_epoch: bool = True, drop_last: bool = True, random_seed: int | None = None,
                 rank: int | None = None, world: int | None = None, batched: bool = False,
                 content: str = "samples", constant_shape: Sequence[int] = (), constant_dtype: str = "uint8",
                 with_info: bool = False, read_ahead: int = 1, constant_in_consumer: bool = False,
                 labels: bool = False, transform: Callable[[Any], Any] | None = None,
                 collate_fn: Callable[[list], Any] | None = None, read_threads: int = 1) -> None:
        super().__init__()
        if content not in CONTENTS:
            raise ValueError(f"content must be one of {CONTENTS}, got {content!r}")
        if content == "constant" and not constant_shape:
            raise ValueError("content='constant' needs constant_shape (from_config derives it from the config)")
        if content == "constant" and (labels or transform is not None or collate_fn is not None):
            raise ValueError("labels, transform and collate_fn need content='samples' (content='constant' hands "
                             "DLIO's constant tensor, not the samples read)")
        if collate_fn is not None and not batched:
            raise ValueError("collate_fn makes each step's batch, so it needs batched=True; with batched=False "
                             "give it to the DataLoader: DataLoader(ds, batch_size=..., collate_fn=...)")
        if labels and not has_labels(source.fmt()):
            raise ValueError(f"labels=True: {source.fmt().name} files carry no labels (formats with labels: "
                             f"{', '.join(formats_with_labels())}); pass labels=False")
        self.source = source
        # Validated now (EpochPlan checks every field), so a bad value fails in the main process.
        self._plan_args = dict(num_files=len(source), samples_per_file=samples_per_file, batch_size=batch_size,
                               seed=seed, file_shuffle=file_shuffle, sample_shuffle=sample_shuffle,
                               seed_change_epoch=seed_change_epoch, drop_last=drop_last, random_seed=random_seed)
        EpochPlan(**self._plan_args)
        self.rank, self.world = rank, world
        self.batched, self.content, self.with_info = bool(batched), content, bool(with_info)
        self.constant_shape = tuple(int(d) for d in constant_shape)
        self.constant_dtype = str(constant_dtype)
        self.read_ahead = max(1, int(read_ahead))
        self.read_threads = max(1, int(read_threads))
        # The runner's loader attaches the constant itself: workers then send only the step's figures,
        # which keeps inter-process traffic per step to one small dict.
        self.constant_in_consumer = bool(constant_in_consumer) and self.with_info and self.batched
        self.labels = bool(labels)
        # Set by consumers that call raise_if_error on each item (the runner's loader, DlioDataLoader):
        # a worker's error then arrives whole instead of as PyTorch's re-raised traceback text.
        self.carry_errors = False
        self._maker = SampleMaker(labels=source if labels else None, transform=transform, collate_fn=collate_fn,
                                  samples_per_file=samples_per_file)
        self._control = SharedControl()
        self.engine_figures = EngineFigures()  # io/decode seconds of every process's reads (instrument)
        self._next_step = 0  # progress of this process's copy (what state_dict reports)
        self._epoch_seen = 0
        self._local_resume: IterationState | None = None  # set by load_state_dict inside a worker
        self._constant: dict[int, torch.Tensor] = {}
        self._group_rank_world: tuple[int, int] | None = None  # the parent's torch.distributed, for spawned workers

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Any, *, overrides: Sequence[str] = (), split: str = "train",
                    config_dir: str | None = None, rank: int | None = None, world: int | None = None,
                    batched: bool = False, content: str = "samples", with_info: bool = False,
                    random_seed: int | None = None, labels: bool | None = None,
                    transform: Callable[[Any], Any] | None = None, collate_fn: Callable[[list], Any] | None = None,
                    read_threads: int = 1) -> "DlioIterableDataset":
        """From a workload: a YAML path, a bundled name (``"unet3d_h100"``) or a ``RunConfig``.

        Files come from the generation manifest or one listing (``dataset_files``). ``content``
        ``"samples"`` (the default) yields the samples decoded as a trainer needs them (pixels, parquet
        columns), with their labels when the format carries them (``labels=None``: npz's ``y``);
        ``"constant"`` is DLIO's constant tensor (what ``reader.data_loader: pytorch`` hands the model).
        """
        from dlio_core.config import load_config
        from dlio_core.reader import epoch_plan

        cfg = load_config(config, list(overrides), config_dir=config_dir)
        source = Source.from_config(cfg, split, decode=content == "samples")
        if random_seed is None and _uses_random_shuffle(cfg):
            random_seed = agreed_random_seed(rank, world)  # drawn once, the same on every rank
        plan = epoch_plan(cfg, split=split, random_seed=random_seed)  # the config's batching and shuffles
        return cls(source,
                   samples_per_file=plan.samples_per_file, batch_size=plan.batch_size, seed=plan.seed,
                   file_shuffle=plan.file_shuffle, sample_shuffle=plan.sample_shuffle,
                   seed_change_epoch=plan.seed_change_epoch, random_seed=random_seed, rank=rank, world=world,
                   batched=batched, content=content, constant_shape=constant_shape(cfg),
                   constant_dtype=cfg.reader.transformed_record_element_type, with_info=with_info,
                   read_ahead=max(1, cfg.reader.prefetch_size), collate_fn=collate_fn, transform=transform,
                   labels=want_labels(labels, source, content), read_threads=read_threads)

    @classmethod
    def from_uri(cls, uri: str, *, format: str, batch_size: int = 1, samples_per_file: int | None = None,
                 storage_options: Mapping[str, Any] | None = None, prefix: str = "", shuffle: bool = False,
                 seed: int = 0, drop_last: bool = True, rank: int | None = None, world: int | None = None,
                 batched: bool = False, content: str = "samples", constant_shape: Sequence[int] = (),
                 with_info: bool = False, labels: bool | None = None, transform: Callable[[Any], Any] | None = None,
                 collate_fn: Callable[[list], Any] | None = None, read_threads: int = 1) -> "DlioIterableDataset":
        """Every ``*.{format}`` file under ``uri`` (``/data/x``, ``file://``, ``s3://bucket/x``, ...).

        ``samples_per_file`` is read from the first file when not given. ``shuffle`` shuffles files and
        samples with ``seed`` (a new order per ``set_epoch``). Samples, labels, ``transform`` and
        ``collate_fn`` as :meth:`from_config`.
        """
        fmt = decoding(format) if content == "samples" else format
        source = Source.from_uri(uri, format=fmt, storage_options=storage_options, prefix=prefix)
        spf = samples_per_file or source.samples_per_file()
        policy = Shuffle.SEED if shuffle else Shuffle.OFF
        return cls(source, samples_per_file=spf, batch_size=batch_size, seed=seed, file_shuffle=policy,
                   sample_shuffle=policy, drop_last=drop_last, rank=rank, world=world, batched=batched,
                   content=content, constant_shape=constant_shape, with_info=with_info,
                   labels=want_labels(labels, source, content), transform=transform, collate_fn=collate_fn,
                   read_threads=read_threads)

    # -- epochs, length, state ---------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return int(self._plan_args["batch_size"])

    def plan(self, epoch: int | None = None, *, rank: int | None = None, world: int | None = None) -> EpochPlan:
        """This rank's :class:`EpochPlan` for ``epoch`` (default: the current one)."""
        if rank is None and world is None:
            r, w, _ = self.rank_world()
        else:
            r, w = resolve_rank_world(self.rank if rank is None else rank, self.world if world is None else world)
        e = self._control.epoch if epoch is None else epoch
        return EpochPlan(**self._plan_args, world=w, rank=r, epoch=e)

    def rank_world(self) -> tuple[int, int, str]:
        """``(rank, world, source)`` as iteration would resolve them now in this process; ``source`` says
        where they came from (``"arguments"``, ``"torch.distributed"``, ``"RANK/WORLD_SIZE"``, ``"default"``)."""
        rank, world, source = resolve_rank_world_source(self.rank, self.world)
        group = getattr(self, "_group_rank_world", None)
        if source in ("RANK/WORLD_SIZE", "default") and group is not None and \
                torch.utils.data.get_worker_info() is not None:
            # A spawned worker: the parent's process group does not exist here; use what it said.
            gr, gw = group
            rank, world, source = (gr if self.rank is None else rank), (gw if self.world is None else world), \
                "torch.distributed"
        return rank, world, source

    def steps_per_epoch(self) -> int:
        """Steps per epoch on this rank (the same on every rank)."""
        return self.plan().steps

    def __len__(self) -> int:
        """Items one rank yields per epoch: steps, or samples when not ``batched``."""
        steps = self.steps_per_epoch()
        return steps if self.batched else steps * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order from the next iteration on (clears any resume point)."""
        self._set_control(int(epoch), 0)

    def set_stop(self, stop: int | None) -> None:
        """Read at most steps ``< stop`` of each epoch (``None``: all); the runner's step cap."""
        self._control.stop = stop

    def _set_control(self, epoch: int, start: int) -> None:
        self._control.set(epoch=epoch, start=start, stop=self._control.stop)
        self._next_step, self._epoch_seen = start, epoch

    def resume_point(self) -> IterationState:
        """Where the next iteration starts in every process: the epoch and first step that ``set_epoch`` or
        ``load_state_dict`` set in the main process (before any step of that iteration is handed out)."""
        return IterationState(epoch=self._control.epoch, next_step=self._control.start, seed=self.seed)

    def end_step(self) -> int:
        """The step an iteration stops before: the epoch's step count, or the :meth:`set_stop` cap if lower."""
        steps, stop = self.steps_per_epoch(), self._control.stop
        return steps if stop is None else min(stop, steps)

    @property
    def seed(self) -> int:
        """The shuffle seed (``train.seed`` for :meth:`from_config`)."""
        return int(self._plan_args["seed"])

    def _identity(self) -> dict[str, int]:
        # What a saved state must agree on: the same files, batching and seed give the same steps.
        return {"batch_size": self.batch_size, "num_files": len(self.source), "seed": self.seed}

    def state_dict(self) -> dict[str, Any]:
        """Where this copy of the dataset stands (:class:`dlio_core.state.Stateful`): the
        :class:`~dlio_core.state.IterationState` fields (epoch, the first step not handed out, seed)
        plus ``batch_size`` and ``num_files``.

        In the main process with ``num_workers=0`` that is the rank's position; inside a worker
        (torchdata's ``StatefulDataLoader`` calls it there) it is that worker's. For a plain
        ``DataLoader`` with workers, use :class:`~dlio_torch.DlioDataLoader`'s ``state_dict``.
        """
        position = IterationState(epoch=self._epoch_seen, next_step=self._next_step, seed=self.seed)
        return {**position.to_dict(), **self._identity()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume: the next iteration yields exactly the steps from ``state["next_step"]`` on."""
        here = self._identity()
        require_same({k: int(state[k]) for k in here if k in state}, here, what="the same dataset and batching")
        position = IterationState.from_dict({"seed": self.seed, **state})
        if torch.utils.data.get_worker_info() is not None:
            self._local_resume = position  # this worker's own position; never touch the shared control
            self._epoch_seen, self._next_step = position.epoch, position.next_step
        else:
            self._set_control(position.epoch, position.next_step)

    # -- iteration ---------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        steps = self._steps()
        if self.carry_errors and torch.utils.data.get_worker_info() is not None:
            return carrying_errors(steps)  # the consumer raises it whole (see _worker_error)
        return steps

    def _steps(self) -> Iterator[Any]:
        rank, world, _ = self.rank_world()
        worker, workers = worker_info()
        stop = self._control.stop
        if self._local_resume is not None:  # StatefulDataLoader restored this worker: its own next step
            epoch, first = self._local_resume.epoch, self._local_resume.next_step
            self._local_resume = None
        else:
            epoch, first = self._control.epoch, self._control.start + worker
        plan = EpochPlan(**self._plan_args, world=world, rank=rank, epoch=epoch)
        end = plan.steps if stop is None else min(stop, plan.steps)
        steps = np.arange(first, end, workers, dtype=np.int64)
        self._epoch_seen, self._next_step = epoch, (first if steps.size else end)
        keep = self.content == "samples"
        loader = self.source.loader(keep_samples=keep, read_ahead=max(self.read_ahead, 2 * self.read_threads),
                                    read_threads=self.read_threads)
        view = StepView(plan, steps)
        for i, batch in enumerate(loader.epoch(view)):
            step = int(steps[i])
            self.engine_figures.add(io_s=batch.io_s, decode_s=batch.decode_s)
            ids = view.batch(i) if self.labels else None  # each sample's (file, index): its label
            try:
                if not keep:
                    data = None if self.constant_in_consumer else self._constant_batch()
                else:
                    data = self._maker.batch(batch, ids) if self.batched else self._maker.items(batch, ids)
            finally:
                batch.release()  # sample views are copied (or unused) by now: buffers go back to the pool
            after = step + workers if step + workers < end else end
            if self.batched:
                self._next_step = after  # the step counts as handed out once the consumer has it
                yield (data, self._info(step, batch)) if self.with_info else data
                continue
            for j in range(batch.num_samples):
                if j == batch.num_samples - 1:
                    self._next_step = after
                yield data[j]

    def _info(self, step: int, batch: Any) -> dict[str, Any]:
        return {"step": step, "num_samples": batch.num_samples, "bytes_read": batch.bytes_read,
                "sample_bytes": batch.sample_bytes, "io_s": batch.io_s, "decode_s": batch.decode_s}

    def _constant_batch(self) -> torch.Tensor:
        n = self.batch_size
        t = self._constant.get(n)
        if t is None:
            rng = np.random.default_rng(0)  # DLIO hands random bytes; fixed so runs are repeatable
            arr = rng.integers(0, 255, size=(n, *self.constant_shape), dtype=np.uint8).astype(self.constant_dtype)
            t = torch.from_numpy(arr)
            if torch.utils.data.get_worker_info() is not None:
                t.share_memory_()  # sent as a handle, not copied, every step
            self._constant[n] = t
        return t

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_constant"] = {}  # rebuilt in each process
        # Pickled into a spawn/forkserver worker: the process group does not travel, so its rank does.
        group = torch.distributed
        if (self.rank is None or self.world is None) and group.is_available() and group.is_initialized():
            state["_group_rank_world"] = (int(group.get_rank()), int(group.get_world_size()))
        return state


def want_labels(labels: bool | None, source: Source, content: str = "samples") -> bool:
    """``labels=None``: labels when the samples are handed over and the format carries them."""
    if labels is None:
        return content == "samples" and has_labels(source.fmt())
    return bool(labels)


def constant_shape(cfg: Any) -> tuple[int, ...]:
    """Shape of DLIO's constant sample: ``transformed_record_dims``, else a square of the resize bytes.

    >>> from dlio_core.config import load_config
    >>> constant_shape(load_config("unet3d_h100"))
    (1448, 1448)
    """
    dims = tuple(getattr(cfg.reader, "transformed_record_dims", ()) or ())
    if dims:
        return dims
    nbytes = cfg.dataset.record_length_bytes_resize or cfg.dataset.record_length_bytes
    side = max(1, math.isqrt(int(nbytes)))
    return (side, side)
