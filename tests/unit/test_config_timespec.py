"""Time values: every DLIO form, ``*_stdev`` siblings, non-negative draws, means."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dlio_core.config import ConfigError, TimeSpec, load_config

finite = st.floats(min_value=0, max_value=1e3, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-3, max_value=1e2, allow_nan=False, allow_infinity=False)


def specs():
    return st.one_of(
        finite.map(TimeSpec.fixed),
        st.builds(lambda m, s: TimeSpec.parse({"mean": m, "stdev": s}, key="t"), finite, finite),
        st.builds(lambda a, b: TimeSpec.parse({"type": "uniform", "min": min(a, b), "max": max(a, b)}, key="t"),
                  finite, finite),
        st.builds(lambda k, s: TimeSpec.parse({"type": "gamma", "shape": k, "scale": s}, key="t"), positive, positive),
        st.builds(lambda s: TimeSpec.parse({"type": "exponential", "scale": s}, key="t"), positive),
        st.builds(lambda lam: TimeSpec.parse({"type": "poisson", "lam": lam}, key="t"), finite),
        st.builds(lambda m, s: TimeSpec.parse({"type": "normal", "mean": m, "stdev": s}, key="t"), finite, finite),
    )


@settings(max_examples=200, deadline=None)
@given(specs(), st.integers(0, 2**32 - 1), st.integers(1, 50))
def test_draws_are_non_negative(spec, seed, n):
    rng = np.random.default_rng(seed)
    one = spec.sample(rng)
    many = spec.sample(rng, n)
    assert isinstance(one, float) and one >= 0
    assert isinstance(many, np.ndarray) and many.shape == (n,) and (many >= 0).all()
    assert spec.mean_s >= 0
    assert TimeSpec.parse(spec.to_config(), key="t") == spec  # the DLIO spelling parses back


@pytest.mark.parametrize("value, kind, mean", [
    (0.323, "fixed", 0.323),
    (0, "fixed", 0.0),
    ({"mean": 2.0}, "fixed", 2.0),
    ({"mean": 2.0, "stdev": 0}, "fixed", 2.0),
    ({"type": "uniform", "min": 1, "max": 3}, "uniform", 2.0),
    ({"type": "gamma", "shape": 2, "scale": 0.5}, "gamma", 1.0),
    ({"type": "exponential", "scale": 0.25}, "exponential", 0.25),
    ({"type": "poisson", "lam": 3}, "poisson", 3.0),
    ({"type": "NORMAL", "mean": 10, "stdev": 0.1}, "normal", 10.0),
])
def test_forms_and_means(value, kind, mean):
    spec = TimeSpec.parse(value, key="train.computation_time")
    assert spec.kind == kind
    assert spec.mean_s == pytest.approx(mean, rel=1e-6)


def test_folded_normal_mean_matches_draws():
    spec = TimeSpec.parse({"mean": 0.0, "stdev": 1.0}, key="t")  # DLIO abs()-es negative draws
    assert spec.mean_s == pytest.approx(math.sqrt(2 / math.pi))
    draws = spec.sample(np.random.default_rng(1), 200_000)
    assert draws.mean() == pytest.approx(spec.mean_s, rel=0.01)


def test_is_zero():
    assert TimeSpec().is_zero and TimeSpec.parse(None, key="t").is_zero
    assert not TimeSpec.fixed(0.1).is_zero
    assert not TimeSpec.parse({"mean": 0, "stdev": 1}, key="t").is_zero


def test_stdev_siblings_make_normal():
    cfg = load_config({"train": {"computation_time": 1.0, "computation_time_stdev": 0.1},
                       "evaluation": {"eval_time": 0.5, "eval_time_stdev": 0.05},
                       "reader": {"preprocess_time": 0.01, "preprocess_time_stdev": 0.001}})
    assert (cfg.train.computation_time.kind, cfg.train.computation_time.stdev) == ("normal", 0.1)
    assert cfg.evaluation.eval_time.kind == "normal" and cfg.reader.preprocess_time.kind == "normal"
    assert cfg.to_dict()["train"]["computation_time"] == {"mean": 1.0, "stdev": 0.1}


def test_time_between_checkpoints_keeps_dlio_default():
    cfg = load_config({})
    assert cfg.checkpoint.time_between_checkpoints.mean == -1.0
    assert cfg.checkpoint.time_between_checkpoints.sample(np.random.default_rng(0)) == 1.0  # DLIO sleeps abs(-1)


@pytest.mark.parametrize("value, message", [
    ({"type": "uniform", "min": 3, "max": 1}, "min 3.0 > max 1.0"),
    ({"type": "gamma", "shape": 0, "scale": 1}, "train.computation_time.shape: 0 is not allowed"),
    ({"type": "normal", "mean": 1}, "train.computation_time.stdev: missing"),
    ({"type": "uniform", "min": 1, "max": 2, "mean": 3}, "train.computation_time.mean: not used by a uniform time"),
    ({"stdev": 1}, "expected a number, {mean[, stdev]}"),
    ({"type": "zipf", "a": 1}, "train.computation_time.type: 'zipf' is not allowed"),
    ("soon", "expected seconds"),
    (-0.5, "expected seconds"),
])
def test_bad_time_values(value, message):
    with pytest.raises(ConfigError) as err:
        load_config({"train": {"computation_time": value}})
    assert message in str(err.value)


def test_stdev_sibling_with_other_distribution_is_an_error():
    with pytest.raises(ConfigError, match="computation_time_stdev"):
        load_config({"train": {"computation_time": {"type": "exponential", "scale": 1},
                               "computation_time_stdev": 0.1}})
