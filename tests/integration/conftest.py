from __future__ import annotations

import pytest

from ._cli import dl_driver


@pytest.fixture
def run_cli():
    return dl_driver


# --- storage servers on 127.0.0.1 (started once per session, stopped at the end) -----------------------

from . import conftest_servers as _servers  # noqa: E402


def _server_fixture(start):
    try:
        srv = start()
    except _servers.ServerNotInstalled as e:
        pytest.skip(str(e))
    return srv


@pytest.fixture(scope="session")
def s3_server():
    """seaweedfs ``weed mini``: a real S3 gateway enforcing a recognisable per-session secret."""
    srv = _server_fixture(_servers.start_seaweed)
    with srv:
        yield srv


@pytest.fixture(scope="session")
def moto_s3_server():
    """moto's S3 server (any credentials)."""
    srv = _server_fixture(_servers.start_moto)
    with srv:
        yield srv


@pytest.fixture(scope="session")
def azurite_server():
    """Azurite's blob service (npm, installed by make test)."""
    srv = _server_fixture(_servers.start_azurite)
    with srv:
        yield srv


@pytest.fixture(scope="session")
def gcs_server():
    """gcp-storage-emulator, in memory."""
    srv = _server_fixture(_servers.start_gcs)
    with srv:
        yield srv


@pytest.fixture
def s3_uri(s3_server):
    """``(uri, storage_options)``: a fresh bucket (created on first write) on the session's S3 server."""
    import uuid

    return f"s3://t-{uuid.uuid4().hex[:12]}/run", dict(s3_server.options)
