"""Secrets given every way a user can give them never reach stdout, stderr or the output folder: the
``query`` output, one-line errors (a closed port, a malformed override, an unknown key), endpoint URLs
with credentials in the options or the environment."""

from __future__ import annotations

import socket

import pytest

from dlio_core.cli import main

from ..unit.test_redact import SECRET_NAMES
from ._runs import local_args, one_line_error

SECRET = "Sup3rSecretValue9"
FORMS = ["key=value", "dict"]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def _leaks(out_dir, *texts: str) -> list[str]:
    found = [f"text {i}" for i, t in enumerate(texts) if SECRET in t]
    if out_dir.exists():
        found += [str(p) for p in out_dir.rglob("*") if p.is_file() and SECRET in p.read_text(errors="replace")]
    return found


def _option_override(name: str, form: str) -> str:
    if form == "dict":
        return f"++workload.storage.storage_options={{{name}: {SECRET}, region: eu-west-1}}"
    return f"++workload.storage.storage_options.{name}={SECRET}"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", SECRET_NAMES)
def test_query_prints_secrets_redacted(name, form, capsys):
    override = _option_override(name, form)
    for key in ("storage.storage_options", f"storage.storage_options.{name}", "storage"):
        assert main(["query", key, "default", override]) == 0
        out, err = capsys.readouterr()
        assert SECRET not in out + err and "***" in out, (key, out)


def test_query_keeps_what_is_not_secret(capsys):
    assert main(["query", "storage.storage_options", "default", _option_override("secret_access_key", "dict")]) == 0
    assert "eu-west-1" in capsys.readouterr().out


def test_endpoint_credentials_against_a_closed_port_never_reach_stderr(tmp_path, run_cli):
    url = f"http://AKIDEXAMPLE:{SECRET}@127.0.0.1:{_closed_port()}"
    for debug in ([], ["--debug"]):
        res = run_cli("run", *debug, *local_args(tmp_path, "++workload.dataset.data_folder=s3://bkt/data",
                                                 f"++workload.storage.storage_options.endpoint_url={url}"))
        assert res.returncode == 2, res.stderr  # wrong input: the URL, not the server
        assert not _leaks(tmp_path / "out", res.stdout, res.stderr)
        assert "endpoint_url must not carry credentials" in res.stderr


def test_environment_endpoint_credentials_never_reach_stderr(tmp_path, run_cli):
    url = f"http://AKIDEXAMPLE:{SECRET}@127.0.0.1:{_closed_port()}"
    res = run_cli("run", *local_args(tmp_path, "++workload.dataset.data_folder=s3://bkt/data"),
                  env={"AWS_ENDPOINT_URL": url})
    assert res.returncode == 2, res.stderr
    assert "AWS_ENDPOINT_URL must not carry credentials" in one_line_error(res)
    assert not _leaks(tmp_path / "out", res.stdout, res.stderr)


def test_closed_port_error_names_the_server_without_secrets(tmp_path, run_cli):
    port = _closed_port()
    res = run_cli("run", *local_args(tmp_path, "++workload.dataset.data_folder=s3://bkt/data",
                                     f"++workload.storage.storage_options.endpoint_url=http://127.0.0.1:{port}",
                                     "++workload.storage.storage_options.access_key_id=AKIDEXAMPLE",
                                     f"++workload.storage.storage_options.secret_access_key={SECRET}",
                                     "++workload.storage.storage_options.s3_max_attempts=2"))
    assert res.returncode == 1, res.stderr  # the server is not there: a failure while running
    line = one_line_error(res)
    assert f"127.0.0.1:{port}" in line and "s3://bkt/data" in line
    assert not _leaks(tmp_path / "out", res.stdout, res.stderr)


@pytest.mark.parametrize("override", [
    f"++workload.storage.storage_options.secret_access_key=[unclosed {SECRET}",
    f"++workload.storage.storage_optionz.secret_access_key={SECRET}",
    f"++workload.storage.storage_options={{secret_access_key: {SECRET}, broken: [}}",
    f"++workload.dataset.data_folder=s3://AKIDEXAMPLE:{SECRET}@bkt/data",
])
def test_errors_about_an_override_do_not_echo_its_secret(tmp_path, override, capsys):
    assert main(["run", *local_args(tmp_path, override)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("dl-driver: error:") and not _leaks(tmp_path / "out", out, err), err
