"""`Dist.step_status`, the topology from host names, bounded waits and `RankLost`, without processes.

A fake communicator stands for the other ranks: it knows what each of them contributes to the
all-reduce and the broadcast, so one process can check what every rank would conclude.
"""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from dlio_core import collectives
from dlio_core.collectives import LocalComm, PeerLost, WaitTimeout
from dlio_core.dist import (DEFAULT_RANK_TIMEOUT_S, RANK_TIMEOUT_ENV, Dist, RankLost, RankStatus, StepOutcome,
                            _decode, _encode, _topology, resolve_rank_timeout)


class _Done:
    def wait(self, timeout_s):
        return None


class _Never:
    """An operation some rank never joins."""

    def __init__(self, error=None):
        self.error = error or WaitTimeout("never")
        self.waited = None

    def wait(self, timeout_s):
        self.waited = timeout_s
        raise self.error


class FakeWorld:
    """Rank ``me`` of a world whose other ranks report ``statuses[r]`` = (status, code, message)."""

    def __init__(self, me, statuses, pending=None):
        self.me, self.statuses, self.pending = me, statuses, pending
        self.calls = []

    def _key(self, rank):
        status, code, _ = self.statuses[rank]
        world = len(self.statuses)
        return (int(status) * 256 + code) * world + (world - 1 - rank)

    def start_allreduce_max(self, send, out):
        self.calls.append("allreduce")
        if self.pending is not None:
            return self.pending
        assert int(send[0]) == self._key(self.me)  # this rank encodes what the others expect
        out[0] = max(self._key(r) for r in range(len(self.statuses)))
        return _Done()

    def start_bcast_bytes(self, buf, root):
        self.calls.append(("bcast", root))
        if root != self.me:
            buf[...] = _encode(self.statuses[root][2])
        return _Done()

    def start_barrier(self):
        self.calls.append("barrier")
        return self.pending or _Done()


def _dist(me, statuses, pending=None, timeout_s=7.0):
    comm = FakeWorld(me, statuses, pending)
    return Dist(rank=me, world=len(statuses), comm=comm, rank_timeout_s=timeout_s), comm


OK = (RankStatus.OK, 0, "")


def test_all_ok_costs_one_allreduce():
    for me in range(4):
        d, comm = _dist(me, [OK] * 4)
        out = d.step_status(where="step 3")
        assert out == StepOutcome() and out.ok and out.exit_code == 0
        assert comm.calls == ["allreduce"]


def test_every_rank_learns_the_failure_and_the_failing_ranks_message():
    statuses = [OK, OK, (RankStatus.FAILED, 0, "short read in f_7.npz"), OK]
    for me in range(4):
        d, comm = _dist(me, statuses)
        status, _, message = statuses[me]
        out = d.step_status(status, message)
        assert (out.status, out.rank, out.message, out.exit_code) == (RankStatus.FAILED, 2, "short read in f_7.npz", 1)
        assert comm.calls == ["allreduce", ("bcast", 2)]
        assert out.describe() == "rank 2 failed: short read in f_7.npz"


def test_failure_outranks_a_signal_and_the_lowest_rank_wins_a_tie():
    statuses = [(RankStatus.INTERRUPTED, 15, "SIGTERM"), (RankStatus.FAILED, 0, "b"), (RankStatus.FAILED, 0, "c")]
    d, _ = _dist(0, statuses)
    out = d.step_status(RankStatus.INTERRUPTED, "SIGTERM", code=15)
    assert (out.status, out.rank, out.message) == (RankStatus.FAILED, 1, "b")


@pytest.mark.parametrize(("signum", "code"), [(2, 130), (15, 143)])
def test_an_interruption_carries_its_signal_to_every_rank(signum, code):
    statuses = [OK, (RankStatus.INTERRUPTED, signum, "stop")]
    d, _ = _dist(0, statuses)
    out = d.step_status()
    assert (out.status, out.rank, out.signum, out.exit_code) == (RankStatus.INTERRUPTED, 1, signum, code)


def test_a_failure_carries_the_failing_ranks_exit_code():
    statuses = [OK, (RankStatus.FAILED, 2, "f.npz: truncated")]
    d, _ = _dist(0, statuses)
    out = d.step_status()
    assert (out.code, out.signum, out.exit_code) == (2, 0, 2)


def test_the_timeout_can_be_lifted_for_one_exchange():
    never = _Never()
    d, _ = _dist(0, [OK, OK], pending=never, timeout_s=5)
    with pytest.raises(RankLost):
        d.step_status(where="generation", timeout_s=None)
    assert never.waited is None


def test_a_world_of_one_needs_no_collective():
    d = Dist()
    assert d.step_status().ok
    out = d.step_status(RankStatus.FAILED, "bad\n  thing")
    assert (out.rank, out.message, out.exit_code) == (0, "bad thing", 1)
    assert d.step_status(RankStatus.INTERRUPTED, code=15).exit_code == 143


def test_a_missing_rank_raises_rank_lost_naming_the_step_and_the_timeout():
    never = _Never()
    d, _ = _dist(0, [OK, OK], pending=never, timeout_s=5)
    with pytest.raises(RankLost) as info:
        d.step_status(where="epoch 2 step 7")
    assert never.waited == 5
    assert "within 5 s at epoch 2 step 7" in str(info.value) and RANK_TIMEOUT_ENV in str(info.value)
    assert (info.value.where, info.value.timeout_s, d.lost) == ("epoch 2 step 7", 5, True)
    # No collective may run after a lost rank: the next one fails at once.
    with pytest.raises(RankLost, match="lost earlier"):
        d.barrier(timeout_s=1)


