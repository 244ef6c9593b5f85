"""datasize: the rules' formula against the worked examples, v3's memory rule, checkpointing GB per rank."""

from __future__ import annotations

import json

import pytest

from dlio_core.config import load_config
from dlio_core.mlperf import checkpoint_datasize, training_datasize
from dlio_core.mlperf.cli import main

GIB = 1024**3


# The v2 README's worked examples round down (2,557; 121,477); mlpstorage v3 rounds up, and so do we: the
# rounded-down count is one file short of the rule it sizes for.
@pytest.mark.parametrize("workload, accelerators, by_memory, by_steps, files, readme", [
    ("resnet50_h100", 16, 2396, 2558, 2558, 2557),  # README: num_files_train=2557
    ("cosmoflow_h100", 16, 121478, 8000, 121478, 121477),  # README: 121,477
    ("unet3d_h100", 4, 2344, 14000, 14000, 14000),
])
def test_worked_examples(workload, accelerators, by_memory, by_steps, files, readme):
    cfg = load_config(workload)
    size = training_datasize(cfg, max_accelerators=accelerators, client_host_memory_gb=64)
    assert (size.files_by_memory, size.files_by_steps, size.num_files_train) == (by_memory, by_steps, files)
    assert size.total_disk_bytes == int(files * size.file_bytes)
    exact = max(5 * 64 * GIB / size.file_bytes, 500 * accelerators * cfg.reader.batch_size / size.samples_per_file)
    assert int(exact) == readme and files == -(-exact // 1)  # the README floors what v3 (and we) ceil
    assert size.num_files_train_v2 == readme
    v2_note = f"mlpstorage v2.0 rounds down to {readme:,}"
    assert (v2_note in "\n".join(size.describe())) == (readme != files)
    # the rounded-up count meets both rules; the README's falls short of one when it differs
    assert files * size.file_bytes >= 5 * 64 * GIB
    assert files * size.samples_per_file >= 500 * accelerators * cfg.reader.batch_size


def test_subfolders_are_suggested_past_ten_thousand_files():
    cosmo = training_datasize(load_config("cosmoflow_h100"), max_accelerators=16, client_host_memory_gb=64)
    assert cosmo.num_subfolders_train == 0 and cosmo.suggested_subfolders == 12  # 121,478 // 10,000
    assert "consider --params dataset.num_subfolders_train=12" in "\n".join(cosmo.describe())
    resnet = training_datasize(load_config("resnet50_h100"), max_accelerators=16, client_host_memory_gb=64)
    assert resnet.suggested_subfolders == 0


def test_measured_memory_wins_when_larger():
    cfg = load_config("cosmoflow_h100")
    declared = training_datasize(cfg, max_accelerators=1, client_host_memory_gb=1, num_client_hosts=2)
    measured = training_datasize(cfg, max_accelerators=1, client_host_memory_gb=1, num_client_hosts=2,
                                 measured_memory_bytes=64 * GIB)
    assert declared.memory_bytes == 2 * GIB and measured.memory_bytes == 64 * GIB
    assert measured.num_files_train == 121478 > declared.num_files_train
    smaller = training_datasize(cfg, max_accelerators=1, client_host_memory_gb=64, measured_memory_bytes=GIB)
    assert smaller.num_files_train == 121478  # the declared 64 GiB is larger and stays


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="--max-accelerators"):
        training_datasize(load_config("unet3d_h100"), max_accelerators=0, client_host_memory_gb=64)
    with pytest.raises(ValueError, match="--num-processes"):
        checkpoint_datasize("llama3-8b", 0)


def test_checkpoint_zero1_first_data_parallel_instance_writes_the_model():
    size = checkpoint_datasize("llama3-405b", 512)  # TP x PP = 256 ranks per data-parallel instance
    assert size.zero_stage == 1
    assert size.rank_gb[:256] == pytest.approx([755 / 256 + 4533 / 512] * 256)
    assert size.rank_gb[256:] == pytest.approx([4533 / 512] * 256)
    assert size.total_gb == pytest.approx(755 + 4533)
    subset = checkpoint_datasize("llama3-405b", 8)  # 8 ranks of the first instance: their model share only
    assert subset.total_gb == pytest.approx(8 * 755 / 256 + 4533)


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
    assert "num_files_train: 2,558" in out and "files for 5x memory: 2,396" in out
    assert ("dl-driver mlperf whatif training resnet50 datagen file --num-processes 16 --data-dir /mnt/data "
            "--systemname sut1 --hosts node7 --params dataset.num_files_train=2558") in out
    [meta] = tmp_path.glob("whatif/sut1/results/sut1/training/resnet50/datasize/*/training_*_metadata.json")
    record = json.loads(meta.read_text())
    assert (record["num_files_train"], record["num_subfolders_train"]) == (2558, 0)
    assert record["max_accelerators"] == 16 and record["client_host_memory_in_gb"] == 64
    assert record["total_disk_bytes"] > 0 and record["data_dir"] == "/mnt/data"


def test_cli_checkpoint_datasize(capsys):
    assert main(["closed", "checkpointing", "datasize", "--model", "llama3-8b", "-np", "8", "-cm", "64"]) == 0
    out = capsys.readouterr().out
    assert "every rank: 13.12 GB" in out and "all ranks: 105.00 GB" in out
    assert "104.70 GiB" in out  # dl-driver's exact (DLIO) sizing of the same checkpoint
