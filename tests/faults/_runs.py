"""Argument lists and checks shared by the fault tests."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Callable


def s3_args(out: Path, options: dict[str, Any], *extra: str, folder: str | None = None, scheme: str = "s3") -> list[str]:
    """``dl-driver`` arguments: the default workload shrunk to 16 small npz files in a new bucket (or
    container) of ``scheme``, the native engine, the storage options as a user would pass them."""
    folder = folder or f"{scheme}://f-{uuid.uuid4().hex[:12]}/data"
    return ["default", f"++workload.dataset.data_folder={folder}", "++workload.reader.data_loader=native",
            "++workload.dataset.num_files_train=16", "++workload.dataset.num_files_eval=0",
            "++workload.workflow.evaluation=False", "++workload.reader.read_threads=2",
            "++workload.train.computation_time=0.01", f"++hydra.run.dir={out}",
            *(f"++workload.storage.storage_options.{k}={v}" for k, v in options.items()), *extra]


def local_args(tmp_path: Path, *extra: str, fmt: str = "npz", generate: bool = False) -> list[str]:
    """The default workload shrunk to seconds on local files in ``fmt`` under ``tmp_path``."""
    return ["default", f"++workload.dataset.data_folder={tmp_path}/data", f"++workload.dataset.format={fmt}",
            "++workload.reader.data_loader=native", f"++workload.workflow.generate_data={generate}",
            "++workload.dataset.num_files_train=8", "++workload.dataset.num_files_eval=0",
            "++workload.dataset.num_subfolders_train=0", "++workload.workflow.evaluation=False",
            "++workload.train.epochs=1", "++workload.train.computation_time=0", f"++hydra.run.dir={tmp_path}/out",
            *extra]


def one_line_error(res) -> str:
    """The single ``dl-driver: error:`` line, the last one on stderr, with no traceback."""
    errors = [line for line in res.stderr.splitlines() if line.startswith("dl-driver: error:")]
    assert len(errors) == 1, res.stderr
    assert res.stderr.strip().splitlines()[-1] == errors[0], res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    return errors[0]


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0, every_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return False


def log_says(out: Path, text: str) -> Callable[[], bool]:
    """A predicate: the run's ``dlio.log`` contains ``text``."""
    def check() -> bool:
        log = out / "dlio.log"
        return log.exists() and text in log.read_text(errors="replace")
    return check
