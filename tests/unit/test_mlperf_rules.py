"""CLOSED / OPEN validation: labels, refusals (one line naming the parameter), checkpointing counts."""

from __future__ import annotations

import pytest

from dlio_core.mlperf import Label, RulesError, category, enforce, label_params
from dlio_core.mlperf.cli import main
from dlio_core.mlperf.rules import check_checkpoint_counts, checkpoint_process_overrides

RUN = ["training", "unet3d", "run", "file", "--accelerator-type", "b200", "--num-accelerators", "8",
       "--client-host-memory-in-gb", "64", "--hosts", "n1", "n2", "--data-dir", "/mnt/data", "--systemname", "sut1",
       "--results-dir", "/tmp/never-created", "--dry-run", "--params", "dataset.num_files_train=28000"]


def _labels(**params):
    return {p.key: p.label for p in label_params(params, "training", "unet3d")}


def test_every_override_gets_a_label():
    labels = _labels(**{"reader.read_threads": 8, "dataset.num_files_train": 10, "framework": "tensorflow",
                        "reader.batch_size": 2, "workflow.checkpoint": False, "++workload.reader.prefetch_size": 2})
    assert labels == {"reader.read_threads": Label.CLOSED, "dataset.num_files_train": Label.CLOSED,
                      "framework": Label.OPEN, "reader.batch_size": Label.INVALID,
                      "workflow.checkpoint": Label.INVALID, "reader.prefetch_size": Label.CLOSED}


def test_odirect_only_for_unet3d():
    assert label_params({"reader.odirect": "True"}, "training", "unet3d")[0].label is Label.CLOSED
    assert label_params({"reader.odirect": "True"}, "training", "retinanet")[0].label is Label.INVALID


def test_category_is_the_worst_label():
    assert category(label_params({"reader.read_threads": 8}, "training", "unet3d")) is Label.CLOSED
    assert category(label_params({"dataset.format": "npy"}, "training", "unet3d")) is Label.OPEN
    assert category(label_params({"dataset.format": "npy", "x.y": 1}, "training", "unet3d")) is Label.INVALID


def test_enforce_per_mode():
    open_only = label_params({"reader.data_loader": "native"}, "training", "unet3d")
    invalid = label_params({"reader.batch_size": 2}, "training", "unet3d")
    enforce("open", open_only)
    with pytest.raises(RulesError, match="reader.data_loader=native is OPEN"):
        enforce("closed", open_only)
    with pytest.raises(RulesError, match="--allow-invalid-params runs it anyway"):
        enforce("whatif", invalid)
    enforce("whatif", invalid, allow_invalid=True)
    with pytest.raises(RulesError, match="--allow-invalid-params is only allowed in open and whatif"):
        enforce("closed", invalid, allow_invalid=True)


def test_closed_run_refuses_an_invalid_parameter(capsys):
    code = main(["closed", *RUN, "reader.batch_size=2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == ("dl-driver mlperf: error: closed run refused: --params reader.batch_size=2 is INVALID "
                           "(not in the CLOSED or OPEN lists)")


def test_closed_run_refuses_an_open_parameter_that_open_accepts(capsys):
    assert main(["closed", *RUN, "dataset.format=npy"]) == 2
    assert "dataset.format=npy is OPEN" in capsys.readouterr().err
    assert main(["open", *RUN, "dataset.format=npy"]) == 0


def test_closed_run_refuses_a_dataset_below_datasize(capsys):
    args = [a if a != "dataset.num_files_train=28000" else "dataset.num_files_train=100" for a in RUN]
    assert main(["closed", *args]) == 2
    assert "dataset.num_files_train 100 is below the datasize minimum 28,000" in capsys.readouterr().err


def test_checkpoint_counts():
    assert check_checkpoint_counts("closed", "llama3-1t", 1024, 10, 10) is Label.CLOSED
    assert check_checkpoint_counts("closed", "llama3-8b", 8, 10, 0) is Label.CLOSED  # the write phase
    # v3 (storage#841): no 8-process CLOSED form for the large models; 8 is OPEN for 70b (a multiple of TP x PP)
    with pytest.raises(RulesError, match="--num-processes 8 is not a CLOSED count for llama3-1t"):
        check_checkpoint_counts("closed", "llama3-1t", 8, 10, 0)
    assert check_checkpoint_counts("open", "llama3-70b", 8, 10, 10) is Label.OPEN
    with pytest.raises(RulesError, match="neither a CLOSED count"):
        check_checkpoint_counts("open", "llama3-405b", 8, 10, 10)
    assert check_checkpoint_counts("open", "llama3-1t", 512, 10, 10) is Label.OPEN  # a multiple of TP x PP
    with pytest.raises(RulesError, match="--num-processes 16 is not a CLOSED count for llama3-70b"):
        check_checkpoint_counts("closed", "llama3-70b", 16, 10, 10)
    with pytest.raises(RulesError, match="-ncr/--num-checkpoints-read 3"):
        check_checkpoint_counts("closed", "llama3-8b", 8, 3, 10)
    with pytest.raises(RulesError, match="cannot both be 0"):
        check_checkpoint_counts("closed", "llama3-8b", 8, 0, 0)
    with pytest.raises(RulesError, match="neither a CLOSED count"):
        check_checkpoint_counts("open", "llama3-70b", 12, 10, 10)
    assert check_checkpoint_counts("open", "llama3-70b", 12, 10, 10, allow_invalid=True) is Label.INVALID


def test_subset_mode_below_the_full_job():
    assert checkpoint_process_overrides("llama3-70b", 8) == {"checkpoint.mode": "subset",
                                                             "model.parallelism.data": 8}
    assert checkpoint_process_overrides("llama3-1t", 8) == {"checkpoint.mode": "subset",
                                                            "model.parallelism.data": 2}
    assert checkpoint_process_overrides("llama3-70b", 64) == {}
    assert checkpoint_process_overrides("llama3-8b", 8) == {}
    # 8b is TP 1 x PP 1: its full job is 8 data-parallel ranks
    assert checkpoint_process_overrides("llama3-8b", 2) == {"checkpoint.mode": "subset",
                                                            "model.parallelism.data": 8}


def test_checkpointing_run_in_subset_mode(capsys):
    code = main(["whatif", "checkpointing", "run", "--model", "llama3-405b", "-np", "8", "-cm", "64", "-aip",
                 "--checkpoint-folder", "/mnt/ckpt", "--systemname", "sut1", "--hosts", "n1:8", "--dry-run",
                 "--results-dir", "/tmp/never-created", "-ncw", "0"])  # the read phase: nothing to write
    out = capsys.readouterr().out
    assert code == 0
    assert "++workload.checkpoint.mode=subset ++workload.model.parallelism.data=2" in out
    assert "++workload.checkpoint.checkpoint_folder=/mnt/ckpt/llama3-405b" in out
    assert "/checkpointing/llama3-405b/<YYYYmmdd_HHMMSS>" in out
