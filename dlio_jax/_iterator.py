"""``make_iterator``: one epoch of a DLIO workload as ``jax.Array`` batches, resumable.

Reading is dl-driver's engine (threads, bounded read-ahead, pooled buffers); for an accelerator a
copier thread stacks each batch and puts it on the device while the caller's step runs
(double-buffered), timing each copy to ``block_until_ready``. When JAX's device is the host CPU there
is no copy to overlap: ``next()`` stacks and puts the batch itself (a thread hand-off a batch cost more
than the stacking on a small machine), and ``h2d_s`` is None. ``reader.batch_size`` is per process. Processes are DLIO's ranks: process
``jax.process_index()`` of ``jax.process_count()`` reads its contiguous block of the epoch's order,
and every process gets the same number of steps.

Example:
    >>> import tempfile
    >>> from dlio_jax import make_iterator
    >>> d = tempfile.mkdtemp()
    >>> it = make_iterator("default", overrides=[f"++workload.dataset.data_folder={d}",
    ...     "++workload.workflow.generate_data=True", "++workload.dataset.num_files_train=8"])
    >>> images, labels = next(it)  # npz files carry labels (y)
    >>> images.shape, labels.dtype, it.state_dict()["next_step"]
    ((4, 64, 64), dtype('int32'), 1)
    >>> len(list(it))
    1

Epochs: iterating the iterator again once an epoch is done starts the next epoch (its own shuffle
with ``seed_change_epoch``), as a torch ``DataLoader`` does; ``set_epoch(e)`` picks one.

Labels: where the files carry them (npz ``y``) each item is ``(images, labels)`` (int64), as the torch
plugin yields; ``labels=False`` gives the images alone. ``transform`` maps each stacked host batch
(numpy) before the device copy (on the copier thread, when there is one).

Resume: ``state_dict()`` / ``load_state_dict(state)`` (:class:`dlio_core.state.Stateful`, as torch's and
dlio_tf's iterators); ``get_state()`` / ``set_state(state)`` are the same under Grain's names, with the
position under ``step``. The state is a flat dict of integers only, so Orbax saves it as is
(``ocp.args.StandardSave(it.state_dict())``): the split is ``split_id`` (0 train, 1 eval) and an unset
``random_seed`` is -1. States written with a string ``split`` are still accepted.
"""

from __future__ import annotations

import atexit
import weakref
from collections import abc
from typing import Any, Callable, Iterator, Mapping, Sequence

from dlio_core.reader import epoch_plan, native_reader
from dlio_core.state import IterationState, require_same

from ._device import DeviceBatch, device_batches
from ._pinned import make_put
from ._plan import Resumed
from ._process import resolve_process

__all__ = ["JaxIterator", "make_iterator", "shared_random_seed"]

_STATE_VERSION = 1
_SPLIT_IDS = {"train": 0, "eval": 1, "valid": 1}
_NO_SEED = -1  # random_seed unset, as an integer (Orbax stores numbers, not None)
# Iterators still open at exit: their copier threads must stop before JAX's runtime is torn down,
# or a device_put in flight during interpreter shutdown aborts the process.
_LIVE: "weakref.WeakSet[JaxIterator]" = weakref.WeakSet()


@atexit.register
def _close_live() -> None:
    for it in list(_LIVE):
        it.close()


def _load(config: Any, overrides: Sequence[str]) -> Any:
    from dlio_core.config import load_config

    return load_config(config, list(overrides))


