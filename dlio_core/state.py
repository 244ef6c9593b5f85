"""Resumable iteration: the ``Stateful`` protocol every plugin's iterator follows, and its named position.

A trainer checkpoints its input pipeline the way it checkpoints a model: ``state = it.state_dict()``
goes into the checkpoint, and ``it.load_state_dict(state)`` on a fresh iterator built the same way
continues with the next batch. torch's ``DataLoader``/torchdata ``StatefulDataLoader``, Orbax and
``tf.train.Checkpoint`` users all know this pair; ``dlio_torch``'s dataset and loader, ``dlio_jax``'s
iterator and ``dlio_tf``'s iterator implement it, so one resume path works for every framework.

A state is a plain dict (JSON- and pickle-friendly). Every plugin's dict carries the fields of
:class:`IterationState` under the same keys (``epoch``, ``next_step``, ``seed``); each adds what it
needs to refuse a state saved for another dataset or layout (batch size, files, process layout).

Example:
    >>> pos = IterationState(epoch=2, next_step=5, seed=123)
    >>> IterationState.from_dict({**pos.to_dict(), "batch_size": 4}) == pos
    True
    >>> class Counter:
    ...     def state_dict(self): return {"n": 1}
    ...     def load_state_dict(self, state): pass
    >>> isinstance(Counter(), Stateful), isinstance(object(), Stateful)
    (True, False)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Protocol, runtime_checkable

__all__ = ["IterationState", "Stateful", "require_same"]


@runtime_checkable
class Stateful(Protocol):
    """An iterator whose position can be saved and restored (torch's ``state_dict`` convention).

    ``state_dict()`` returns a new plain dict; ``load_state_dict(state)`` makes the next iteration
    continue right after the saved position, and raises ``ValueError`` naming the field when the
    state belongs to another dataset, batching or process layout.
    """

    def state_dict(self) -> dict[str, Any]:
        """Where this iterator stands, as a plain dict."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (one this kind of iterator's :meth:`state_dict` returned)."""
        ...


@dataclass(frozen=True)
class IterationState:
    """A position in a run's epochs: ``next_step`` is the first step of ``epoch`` not yet handed out
    (the number of batches consumed so far in that epoch); ``seed`` is the shuffle seed the order came from.

    Example:
        >>> IterationState(epoch=1, next_step=0, seed=7).to_dict()
        {'epoch': 1, 'next_step': 0, 'seed': 7}
    """

    epoch: int
    next_step: int
    seed: int

    def __post_init__(self) -> None:
        if self.next_step < 0:
            raise ValueError(f"next_step must be >= 0, got {self.next_step}")

    def to_dict(self) -> dict[str, int]:
        """The fields as a plain dict (the keys every plugin's ``state_dict`` carries)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> "IterationState":
        """The position in ``state`` (other keys are ignored); a missing field is a ``ValueError`` naming it.

        Example:
            >>> IterationState.from_dict({"epoch": 1})
            Traceback (most recent call last):
            ...
            ValueError: iteration state has no 'next_step' (it has: epoch); pass what state_dict() returned
        """
        missing = [k for k in ("epoch", "next_step", "seed") if k not in state]
        if missing:
            raise ValueError(f"iteration state has no {missing[0]!r} (it has: {', '.join(sorted(state))}); "
                             "pass what state_dict() returned")
        return cls(epoch=int(state["epoch"]), next_step=int(state["next_step"]), seed=int(state["seed"]))


def require_same(saved: Mapping[str, Any], here: Mapping[str, Any], *, what: str) -> None:
    """Raise ``ValueError`` when ``saved`` disagrees with ``here`` on any of ``here``'s keys that it holds.

    ``what`` says what must match, for the message (a key absent from ``saved`` is not checked, so
    states saved before a key existed still load).

    Example:
        >>> require_same({"batch_size": 8, "seed": 1}, {"batch_size": 4, "seed": 1}, what="the same batching")
        Traceback (most recent call last):
        ...
        ValueError: state was saved with batch_size=8, this iterator has batch_size=4; resume needs the same batching
    """
    wrong = [k for k, v in here.items() if k in saved and saved[k] != v]
    if wrong:
        saved_text = ", ".join(f"{k}={saved[k]!r}" for k in wrong)
        here_text = ", ".join(f"{k}={here[k]!r}" for k in wrong)
        raise ValueError(f"state was saved with {saved_text}, this iterator has {here_text}; resume needs {what}")
