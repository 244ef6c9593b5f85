"""Progress bars as a user sees them: a run on a terminal (a pseudo-terminal from util-linux ``script``)
shows generation and per-epoch bars with steps, samples/s and AU; ``--quiet`` and a run whose stderr is
not a terminal show none."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import pytest

from ._cli import BIN, small_run_args

pytestmark = pytest.mark.integration

SCRIPT = shutil.which("script")


def _on_a_terminal(args: list[str]) -> str:
    command = " ".join(shlex.quote(a) for a in [str(BIN / "dl-driver"), *args])
    done = subprocess.run([SCRIPT, "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=300,
                          env={"TERM": "xterm", "PATH": "/usr/bin:/bin", "COLUMNS": "160"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", done.stdout)  # without colours and cursor moves


@pytest.mark.skipif(SCRIPT is None, reason="no util-linux script to give the run a terminal")
def test_bars_on_a_terminal_and_none_when_quiet(tmp_path):
    args = small_run_args(tmp_path, "++workload.train.computation_time=0.05", "++workload.workflow.evaluation=False")
    text = _on_a_terminal(["run", *args])
    assert re.search(r"generating npz in \S+ .*72/72", text)
    assert re.search(r"epoch 1/2 .*16/16 steps, [\d.,]+ samples/s, AU \d+\.\d%", text)
    assert re.search(r"epoch 2/2 .*16/16", text)
    quiet = _on_a_terminal(["run", "--quiet", *args])
    assert "epoch 1/2" not in quiet and "samples/s, AU" not in quiet


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path, run_cli):
    res = run_cli("run", *small_run_args(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "samples/s, AU" not in res.stdout + res.stderr
