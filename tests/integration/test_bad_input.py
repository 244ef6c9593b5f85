"""Bad input ends in one clear line and a non-zero exit; Ctrl-C keeps what was measured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._cli import BIN, run_args

pytestmark = pytest.mark.integration


def _one_line_error(res) -> str:
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if line.startswith("dl-driver: error:")]
    assert len(errors) == 1, res.stderr
    assert res.stderr.strip().splitlines()[-1] == errors[0]  # the error is the last word, on one line
    assert "Traceback" not in res.stderr
    return errors[0]


def test_missing_data_folder_suggests_generate(tmp_path, run_cli):
    line = _one_line_error(run_cli("run", *run_args(tmp_path)))
    assert "dl-driver generate" in line


def test_fewer_files_than_configured(generated, run_cli):
    line = _one_line_error(run_cli("run", *run_args(generated, "++workload.dataset.num_files_train=100")))
    assert "found 64" in line and "100" in line


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_damaged_file_is_named(generated, run_cli, damage):
    manifest = json.loads((generated / "data" / "dl-driver-manifest.json").read_text())
    rel = manifest["train"][5][0]
    victim = generated / "data" / rel
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    else:
        victim.write_bytes(b"\x00" * len(data))
    res = run_cli("run", *run_args(generated))
    line = _one_line_error(res)
    assert Path(rel).name in line


def test_malformed_yaml_names_the_file(tmp_path, run_cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: x\n dataset: [unclosed\n")
    line = _one_line_error(run_cli("run", str(bad)))
    assert "bad.yaml" in line


def test_debug_shows_traceback(tmp_path, run_cli):
    res = run_cli("run", "--debug", *run_args(tmp_path))
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_debug_keeps_the_exit_code(tmp_path, run_cli):
    plain = run_cli("run", *run_args(tmp_path))
    debug = run_cli("run", "--debug", *run_args(tmp_path))
    assert plain.returncode == debug.returncode == 2  # bad input (no data): --debug adds the traceback only
    assert debug.stderr.strip().splitlines()[-1].startswith("dl-driver: error:")


def test_ctrl_c_writes_what_was_measured(generated):
    args = run_args(generated, "++workload.train.computation_time=0.05", "++workload.train.epochs=50")
    proc = subprocess.Popen([str(BIN / "dl-driver"), "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ})
    out_dir = generated / "out"
    log = out_dir / "dlio.log"
    deadline = time.time() + 60
    while time.time() < deadline and not (log.exists() and "Ending epoch 1" in log.read_text()):
        time.sleep(0.1)
    time.sleep(0.3)  # into epoch 2
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["epochs"] >= 1
    assert "[METRIC]" in stdout
    output = json.loads((out_dir / "0_output.json").read_text())
    assert len(output["1"]["load"]["block1"]) == 16


def test_record_access_order(generated, run_cli):
    res = run_cli("run", *run_args(generated, "++workload.output.record_access_order=True",
                                    "++workload.reader.file_shuffle=seed", "++workload.train.epochs=2"))
    assert res.returncode == 0, res.stderr
    order = json.loads((generated / "out" / "0_access_order.json").read_text())
    assert set(order) == {"1", "2"}
    assert len(order["1"]) == 64 and len(set(order["1"])) == 64
    assert order["1"] != order["2"]  # seed_change_epoch: a new order each epoch
    assert all(entry.endswith(":0") and entry.startswith("train/") for entry in order["1"])
