"""One redaction module (``dlio_core.redact``): every secret name, secrets inside values and overrides, and the
four places that print config, command lines and storage errors all going through it."""

from __future__ import annotations

import pathlib
import time

import pytest
import yaml

import dlio_core
from dlio_core import redact as rd
from dlio_core.redact import (
    REDACTED, is_secret_key, is_secret_path, redact, redact_message, redact_override, redact_uri, redact_value,
    scrub, secret_values,
)

# Names each of the four old detectors caught (config/frozen.py, output.py, storage/client.py, storage/uri.py),
# plus the usual spellings of the storage libraries' options.
SECRET_NAMES = [
    "secret", "secret_access_key", "aws_secret_access_key", "client_secret", "password", "db_password", "passwd",
    "token", "session_token", "sas_token", "connection_string", "credential", "credentials", "credentials_file",
    "account_key", "private_key", "private_key_id", "api_key", "sas", "azure_sas", "sas_url", "key", "secret_key",
    "access_key", "sse_customer_key", "aws_access_key_id", "SECRET_ACCESS_KEY", "Password", "SasToken",
]
PUBLIC_NAMES = ["access_key_id", "key_id", "account_name", "endpoint_url", "region", "project", "storage_library",
                "anon", "max_attempts", "batch_size", "keep_files"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_every_secret_name_is_hidden_everywhere(name):
    assert is_secret_key(name) and is_secret_key(f"storage.storage_options.{name}")
    assert redact({name: "v4lue-xyz"}) == {name: REDACTED}
    assert redact_override(f"++workload.storage.storage_options.{name}=v4lue-xyz").endswith(f"{name}={REDACTED}")
    assert redact_override(f"storage.storage_options.{name}=v4lue-xyz") == f"storage.storage_options.{name}=***"
    assert secret_values({name: "v4lue-xyz"}) == ("v4lue-xyz",)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_identifiers_stay_visible(name):
    assert not is_secret_key(name)
    assert redact({name: "AKIAVISIBLE"}) == {name: "AKIAVISIBLE"}
    assert redact_override(f"++workload.storage.storage_options.{name}=AKIAVISIBLE").endswith("=AKIAVISIBLE")


def test_nested_mappings_lists_and_what_is_below_a_secret():
    given = {"storage_options": {"session_token": "t", "access_key_id": "AKIA", "n": 3, "empty_token": "",
                                 "none_secret": None},
             "list": [{"password": "p"}, "plain"], "credentials": {"client_id": "c", "nested": ["x", {"a": 1}]},
             "tokens": ["a", "b"]}
    assert redact(given) == {
        "storage_options": {"session_token": "***", "access_key_id": "AKIA", "n": 3, "empty_token": "",
                            "none_secret": None},
        "list": [{"password": "***"}, "plain"], "credentials": {"client_id": "***", "nested": ["***", {"a": "***"}]},
        "tokens": ["***", "***"]}
    assert redact("s3cr3t", "secret_access_key") == "***" and redact(7, "region") == 7
    assert is_secret_path("a.credentials.b") and not is_secret_path("reader.batch_size")


@pytest.mark.parametrize("text, hidden, kept", [
    ("DefaultEndpointsProtocol=https;AccountName=dev;AccountKey=Zm9v==;BlobEndpoint=http://h", "Zm9v==",
     "AccountName=dev"),
    ("BlobEndpoint=x;SharedAccessSignature=sv=2020&sig=abc123", "abc123", "BlobEndpoint=x"),
    ("Endpoint=sb://h/;SharedAccessKeyName=n;SharedAccessKey=k3yk3y", "k3yk3y", "SharedAccessKeyName=n"),
    ("https://a.blob.core.windows.net/c?sv=1&sig=s1gn&se=2", "s1gn", "se=2"),
    ("https://b.s3.amazonaws.com/o?X-Amz-Credential=AKIA/x&X-Amz-Signature=deadbeef", "deadbeef", "b.s3"),
    ("https://h/p?access_token=ya29tok", "ya29tok", "https://h/p"),
    ("http://key:SECRETVAL@host:9000/bucket", "SECRETVAL", "host:9000"),
])
def test_secrets_inside_values_uris_and_messages(text, hidden, kept):
    for shown in (redact_value(text), redact_uri(text), scrub(text), redact_message(RuntimeError(text)),
                  redact({"endpoint_url": text})["endpoint_url"], redact_override(f"a.b={text}")):
        assert hidden not in shown and kept in shown, shown


def test_uri_userinfo_forms():
    assert redact_value("https://user:pw@host:9000") == "https://user:***@host:9000"  # config: the user stays
    assert redact_uri("s3://AKIA:secret@bucket/x") == "s3://***@bucket/x"               # URIs: all of userinfo
    assert redact_uri("abfs://container@acct.dfs.core.windows.net/p") == "abfs://container@acct.dfs.core.windows.net/p"
    # anywhere in a message, not only at its start
    assert scrub("cannot reach http://u:pw99@h:1/x (refused)") == "cannot reach http://***@h:1/x (refused)"


def test_dict_valued_overrides_are_parsed_and_redacted():
    out = redact_override("++workload.storage.storage_options={secret_access_key: X9secret, region: us-east-1}")
    assert out.startswith("++workload.storage.storage_options={") and "X9secret" not in out
    assert yaml.safe_load(out.partition("=")[2]) == {"secret_access_key": "***", "region": "us-east-1"}
    out = redact_override("storage.storage_options=[{password: pw1}, {endpoint_url: 'http://u:pw2@h'}]")
    assert "pw1" not in out and "pw2" not in out and "http://u:***@h" in out
    same = "++workload.storage.storage_options={region: us-east-1, anon: true}"
    assert redact_override(same) == same  # nothing secret: the text as given
    broken = redact_override("++workload.storage.storage_options={secret_access_key: X9secret, region: r")
    assert "X9secret" not in broken and "region: r" in broken  # not YAML: still no secret


def test_override_forms_without_a_value_or_a_secret():
    assert redact_override("run") == "run" and redact_override("--debug") == "--debug"
    assert redact_override("++workload.reader.batch_size=8") == "++workload.reader.batch_size=8"
    assert redact_override("++workload.credentials.user=x") == "++workload.credentials.user=***"  # a secret parent


def test_yaml_aliases_in_an_override_cost_their_size_not_their_expansion():
    parts = ["l0: &l0 [{token: sEcReT}, {token: sEcReT}]"]
    parts += [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}]" for i in range(1, 40)]
    t0 = time.perf_counter()
    out = redact_override("storage.storage_options={" + ", ".join(parts) + "}")
    assert "sEcReT" not in out and time.perf_counter() - t0 < 5


