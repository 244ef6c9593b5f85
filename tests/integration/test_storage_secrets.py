"""No secret reaches logs, reports, the saved config, the saved command line, or error text."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from ._cli import small_run_args

pytestmark = pytest.mark.integration


def _leaks(secret: str, root: Path, *texts: str) -> list[str]:
    found = [f"output #{i}" for i, t in enumerate(texts) if secret in t]
    for p in root.rglob("*"):
        if p.is_file() and secret.encode() in p.read_bytes():
            found.append(str(p))
    return found


def _config(tmp_path: Path, options: dict, bucket: str) -> Path:
    cfg = {
        "model": {"name": "secret_check"},
        "framework": "pytorch",
        "workflow": {"generate_data": True, "train": True, "checkpoint": False},
        "dataset": {"data_folder": "data", "format": "npz", "num_files_train": 8, "num_samples_per_file": 1,
                    "record_length_bytes": 65536},
        "storage": {"storage_type": "s3", "storage_root": bucket, "storage_options": dict(options)},
        "reader": {"data_loader": "native", "batch_size": 2, "read_threads": 2},
        "train": {"epochs": 1, "computation_time": 0.001},
    }
    path = tmp_path / "secret_check.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_secret_in_config_and_override_never_written(s3_server, tmp_path, run_cli):
    secret = s3_server.options["secret_access_key"]  # recognisable: dl-driver-SeCrEt-<hex>, enforced by the server
    assert secret.startswith("dl-driver-SeCrEt-")
    cfg = _config(tmp_path, s3_server.options, f"sec-{uuid.uuid4().hex[:10]}")
    out = tmp_path / "out"
    res = run_cli("run", str(cfg), f"++workload.storage.storage_options.secret_access_key={secret}",
                  f"++hydra.run.dir={out}")
    assert res.returncode == 0, res.stderr
    assert (out / "summary.json").exists() and (out / ".hydra" / "overrides.yaml").exists()
    leaks = _leaks(secret, out, res.stdout, res.stderr)
    assert not leaks, f"secret written to {leaks}"
    # The command line is saved, with the value hidden.
    assert "secret_access_key=***" in (out / ".hydra" / "overrides.yaml").read_text()


def test_secret_absent_from_a_failing_run(s3_server, tmp_path, run_cli):
    secret = s3_server.options["secret_access_key"]
    dead = {**s3_server.options, "endpoint_url": "http://127.0.0.1:9", "s3_max_attempts": 1}
    cfg = _config(tmp_path, dead, "nowhere")
    out = tmp_path / "out"
    res = run_cli("run", str(cfg), f"++workload.storage.storage_options.secret_access_key={secret}",
                  f"++hydra.run.dir={out}", "--debug")
    assert res.returncode != 0
    assert "s3://nowhere" in res.stderr
    leaks = _leaks(secret, out, res.stdout, res.stderr)
    assert not leaks, f"secret written to {leaks}"


def test_uri_credentials_rejected_without_echo(tmp_path, run_cli):
    res = run_cli("run", *small_run_args(tmp_path, "++workload.dataset.data_folder=s3://AKIAXX:TopSecret99@bkt/d"))
    assert res.returncode != 0
    leaks = _leaks("TopSecret99", tmp_path / "out", res.stdout, res.stderr)
    assert not leaks, f"secret written to {leaks}"
    assert "credentials inside the URI" in res.stderr
