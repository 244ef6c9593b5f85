"""Retry policy and transient-error test, URI helpers and redaction, local staging with a commit marker."""

from __future__ import annotations

import errno
import json
import os

import pytest

from dlio_core.storage import StorageError, open_storage
from dlio_core.storage.retry import RetryExhausted, RetryPolicy, is_transient
from dlio_core.storage.stage import COMMIT_MARKER, download_dir, download_stage, is_committed, upload_stage
from dlio_core.storage.uri import as_bool, join_uri, pick_endpoint, redact_uri, scrub

# --- retry ----------------------------------------------------------------------------------------------


class _Flaky:
    def __init__(self, failures: int, exc: Exception) -> None:
        self.failures, self.exc, self.calls = failures, exc, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return "ok"


def test_transient_errors_are_retried_until_success():
    fn = _Flaky(3, ConnectionResetError(errno.ECONNRESET, "reset"))
    assert RetryPolicy(max_attempts=4, base_delay_s=0).call(fn) == "ok" and fn.calls == 4


def test_attempts_are_bounded():
    fn = _Flaky(10, TimeoutError("slow"))
    with pytest.raises(RetryExhausted) as ei:
        RetryPolicy(max_attempts=3, base_delay_s=0).call(fn)
    assert fn.calls == 3 and ei.value.attempts == 3 and isinstance(ei.value.last, TimeoutError)


def test_permanent_errors_are_raised_at_once():
    fn = _Flaky(1, FileNotFoundError("no such key"))
    with pytest.raises(FileNotFoundError):
        RetryPolicy(max_attempts=5, base_delay_s=0).call(fn)
    assert fn.calls == 1


def test_backoff_is_capped():
    p = RetryPolicy(max_attempts=10, base_delay_s=0.1, max_delay_s=1.0)
    assert [p.delay_s(k) for k in (2, 3, 4, 5, 6)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert p.max_sleep_s == pytest.approx(0.1 + 0.2 + 0.4 + 0.8 + 1.0 * 5)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


class _ClientError(Exception):
    def __init__(self, code: str, status: int) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


class _HttpResponseError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"status {status_code}")
        self.status_code = status_code


class EndpointConnectionError(Exception):  # named like botocore's: classification goes by name
    pass


@pytest.mark.parametrize("exc, transient", [
    (ConnectionRefusedError(), True),
    (EndpointConnectionError("could not connect"), True),
    (_ClientError("SlowDown", 503), True),
    (_ClientError("InternalError", 500), True),
    (_ClientError("AccessDenied", 403), False),
    (_HttpResponseError(503), True),
    (_HttpResponseError(429), True),
    (_HttpResponseError(404), False),
    (FileNotFoundError("k"), False),
    (PermissionError("denied"), False),
    (OSError(errno.ECONNRESET, "reset"), True),
    (ValueError("bad"), False),
])
def test_is_transient(exc, transient):
    assert is_transient(exc) is transient


def test_is_transient_follows_the_cause():
    try:
        try:
            raise _ClientError("SlowDown", 503)
        except _ClientError as inner:
            raise OSError(errno.EIO, "Please reduce your request rate") from inner
    except OSError as outer:
        assert is_transient(outer)


# --- URIs and redaction -----------------------------------------------------------------------------------

def test_redaction_covers_userinfo_signatures_and_keys():
    assert redact_uri("s3://AKIA:secret@bucket/x") == "s3://***@bucket/x"
    assert redact_uri("abfs://container@acct.dfs.core.windows.net/p") == "abfs://container@acct.dfs.core.windows.net/p"
    assert "abc" not in redact_uri("https://a.blob.core.windows.net/c?sv=1&sig=abc&se=2")
    text = "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=Zm9vYmFy==;BlobEndpoint=http://h"
    assert "Zm9vYmFy" not in scrub(text) and "AccountName=dev" in scrub(text)
    assert scrub("token tkn-123456 rejected", ["tkn-123456"]) == "token *** rejected"
    assert scrub("short ab", ["ab"]) == "short ab"  # values under 4 characters would mask ordinary words


def test_join_bool_endpoint():
    assert join_uri("s3://b", "x/", "/y") == "s3://b/x/y" and join_uri("s3://b/") == "s3://b"
    assert as_bool("False") is False and as_bool(True) is True
    with pytest.raises(ValueError, match="s3_force_path_style"):
        as_bool("perhaps", "s3_force_path_style")
    assert pick_endpoint("http://a,http://b", rank=5) == "http://b" and pick_endpoint("", rank=0) == ""


# --- staging (local target; the S3 round trip is in tests/integration/test_storage_s3.py) --------------------

def test_upload_stage_writes_files_then_the_marker(tmp_path):
    target = open_storage(str(tmp_path / "remote"))
    with upload_stage(target, "ckpt/step-1") as d:
        os.makedirs(f"{d}/sub")
        open(f"{d}/a.bin", "wb").write(b"aaaa")
        open(f"{d}/sub/b.bin", "wb").write(b"bb")
        staged = d
    assert not os.path.exists(staged)  # the local stage is removed
    assert json.loads(target.read(f"ckpt/step-1/{COMMIT_MARKER}"))["files"] == {"a.bin": 4, "sub/b.bin": 2}
    with download_stage(target, "ckpt/step-1") as d:
        assert open(f"{d}/sub/b.bin", "rb").read() == b"bb"
        assert not os.path.exists(f"{d}/{COMMIT_MARKER}")


def test_failed_stage_uploads_nothing(tmp_path):
    target = open_storage(str(tmp_path / "remote"))
    with pytest.raises(KeyError):
        with upload_stage(target, "ck") as d:
            open(f"{d}/a.bin", "wb").write(b"x")
            raise KeyError("crash")
    assert not target.exists("ck/a.bin") and not is_committed(target, "ck")


def test_download_requires_the_marker_and_fetches_only_listed_files(tmp_path):
    target = open_storage(str(tmp_path / "remote"))
    target.write_atomic("ck/a.bin", b"x")
    with pytest.raises(StorageError, match="did not complete"):
        download_dir(target, "ck", str(tmp_path / "local"))
    with upload_stage(target, "ck2") as d:
        open(f"{d}/a.bin", "wb").write(b"1")
    target.write_atomic("ck2/stray.bin", b"from a later failed upload")
    assert download_dir(target, "ck2", str(tmp_path / "l2")) == {"a.bin": 1}
    assert not (tmp_path / "l2" / "stray.bin").exists()
    assert set(download_dir(target, "ck2", str(tmp_path / "l3"), require_marker=False)) == {"a.bin", "stray.bin"}