def test_known_values_are_masked_in_messages():
    values = secret_values({"key": "AKIA1234", "secret": "s3cr3t-long", "endpoint_url": "http://h",
                            "client_kwargs": {"aws_session_token": "tok-abcdef"}, "n": 5, "e": ""})
    assert values == ("s3cr3t-long", "tok-abcdef", "AKIA1234")
    assert redact_message(PermissionError("denied: s3cr3t-long /\n tok-abcdef"), values) == "denied: *** / ***"
    assert redact_message(TimeoutError()) == "TimeoutError"
    assert scrub("short ab", ["ab"]) == "short ab"  # under 4 characters would mask ordinary words


# --- the four call sites ---------------------------------------------------------------------------------------

def test_config_frozen_and_errors_use_it():
    from dlio_core.config import ConfigError, RunConfig, frozen
    from dlio_core.config.convert import show

    assert frozen.redact is rd.redact and frozen.is_secret_key is rd.is_secret_key
    opts = frozen.freeze({name: "v4lue-xyz" for name in SECRET_NAMES} | {"access_key_id": "AKIAVISIBLE"})
    assert "v4lue-xyz" not in repr(opts) and "AKIAVISIBLE" in repr(opts)
    cfg = RunConfig(storage={"storage_type": "s3", "storage_options": {"key": "v4lue-xyz", "sas_url": "v4lue-xyz"}})
    assert "v4lue-xyz" not in repr(cfg) + str(cfg.to_dict(redact=True))
    assert show("storage.storage_options.credentials.file", "/v4lue-xyz") == REDACTED
    with pytest.raises(ConfigError) as ei:
        RunConfig(storage={"storage_options": "AccountKey=v4lue-xyz;x"})
    assert "v4lue-xyz" not in str(ei.value)


def test_output_uses_it(tmp_path):
    from dlio_core import output
    from dlio_core.config import load_config

    assert output.redact_override is rd.redact_override
    overrides = ["++workload.storage.storage_options={secret_access_key: v4lue-xyz, region: r}",
                 "++workload.storage.storage_options.sas_token=v4lue-xyz"]
    cfg = load_config("default", overrides)
    output.write_config_copies(str(tmp_path), cfg, cfg.overrides)
    for name in ("config.yaml", "overrides.yaml"):
        assert "v4lue-xyz" not in (tmp_path / ".hydra" / name).read_text(), name


def test_storage_uri_and_client_use_it():
    from dlio_core.storage import client, uri

    assert uri.redact_uri is rd.redact_uri and uri.scrub is rd.scrub and uri.REDACTED == REDACTED
    assert client.secret_values is rd.secret_values and client.redact_message is rd.redact_message
    pytest.importorskip("s3fs")
    from dlio_core.storage import open_storage

    st = open_storage("s3://bucket/data", {"endpoint_url": "http://127.0.0.1:9", "secret_access_key": "v4lue-xyz",
                                           "access_key_id": "AKIAVISIBLE"})
    assert st._scrub("sign failed for v4lue-xyz\nAccountKey=abc") == "sign failed for *** AccountKey=***"
    assert "v4lue-xyz" not in repr(st) + st.url


def test_no_other_module_keeps_its_own_detector():
    """The four detectors disagreed; a fifth would again. Only redact.py spells out the secret words."""
    root = pathlib.Path(dlio_core.__file__).parent
    owners = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
              if '"passwd"' in p.read_text() or "passwd|" in p.read_text()]
    assert owners == ["redact.py"]
