"""Accelerator emulation: the time a simulated accelerator spends computing one step.

DLIO replaces each training step's compute with ``time.sleep``; we do the same (``time.sleep``
releases the GIL, so reader threads keep running while the "accelerator" is busy), and we measure
the time actually spent rather than trusting the requested figure: oversleep is real time during
which no batch was consumed.

Example:
    >>> import numpy as np
    >>> from dlio_core.emulate import Compute
    >>> c = Compute(lambda rng: 0.001, np.random.default_rng(0))
    >>> 0.001 <= c.step() < 0.1
    True
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

__all__ = ["Compute", "busy_sleep"]

# Below this, time.sleep's wake-up latency (50-100 us on Linux) is a large relative error.
_SPIN_BELOW_S = 200e-6


def busy_sleep(seconds: float) -> None:
    """Sleep ``seconds``; short waits finish with a spin so a 0.1 ms step is not a 0.2 ms step."""
    if seconds <= 0:
        return
    deadline = time.perf_counter() + seconds
    if seconds > _SPIN_BELOW_S:
        time.sleep(seconds - _SPIN_BELOW_S)
    while time.perf_counter() < deadline:
        pass


class Compute:
    """Emulated compute for one phase (train or eval).

    ``draw`` returns the step's compute time in seconds given a numpy Generator (a fixed value or a
    draw from a distribution). ``step()`` performs it and returns the seconds actually spent.
    """

    def __init__(self, draw: Callable[[np.random.Generator], float], rng: np.random.Generator) -> None:
        self._draw = draw
        self._rng = rng

    def step(self) -> float:
        requested = float(self._draw(self._rng))
        start = time.perf_counter()
        busy_sleep(requested)
        return time.perf_counter() - start
