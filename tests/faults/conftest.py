"""Fixtures of the fault suite: the CLI as a user runs it, and storage servers started per test (a test
that kills or pauses its server must not share it). Server starters come from the integration suite."""

from __future__ import annotations

import pytest

from ..integration import conftest_servers as servers
from ..integration._cli import dl_driver


@pytest.fixture
def run_cli():
    """``run_cli(*args, timeout=..., env=...)``: the installed ``dl-driver`` in a subprocess."""
    return dl_driver


def _start(start):
    try:
        return start()
    except servers.ServerNotInstalled as e:
        pytest.skip(str(e))


@pytest.fixture
def moto():
    """A moto S3 server of this test's own (it may be killed or paused)."""
    srv = _start(servers.start_moto)
    with srv:
        yield srv
        resume(srv)  # a test that failed while the server was paused must not leave it stopped


@pytest.fixture
def seaweed():
    """A seaweedfs S3 gateway of this test's own, on disk (it keeps its objects across a restart)."""
    srv = _start(servers.start_seaweed)
    with srv:
        yield srv
        srv.kill()  # its data is thrown away anyway; a graceful stop takes seconds


def restart(srv: servers.Server, timeout_s: float = 60.0) -> None:
    """Kill the server and start the same command again (same ports, same data folder), waiting until its
    port answers."""
    import socket
    import subprocess
    import time

    srv.kill()
    cmd = list(srv.proc.args)
    with open(srv.log_path, "ab") as log:
        srv.proc = subprocess.Popen(cmd, cwd=srv.workdir, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env={**__import__("os").environ, **srv.env},
                                    start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise servers.ServerUnavailable(f"{srv.name} did not come back on port {srv.port}: {srv.log_tail()}")


@pytest.fixture
def azurite():
    """An Azurite blob service of this test's own (skips, naming the install command, without npm)."""
    srv = _start(servers.start_azurite)
    with srv:
        yield srv
        resume(srv)


def pause(srv: servers.Server) -> None:
    """SIGSTOP the server's process group: it keeps its sockets open and answers nothing (a stall)."""
    import os
    import signal

    os.killpg(srv.proc.pid, signal.SIGSTOP)


def resume(srv: servers.Server) -> None:
    """SIGCONT the server's process group (no-op when it is gone)."""
    import os
    import signal

    try:
        os.killpg(srv.proc.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
