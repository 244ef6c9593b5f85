from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


BIN = Path(sys.executable).parent

# What Open MPI's launcher prints when its PMIx server cannot start listening, before any rank runs.
PMIX_START_FAILED = "The PMIx server's listener thread failed to start"


def private_tmpdir() -> str:
    """A new short folder under the system's temporary folder, removed when the tests end: the ``TMPDIR``
    of one launched command, so that mpirun's session folders (``prted.<pid>``, ``ompi.<host>.<uid>``)
    are its own. Tests that kill mpirun leave those folders behind, and with 32,768 process ids a later
    mpirun may get the same pid, and so the same folder."""
    folder = tempfile.mkdtemp(prefix="dlt-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def launcher_did_not_start(res: subprocess.CompletedProcess) -> bool:
    """Whether ``res`` failed because mpirun's PMIx server never started (no rank ran): a start-up
    failure of the launcher on a busy machine, not of the command. Callers run such a command once more."""
    return res.returncode != 0 and PMIX_START_FAILED in (res.stdout or "") + (res.stderr or "")


def run_launched(cmd: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd)`` with its output captured as text, ``env`` with a ``TMPDIR`` of its own
    (:func:`private_tmpdir`); a command whose mpirun did not start (:func:`launcher_did_not_start`) runs
    once more, with a fresh ``TMPDIR``."""
    for _ in range(2):
        res = subprocess.run(cmd, env={**env, "TMPDIR": private_tmpdir()}, capture_output=True, text=True, **kwargs)
        if not launcher_did_not_start(res):
            break
    return res


def dl_driver(*args: str, cwd: str | os.PathLike | None = None, env: dict | None = None, timeout: float = 300,
              launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script (as a user would) and capture its output (see :func:`run_launched`)."""
    exe = shutil.which("dl-driver", path=str(BIN)) or "dl-driver"
    cmd = [*(launcher or []), exe, *args]
    return run_launched(cmd, {**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)




def small_run_args(tmp_path: Path, *extra: str) -> list[str]:
    """The default workload shrunk to a couple of seconds, with the native engine."""
    return [
        "default",
        f"++workload.dataset.data_folder={tmp_path}/data",
        "++workload.reader.data_loader=native",
        "++workload.workflow.generate_data=True",
        "++workload.train.epochs=2",
        "++workload.train.computation_time=0.005",
        "++workload.evaluation.eval_time=0.001",
        f"++hydra.run.dir={tmp_path}/out",
        *extra,
    ]


def run_args(tmp_path: Path, *extra: str) -> list[str]:
    """``small_run_args`` for a dataset that is already there (no generation)."""
    return [a for a in small_run_args(tmp_path, *extra) if "generate_data" not in a]


def assert_two_rank_run(res, out: Path) -> None:
    """A 2-rank run of ``small_run_args``: one summary for 2 accelerators, equal steps, summed throughput."""
    import json

    import pytest

    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_accelerators"] == 2
    assert res.stdout.count("[METRIC] Number of Simulated Accelerators: 2") == 1
    outputs = [json.loads((out / f"{r}_output.json").read_text()) for r in (0, 1)]
    steps = [len(o["1"]["load"]["block1"]) for o in outputs]
    assert steps == [8, 8]  # 64 files / batch 4 / 2 ranks
    per_rank = [o["1"]["throughput"]["block1"] for o in outputs]
    assert summary["metric"]["train_throughput_samples_per_second"][0] == pytest.approx(sum(per_rank))
    assert (out / "1_per_epoch_stats.json").exists()
