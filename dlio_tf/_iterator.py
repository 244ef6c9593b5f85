"""``make_iterator``: one epoch of :func:`~dlio_tf.make_dataset` batches that can be saved and resumed.

For custom training loops (``for batch in it: ...``) that checkpoint their input position the way
torch and JAX loops do: :class:`TFIterator` follows :class:`dlio_core.state.Stateful`
(``state_dict()`` / ``load_state_dict(state)``), like ``dlio_torch``'s loader and ``dlio_jax``'s iterator.
A resumed iterator rebuilds the epoch's dataset and skips the batches already handed out; tf.data
cannot seek into a shuffled stream, so the skipped batches are read again and dropped, and the
remaining batches are exactly the interrupted run's only with ``deterministic=True`` (otherwise the
count is). ``tf.train.Checkpoint(iterator=iter(dataset))`` is TensorFlow's own alternative: it saves
the shuffle buffers instead of re-reading. Iterating the iterator again after the end of an epoch starts
the next one (``set_epoch(e)`` picks one), as the JAX iterator and a torch ``DataLoader`` do.

Example:
    >>> from dlio_core.config import tiny_run_config
    >>> from dlio_core.generate import generate_dataset
    >>> cfg = tiny_run_config(overrides=("++workload.dataset.num_files_train=12",))
    >>> _ = generate_dataset(cfg, progress=False)
    >>> it = make_iterator(cfg, deterministic=True)
    >>> _ = next(it)
    >>> state = it.state_dict()
    >>> state["next_step"]
    1
    >>> rest = make_iterator(cfg, deterministic=True)
    >>> rest.load_state_dict(state)
    >>> len(list(rest))
    2
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

from dlio_core.config import load_config
from dlio_core.state import IterationState, require_same

from ._dataset import make_dataset
from ._pipeline import input_pipelines, shared_random_seed

__all__ = ["TFIterator", "make_iterator"]


class TFIterator:
    """Batches of one epoch of a workload (dicts as :func:`~dlio_tf.make_dataset` yields them), resumable.

    ``next_step`` counts the batches handed out in ``epoch``; :meth:`state_dict` records it with the
    :class:`~dlio_core.state.IterationState` fields and what a resume must match (split, input
    pipeline, ``random_seed``).
    """

    def __init__(self, cfg: Any, *, input_context: Any = None, split: str = "train", epoch: int = 1,
                 deterministic: bool = False, random_seed: int | None = None) -> None:
        self.cfg = cfg
        self.input_context = input_context
        self.pipelines, self.pipeline_id, _ = input_pipelines(input_context)
        self.split = split
        self.epoch = int(epoch)
        self.deterministic = bool(deterministic)
        # Drawn once here, not per dataset build: a resumed epoch must reshuffle the same way.
        self.random_seed = shared_random_seed(cfg, self.pipelines, random_seed)
        self.next_step = 0
        self._it: Iterator[Any] | None = None
        self._done = False

    def __iter__(self) -> "TFIterator":
        """This iterator; once an epoch is done, iterating again starts the next epoch."""
        if self._done:
            self.set_epoch(self.epoch + 1)
        return self

    def set_epoch(self, epoch: int) -> None:
        """Read epoch ``epoch`` from its first batch on (its own shuffle with ``seed_change_epoch``)."""
        self.epoch, self.next_step, self._it, self._done = int(epoch), 0, None, False

    def __next__(self) -> Any:
        if self._it is None:
            ds = make_dataset(self.cfg, input_context=self.input_context, split=self.split, epoch=self.epoch,
                              deterministic=self.deterministic, random_seed=self.random_seed)
            self._it = iter(ds.skip(self.next_step))
        try:
            batch = next(self._it)
        except StopIteration:
            self._done = True
            raise
        self.next_step += 1
        return batch

    def _identity(self) -> dict[str, Any]:
        # What a saved state must agree on: the same seed, split and input pipeline give the same batches.
        return {"seed": int(self.cfg.train.seed), "split": self.split, "num_input_pipelines": self.pipelines,
                "input_pipeline_id": self.pipeline_id}

    def state_dict(self) -> dict[str, Any]:
        """Where this iterator is (:class:`dlio_core.state.Stateful`): epoch, ``next_step``, seed, split,
        input pipeline and ``random_seed``."""
        position = IterationState(epoch=self.epoch, next_step=self.next_step, seed=int(self.cfg.train.seed))
        return {**position.to_dict(), **self._identity(), "random_seed": self.random_seed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (from :meth:`state_dict`); the next batch is the one after it."""
        here = self._identity()
        require_same({k: state.get(k) for k in here}, here, what="the same config, split and input pipeline")
        position = IterationState.from_dict(state)
        self.epoch, self.next_step = position.epoch, position.next_step
        self.random_seed = state.get("random_seed")
        self._it, self._done = None, False


def make_iterator(config: Any, *, overrides: Sequence[str] = (), input_context: Any = None, split: str = "train",
                  epoch: int = 1, deterministic: bool = False, random_seed: int | None = None,
                  config_dir: str | None = None) -> TFIterator:
    """A :class:`TFIterator` over one epoch of ``config`` (the arguments of :func:`~dlio_tf.make_dataset`)."""
    cfg = load_config(config, list(overrides), config_dir=config_dir)
    return TFIterator(cfg, input_context=input_context, split=split, epoch=epoch, deterministic=deterministic,
                      random_seed=random_seed)
