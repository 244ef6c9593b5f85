"""A run in this process on a moto S3 server that is killed once epoch 2 starts (the storage goes
away mid-run): what a run does when its server disappears."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dlio_core.runner import run

from . import conftest_servers as servers
from ._storage_checks import small_config


def run_on_vanishing_s3(tmp_path: Path, *overrides: str,
                        attempts: int = 3) -> tuple[BaseException, float, float, dict[str, Any]]:
    """The small workload on ``s3://<new bucket>/gone`` with ``overrides``, for up to 200 epochs: what
    :func:`run_until_server_killed` returns, plus the server's storage options (its secret, to look for
    in messages). Skips the test when moto is not installed."""
    try:
        srv = servers.start_moto()
    except servers.ServerNotInstalled as e:
        pytest.skip(str(e))
    out = tmp_path / "out"
    cfg = small_config(f"s3://t-{uuid.uuid4().hex[:12]}/gone", out,
                       {**srv.options, "s3_max_attempts": attempts, "read_timeout_s": 5},
                       extra=["++workload.train.epochs=200", "++workload.workflow.evaluation=False",
                              "++workload.train.computation_time=0.01", *overrides])
    return (*run_until_server_killed(srv, cfg, out), dict(srv.options))


def run_until_server_killed(srv: Any, cfg: Any, out: Path) -> tuple[BaseException, float, float]:
    """``(the run's exception, when the server was killed, when the run failed)``, monotonic seconds.

    Fails the test when the run does not raise or the server was never killed; closes the server.
    """
    killed_at: list[float] = []

    def killer() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            log = out / "dlio.log"
            if log.exists() and "Starting epoch 2" in log.read_text():
                srv.kill()
                killed_at.append(time.monotonic())
                return
            time.sleep(0.05)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        with pytest.raises(Exception) as ei:
            run(cfg, quiet=True)
        failed_at = time.monotonic()
    finally:
        t.join(5)
        srv.__exit__(None, None, None)
    assert killed_at, "the server was never killed"
    return ei.value, killed_at[0], failed_at
