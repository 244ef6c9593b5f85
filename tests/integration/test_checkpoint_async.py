"""Asynchronous checkpoint saves (DCP's async_save in the workload): the report gives both the time the training
loop was blocked and the time until the bytes were durable, per save, in report.json."""

from __future__ import annotations

import json
import time

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.integration

WRITE_DELAY_S = 2.0


@pytest.fixture
def slow_dcp_writes(monkeypatch):
    """DCP's writer thread waits WRITE_DELAY_S before writing: a slow device, after the loop was released."""
    import torch.distributed.checkpoint as dcp

    real = dcp.FileSystemWriter.write_data

    def slow(self, *a, **k):
        time.sleep(WRITE_DELAY_S)
        return real(self, *a, **k)

    monkeypatch.setattr(dcp.FileSystemWriter, "write_data", slow)


def test_an_async_save_blocks_the_loop_only_while_staging(tmp_path, slow_dcp_writes):
    from dlio_core.checkpoint import CheckpointEngine
    from dlio_core.config import load_config

    cfg = load_config("unet3d_h100", [f"++workload.checkpoint.checkpoint_folder={tmp_path}",
                                      "++workload.checkpoint.checkpoint_mechanism=dcp", "++workload.checkpoint.fsync=True",
                                      "++workload.model.model_size_bytes=1048576"])
    rec = CheckpointEngine(cfg, progress=False).save(1, 1)
    d = rec.to_dict()
    assert d["blocked_s"] < WRITE_DELAY_S <= d["durable_s"] == d["duration_s"]  # the write ran after the release
    assert d["mechanism"] == "dcp" and d["fsync"] is True


def test_a_synchronous_save_is_blocked_until_durable(tmp_path):
    from dlio_core.checkpoint import CheckpointEngine
    from dlio_core.config import load_config

    cfg = load_config("unet3d_h100", [f"++workload.checkpoint.checkpoint_folder={tmp_path}",
                                      "++workload.checkpoint.checkpoint_mechanism=torch_save",
                                      "++workload.model.model_size_bytes=1048576"])
    d = CheckpointEngine(cfg, progress=False).save(1, 1).to_dict()
    assert d["blocked_s"] == pytest.approx(d["rank_duration_s"], rel=0.2)  # torch.save returns when written
    assert d["durable_s"] is None  # no fsync: in place, not promised on the device


CHECKPOINT_ONLY = ("workflow.train=False", "workflow.checkpoint=True", "workflow.generate_data=False",
                   "model.model_size_bytes=1048576", "checkpoint.checkpoint_mechanism=dcp", "checkpoint.fsync=True",
                   "checkpoint.num_checkpoints_write=2", "checkpoint.num_checkpoints_read=1",
                   "checkpoint.time_between_checkpoints=0")


def test_report_json_has_blocked_and_durable_time_per_save(tmp_path, run_cli):
    overrides = [f"checkpoint.checkpoint_folder={tmp_path}/ck", *CHECKPOINT_ONLY]
    res = run_cli("run", "unet3d_h100", *[f"++workload.{o}" for o in overrides], f"++hydra.run.dir={tmp_path}/out")
    assert res.returncode == 0, res.stdout + res.stderr
    records = json.loads((tmp_path / "out/report.json").read_text())["checkpoint"]["records"]
    saves = [r for r in records if r["kind"] == "save"]
    assert len(saves) == 2 and all(0 < r["blocked_s"] <= r["durable_s"] for r in saves)
    load = next(r for r in records if r["kind"] == "load")
    assert load["could_be_served_from_cache"] in (False, True) and load["page_cache_drop"] == "off"
