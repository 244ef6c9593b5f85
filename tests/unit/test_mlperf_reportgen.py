"""reportgen on synthetic results trees: each check PASS or FAIL with its reason, and the files it writes."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dlio_core.mlperf import find_run_folders, generate_reports
from dlio_core.mlperf.cli import main
from dlio_core.mlperf.layout import reserve_run_dir, run_parent

T0 = datetime(2026, 7, 1, 12, 0, 0)


def _leaf(parent: Path, i: int, *, au: float = 95.0, start: datetime | None = None, run_s: float = 100.0,
          files: int = 40000, memory_gb: float = 1.0, accelerators: int = 4, record: int = 146600628) -> Path:
    start = start or T0 + timedelta(seconds=i * (run_s + 10))
    folder = parent / (T0 + timedelta(minutes=i)).strftime("%Y%m%d_%H%M%S")
    folder.mkdir(parents=True)
    summary = {"start": start.isoformat(), "end": (start + timedelta(seconds=run_s)).isoformat(),
               "num_accelerators": accelerators, "num_files_train": files, "num_samples_per_file": 1,
               "host_memory_GB": [memory_gb], "host_cpu_count": [8],
               "metric": {"train_au_mean_percentage": au, "train_throughput_mean_samples_per_second": 10.0 * (i + 1),
                          "train_io_mean_MB_per_second": 1024.0 * (i + 1)}}
    (folder / "summary.json").write_text(json.dumps(summary))
    meta = {"cluster_information": {"client_host_memory_in_gb": memory_gb, "num_client_hosts": 1},
            "args": {"accelerator_type": "b200"},
            "parameters": {"dataset": {"record_length_bytes": record, "num_files_train": files},
                           "reader": {"batch_size": 7}, "metric": {"au": 0.9}}}
    (folder / f"training_{folder.name}_metadata.json").write_text(json.dumps(meta))
    return folder


def _tree(root: Path, n: int = 6, per_run: dict[int, dict] | None = None) -> Path:
    """``n`` runs of a closed unet3d set; ``per_run[i]`` changes run ``i`` (0 is the warm-up)."""
    parent = Path(run_parent(str(root), "closed", "acme", "sut1", "training", "unet3d", "run"))
    for i in range(n):
        _leaf(parent, i, **(per_run or {}).get(i, {}))
    return parent


def _checks(parent: Path) -> dict[str, dict]:
    data = json.loads((parent / "results.json").read_text())
    return {c["name"]: c for c in data["checks"]}


def test_six_good_runs_pass_with_the_mean_of_the_five_measured(tmp_path):
    parent = _tree(tmp_path)
    assert generate_reports(str(tmp_path), say=lambda s: None) == 0
    summary = json.loads((parent / "results.json").read_text())
    assert summary["status"] == "PASS", summary["checks"]
    assert {c["status"] for c in summary["checks"]} == {"PASS"}
    assert summary["train_mean_of_train_throughput_mean_samples_per_second"] == pytest.approx(40.0)  # 20..60
    assert summary["read_bandwidth_GiB_per_second"] == pytest.approx(4.0)
    assert summary["warmup_run"].endswith(sorted(p.name for p in parent.iterdir() if p.is_dir())[0])
    for leaf in (p for p in parent.iterdir() if p.is_dir()):
        per_run = json.loads((leaf / "results.json").read_text())
        assert per_run["model"] == "unet3d" and per_run["mode"] == "closed" and per_run["system"] == "sut1"
        assert per_run["metrics"]["train_au_mean_percentage"] == 95.0
        row = next(csv.DictReader((leaf / "results.csv").open()))
        assert row["metrics.train_au_mean_percentage"] == "95.0"
    top = json.loads((tmp_path / "results.json").read_text())
    assert [s["status"] for s in top["sets"]] == ["PASS"]
    row = next(csv.DictReader((tmp_path / "results.csv").open()))
    assert row["status"] == "PASS" and row["check.au"] == "PASS"


def test_four_runs_fail_the_count(tmp_path):
    parent = _tree(tmp_path, n=4)
    generate_reports(str(tmp_path), say=lambda s: None)
    checks = _checks(parent)
    assert checks["runs"]["status"] == "FAIL" and "needs exactly 6" in checks["runs"]["reason"]
    assert json.loads((parent / "results.json").read_text())["status"] == "FAIL"


def test_au_below_the_threshold_fails_naming_the_run(tmp_path):
    parent = _tree(tmp_path, per_run={3: {"au": 89.5}})
    lines: list[str] = []
    generate_reports(str(tmp_path), say=lines.append)
    check = _checks(parent)["au"]
    assert check["status"] == "FAIL" and "AU below 90%" in check["reason"] and "89.50%" in check["reason"]
    assert any(line.startswith("  FAIL au: AU below 90%") for line in lines)


def test_a_low_warmup_is_not_counted(tmp_path):
    parent = _tree(tmp_path, per_run={0: {"au": 10.0}})
    generate_reports(str(tmp_path), say=lambda s: None)
    assert _checks(parent)["au"]["status"] == "PASS"


def test_a_long_gap_breaks_consecutiveness(tmp_path):
    parent = _tree(tmp_path, per_run={4: {"start": T0 + timedelta(hours=2)}})
    generate_reports(str(tmp_path), say=lambda s: None)
    check = _checks(parent)["consecutive"]
    assert check["status"] == "FAIL" and "not shorter than a run" in check["reason"]


def test_dataset_under_5x_memory_fails(tmp_path):
    parent = _tree(tmp_path, per_run={i: {"memory_gb": 4096.0} for i in range(6)})
    generate_reports(str(tmp_path), say=lambda s: None)
    check = _checks(parent)["dataset_5x_memory"]
    assert check["status"] == "FAIL" and "5 x 4,096.00 GiB" in check["reason"]


def test_too_few_steps_fail(tmp_path):
    parent = _tree(tmp_path, per_run={i: {"files": 1000} for i in range(6)})
    generate_reports(str(tmp_path), say=lambda s: None)
    check = _checks(parent)["steps_per_epoch"]
    assert check["status"] == "FAIL" and "35 steps per epoch" in check["reason"]  # 1000 // (7 x 4)


def test_checkpointing_write_then_read(tmp_path):
    parent = Path(run_parent(str(tmp_path), "closed", "acme", "sut1", "checkpointing", "llama3-8b", "run"))
    for i, (kind, start) in enumerate((("save", T0), ("load", T0 + timedelta(seconds=70)))):
        leaf = parent / f"20260701_12000{i}"
        leaf.mkdir(parents=True)
        summary = {"start": start.isoformat(), "end": (start + timedelta(seconds=60)).isoformat(),
                   "num_accelerators": 8, "metric": {f"{kind}_checkpoint_io_mean_GB_per_second": 2.0 + i,
                                                     f"{kind}_checkpoint_duration_mean_seconds": 50.0,
                                                     "checkpoint_size_GB": 104.7}}
        (leaf / "summary.json").write_text(json.dumps(summary))
    generate_reports(str(tmp_path), say=lambda s: None)
    summary = json.loads((parent / "results.json").read_text())
    assert summary["status"] == "PASS", summary["checks"]
    assert summary["write_bandwidth_GiB_per_second"] == 2.0 and summary["read_bandwidth_GiB_per_second"] == 3.0
    assert {c["name"] for c in summary["checks"]} == {"runs", "phases", "read_after_write", "num_processes"}


def test_reportgen_cli_on_an_empty_tree_is_one_line(tmp_path, capsys):
    assert main(["reportgen", "--results-dir", str(tmp_path)]) == 2
    assert "no run folders" in capsys.readouterr().err


def test_run_folders_are_reserved_one_second_apart(tmp_path):
    first, s1 = reserve_run_dir(str(tmp_path), "20260701_120000")
    second, s2 = reserve_run_dir(str(tmp_path), "20260701_120000")
    assert (s1, s2) == ("20260701_120000", "20260701_120001") and first != second
    (Path(first) / "summary.json").write_text("{}")
    (Path(tmp_path) / "stray").mkdir()
    assert [f.stamp for f in find_run_folders(str(tmp_path))] == []  # not in a training/ or checkpointing/ tree
