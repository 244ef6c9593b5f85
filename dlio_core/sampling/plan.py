"""One rank's read order for one epoch: which (file, sample-in-file) each step reads.

The global order is a sequence of positions ``p`` in ``[0, S)``, ``S = num_files * samples_per_file``:

    p --sample shuffle--> s = perm(p) --divmod(s, spf)--> (slot, index) --file shuffle--> file = files[slot]

With only ``file_shuffle`` files are read whole, in shuffled file order; with ``sample_shuffle`` samples are
spread over all files. Ranks take DLIO's contiguous blocks of that order: rank ``r`` reads positions
``[r * steps * batch, (r + 1) * steps * batch)``, ``batch`` positions per step. Nothing per sample is stored:
a plan holds a few integers, the file permutation (O(files)) and the keys of the sample permutation.

>>> plan = EpochPlan(num_files=4, samples_per_file=2, batch_size=2, world=2, rank=1)
>>> plan.steps, [p.tolist() for p in map(plan.positions, range(plan.steps))]
(2, [[4, 5], [6, 7]])
>>> files, samples = plan.batch(0)
>>> files.tolist(), samples.tolist()
([2, 2], [0, 1])
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .bijection import MAX_SIZE, FeistelPermutation
from .policy import Shuffle, effective_seed, normalise_shuffle

__all__ = ["EpochPlan"]

# Independent random streams derived from one seed, so file and sample shuffles never correlate.
_FILE_STREAM = 0
_SAMPLE_STREAM = 1


def _rebuild(cls: type, kwargs: dict[str, Any]) -> "EpochPlan":
    return cls(**kwargs)


def _as_int(value: Any, field: str, low: int | None = None) -> int:
    if isinstance(value, bool):
        raise ValueError(f"EpochPlan.{field} must be an integer, got {value!r}")
    try:
        number = operator.index(value)  # int and numpy integers, not floats
    except TypeError:
        raise ValueError(f"EpochPlan.{field} must be an integer, got {value!r}") from None
    if low is not None and number < low:
        raise ValueError(f"EpochPlan.{field} must be >= {low}, got {number}")
    return number


@dataclass(frozen=True)
class EpochPlan:
    """The sample order of one rank in one epoch (pure, frozen, cheap to build and to pickle).

    ``steps = S // (batch_size * world)`` on every rank, so a per-step barrier never deadlocks; the tail
    is dropped (DLIO's ``floor(spf * files / batch / P)``). With ``drop_last=False`` it is
    ``ceil(S / (batch_size * world))`` instead and positions past ``S`` wrap round to the start of the
    (shuffled) order: every sample is read, the first ``steps * batch * world - S`` of the order twice.

    ``file_shuffle`` / ``sample_shuffle`` take ``Shuffle`` members or ``"off"``, ``"seed"``, ``"random"``.
    Epoch ``e`` is ordered by ``seed + e`` (``seed_change_epoch``) or ``seed``; ``random`` uses
    ``random_seed`` the same way, which must be drawn once per run (``draw_random_seed()``) and shared.

    >>> a = EpochPlan(8, 4, 4, seed=1, epoch=1, sample_shuffle="seed")
    >>> b = EpochPlan(8, 4, 4, seed=1, epoch=2, sample_shuffle="seed")
    >>> files, samples = a.batch_block(0, a.steps)  # every step of the epoch at once
    >>> sorted((files * 4 + samples).ravel().tolist()) == list(range(32))  # each sample once
    True
    >>> a.batch(0)[1].tolist() != b.batch(0)[1].tolist()  # orders change per epoch
    True
    """

    num_files: int
    samples_per_file: int
    batch_size: int
    world: int = 1
    rank: int = 0
    seed: int = 123
    epoch: int = 0
    file_shuffle: Shuffle | str = Shuffle.OFF
    sample_shuffle: Shuffle | str = Shuffle.OFF
    seed_change_epoch: bool = True
    drop_last: bool = True
    random_seed: int | None = None

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731  (frozen)
        for name, low in (("num_files", 1), ("samples_per_file", 1), ("batch_size", 1), ("world", 1),
                          ("epoch", 0), ("seed", None)):
            put(name, _as_int(getattr(self, name), name, low))
        put("rank", _as_int(self.rank, "rank", 0))
        if self.rank >= self.world:
            raise ValueError(f"EpochPlan.rank must be < world ({self.world}), got {self.rank}")
        if self.random_seed is not None:
            put("random_seed", _as_int(self.random_seed, "random_seed"))
        for name in ("seed_change_epoch", "drop_last"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"EpochPlan.{name} must be a bool, got {getattr(self, name)!r}")
            put(name, bool(getattr(self, name)))
        for name in ("file_shuffle", "sample_shuffle"):
            put(name, normalise_shuffle(getattr(self, name), field=f"EpochPlan.{name}"))
        if self.num_files * self.samples_per_file > MAX_SIZE:
            raise ValueError(f"EpochPlan: num_files * samples_per_file must be <= 2**62, got "
                             f"{self.num_files} * {self.samples_per_file}")
        # Resolve seeds now so a missing random_seed fails at construction, not mid-epoch.
        put("_file_seed", self._seed_for(self.file_shuffle))
        put("_sample_seed", self._seed_for(self.sample_shuffle))

    def _seed_for(self, policy: Shuffle) -> int | None:
        return effective_seed(policy, seed=self.seed, epoch=self.epoch,
                              seed_change_epoch=self.seed_change_epoch, random_seed=self.random_seed)

    @classmethod
    def from_config(cls, cfg: Any, *, world: int = 1, rank: int = 0, epoch: int = 0, split: str = "train",
                    random_seed: int | None = None, drop_last: bool = True) -> "EpochPlan":
        """Plan from a ``RunConfig`` (``dataset``, ``reader``, ``train`` sections; read by attribute).

        ``split`` is ``"train"`` or ``"eval"`` (alias ``"valid"``, DLIO's folder name), which uses
        ``num_files_eval`` and ``batch_size_eval``.
        """
        if split not in ("train", "eval", "valid"):
            raise ValueError(f"split must be 'train', 'eval' or 'valid', got {split!r}")
        ds, rd, tr = cfg.dataset, cfg.reader, cfg.train
        return cls(
            num_files=ds.num_files_train if split == "train" else ds.num_files_eval,
            samples_per_file=ds.num_samples_per_file,
            batch_size=rd.batch_size if split == "train" else rd.batch_size_eval,
            world=world, rank=rank, seed=tr.seed, epoch=epoch,
            file_shuffle=rd.file_shuffle, sample_shuffle=rd.sample_shuffle,
            seed_change_epoch=tr.seed_change_epoch, drop_last=drop_last, random_seed=random_seed,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle the fields only: workers rebuild the O(files) permutation instead of receiving it.
        return _rebuild, (type(self), {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    # -- sizes ---------------------------------------------------------------------------------------

    @property
    def total_samples(self) -> int:
        """``S``: samples in the dataset split."""
        return self.num_files * self.samples_per_file

    @property
    def steps(self) -> int:
        """Steps in this epoch; the same on every rank."""
        per_step = self.batch_size * self.world
        if self.drop_last:
            return self.total_samples // per_step
        return -(-self.total_samples // per_step)

    @property
    def file_seed(self) -> int | None:
        """Seed of this epoch's file permutation (``None``: files in order)."""
        return self._file_seed  # type: ignore[attr-defined]

    @property
    def sample_seed(self) -> int | None:
        """Seed of this epoch's sample permutation (``None``: samples in order)."""
        return self._sample_seed  # type: ignore[attr-defined]

    # -- the order -----------------------------------------------------------------------------------

    # cached_property writes the instance __dict__ directly, so it works on a frozen dataclass; two reader
    # threads racing on the first batch at worst compute the same deterministic value twice.
    @cached_property
    def file_permutation(self) -> np.ndarray | None:
        """Read-only int64 array: slot -> file index, or ``None`` when files are not shuffled."""
        if self.file_seed is None:
            return None
        ss = np.random.SeedSequence(self.file_seed % (1 << 64), spawn_key=(_FILE_STREAM,))
        perm = np.random.default_rng(ss).permutation(self.num_files).astype(np.int64)
        perm.flags.writeable = False  # shared by every batch; nobody may reorder it in place
        return perm

    @cached_property
    def sample_permutation(self) -> FeistelPermutation | None:
        """The computed permutation of ``range(S)``, or ``None`` when samples are not shuffled."""
        if self.sample_seed is None:
            return None
        return FeistelPermutation.from_seed(self.total_samples, self.sample_seed, stream=_SAMPLE_STREAM)

    def positions(self, step: int) -> np.ndarray:
        """Global-order positions (int64, length ``batch_size``) that ``step`` of this rank reads."""
        k = self._check_step(step)
        start = (self.rank * self.steps + k) * self.batch_size
        p = np.arange(start, start + self.batch_size, dtype=np.int64)
        if start + self.batch_size > self.total_samples:  # only with drop_last=False: wrap round
            p %= self.total_samples
        return p

    def _locate(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        perm = self.sample_permutation
        s = p if perm is None else perm(p, check=False)  # positions are ours: in range
        slot, index = np.divmod(s, self.samples_per_file)
        files = self.file_permutation
        return (slot if files is None else files[slot]), index

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """``(file_idx, sample_idx)``: int64 arrays of length ``batch_size`` for ``step`` of this rank.

        >>> EpochPlan(3, 2, 3).batch(1)[0].tolist()
        [1, 2, 2]
        """
        return self._locate(self.positions(step))

    def batch_block(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``(file_idx, sample_idx)`` of steps ``first .. first + count - 1`` at once: int64 arrays of
        shape ``(count, batch_size)``, row ``i`` equal to ``batch(first + i)``. One vectorised pass
        instead of ``count`` small ones (a reader planning many small steps ahead).

        >>> p = EpochPlan(5, 2, 2, sample_shuffle="seed")
        >>> files, samples = p.batch_block(1, 3)
        >>> files.shape, files[2].tolist() == p.batch(3)[0].tolist()
        ((3, 2), True)
        """
        k = self._check_step(first)
        n = operator.index(count)
        if n < 1 or k + n > self.steps:
            raise IndexError(f"steps {k}..{k + n - 1} out of range: this epoch has {self.steps} steps")
        start = (self.rank * self.steps + k) * self.batch_size
        p = np.arange(start, start + n * self.batch_size, dtype=np.int64)
        if start + n * self.batch_size > self.total_samples:  # only with drop_last=False: wrap round
            p %= self.total_samples
        files, samples = self._locate(p)
        return files.reshape(n, self.batch_size), samples.reshape(n, self.batch_size)

    def _check_step(self, step: int) -> int:
        k = operator.index(step)
        if not 0 <= k < self.steps:
            raise IndexError(f"step {k} out of range: this epoch has {self.steps} steps")
        return k
