"""Shuffle policies and the seeds they use (DLIO's ``reader.file_shuffle`` / ``reader.sample_shuffle``).

>>> normalise_shuffle("Seed")
<Shuffle.SEED: 'seed'>
>>> effective_seed(Shuffle.SEED, seed=123, epoch=2, seed_change_epoch=True)
125
>>> effective_seed("off", seed=123, epoch=2, seed_change_epoch=True) is None
True
"""

from __future__ import annotations

import os
from typing import Any

# One enum for the whole project: the config's (a str enum; ``bool(Shuffle.OFF)`` is False). Strings and
# other enums with the same values are accepted everywhere here, so callers need not import it.
from ..config.enums import Shuffle

__all__ = ["Shuffle", "normalise_shuffle", "effective_seed", "draw_random_seed"]


def normalise_shuffle(value: Any, *, field: str = "shuffle") -> Shuffle:
    """``Shuffle`` member for a ``Shuffle``, any enum with the same values, or a string (any case).

    Booleans map as DLIO treats them (True -> SEED, False -> OFF) and ``None`` is OFF, as in the config.

    >>> normalise_shuffle(True), normalise_shuffle("OFF"), normalise_shuffle(None)
    (<Shuffle.SEED: 'seed'>, <Shuffle.OFF: 'off'>, <Shuffle.OFF: 'off'>)
    """
    if isinstance(value, (bool, type(None))):
        return Shuffle.SEED if value else Shuffle.OFF
    text = str(getattr(value, "value", value)).lower()
    try:
        return Shuffle(text)
    except ValueError:
        raise ValueError(f"{field} must be one of 'off', 'seed', 'random', got {value!r}") from None


def effective_seed(
    policy: Any, *, seed: int, epoch: int, seed_change_epoch: bool, random_seed: int | None = None
) -> int | None:
    """The seed that orders epoch ``epoch`` under ``policy``, or ``None`` for ``OFF`` (identity).

    ``SEED`` uses ``seed``, ``RANDOM`` uses ``random_seed``; either adds ``epoch`` when
    ``seed_change_epoch`` (DLIO: ``seed + epoch``), so RANDOM with ``seed_change_epoch=False`` repeats one
    run-specific order every epoch.

    >>> effective_seed("random", seed=1, epoch=3, seed_change_epoch=False, random_seed=99)
    99
    """
    kind = normalise_shuffle(policy)
    if kind is Shuffle.OFF:
        return None
    if kind is Shuffle.RANDOM:
        if random_seed is None:
            raise ValueError(
                "random_seed is required for shuffle 'random': a shared seed must be drawn once per run "
                "(draw_random_seed()) and broadcast to every rank and worker, or ranks would overlap"
            )
        base = random_seed
    else:
        base = seed
    return base + epoch if seed_change_epoch else base


def draw_random_seed() -> int:
    """A fresh 63-bit seed from ``os.urandom``; draw it once (rank 0) and broadcast it.

    >>> 0 <= draw_random_seed() < 2**63
    True
    """
    return int.from_bytes(os.urandom(8), "little") >> 1
