"""End to end through the console script: generate, train, evaluate, DLIO's result files."""

from __future__ import annotations

import json

import pytest
import yaml

from ._cli import small_run_args

pytestmark = pytest.mark.integration

SUMMARY_KEYS = {
    "start", "end", "num_accelerators", "num_hosts", "hostname", "metric", "num_files_train", "num_files_eval",
    "num_samples_per_file", "host_cpu_count", "host_processor_name", "potential_caching", "host_cpuinfo",
    "host_meminfo", "host_memory_GB", "data_size_per_host_GB", "epochs",
}
TRAIN_METRIC_KEYS = {
    "train_au_percentage", "train_au_mean_percentage", "train_au_meet_expectation", "train_au_stdev_percentage",
    "train_throughput_samples_per_second", "train_throughput_mean_samples_per_second",
    "train_throughput_stdev_samples_per_second", "train_io_mean_MB_per_second", "train_io_stdev_MB_per_second",
}


def test_default_workload_writes_dlio_files(tmp_path, run_cli):
    res = run_cli("run", *small_run_args(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "[METRIC] Training Accelerator Utilization [AU] (%):" in res.stdout
    assert "[METRIC] Number of Simulated Accelerators: 1" in res.stdout
    assert str(tmp_path / "out") in res.stdout
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    metric = summary["metric"]
    assert TRAIN_METRIC_KEYS <= set(metric)
    assert {k.replace("train", "eval") for k in TRAIN_METRIC_KEYS} <= set(metric)
    assert summary["epochs"] == 2 and len(metric["train_au_percentage"]) == 2
    assert isinstance(summary["host_cpu_count"], list) and isinstance(summary["host_memory_GB"], list)
    assert summary["num_files_train"] == 64 and summary["num_accelerators"] == 1
    assert metric["train_au_meet_expectation"] in ("success", "fail")
    assert all(0 < au <= 100 for au in metric["train_au_percentage"])
    # 64 files of 64x64 uint8 (4 KiB of pixels) => MB/s comes from real bytes: more than samples/s x 4096.
    assert metric["train_io_mean_MB_per_second"] * 2**20 > metric["train_throughput_mean_samples_per_second"] * 4096
    stats = json.loads((out / "0_per_epoch_stats.json").read_text())
    assert set(stats) == {"1", "2"} and {"start", "end", "duration", "block1", "eval"} <= set(stats["1"])
    assert isinstance(stats["1"]["duration"], str)
    output = json.loads((out / "0_output.json").read_text())
    steps = 64 // 4
    assert len(output["1"]["load"]["block1"]) == steps and len(output["1"]["compute"]["block1"]) == steps
    assert len(output["1"]["load"]["eval"]) == 8
    report = json.loads((out / "report.json").read_text())
    assert set(report["train"]["stages"]) == {"wait", "io", "decode", "h2d", "compute", "barrier"}
    assert report["train"]["stages"]["h2d"]["mean_s"] is None  # no device copy: null, never 0
    assert report["train"]["stages"]["io"]["p99_s"] is not None
    assert report["train"]["read_amplification"] >= 1.0
    config = yaml.safe_load((out / ".hydra" / "config.yaml").read_text())
    assert config["workload"]["reader"]["data_loader"] == "native"
    assert yaml.safe_load((out / ".hydra" / "overrides.yaml").read_text())[0].startswith("++workload.dataset")
    assert "Starting epoch 1" in (out / "dlio.log").read_text()
    manifest = json.loads((tmp_path / "data" / "dl-driver-manifest.json").read_text())
    assert len(manifest["train"]) == 64 and len(manifest["valid"]) == 8


def test_hydra_style_without_subcommand_and_short_override(tmp_path, run_cli):
    args = small_run_args(tmp_path, "train.epochs=1", "++workload.workflow.evaluation=False")
    args[0] = "workload=default"
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["epochs"] == 1 and "eval_au_percentage" not in summary["metric"]


def test_second_run_uses_existing_data(tmp_path, run_cli):
    assert run_cli("generate", *small_run_args(tmp_path)).returncode == 0
    args = [a for a in small_run_args(tmp_path) if "generate_data" not in a]
    res = run_cli("run", *args, "++workload.train.epochs=1")
    assert res.returncode == 0, res.stderr


def test_missing_data_suggests_generate(tmp_path, run_cli):
    args = [a for a in small_run_args(tmp_path) if "generate_data" not in a]
    res = run_cli("run", *args)
    assert res.returncode == 2
    assert "generate" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_unknown_key_names_nearest(tmp_path, run_cli):
    res = run_cli("run", *small_run_args(tmp_path, "++workload.reader.batch_sise=8"))
    assert res.returncode == 2
    assert "reader.batch_size" in res.stderr and "Traceback" not in res.stderr


def test_unavailable_loader_says_what_to_do(tmp_path, run_cli):
    res = run_cli("run", *small_run_args(tmp_path, "++workload.reader.data_loader=custom"))
    assert res.returncode == 2
    assert "native" in res.stderr


def test_validate_prints_config_and_derived_figures(tmp_path, run_cli):
    res = run_cli("validate", "unet3d_h100", "--ranks", "1", f"++hydra.run.dir={tmp_path}/v")
    assert res.returncode == 0, res.stderr
    doc = list(yaml.safe_load_all(res.stdout.replace("\nderived:", "\n---\nderived:")))
    derived = doc[-1]["derived"]
    assert derived["train_steps_per_epoch_per_rank"] == 24
    assert derived["train_samples"] == 168
    assert (tmp_path / "v" / ".hydra" / "config.yaml").exists() and (tmp_path / "v" / "dlio.log").exists()


def test_query_prints_one_value(run_cli):
    res = run_cli("query", "reader.batch_size", "unet3d_h100")
    assert res.returncode == 0 and res.stdout.strip() == "7"


def test_workloads_lists_bundled(run_cli):
    names = run_cli("workloads").stdout.split()
    assert {"default", "unet3d_h100", "resnet50_h100", "cosmoflow_h100", "llama3_70b", "dlrm_b200"} <= set(names)


@pytest.mark.parametrize("sample_shuffle, low, high", [("off", 1.0, 1.1), ("seed", 2.0, 4.2)])
def test_multi_sample_npz_reports_read_amplification(tmp_path, run_cli, sample_shuffle, low, high):
    res = run_cli("run", *small_run_args(tmp_path, "++workload.dataset.num_samples_per_file=4",
                                         "++workload.dataset.num_files_train=16", "++workload.workflow.evaluation=False",
                                         f"++workload.reader.sample_shuffle={sample_shuffle}"))
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert low <= report["train"]["read_amplification"] <= high
    assert ("read amplification" in res.stderr) == (sample_shuffle == "seed")