def shared_random_seed(cfg: Any, random_seed: int | None) -> int | None:
    """The seed for ``shuffle: random``: the given one, or one drawn once and shared by all processes."""
    from dlio_core.sampling import Shuffle, draw_random_seed

    if random_seed is not None or Shuffle.RANDOM not in (cfg.reader.file_shuffle, cfg.reader.sample_shuffle):
        return random_seed
    try:
        import jax
    except ImportError:  # DALI for PyTorch users: no JAX processes to agree with
        if resolve_process(None, None)[1] > 1:
            raise ValueError("reader.*_shuffle=random with several processes needs random_seed= (one seed shared "
                             "by all of them, or their shards would overlap); or use shuffle 'seed'") from None
        return draw_random_seed()

    seed = draw_random_seed()
    if jax.process_count() > 1:  # every process must read the same permutation, or blocks overlap
        import numpy as np
        from jax.experimental import multihost_utils

        seed = int(multihost_utils.broadcast_one_to_all(np.int64(seed)))
    return seed


class JaxIterator:
    """Iterator over one epoch's batches as ``jax.Array`` (see :func:`make_iterator`).

    ``last`` is the last :class:`~dlio_jax._device.DeviceBatch` (figures: ``io_s``, ``decode_s``,
    ``h2d_s``, ``bytes_read``). ``state_dict()`` returns a small dict of integers; an iterator built with
    the same config and ``load_state_dict(state)`` before its first ``next()`` yields the remaining
    batches (``get_state``/``set_state``: the same, under Grain's names). Iterating again after the end
    of an epoch starts the next one.
    """

    def __init__(self, cfg: Any, *, sharding: Any = None, split: str = "train", epoch: int = 1,
                 process_index: int | None = None, process_count: int | None = None,
                 random_seed: int | None = None, storage: Any = None, buffers: int = 2,
                 staging: str = "plain", files: Sequence[tuple[str, int]] | None = None,
                 labels: bool | None = None, transform: Callable[[Any], Any] | None = None,
                 batch_size: int | None = None) -> None:
        from dlio_core.labels import formats_with_labels, has_labels
        from dlio_core.listing import dataset_files, dataset_storage

        if split not in _SPLIT_IDS:
            raise ValueError(f"split must be one of {sorted(_SPLIT_IDS)}, got {split!r}")
        # The batch size is batch_size, else reader.batch_size on every split: the eval split does not
        # switch to DLIO's batch_size_eval (1 unless set) behind the caller's back.
        size = int(cfg.reader.batch_size if batch_size is None else batch_size)
        if size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if (cfg.reader.batch_size, cfg.reader.batch_size_eval) != (size, size):
            from dlio_core.config import load_config

            cfg = load_config(cfg, [f"++workload.reader.batch_size={size}", f"++workload.reader.batch_size_eval={size}"])
        self.cfg = cfg
        self.split = split
        self.epoch = int(epoch)
        self.index, self.count = resolve_process(process_index, process_count)
        self.random_seed = shared_random_seed(cfg, random_seed)
        self.storage = storage if storage is not None else dataset_storage(cfg)
        # A Sequence (a list, the run's FileTable) is used as it is: no list of names made from a table.
        self.files = (files if isinstance(files, abc.Sequence) else list(files)) if files is not None else \
            dataset_files(cfg, self.storage, split)
        carries = has_labels(cfg.dataset.format)
        if labels and not carries:
            raise ValueError(f"labels=True: {cfg.dataset.format} files carry no labels (formats with labels: "
                             f"{', '.join(formats_with_labels())}); pass labels=False")
        self.labels = carries if labels is None else bool(labels)
        self.transform = transform
        self._put = make_put(sharding, staging)
        self._buffers = buffers
        self._check_sharding(sharding)
        self.step = 0
        self.last: DeviceBatch | None = None
        self._it: Iterator[DeviceBatch] | None = None
        self._labels_kept: Any = None
        self.plan = epoch_plan(cfg, split=split, epoch=self.epoch, world=self.count, rank=self.index,
                               random_seed=self.random_seed)
        _LIVE.add(self)

    def _check_sharding(self, sharding: Any) -> None:
        if sharding is None:
            return
        batch = self.cfg.reader.batch_size if self.split == "train" else self.cfg.reader.batch_size_eval
        local = len(getattr(sharding, "addressable_devices", ()) or ()) or 1
        if batch % local:
            raise ValueError(f"reader.batch_size={batch} is per process and is split over this process's "
                             f"{local} device(s) by the sharding; make it a multiple of {local}")

    @property
    def staging(self) -> dict[str, Any]:
        """How batches reach the device: ``{"asked", "used", "reason", ...}`` (``reason``: why not pinned)."""
        describe = getattr(self._put, "describe", None)
        return describe() if describe is not None else {"asked": "plain", "used": "plain", "reason": None}

    @property
    def steps(self) -> int:
        """Steps in the epoch (the same on every process)."""
        return self.plan.steps

    def __len__(self) -> int:
        return self.plan.steps

    def __iter__(self) -> "JaxIterator":
        """This iterator; once an epoch is done, iterating again starts the next epoch."""
        if self._it is None and self.step >= self.plan.steps:
            self.set_epoch(self.epoch + 1)
        return self

    def set_epoch(self, epoch: int) -> None:
        """Read epoch ``epoch`` from its first step on (its own shuffle with ``seed_change_epoch``)."""
        self.close()
        self.epoch, self.step = int(epoch), 0
        self.plan = epoch_plan(self.cfg, split=self.split, epoch=self.epoch, world=self.count, rank=self.index,
                               random_seed=self.random_seed)

    def __next__(self) -> Any:
        if self._it is None:
            if self.step >= self.plan.steps:
                raise StopIteration
            engine = native_reader(self.cfg, self.storage, self.files, rank=self.index, keep_samples=True)
            tail = Resumed(self.plan, self.step)
            self._it = device_batches(engine.epoch(tail), self._put, buffers=self._buffers,
                                      labeller=self._labeller(tail) if self.labels else None,
                                      transform=self.transform, inline_on_host=True)
        try:
            self.last = next(self._it)
        except StopIteration:
            self._it = None
            self.step = self.plan.steps
            raise
        self.step += 1
        return self.last.item

    def _labeller(self, plan: Any) -> Callable[[Any], Any]:
        from dlio_core.labels import StepLabels

        if self._labels_kept is None:  # kept across epochs: each file's labels are read once
            self._labels_kept = StepLabels.of_files(self.storage, self.files, self.cfg.dataset.num_samples_per_file)
        step_labels = self._labels_kept
        return lambda batch: step_labels(batch.samples, *plan.batch(batch.step))

    def state_dict(self) -> dict[str, Any]:
        """Where this iterator is: the :class:`~dlio_core.state.IterationState` fields (``epoch``,
        ``next_step``, ``seed``) and what a resume must match (split, process layout, ``random_seed``)."""
        position = IterationState(epoch=self.epoch, next_step=self.step, seed=int(self.cfg.train.seed))
        seed = _NO_SEED if self.random_seed is None else int(self.random_seed)
        return {"version": _STATE_VERSION, **{k: int(v) for k, v in position.to_dict().items()},
                "split_id": _SPLIT_IDS[self.split], "random_seed": seed, "process_index": self.index,
                "process_count": self.count, "steps": int(self.plan.steps)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (from :meth:`state_dict` or :meth:`get_state`); the next batch is the one
        after it."""
        state = _plain(state)
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"iterator state version {state.get('version')!r} is not {_STATE_VERSION}")
        if "split_id" not in state and "split" in state:  # a state from before split_id
            state["split_id"] = _SPLIT_IDS.get(state["split"], state["split"])
        here = {"process_index": self.index, "process_count": self.count, "seed": int(self.cfg.train.seed),
                "split_id": _SPLIT_IDS[self.split]}
        # Every one of them must be in the state: a state without its process layout is refused.
        require_same({k: state.get(k) for k in here}, here, what="the same config, split and process layout")
        position = IterationState.from_dict(_with_next_step(state))
        self.close()
        self.epoch = position.epoch
        seed = state.get("random_seed")
        self.random_seed = None if seed is None or seed == _NO_SEED else int(seed)
        self.plan = epoch_plan(self.cfg, split=self.split, epoch=self.epoch, world=self.count, rank=self.index,
                               random_seed=self.random_seed)
        if position.next_step > self.plan.steps:
            raise ValueError(f"iterator state step {position.next_step} is outside this epoch's {self.plan.steps} "
                             "steps")
        self.step = position.next_step

    def get_state(self) -> dict[str, Any]:
        """:meth:`state_dict` under Grain's name, with the position under ``step`` as this iterator first wrote it."""
        state = self.state_dict()
        state["step"] = state.pop("next_step")
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """:meth:`load_state_dict` under Grain's name (takes either form of the state)."""
        self.load_state_dict(state)

    def close(self) -> None:
        """Stop the reader and copier threads (also done when the epoch ends)."""
        if self._it is not None:
            self._it.close()
            self._it = None

    def __enter__(self) -> "JaxIterator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # best effort: threads are daemons, but stop them promptly
        try:
            self.close()
        except Exception:
            pass


def _plain(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with numpy/JAX scalars (as Orbax restores them) turned into Python values."""
    return {k: (v.item() if hasattr(v, "item") and not isinstance(v, str) else v) for k, v in state.items()}


def _with_next_step(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """``state`` with its position under ``next_step`` (:meth:`JaxIterator.get_state` writes it as ``step``)."""
    if "step" not in state:
        return state
    if "next_step" in state and state["next_step"] != state["step"]:
        raise ValueError(f"iterator state has step={state['step']!r} and next_step={state['next_step']!r}; "
                         "give one of them (next_step, as state_dict() writes it)")
    return {**state, "next_step": state["step"]}


def make_iterator(config: Any, *, overrides: Sequence[str] = (), sharding: Any = None, split: str = "train",
                  epoch: int = 1, process_index: int | None = None, process_count: int | None = None,
                  random_seed: int | None = None, storage: Any = None, staging: str = "plain",
                  labels: bool | None = None, transform: Callable[[Any], Any] | None = None,
                  batch_size: int | None = None) -> JaxIterator:
    """One epoch of ``config``'s dataset as ``jax.Array`` batches of ``reader.batch_size`` samples.

    ``config`` is what :func:`dlio_core.config.load_config` takes (a workload name, a YAML path, a dict or
    a ``RunConfig``), with ``overrides`` in DLIO's ``++workload.a.b=v`` form. With
    ``workflow.generate_data`` true process 0 generates the dataset first (the others wait for it).
    ``sharding`` (a ``jax.sharding.Sharding``) makes each batch a global array built with
    ``jax.make_array_from_process_local_data``; the per-process batch is split over the local devices.
    ``process_index``/``process_count`` override JAX's (to simulate processes or follow a launcher).
    ``staging="pinned_host"`` stages each batch in JAX's pinned host memory before the device copy
    (``h2d_s`` is then the pinned -> device leg); where that cannot run it falls back to plain
    ``device_put`` and ``iterator.staging["reason"]`` says why. ``labels`` (default: where the files carry
    them) makes items ``(images, labels)``; ``transform`` maps each host batch before the copy.
    ``batch_size`` (default ``reader.batch_size``, on every split: the eval split does not switch to
    DLIO's ``batch_size_eval`` unasked) is per process.
    """
    cfg = _load(config, overrides)
    if cfg.workflow.generate_data:
        from dlio_core.generate import generate_dataset

        index, _ = resolve_process(process_index, process_count)
        if index == 0:
            generate_dataset(cfg, progress=False)
        import jax

        if jax.process_count() > 1:  # nobody reads before process 0 has written the dataset
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("dlio_jax.generate")
    return JaxIterator(cfg, sharding=sharding, split=split, epoch=epoch, process_index=process_index,
                       process_count=process_count, random_seed=random_seed, storage=storage, staging=staging,
                       labels=labels, transform=transform, batch_size=batch_size)
