"""The computed sample permutation is a bijection on range(S), for every S and key."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlio_core.sampling import MAX_SIZE, FeistelPermutation

# Derandomised: the suite gives the same verdict on every run and machine.
PROPS = settings(max_examples=60, deadline=None, derandomize=True)

SMALL_SIZES = list(range(1, 130)) + [255, 256, 257, 1000, 1023, 1025, 4097, 10007, 65535, 65537]


@pytest.mark.parametrize("size", SMALL_SIZES)
def test_exhaustive_bijection_small_sizes(size: int) -> None:
    for seed in (0, 1, 123, -5, 2**40 + 3):
        perm = FeistelPermutation.from_seed(size, seed)
        out = perm(np.arange(size))
        assert out.dtype == np.int64
        assert np.array_equal(np.sort(out), np.arange(size))
        assert np.array_equal(perm.inverse(out), np.arange(size))


@PROPS
@given(size=st.integers(1, 50_000), seed=st.integers(-(2**63), 2**63), stream=st.integers(0, 3))
def test_bijection_property(size: int, seed: int, stream: int) -> None:
    perm = FeistelPermutation.from_seed(size, seed, stream=stream)
    out = perm(np.arange(size))
    assert np.array_equal(np.sort(out), np.arange(size))
    assert np.array_equal(perm.inverse(out), np.arange(size))


@pytest.mark.parametrize("size", [1024 * 4_718_592, 2**32 + 1, 2**61 - 1, MAX_SIZE])
def test_large_domains_stay_in_range_and_invert(size: int) -> None:
    perm = FeistelPermutation.from_seed(size, 99)
    rng = np.random.default_rng(0)
    p = np.unique(np.concatenate([rng.integers(0, size, 5000, dtype=np.int64), [0, size - 1]]))
    out = perm(p)
    assert out.min() >= 0 and out.max() < size
    assert np.unique(out).size == p.size  # injective on the sample
    assert np.array_equal(perm.inverse(out), p)


def test_keys_are_deterministic_and_streams_independent() -> None:
    a = FeistelPermutation.from_seed(1000, 5)
    assert a == FeistelPermutation.from_seed(1000, 5)
    x = np.arange(1000)
    assert not np.array_equal(a(x), FeistelPermutation.from_seed(1000, 5, stream=1)(x))
    assert not np.array_equal(a(x), FeistelPermutation.from_seed(1000, 6)(x))


def test_output_looks_shuffled() -> None:
    # Not a proof of quality; catches a degenerate round function (near-identity or near-linear output).
    x = np.arange(100_000)
    y = FeistelPermutation.from_seed(x.size, 1)(x)
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.02
    assert (y == x).sum() < 10  # a random permutation has ~1 fixed point
    assert abs(np.mean(np.diff(y) > 0) - 0.5) < 0.01  # ascents of a random order: ~half


@pytest.mark.parametrize("size", [0, -1, MAX_SIZE + 1])
def test_rejects_bad_sizes(size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        FeistelPermutation(size, (1, 2, 3, 4))


def test_rejects_out_of_range_positions() -> None:
    perm = FeistelPermutation.from_seed(10, 0)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        perm(np.array([10]))
    with pytest.raises(ValueError):
        perm(np.array([-1]))
    with pytest.raises(TypeError):
        perm(np.array([0.5]))
    assert perm(np.array([], dtype=np.int64)).size == 0
