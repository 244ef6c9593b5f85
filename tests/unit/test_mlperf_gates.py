"""The pre-run gates (``dlio_core.mlperf.gates``): a closed run that fails one refuses with one line naming
the gate (exit 2) before anything starts; open and whatif warn; capacity refuses in every mode."""

from __future__ import annotations

import pytest

from dlio_core.mlperf.cli import main

# unet3d on one b200 with a tiny declared memory: the datasize minimum is 500 steps x batch 7 = 3,500 files.
FILES = 3500


def _run(mode, data, results, *extra):
    return main([mode, "training", "unet3d", "run", "file", "--accelerator-type", "b200", "--num-accelerators", "1",
                 "--client-host-memory-in-gb", "0.000001", "--data-dir", str(data), "--results-dir", str(results),
                 "--systemname", "sut1", "--dry-run", *extra])


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dl-driver mlperf: error: "), err
    return err


@pytest.fixture
def generated(tmp_path):
    """``<data>/unet3d/train`` holding the 3,500 files the run reads (empty: the gate counts, it reads none)."""
    train = tmp_path / "data" / "unet3d" / "train"
    train.mkdir(parents=True)
    for i in range(FILES):
        (train / f"img_{i}_of_{FILES}.npz").touch()
    return tmp_path / "data"


def test_closed_refuses_a_dataset_that_is_not_there(tmp_path, capsys):
    assert _run("closed", tmp_path / "empty", tmp_path / "r", "--params", f"dataset.num_files_train={FILES}") == 2
    err = _one_line(capsys)
    assert "closed run refused by the dataset-present gate" in err and "does not exist" in err
    assert not (tmp_path / "r").exists()


def test_closed_refuses_too_few_files_and_open_warns(generated, tmp_path, capsys):
    params = ["--params", f"dataset.num_files_train={FILES}", "dataset.num_subfolders_train=0"]
    (generated / "unet3d" / "train" / "img_0_of_3500.npz").unlink()
    assert _run("closed", generated, tmp_path / "r", *params) == 2
    err = _one_line(capsys)
    assert "dataset-present gate" in err and "holds 3,499 files" in err
    assert _run("open", generated, tmp_path / "r", *params) == 0
    assert "warning: dataset-present gate:" in capsys.readouterr().err


def test_closed_passes_with_the_dataset_there(generated, tmp_path, capsys):
    assert _run("closed", generated, tmp_path / "r", "--params", f"dataset.num_files_train={FILES}") == 0
    captured = capsys.readouterr()
    assert "dl-driver" in captured.out and "refused" not in captured.err
    # data and results on one filesystem: mlpstorage's CAP-03 only warns
    assert "warning: fs-separation gate:" in captured.err


def test_closed_refuses_a_dataset_below_the_datasize_minimum(generated, tmp_path, capsys):
    assert _run("closed", generated, tmp_path / "r", "--params", "dataset.num_files_train=3499") == 2
    err = _one_line(capsys)
    assert "dataset-size gate" in err and "below the datasize minimum 3,500" in err


def test_capacity_refuses_in_every_mode(tmp_path, capsys):
    # 10^12 files of unet3d's mean 140 MB: no filesystem here holds that
    assert main(["whatif", "training", "unet3d", "datagen", "file", "--num-processes", "1", "--data-dir",
                 str(tmp_path / "d"), "--results-dir", str(tmp_path / "r"), "--dry-run", "--params",
                 "dataset.num_files_train=1000000000000"]) == 2
    err = _one_line(capsys)
    assert "whatif run refused by the capacity gate: the dataset needs" in err and "GiB free" in err


def test_closed_checkpointing_process_count(tmp_path, capsys):
    assert main(["closed", "checkpointing", "run", "--model", "llama3-70b", "-np", "16", "-cm", "64",
                 "-cf", str(tmp_path / "c"), "-rd", str(tmp_path / "r"), "-sn", "sut1", "--dry-run"]) == 2
    assert "closed run refused by the process-count gate: --num-processes 16" in _one_line(capsys)
