"""dlio_core.state: the Stateful protocol, the named iteration position and the resume check."""

from __future__ import annotations

import json

import pytest

from dlio_core.state import IterationState, Stateful, require_same


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def state_dict(self) -> dict:
        return {"n": self.n}

    def load_state_dict(self, state) -> None:
        self.n = state["n"]


def test_protocol_is_checked_at_runtime():
    assert isinstance(_Counter(), Stateful)
    assert not isinstance(iter([1, 2]), Stateful)

    class OnlyGetter:
        def state_dict(self) -> dict:
            return {}

    assert not isinstance(OnlyGetter(), Stateful)


def test_position_round_trips_through_a_plain_dict():
    pos = IterationState(epoch=3, next_step=7, seed=123)
    text = json.dumps({**pos.to_dict(), "batch_size": 4})  # a state dict is JSON-friendly
    assert IterationState.from_dict(json.loads(text)) == pos


def test_position_names_the_missing_field():
    with pytest.raises(ValueError, match="'seed'"):
        IterationState.from_dict({"epoch": 1, "next_step": 2})


def test_position_refuses_a_negative_step():
    with pytest.raises(ValueError, match="next_step must be >= 0"):
        IterationState(epoch=1, next_step=-1, seed=0)


def test_require_same_names_every_disagreeing_field():
    require_same({"batch_size": 4, "seed": 1}, {"batch_size": 4, "seed": 1}, what="the same batching")
    require_same({"seed": 1}, {"batch_size": 4, "seed": 1}, what="the same batching")  # absent: not checked
    with pytest.raises(ValueError, match=r"batch_size=8, seed=2.*batch_size=4, seed=1; resume needs the same"):
        require_same({"batch_size": 8, "seed": 2}, {"batch_size": 4, "seed": 1}, what="the same batching")
