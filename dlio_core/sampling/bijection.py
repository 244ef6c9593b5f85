"""A keyed pseudo-random permutation of ``range(size)`` that is computed, never stored.

MLPerf's dlrm has 4.8 billion samples; a shuffled index table would need 38 GB. Instead a sample
position is mapped through a balanced Feistel network over ``Z_m x Z_m`` (``m = ceil(sqrt(size))``) with
modular addition, which is a bijection for any ``m``, plus cycle walking to land back in ``range(size)``.
Because ``m * m - size < 2 * m + 1`` the walk almost never repeats for large sizes (a power-of-two bit
width would waste up to 4x and walk ~3 times on average). Everything is vectorised uint64 numpy.

>>> import numpy as np
>>> perm = FeistelPermutation.from_seed(10, seed=123)
>>> sorted(perm(np.arange(10)).tolist())
[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
>>> bool((perm.inverse(perm(np.arange(10))) == np.arange(10)).all())
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["FeistelPermutation", "MAX_SIZE"]

#: Largest supported domain: keeps ``L * m + R`` and the round arithmetic inside uint64.
MAX_SIZE = 1 << 62

# Odd 64-bit constants (golden ratio; splitmix64's first multiplier): two multiply-xorshift steps give
# full avalanche in the high 32 bits, which is all the round function keeps.
_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_S32 = np.uint64(32)
_ROUNDS = 6  # 4 is the Luby-Rackoff minimum for a strong PRP; 2 more cost ~30% and buy margin


@dataclass(frozen=True)
class FeistelPermutation:
    """Bijection on ``range(size)`` keyed by ``keys``; apply it to an array of positions.

    Memory is O(len(positions)); nothing depends on ``size`` beyond a few integers.

    >>> import numpy as np
    >>> p = FeistelPermutation.from_seed(4_831_838_208, seed=7)
    >>> out = p(np.arange(16_384))
    >>> bool(out.min() >= 0 and out.max() < 4_831_838_208 and len(set(out.tolist())) == 16_384)
    True
    """

    size: int
    keys: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or isinstance(self.size, bool) or not 1 <= self.size <= MAX_SIZE:
            raise ValueError(f"FeistelPermutation.size must be an int in [1, 2**62], got {self.size!r}")
        if not self.keys or not all(isinstance(k, int) and 0 <= k < 1 << 64 for k in self.keys):
            raise ValueError("FeistelPermutation.keys must be a non-empty tuple of uint64 ints")
        m = math.isqrt(self.size - 1) + 1  # ceil(sqrt(size)), exact for big ints
        object.__setattr__(self, "_m", np.uint64(m))
        object.__setattr__(self, "_ukeys", tuple(np.uint64(k) for k in self.keys))

    @classmethod
    def from_seed(cls, size: int, seed: int, *, stream: int = 0, rounds: int = _ROUNDS) -> "FeistelPermutation":
        """Derive round keys from ``seed`` (any int) and an independent ``stream`` number.

        >>> FeistelPermutation.from_seed(5, seed=1) == FeistelPermutation.from_seed(5, seed=1)
        True
        """
        ss = np.random.SeedSequence(int(seed) % (1 << 64), spawn_key=(int(stream),))
        return cls(int(size), tuple(int(k) for k in ss.generate_state(rounds, np.uint64)))

    @property
    def radix(self) -> int:
        """``m``: the network permutes ``range(m * m)`` and walks back into ``range(size)``."""
        return int(self._m)  # type: ignore[attr-defined]

    def __call__(self, positions: np.ndarray, *, check: bool = True) -> np.ndarray:
        """Permuted values (int64) of ``positions`` (integers in ``[0, size)``).

        ``check=False`` skips the range check (two reductions) for callers that built the positions.
        """
        x = self._check(positions) if check else np.asarray(positions).astype(np.uint64)
        return self._walk(x, inverse=False)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Positions (int64) whose image is ``values``: ``inverse(self(p)) == p``."""
        return self._walk(self._check(values), inverse=True)

    # -- internals ---------------------------------------------------------------------------------

    def _check(self, positions: np.ndarray) -> np.ndarray:
        p = np.asarray(positions)
        if p.dtype.kind not in "iu":
            raise TypeError(f"positions must be integers, got dtype {p.dtype}")
        if p.size and (int(p.min()) < 0 or int(p.max()) >= self.size):
            raise ValueError(f"positions must lie in [0, {self.size})")
        return p.astype(np.uint64)  # always a copy: _walk writes into it

    def _walk(self, x: np.ndarray, *, inverse: bool) -> np.ndarray:
        # Cycle walking: the network permutes range(m*m) ⊇ range(size); re-applying it to values that
        # fell outside follows the cycle until it re-enters range(size), which keeps a bijection.
        rounds = self._backward if inverse else self._forward
        size = np.uint64(self.size)
        # A value can meet at most m*m - size out-of-range values in a row; more means a broken network,
        # and failing beats spinning forever.
        spare = self.radix * self.radix - self.size
        out = rounds(x)
        bad = np.flatnonzero(out >= size)
        walks = 0
        while bad.size:
            walks += 1
            if walks > spare:
                raise RuntimeError("FeistelPermutation: cycle walk did not terminate (not a bijection)")
            y = rounds(out[bad])
            out[bad] = y
            bad = bad[y >= size]
        return out.astype(np.int64)

    def _round_fn(self, r: np.ndarray, key: np.uint64, h: np.ndarray) -> np.ndarray:
        # F(r) = high-32 bits of a keyed multiply-xorshift hash, scaled to [0, m) without a division.
        m = self._m  # type: ignore[attr-defined]
        np.add(r, key, out=h)
        h *= _C1
        h ^= h >> _S32
        h *= _C2
        h >>= _S32
        h *= m
        h >>= _S32
        return h

    def _forward(self, x: np.ndarray) -> np.ndarray:
        m = self._m  # type: ignore[attr-defined]
        left, right = np.divmod(x, m)
        h = np.empty_like(right)
        for key in self._ukeys:  # type: ignore[attr-defined]
            f = self._round_fn(right, key, h)
            f += left
            f -= m * (f >= m)  # (left + F(right)) mod m; both terms < m
            left, right, h = right, f, left  # reuse the old left buffer as scratch
        return left * m + right

    def _backward(self, x: np.ndarray) -> np.ndarray:
        m = self._m  # type: ignore[attr-defined]
        left, right = np.divmod(x, m)
        h = np.empty_like(right)
        for key in reversed(self._ukeys):  # type: ignore[attr-defined]
            # forward was (l, r) -> (r, (l + F(r)) mod m); so r = left and l = (right - F(left)) mod m
            f = self._round_fn(left, key, h)
            g = right + m
            g -= f
            g -= m * (g >= m)
            left, right, h = g, left, right
        return left * m + right
