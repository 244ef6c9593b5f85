"""An error raised outside every guarded step (torch's SIGCHLD handler raises wherever the main thread is
when a DataLoader worker dies): the run still ends through the exchange and writes result files that say
it failed, and the error itself is what the caller gets."""

from __future__ import annotations

import json

import pytest

from dlio_core.config import load_config
from dlio_core.output import RunLog
from dlio_core.runner import run


class _FailsAfterEpoch(RunLog):
    """A log whose line "Ending epoch 1" raises, as a signal handler would between two epochs."""

    def output(self, message: str) -> None:
        super().output(message)
        if message.startswith("Ending epoch 1 "):
            raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Killed.")


def _cfg(tmp_path, *extra: str):
    return load_config("default", [
        f"++workload.dataset.data_folder={tmp_path}/data", "++workload.reader.data_loader=native",
        "++workload.workflow.generate_data=True", "++workload.train.epochs=3", "++workload.dataset.num_files_train=8",
        "++workload.train.computation_time=0", "++workload.workflow.evaluation=False",
        f"++hydra.run.dir={tmp_path}/out", *extra])


def test_an_error_between_epochs_still_writes_failed_results(tmp_path):
    with pytest.raises(RuntimeError, match="DataLoader worker .pid 4242"):
        run(_cfg(tmp_path), quiet=True, log=_FailsAfterEpoch(quiet=True))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    status = summary["run_status"]
    assert status["status"] == "failed", status
    assert "DataLoader worker (pid 4242)" in status["reason"] and status["epoch"] == 1, status
    assert summary["epochs"] == 1  # the epoch that completed is kept
    assert json.loads((tmp_path / "out" / "report.json").read_text())["run_status"]["status"] == "failed"
    assert "[ERROR]" in (tmp_path / "out" / "dlio.log").read_text()


def test_ctrl_c_between_epochs_is_an_interruption_with_results(tmp_path):
    class _CtrlC(RunLog):
        def output(self, message: str) -> None:
            super().output(message)
            if message.startswith("Ending epoch 2 "):
                raise KeyboardInterrupt

    from dlio_core.run_end import RunInterrupted

    with pytest.raises(RunInterrupted):
        run(_cfg(tmp_path), quiet=True, log=_CtrlC(quiet=True))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["run_status"]["status"] == "interrupted" and summary["epochs"] == 2, summary["run_status"]
