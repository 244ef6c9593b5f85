"""datasize: the rules' formula against the worked examples, v3's memory rule, checkpointing GB per rank."""

from __future__ import annotations

import json

import pytest

from dlio_core.config import load_config
from dlio_core.mlperf import checkpoint_datasize, training_datasize
from dlio_core.mlperf.cli import main

GIB = 1024**3


@pytest.mark.parametrize("workload, accelerators, by_memory, by_steps, files", [
    ("resnet50_h100", 16, 2395, 2557, 2557),  # README: num_files_train=2557
    ("cosmoflow_h100", 16, 121477, 8000, 121477),  # README: 121,477
    ("unet3d_h100", 4, 2343, 14000, 14000),
])
def test_worked_examples(workload, accelerators, by_memory, by_steps, files):
    size = training_datasize(load_config(workload), max_accelerators=accelerators, client_host_memory_gb=64)
    assert (size.files_by_memory, size.files_by_steps, size.num_files_train) == (by_memory, by_steps, files)
    assert size.total_disk_bytes == int(files * size.file_bytes)


def test_subfolders_past_ten_thousand_files():
    cosmo = training_datasize(load_config("cosmoflow_h100"), max_accelerators=16, client_host_memory_gb=64)
    assert cosmo.num_subfolders_train == 12  # 121,477 // 10,000
    resnet = training_datasize(load_config("resnet50_h100"), max_accelerators=16, client_host_memory_gb=64)
    assert resnet.num_subfolders_train == 0


def test_measured_memory_wins_when_larger():
    cfg = load_config("cosmoflow_h100")
    declared = training_datasize(cfg, max_accelerators=1, client_host_memory_gb=1, num_client_hosts=2)
    measured = training_datasize(cfg, max_accelerators=1, client_host_memory_gb=1, num_client_hosts=2,
                                 measured_memory_bytes=64 * GIB)
    assert declared.memory_bytes == 2 * GIB and measured.memory_bytes == 64 * GIB
    assert measured.num_files_train == 121477 > declared.num_files_train
    smaller = training_datasize(cfg, max_accelerators=1, client_host_memory_gb=64, measured_memory_bytes=GIB)
    assert smaller.num_files_train == 121477  # the declared 64 GiB is larger and stays


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="--max-accelerators"):
        training_datasize(load_config("unet3d_h100"), max_accelerators=0, client_host_memory_gb=64)
    with pytest.raises(ValueError, match="--num-processes"):
        checkpoint_datasize("llama3-8b", 0)


def test_checkpoint_zero1_rank0_writes_the_model():
    size = checkpoint_datasize("llama3-405b", 512)
    assert size.zero_stage == 1
    assert size.rank_gb[0] == pytest.approx(755 + 4533 / 512)
    assert size.rank_gb[1:] == pytest.approx([4533 / 512] * 511)
    assert size.total_gb == pytest.approx(755 + 4533)


def test_checkpoint_zero3_every_rank_the_same():
    size = checkpoint_datasize("llama3-70b", 64)
    assert size.zero_stage == 3 and size.rank_gb == pytest.approx([(130 + 781) / 64] * 64)
    assert round(checkpoint_datasize("llama3-8b", 8).total_gb) == 105


def test_cli_datasize_prints_files_and_the_datagen_command(capsys, tmp_path):
    # a remote host: nothing measured, so the declared 64 GB decides as in the worked example
    code = main(["whatif", "training", "resnet50", "datasize", "--accelerator-type", "h100", "--max-accelerators",
                 "16", "--client-host-memory-in-gb", "64", "--hosts", "node7", "--results-dir", str(tmp_path),
                 "--systemname", "sut1", "--data-dir", "/mnt/data"])
    out = capsys.readouterr().out
    assert code == 0
    assert "num_files_train: 2,557" in out and "files for 5x memory: 2,395" in out
    assert ("dl-driver mlperf whatif training resnet50 datagen file --num-processes 16 --data-dir /mnt/data "
            "--systemname sut1 --hosts node7 --params dataset.num_files_train=2557") in out
    [meta] = tmp_path.glob("whatif/sut1/results/sut1/training/resnet50/datasize/*/training_*_metadata.json")
    record = json.loads(meta.read_text())
    assert (record["num_files_train"], record["num_subfolders_train"]) == (2557, 0)
    assert record["max_accelerators"] == 16 and record["client_host_memory_in_gb"] == 64
    assert record["total_disk_bytes"] > 0 and record["data_dir"] == "/mnt/data"


def test_cli_checkpoint_datasize(capsys):
    assert main(["closed", "checkpointing", "datasize", "--model", "llama3-8b", "-np", "8", "-cm", "64"]) == 0
    out = capsys.readouterr().out
    assert "every rank: 13.12 GB" in out and "all ranks: 105.00 GB" in out
    assert "104.70 GiB" in out  # dl-driver's exact (DLIO) sizing of the same checkpoint
