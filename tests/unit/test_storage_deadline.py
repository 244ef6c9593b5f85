"""A stalled storage server (accepts connections, never answers) ends an operation by the total
deadline, with one line naming the URI and the deadline, whatever the per-request timeouts say."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from dlio_core.storage import StorageError, open_storage
from dlio_core.storage.options import DEFAULT_TOTAL_TIMEOUT_S, S3Options
from dlio_core.storage.retry import DeadlineExceeded, RetryExhausted, RetryPolicy


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        for c in [self.sock, *self.conns]:
            c.close()


@pytest.fixture
def silent():
    srv = SilentServer()
    yield srv
    srv.close()


def test_deadline_stops_retries_before_attempts_run_out():
    calls = []

    def slow_fail(left):
        calls.append(left)
        time.sleep(0.05)
        raise ConnectionResetError("reset")

    t0 = time.monotonic()
    with pytest.raises(DeadlineExceeded) as ei:
        RetryPolicy(max_attempts=1000, base_delay_s=0.01, max_delay_s=0.02, total_timeout_s=0.3).call_within(slow_fail)
    assert time.monotonic() - t0 < 0.6
    assert 2 < len(calls) < 1000 and calls[0] == pytest.approx(0.3, abs=0.05) and calls[-1] < calls[0]
    assert "total deadline of 0.3 s" in str(ei.value) and isinstance(ei.value, RetryExhausted)


def test_no_deadline_keeps_counting_attempts():
    with pytest.raises(RetryExhausted) as ei:
        RetryPolicy(max_attempts=3, base_delay_s=0).call_within(lambda left: (_ for _ in ()).throw(TimeoutError()))
    assert ei.value.attempts == 3 and not isinstance(ei.value, DeadlineExceeded)
    with pytest.raises(ValueError, match="total_timeout_s"):
        RetryPolicy(total_timeout_s=0)


def test_total_timeout_is_a_typed_option():
    assert S3Options.parse({}, where="s3://b").total_timeout_s == DEFAULT_TOTAL_TIMEOUT_S == 120.0
    assert S3Options.parse({"total_timeout_s": "2.5"}, where="s3://b").retry.total_timeout_s == 2.5
    with pytest.raises(StorageError, match="total_timeout_s must be a positive number of seconds"):
        S3Options.parse({"total_timeout_s": -1}, where="s3://b")


def test_stalled_s3_server_ends_by_the_deadline(silent):
    pytest.importorskip("s3fs")
    st = open_storage("s3://bkt/data", {"endpoint_url": f"http://127.0.0.1:{silent.port}", "read_timeout_s": 60,
                                         "total_timeout_s": 1.5, "access_key_id": "k", "secret_access_key": "SeCrEt99"})
    t0 = time.monotonic()
    with pytest.raises(StorageError) as ei:
        st.read("train/a.npz")
    elapsed = time.monotonic() - t0
    assert 1.4 < elapsed < 5, elapsed  # not 60 s x 5 tries
    msg = str(ei.value)
    assert "\n" not in msg and "s3://bkt/data/train/a.npz" in msg and "total deadline of 1.5 s" in msg, msg
    assert "total_timeout_s" in msg and "SeCrEt99" not in msg
    assert ei.value.cause == "timeout" and not ei.value.bad_input


def test_credentials_in_the_endpoint_are_refused_without_showing_them():
    pytest.importorskip("s3fs")
    with pytest.raises(StorageError) as ei:
        open_storage("s3://bkt/data", {"endpoint_url": "http://AKIDKEY:SuperSecret1@127.0.0.1:9"})
    msg = str(ei.value)
    assert "endpoint_url must not carry credentials" in msg and "SuperSecret1" not in msg and ei.value.bad_input