def test_a_broken_connection_is_a_lost_rank_too():
    d, _ = _dist(1, [OK, OK], pending=_Never(PeerLost("Connection reset by peer")))
    with pytest.raises(RankLost, match="lost contact with another rank at step 4: Connection reset by peer"):
        d.step_status(where="step 4")


def test_bounded_and_unbounded_barriers():
    d, comm = _dist(0, [OK, OK])
    d.barrier(timeout_s=3)
    assert comm.calls == ["barrier"]
    d2, _ = _dist(0, [OK, OK], pending=_Never())
    with pytest.raises(RankLost, match="a barrier"):
        d2.barrier(timeout_s=0.5)
    Dist().barrier(timeout_s=1)  # a world of one: nothing to wait for


def test_status_arguments_are_checked():
    d, _ = _dist(0, [OK, OK])
    with pytest.raises(ValueError):
        d.step_status(RankStatus.INTERRUPTED, code=300)
    with pytest.raises(ValueError):
        d.step_status(7)


def test_messages_are_one_line_and_cut_at_a_character_boundary():
    assert _decode(_encode("a\n b\tc")) == "a b c"
    long = "é" * 2000  # 2 bytes each: the 1 KiB buffer cuts one in half
    text = _decode(_encode(long))
    assert text == "é" * 128 + " ... " + "é" * 381 and len(text.encode()) <= 1024
    wrapped = "ReadError: Caught ReadError in DataLoader worker process 0. " + "frame " * 300 + "short read in f.npz"
    assert _decode(_encode(wrapped)).endswith("short read in f.npz")  # the cause, at the end, survives


def test_topology_from_host_names():
    names = ["b", "b", "a", "b", "a"]  # hosts in order of their lowest rank, whatever the placement
    t = _topology(names, 3)
    assert t == {"host_names": ("b", "a"), "host_of_rank": (0, 0, 1, 0, 1), "node": 0, "local_rank": 2,
                 "local_world": 3}
    assert _topology(names, 4)["local_rank"] == 1


def test_a_dist_made_by_hand_is_one_host():
    d = Dist(rank=3, world=8)
    assert (d.hosts(), d.num_hosts, d.local_rank, d.local_world, d.node) == ([d.hostname], 1, 3, 8, 0)
    assert not d.is_node_leader and Dist().is_node_leader


def test_rank_timeout_from_argument_environment_or_default(monkeypatch):
    monkeypatch.delenv(RANK_TIMEOUT_ENV, raising=False)
    assert resolve_rank_timeout() == DEFAULT_RANK_TIMEOUT_S
    monkeypatch.setenv(RANK_TIMEOUT_ENV, "2.5")
    assert resolve_rank_timeout() == 2.5
    assert resolve_rank_timeout(9) == 9.0
    monkeypatch.setenv(RANK_TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match=RANK_TIMEOUT_ENV):
        resolve_rank_timeout()
    with pytest.raises(ValueError, match="positive"):
        resolve_rank_timeout(0)


# --- the backends' waits, with fake requests -----------------------------------------------------------

class _FakeMPI:
    class Exception(Exception):  # noqa: N818 - mpi4py's name
        pass


class _Request:
    def __init__(self, done_after=None, error=None):
        self.tests, self.done_after, self.error = 0, done_after, error

    def Test(self):  # noqa: N802
        self.tests += 1
        if self.error is not None:
            raise self.error
        return self.done_after is not None and self.tests >= self.done_after


def test_mpi_wait_polls_until_done():
    req = _Request(done_after=50)
    collectives._MpiPending(req, _FakeMPI).wait(5.0)
    assert req.tests == 50


def test_mpi_wait_gives_up_at_the_deadline():
    with pytest.raises(WaitTimeout):
        collectives._MpiPending(_Request(), _FakeMPI).wait(0.05)


def test_mpi_errors_become_peer_lost():
    with pytest.raises(PeerLost, match="MPI error"):
        collectives._MpiPending(_Request(error=_FakeMPI.Exception("proc failed")), _FakeMPI).wait(1.0)


class _Work:
    def __init__(self, error=None):
        self.error, self.timeout = error, None

    def wait(self, timeout=None):
        self.timeout = timeout
        if self.error is not None:
            raise self.error
        return True


def test_torch_wait_passes_the_timeout_and_sorts_its_errors():
    work = _Work()
    collectives._TorchPending(work).wait(4.0)
    assert work.timeout == datetime.timedelta(seconds=4)
    with pytest.raises(WaitTimeout):
        collectives._TorchPending(_Work(RuntimeError("Operation timed out!"))).wait(1.0)
    gloo = RuntimeError("[/x/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:1: Connection reset by peer. "
                        "This is typically caused by a remote worker hanging")
    with pytest.raises(PeerLost) as info:
        collectives._TorchPending(_Work(gloo)).wait(1.0)
    assert str(info.value) == "Read error [127.0.0.1]:1: Connection reset by peer."


def test_local_comm_is_a_world_of_one():
    c = LocalComm()
    out = np.zeros(1, np.int64)
    c.start_allreduce_max(np.array([5], np.int64), out).wait(None)
    assert int(out[0]) == 5 and c.allgather("x") == ["x"] and c.gather(1) == [1] and c.bcast(2) == 2
