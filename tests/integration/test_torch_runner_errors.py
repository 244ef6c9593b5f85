"""``reader.data_loader: pytorch`` reports data errors as the native loader does (issues 18, 19): one
line naming the file (not the DataLoader worker's whole traceback), and the exit code of the cause
(2: a malformed file; 1: the storage went away), which crosses the worker process intact."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from dlio_core.exits import exit_code_of  # noqa: E402

from ._cli import run_args  # noqa: E402
from ._kill_mid_run import run_on_vanishing_s3  # noqa: E402

pytestmark = pytest.mark.integration


def _truncate_one(data: Path) -> Path:
    victim = sorted((data / "train").rglob("*.npz"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    return victim


def test_a_truncated_file_is_the_native_loaders_one_line(run_cli, generated):
    victim = _truncate_one(generated / "data")
    last_lines = {}
    for loader in ("native", "pytorch"):
        res = run_cli("run", *run_args(generated, f"++workload.reader.data_loader={loader}",
                                       "++workload.reader.read_threads=2", f"++hydra.run.dir={generated}/out_{loader}"))
        assert res.returncode == 2, res.stderr
        last_lines[loader] = res.stderr.strip().splitlines()[-1]
        assert "Traceback" not in res.stderr and "DataLoader worker" not in res.stderr
    assert last_lines["pytorch"] == last_lines["native"]
    assert victim.name in last_lines["pytorch"] and "truncated" in last_lines["pytorch"]
    assert len(last_lines["pytorch"]) < 300


def test_debug_shows_the_workers_traceback(run_cli, generated):
    _truncate_one(generated / "data")
    res = run_cli("--debug", "run", *run_args(generated, "++workload.reader.data_loader=pytorch",
                                              "++workload.reader.read_threads=2"))
    assert res.returncode == 2
    assert "raised in a DataLoader worker" in res.stderr and "whole_file.py" in res.stderr


def test_storage_gone_mid_run_is_a_failure_not_bad_input(tmp_path):
    error, _, _, _ = run_on_vanishing_s3(tmp_path, "++workload.reader.data_loader=pytorch",
                                         "++workload.reader.read_threads=2", attempts=2)
    msg = str(error)
    assert exit_code_of(error) == 1, repr(error)  # the StorageError's cause crossed the worker
    assert "\n" not in msg and "/gone/train/" in msg and "DataLoader worker" not in msg, msg
