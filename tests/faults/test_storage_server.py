"""An S3 server that dies, stalls or throttles mid-epoch: the run ends in bounded time with one line
naming the URI, exit code 1 (a failure while running, not bad input), the metrics measured so far
written, and no secret in the text."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from ..integration._cli import BIN
from ._runs import log_says, one_line_error, s3_args, wait_for
from .conftest import pause, restart, resume

pytestmark = pytest.mark.integration

EPOCHS_FOREVER = "++workload.train.epochs=500"


def _generate(run_cli, out, options, folder=None, scheme="s3"):
    args = s3_args(out, options, folder=folder, scheme=scheme)
    res = run_cli("generate", *args, timeout=120)
    assert res.returncode == 0, res.stderr
    return args[1].split("=", 1)[1]  # the data folder


def _start_run(args):
    return subprocess.Popen([str(BIN / "dl-driver"), "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _assert_failed_run(proc, out, secret: str, *, within_s: float, since: float) -> str:
    stdout, stderr = proc.communicate(timeout=within_s + 30)
    ended = time.monotonic()
    res = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert proc.returncode == 1, stderr  # a failure while running
    assert ended - since < within_s, f"took {ended - since:.1f} s to give up"
    line = one_line_error(res)
    assert secret not in stdout + stderr
    assert (out / "summary.json").exists(), (stderr, sorted(p.name for p in out.iterdir()))
    summary = json.loads((out / "summary.json").read_text())  # what was measured is written
    assert summary["epochs"] >= 1
    return line


def _fault_in_epoch_2(srv, run_cli, tmp_path, options: dict, fault, within_s: float, scheme: str = "s3") -> str:
    """Generate, start a long run, apply ``fault(srv)`` once epoch 2 starts; the run's one error line."""
    out = tmp_path / "out"
    folder = _generate(run_cli, tmp_path / "gen", srv.options, scheme=scheme)
    secret = srv.options.get("secret_access_key") or srv.options["connection_string"].split("AccountKey=")[1][:40]
    proc = _start_run(s3_args(out, {**srv.options, **options}, EPOCHS_FOREVER, folder=folder))
    try:
        assert wait_for(log_says(out, "Starting epoch 2")), "the run never reached epoch 2"
        fault(srv)
        line = _assert_failed_run(proc, out, secret, within_s=within_s, since=time.monotonic())
    finally:
        proc.kill()
        resume(srv)
    assert folder in line, line
    return line


def test_server_killed_mid_epoch_exits_1(moto, run_cli, tmp_path):
    line = _fault_in_epoch_2(moto, run_cli, tmp_path, {"s3_max_attempts": 3, "read_timeout_s": 5},
                             lambda srv: srv.kill(), within_s=30)
    assert "reachable" in line, line


def test_server_paused_mid_epoch_ends_by_the_total_deadline(moto, run_cli, tmp_path):
    # Per-request timeouts alone would take 60 s x 5 tries here; the deadline ends it in 3 s.
    line = _fault_in_epoch_2(moto, run_cli, tmp_path, {"read_timeout_s": 60, "total_timeout_s": 3}, pause,
                             within_s=15)
    assert "total deadline of 3 s" in line and "total_timeout_s" in line, line


@pytest.mark.parametrize("fault", ["killed", "paused"])
def test_azurite_killed_or_paused_mid_epoch_exits_1(azurite, run_cli, tmp_path, fault):
    options = {"max_attempts": 2, "read_timeout_s": 30, "total_timeout_s": 3}
    line = _fault_in_epoch_2(azurite, run_cli, tmp_path, options, (lambda s: s.kill()) if fault == "killed" else pause,
                             within_s=20, scheme="az")
    assert "az://" in line and "AccountKey" not in line, line


