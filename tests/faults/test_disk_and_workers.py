"""A full disk (a small tmpfs, mounted in a private mount namespace: needs root, skipped with the reason
where refused) and a DataLoader worker killed with SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ..integration._cli import BIN
from ._runs import local_args, log_says, one_line_error, wait_for

pytestmark = pytest.mark.integration


def _tmpfs_argv(mountpoint: Path, size: str, argv: list[str]) -> list[str]:
    """``argv`` run with a ``size`` tmpfs at ``mountpoint``, in a mount namespace of its own (nothing to
    unmount afterwards, nothing visible to other processes)."""
    script = f'mount -t tmpfs -o size={size} tmpfs "{mountpoint}" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh", *argv]


@pytest.fixture
def tmpfs_allowed(tmp_path):
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1) here: cannot mount a private tmpfs for the disk-full tests")
    probe = tmp_path / "probe"
    probe.mkdir()
    res = subprocess.run(_tmpfs_argv(probe, "16k", ["true"]), capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"mounting a tmpfs was refused here ({res.stderr.strip()[:200]}); the disk-full tests need root")


def _cli(*args: str) -> list[str]:
    return [str(BIN / "dl-driver"), *args]


def test_dataset_larger_than_the_disk_is_refused_before_generation(tmp_path, tmpfs_allowed):
    data = tmp_path / "data"
    data.mkdir()
    res = subprocess.run(_tmpfs_argv(data, "300k", _cli("generate", *local_args(tmp_path, "++workload.dataset.record_length_bytes=65536"))),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    line = one_line_error(res)
    assert "the dataset needs" in line and "300 KiB free" in line and str(data) in line, line


def test_disk_full_while_running_exits_1_naming_the_file(tmp_path, tmpfs_allowed):
    assert subprocess.run(_cli("generate", *local_args(tmp_path)), capture_output=True).returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    res = subprocess.run(_tmpfs_argv(out, "24k", _cli("run", *local_args(tmp_path, "++workload.train.epochs=300"))),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr  # a device failing under a valid run
    line = one_line_error(res)
    assert "No space left on device" in line and str(out) in line, line


def test_dataloader_worker_killed_mid_epoch_exits_1(tmp_path, run_cli):
    pytest.importorskip("torch")
    assert run_cli("generate", *local_args(tmp_path)).returncode == 0
    args = [a.replace("data_loader=native", "data_loader=pytorch")
            for a in local_args(tmp_path, "++workload.train.epochs=500", "++workload.reader.read_threads=2",
                                "++workload.train.computation_time=0.01")]
    proc = subprocess.Popen(_cli("run", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(log_says(tmp_path / "out", "Starting epoch 2"), timeout_s=120)
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert workers, "no DataLoader worker processes found"
        os.kill(int(workers[0]), signal.SIGKILL)
        killed = time.monotonic()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr
    assert time.monotonic() - killed < 30
    line = one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    # torch words it as "(pid N) is killed by signal: Killed." or "(pid(s) N) exited unexpectedly"
    assert "DataLoader worker (pid" in line and workers[0] in line, line
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["epochs"] >= 1
