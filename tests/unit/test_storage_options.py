"""Typed storage options per backend: parsed once, validated when built, one-line errors naming the
option, and every option used (GCS's connect_timeout_s reaches the HTTP client)."""

from __future__ import annotations

import pickle

import pytest

from dlio_core.storage import StorageError, open_storage
from dlio_core.storage.options import AzureOptions, ClientOptions, GCSOptions, S3Options

SECRET = "S3cr3t-Value-xyz"


def test_s3_options_are_typed():
    o = S3Options.parse({"s3_max_attempts": "3", "connect_timeout_s": "2.5", "read_timeout_s": 7,
                         "s3_force_path_style": "false", "region": "eu-west-1", "secret_access_key": SECRET,
                         "config_kwargs": {"max_pool_connections": 8}, "requester_pays": True}, where="s3://b")
    assert (o.max_attempts, o.connect_timeout_s, o.read_timeout_s) == (3, 2.5, 7.0)
    assert o.s3_force_path_style is False and o.region == "eu-west-1" and o.secret_access_key == SECRET
    assert dict(o.config_kwargs) == {"max_pool_connections": 8} and dict(o.passthrough) == {"requester_pays": True}
    assert SECRET not in repr(o) and o.retry.max_attempts == 3
    assert S3Options.parse({}, where="s3://b") == S3Options()  # the defaults, from nothing
    with pytest.raises(AttributeError):
        o.max_attempts = 9  # frozen


@pytest.mark.parametrize("cls, key, value, problem", [
    (S3Options, "s3_max_attempts", 0, "at least 1"),
    (S3Options, "s3_max_attempts", "many", "whole number of tries"),
    (S3Options, "s3_max_attempts", 2.5, "whole number"),
    (S3Options, "s3_force_path_style", "maybe", "true or false"),
    (S3Options, "connect_timeout_s", -1, "positive number of seconds"),
    (S3Options, "config_kwargs", "x", "mapping"),
    (AzureOptions, "max_attempts", True, "whole number"),
    (AzureOptions, "read_timeout_s", "soon", "positive number of seconds"),
    (GCSOptions, "connect_timeout_s", float("inf"), "positive number of seconds"),
    (GCSOptions, "max_attempts", None, "whole number"),
])
def test_a_bad_value_is_a_one_line_error_naming_the_option(cls, key, value, problem):
    with pytest.raises(StorageError) as ei:
        cls.parse({key: value}, where="x://bucket/data")
    msg = str(ei.value)
    assert msg.startswith(f"x://bucket/data: storage.storage_options.{key} ") and problem in msg
    assert "\n" not in msg and msg.endswith("fix storage.storage_options")


def test_options_built_directly_are_validated_too():
    with pytest.raises(ValueError, match=r"storage_options\.s3_max_attempts .*at least 1"):
        S3Options(max_attempts=0)
    assert ClientOptions(read_timeout_s="5").read_timeout_s == 5.0


def test_each_backend_knows_its_keys():
    assert S3Options.key_of("max_attempts") == "s3_max_attempts" and "max_attempts" not in S3Options.keys()
    assert {"s3_max_attempts", "connect_timeout_s", "read_timeout_s", "endpoint_url", "secret_access_key"} \
        <= S3Options.keys()
    assert AzureOptions.keys() == GCSOptions.keys() == {"max_attempts", "connect_timeout_s", "read_timeout_s",
                                                        "total_timeout_s", "endpoint_url"}


def test_s3_timeouts_reach_botocore():
    st = open_storage("s3://b/d", {"connect_timeout_s": 3, "read_timeout_s": 30})
    assert st.options.connect_timeout_s == 3.0
    assert (st._kwargs["config_kwargs"]["connect_timeout"], st._kwargs["config_kwargs"]["read_timeout"]) == (3.0, 30.0)


def test_azure_timeouts_reach_adlfs():
    st = open_storage("az://c/d", {"connection_string": "AccountName=a;AccountKey=eA==", "connect_timeout_s": 4,
                                   "read_timeout_s": 40, "max_attempts": "2"})
    assert (st._kwargs["connection_timeout"], st._kwargs["read_timeout"], st.retry.max_attempts) == (4.0, 40.0, 2)


def test_gcs_uses_connect_timeout_s():
    st = open_storage("gs://b/d", {"endpoint_url": "http://127.0.0.1:9023", "connect_timeout_s": 3,
                                   "read_timeout_s": 45})
    timeout = st._kwargs["requests_timeout"]
    assert st._kwargs["endpoint_url"] == "http://127.0.0.1:9023"  # a typed option, still handed to gcsfs
    assert (timeout.sock_connect, timeout.total) == (3.0, 45.0)
    assert st.fs.requests_timeout is timeout  # what gcsfs hands to every aiohttp request
    assert pickle.loads(pickle.dumps(st))._kwargs["requests_timeout"] == timeout
    default = open_storage("gs://b/d", {"endpoint_url": "http://127.0.0.1:9023"})._kwargs["requests_timeout"]
    assert (default.sock_connect, default.total) == (10.0, 60.0)


def test_bad_option_values_fail_when_the_storage_is_opened():
    with pytest.raises(StorageError, match=r"^gs://b/d: storage\.storage_options\.connect_timeout_s must be"):
        open_storage("gs://b/d", {"connect_timeout_s": "never"})