def test_server_paused_then_resumed_within_the_deadline_finishes(moto, run_cli, tmp_path):
    out = tmp_path / "out"
    folder = _generate(run_cli, tmp_path / "gen", moto.options)
    options = {**moto.options, "read_timeout_s": 30, "total_timeout_s": 30}
    proc = _start_run(s3_args(out, options, "++workload.train.epochs=3", folder=folder))
    try:
        assert wait_for(log_says(out, "Starting epoch 2")), "the run never reached epoch 2"
        pause(moto)
        time.sleep(1.5)
        resume(moto)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert json.loads((out / "summary.json").read_text())["epochs"] == 3


def _restarted_mid_run(srv, run_cli, tmp_path, tries: dict, scheme: str = "s3", *, graceful: bool = False) -> None:
    """Generate, start a 12-epoch run with enough tries inside its deadline to outlast an outage, kill the
    server once epoch 2 starts (``graceful``: stop it with SIGTERM), keep it down for longer than the rest of
    the run would take with it, then start it again (same port, same data folder): the run waits through
    the outage and finishes."""
    out = tmp_path / "out"
    folder = _generate(run_cli, tmp_path / "gen", srv.options, scheme=scheme)
    options = {**srv.options, **tries, "total_timeout_s": 60}
    proc = _start_run(s3_args(out, options, "++workload.train.epochs=12", "++workload.train.computation_time=0.05",
                              folder=folder))
    try:
        assert wait_for(log_says(out, "Starting epoch 2")), "the run never reached epoch 2"
        srv.stop() if graceful else srv.kill()
        time.sleep(3)  # the 10 epochs of 0.2 s left would be done by now with a server
        assert proc.poll() is None, "the run ended while the server was down"
        restart(srv)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert json.loads((out / "summary.json").read_text())["epochs"] == 12


def test_server_restarted_mid_epoch_the_run_goes_on(seaweed, run_cli, tmp_path):
    _restarted_mid_run(seaweed, run_cli, tmp_path, {"s3_max_attempts": 100})  # connection refused meanwhile


def test_azurite_stopped_and_restarted_within_the_deadline_the_run_goes_on(azurite, run_cli, tmp_path):
    # Azurite keeps its blobs on disk (--location), but its metadata store saves every few seconds: killed
    # with SIGKILL before a save it forgets the container (CI saw "not found" after the restart on a loaded
    # machine), so this outage is a restart (SIGTERM: it saves, then exits); a SIGKILL is
    # test_azurite_killed_or_paused_mid_epoch_exits_1[killed].
    _restarted_mid_run(azurite, run_cli, tmp_path, {"max_attempts": 100}, scheme="az", graceful=True)


@pytest.fixture
def throttler(moto):
    from ._throttle import ThrottlingProxy

    proxy = ThrottlingProxy(moto.port)
    yield proxy
    proxy.close()


def test_slowdown_answers_are_retried(moto, throttler, run_cli, tmp_path):
    folder = _generate(run_cli, tmp_path / "gen", moto.options)
    throttler.throttle_next = 3  # fewer than the 5 tries of each operation
    options = {**moto.options, "endpoint_url": throttler.endpoint}
    res = run_cli("run", *s3_args(tmp_path / "out", options, "++workload.train.epochs=1", folder=folder), timeout=120)
    assert res.returncode == 0, res.stderr
    assert throttler.throttled == 3


def test_throttling_that_never_ends_exits_1_naming_slowdown(moto, throttler, run_cli, tmp_path):
    folder = _generate(run_cli, tmp_path / "gen", moto.options)
    throttler.throttle_all = True
    options = {**moto.options, "endpoint_url": throttler.endpoint, "s3_max_attempts": 3}
    t0 = time.monotonic()
    res = run_cli("run", *s3_args(tmp_path / "out", options, folder=folder), timeout=120)
    assert res.returncode == 1, res.stderr
    assert time.monotonic() - t0 < 30
    line = one_line_error(res)
    assert "SlowDown" in line or "Slow Down" in line, line
    assert folder in line and moto.options["secret_access_key"] not in res.stderr
