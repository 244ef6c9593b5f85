"""The ``dl-driver mlperf`` command tree: bad combinations (one line naming the flag, exit 2), --dry-run, configview."""

from __future__ import annotations

import shlex

import pytest

from dlio_core import cli as top_cli
from dlio_core.mlperf.cli import main
from dlio_core.mlperf.command import slotted_hosts
from dlio_core.mlperf.errors import LaunchError

RUN = ["whatif", "training", "unet3d", "run", "--accelerator-type", "b200", "--num-accelerators", "4",
       "--client-host-memory-in-gb", "64", "--data-dir", "/mnt/data", "--results-dir", "res"]


@pytest.mark.parametrize("argv, flag", [
    (RUN[:4] + ["object", *RUN[4:], "--o-direct"], "--o-direct"),
    (RUN[:-4] + RUN[-2:], "--data-dir"),
    (RUN[:-2], "--results-dir"),  # required for run (mlpstorage: --results-dir or $MLPSTORAGE_RESULTS_DIR)
    (RUN + ["--systemname", "../up"], "--systemname"),  # one folder name, never a path
    (RUN + ["--exec-type", "docker"], "--exec-type"),
    (RUN + ["--dlio-bin-path", "/nonexistent"], "--dlio-bin-path"),
    (RUN + ["--mpi-bin", "srun", "--allow-run-as-root"], "--allow-run-as-root"),
    (RUN + ["--mpi-bin", "srun", "--hosts", "n1:3", "n2:1"], "--hosts"),
    (["whatif", "training", "unet3d", "datagen", "--num-processes", "2", "--data-dir", "/d",
      "--accelerator-type", "b200"], "--accelerator-type"),  # datagen takes no accelerator, as mlpstorage
    (["closed", "checkpointing", "run", "--model", "llama3-8b", "-np", "8", "-cm", "64", "-cf", "/c",
      "-sn", "s", "-rd", "r", "--params", "checkpoint.checkpoint_folder=/x"], "--params"),
    (RUN + ["--hosts", "n1:1", "n2:1"], "--hosts"),
    (RUN + ["--hosts", "n1:2", "n2"], "--hosts"),
    (RUN + ["--loops", "0"], "--loops"),
    (RUN + ["--params", "reader.read_threads"], "--params"),
    (["closed", *RUN[1:], "--systemname", "s", "--allow-invalid-params"], "--allow-invalid-params"),
    (["closed", *RUN[1:]], "--systemname"),
    (["closed", "training", "unet3d", "run", "--accelerator-type", "h100"], "--accelerator-type"),
    (["closed", "training", "cosmoflow", "datasize"], "model"),
    (RUN[:4] + RUN[6:], "--accelerator-type"),
    (["whatif", "training", "unet3d", "datasize", "--accelerator-type", "a100", "--max-accelerators", "1",
      "--client-host-memory-in-gb", "64", "--o-direct"], "--o-direct"),
    # no resnet50 workload for b200 (retinanet_h100 is bundled now, from mlcommons/storage)
    (["whatif", "training", "resnet50", "run", *RUN[4:], "--accelerator-type", "b200"], "--accelerator-type"),
    (RUN + ["--accelerator-type", "h100"], "--checkpoint-folder"),  # unet3d_h100 writes a checkpoint
    (["whatif", "checkpointing", "run", "--model", "llama3-8b", "-np", "8", "-cm", "64", "-rd", "r"],
     "--checkpoint-folder"),
])
def test_bad_combination_is_one_line_naming_the_flag(argv, flag, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLPSTORAGE_SYSTEMNAME", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dl-driver mlperf: error: ") and flag in err
    assert not (tmp_path / "res").exists() and not (tmp_path / "mlperf_results").exists()


def test_dry_run_prints_the_mpirun_command_and_runs_nothing(capsys, tmp_path, monkeypatch):
    from dlio_core.mlperf.launchers import forwarded_env

    for name in forwarded_env():
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")  # remote ranks need it: -x forwards it
    code = main([*RUN, "--hosts", "n1,n2", "n3", "--oversubscribe", "--allow-run-as-root", "--results-dir",
                 str(tmp_path), "--systemname", "sut1", "--mpi-params=-x FOO=1", "--dry-run",
                 "--params", "reader.read_threads=8"])
    line = capsys.readouterr().out.splitlines()[0]
    argv = shlex.split(line)
    assert code == 0
    assert argv[0].endswith("mpirun") and argv[1:5] == ["-n", "4", "-host", "n1:2,n2:1,n3:1"]
    # mlpstorage's placement for several hosts, then its flags, then --mpi-params
    assert argv[5:15] == ["--bind-to", "none", "--map-by", "node", "--oversubscribe", "--allow-run-as-root",
                          "-x", "AWS_ENDPOINT_URL", "-x", "FOO=1"]
    assert argv[15].endswith("dl-driver") and argv[16:18] == ["run", "unet3d_b200"]
    run_dir = f"{tmp_path}/whatif/sut1/results/sut1/training/unet3d/run/<YYYYmmdd_HHMMSS>"
    assert f"++hydra.run.dir={run_dir}" in argv and "++hydra.output_subdir=dlio_config" in argv
    assert "++workload.dataset.data_folder=/mnt/data/unet3d" in argv
    assert "++workload.reader.read_threads=8" in argv
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_dry_run_datagen_and_loops(capsys, tmp_path):
    code = main(["open", "training", "retinanet", "datagen", "file", "--num-processes", "3", "--data-dir",
                 "/mnt/data/retinanet", "--systemname", "s", "--mpi-bin", "mpiexec", "--results-dir", str(tmp_path),
                 "--dry-run", "--loops", "2", "--params", "dataset.num_files_train=100"])
    out = capsys.readouterr().out.splitlines()
    argv = shlex.split(out[0])
    assert code == 0 and argv[0].endswith("mpiexec") and argv[1:5] == ["-n", "3", "-host", "127.0.0.1:3"]
    assert argv[5:9] == ["--bind-to", "none", "--map-by", "socket"]  # one host: spread over its sockets
    assert argv[10:12] == ["generate", "retinanet_datagen"]
    assert "++workload.dataset.data_folder=/mnt/data/retinanet" in argv  # the model folder is not doubled
    assert "2 runs" in out[1]


def test_configview_prints_the_resolved_config(capsys):
    assert main(["open", "training", "unet3d", "configview", *RUN[4:], "--systemname", "s",
                 "--params", "reader.read_threads=3", "dataset.format=npy"]) == 0
    captured = capsys.readouterr()
    assert "read_threads: 3" in captured.out and "computation_time" in captured.out
    assert "data_folder: /mnt/data/unet3d" in captured.out
    assert "OPEN    dataset.format=npy" in captured.err


def test_unknown_key_is_a_config_error(capsys):
    assert main([*RUN, "--allow-invalid-params", "--dry-run", "--params", "reader.batch_sise=2"]) == 2
    assert "batch_size" in capsys.readouterr().err  # the loader's suggestion


def test_top_level_cli_dispatches_mlperf(capsys):
    assert top_cli.main(["mlperf", "closed", "checkpointing", "datasize", "--model", "llama3-70b", "-np", "64",
                         "-cm", "64"]) == 0
    assert "llama3-70b: ZeRO 3, 64 processes" in capsys.readouterr().out


def test_slots():
    assert slotted_hosts(["a", "b"], 1) == ["a:1"]  # no host with 0 slots
    assert slotted_hosts(["a:4", "b:4"], 6) == ["a:4", "b:4"]
    with pytest.raises(LaunchError, match="--hosts"):
        slotted_hosts(["a:x"], 1)
