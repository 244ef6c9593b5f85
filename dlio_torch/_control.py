"""The epoch, resume point and step cap a dataset's DataLoader workers share with the main process.

``set_epoch`` and ``load_state_dict`` run in the main process, but the reading happens in worker
processes, persistent ones included, that were started (forked or spawned) earlier. The three
integers live in one shared-memory tensor so that a worker sees the main process's latest values at
its next ``iter()``; this class names them.

Example:
    >>> ctl = SharedControl()
    >>> ctl.set(epoch=2, start=5, stop=None)
    >>> ctl.epoch, ctl.start, ctl.stop
    (2, 5, None)
"""

from __future__ import annotations

import torch

__all__ = ["SharedControl"]

_EPOCH, _START, _STOP = range(3)  # positions in the tensor; only this class knows them
_NO_STOP = -1


class SharedControl:
    """``epoch`` to read, ``start`` (the first step every worker starts from) and ``stop`` (a step cap,
    ``None`` for none), in shared memory: pickled into a worker it stays the same memory."""

    def __init__(self) -> None:
        self._values = torch.tensor([0, 0, _NO_STOP], dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._values[_EPOCH])

    @property
    def start(self) -> int:
        return int(self._values[_START])

    @property
    def stop(self) -> int | None:
        value = int(self._values[_STOP])
        return None if value == _NO_STOP else value

    @stop.setter
    def stop(self, value: int | None) -> None:
        self._values[_STOP] = _NO_STOP if value is None else int(value)

    def set(self, *, epoch: int, start: int, stop: int | None) -> None:
        """Set all three (what the next ``iter()`` in any process reads)."""
        self._values[_EPOCH], self._values[_START] = int(epoch), int(start)
        self.stop = stop
