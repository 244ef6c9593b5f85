"""Sampling: which samples each rank, step and worker reads, in order (pure functions, no I/O).

>>> from dlio_core.sampling import EpochPlan, Shuffle
>>> plan = EpochPlan(num_files=16, samples_per_file=4, batch_size=8, world=2, rank=0,
...                  seed=123, epoch=1, file_shuffle=Shuffle.SEED, sample_shuffle="seed")
>>> plan.steps
4
>>> files, samples = plan.batch(0)
>>> files.shape, samples.dtype.name
((8,), 'int64')
"""

from .bijection import MAX_SIZE, FeistelPermutation
from .plan import EpochPlan
from .policy import Shuffle, draw_random_seed, effective_seed, normalise_shuffle

__all__ = [
    "EpochPlan",
    "FeistelPermutation",
    "MAX_SIZE",
    "Shuffle",
    "draw_random_seed",
    "effective_seed",
    "normalise_shuffle",
]
