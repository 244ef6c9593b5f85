"""Claiming and delivering steps: the state one epoch's reader threads and its consumer share.

Steps are claimed one at a time, in plan order, from a shared counter under a lock, and built batches
are handed over by step number, so the consumer yields them in plan order whoever built them. At most
``in_flight`` batches are read ahead of the consumer: step ``k`` may be claimed only once the consumer
has taken step ``k - in_flight``. The loop that uses this state is ``ThreadedPath.epoch`` (consumer)
and its ``_worker`` (readers), in ``threaded.py``.
"""

from __future__ import annotations

import threading
from queue import SimpleQueue
from typing import Any


class _Failed:
    """What a reader thread hands over instead of a batch when building it raised."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_STOP = object()  # a wake-up that tells a reader thread to stop


class _EpochState:
    """Hand-over between one epoch's reader threads and its consumer, guarded by ``lock``.

    Steps are claimed in order (``next`` is the next unclaimed one) by reader threads and, when it
    would otherwise wait, by the consumer. ``taken`` is how many steps the consumer has taken (or
    claimed for itself); a reader may claim step ``k`` only while ``k < taken + in_flight``. Built
    batches (or ``_Failed``) land in ``ready`` by step. The consumer blocked on step ``want`` sleeps on
    ``handoff``, which the thread that builds that step signals; readers at the bound (``idle`` of
    them) sleep on ``wake``. Both are C-level ``SimpleQueue``s: a sleeper waits in the kernel without
    the GIL.
    """

    __slots__ = ("lock", "steps", "in_flight", "next", "taken", "want", "idle", "ready", "handoff", "wake",
                 "stopped")

    def __init__(self, steps: int, in_flight: int) -> None:
        self.lock = threading.Lock()
        self.steps = steps
        self.in_flight = in_flight
        self.next = 0
        self.taken = 0
        self.want = -1
        self.idle = 0
        self.ready: dict[int, Any] = {}
        self.handoff: SimpleQueue = SimpleQueue()
        self.wake: SimpleQueue = SimpleQueue()
        self.stopped = False

    def grant(self) -> int:
        """(Under ``lock``.) How many sleeping readers to wake now that ``taken`` moved on."""
        n = min(self.idle, min(self.steps, self.taken + self.in_flight) - self.next)
        if n <= 0:
            return 0
        self.idle -= n
        return n
