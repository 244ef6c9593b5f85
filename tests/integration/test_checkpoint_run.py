"""Checkpoints inside runs: DLIO's cadence, folder names, summary keys and the [METRIC] lines."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.integration


def _unet3d_args(tmp_path, *extra):
    return [
        "unet3d_h100",
        f"++workload.dataset.data_folder={tmp_path}/data",
        "++workload.dataset.num_files_train=14",
        "++workload.dataset.record_length_bytes=65536",
        "++workload.dataset.record_length_bytes_stdev=0",
        "++workload.reader.data_loader=native",
        "++workload.workflow.generate_data=True",
        "++workload.train.computation_time=0.002",
        "++workload.model.model_size_bytes=1048576",
        f"++workload.checkpoint.checkpoint_folder={tmp_path}/ckpt",
        f"++hydra.run.dir={tmp_path}/out",
        *extra,
    ]


def test_unet3d_runs_end_to_end_with_its_epoch_checkpoint(tmp_path, run_cli):
    res = run_cli("run", *_unet3d_args(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "[METRIC] Checkpoint save duration (seconds):" in res.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    metric = summary["metric"]
    for key in ("save_checkpoint_io_mean_GB_per_second", "save_checkpoint_io_stdev_GB_per_second",
                "save_checkpoint_duration_mean_seconds", "save_checkpoint_duration_stdev_seconds",
                "checkpoint_size_GB"):
        assert key in metric, key
    assert metric["checkpoint_size_GB"] == pytest.approx(1048576 / 2**30)
    # checkpoint_after_epoch: 5 and 5 epochs: one checkpoint, after the last epoch (14 files / batch 7 = 2 steps).
    folders = sorted(os.listdir(tmp_path / "ckpt"))
    assert folders == ["global_epoch5_step3"]
    files = sorted(os.listdir(tmp_path / "ckpt" / folders[0]))
    assert files == [".dl-driver-complete", "model_states-0.pt"]
    assert os.path.getsize(tmp_path / "ckpt" / folders[0] / "model_states-0.pt") == 1048576
    stats = json.loads((tmp_path / "out" / "0_per_epoch_stats.json").read_text())
    assert "save_ckpt1" in stats["5"] and stats["5"]["save_ckpt1"]["throughput"] > 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["checkpoint"]["records"][0]["kind"] == "save"


def test_step_checkpoints_stay_out_of_au(tmp_path, run_cli):
    res = run_cli("run", *_unet3d_args(tmp_path, "++workload.dataset.num_files_train=42", "++workload.train.epochs=1",
                                       "++workload.checkpoint.steps_between_checkpoints=2",
                                       "++workload.train.computation_time=0.02",
                                       "++workload.model.model_size_bytes=33554432", "++workload.checkpoint.fsync=True"))
    assert res.returncode == 0, res.stderr
    folders = sorted(os.listdir(tmp_path / "ckpt"))
    assert folders == ["global_epoch1_step2", "global_epoch1_step4", "global_epoch1_step6"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    # 6 steps of 20 ms compute; three 32 MiB fsync'd saves would pull AU far down if they counted as stall.
    assert summary["metric"]["train_au_mean_percentage"] > 50


def test_checkpoint_only_mode(tmp_path, run_cli):
    res = run_cli("run", "llama3_8b", f"++workload.checkpoint.checkpoint_folder={tmp_path}/ckpt",
                  "++workload.model.num_layers=2", "++workload.model.transformer.hidden_size=256",
                  "++workload.model.transformer.ffn_hidden_size=512", "++workload.model.transformer.vocab_size=1000",
                  "++workload.model.transformer.num_attention_heads=4", "++workload.model.transformer.num_kv_heads=2",
                  "++workload.checkpoint.num_checkpoints_write=2", "++workload.checkpoint.num_checkpoints_read=2",
                  "++workload.checkpoint.time_between_checkpoints=0", f"++hydra.run.dir={tmp_path}/out")
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metric"]["load_checkpoint_io_mean_GB_per_second"] > 0
    assert "train_au_percentage" not in summary["metric"]
    assert "[METRIC] Checkpoint load I/O Throughput (GB/second):" in res.stdout
