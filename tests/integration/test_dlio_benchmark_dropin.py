"""The drop-in ``dlio_benchmark`` run as mlpstorage builds its command line:
``dlio_benchmark workload=NAME ++workload.x=y ... ++hydra.run.dir=DIR ++hydra.output_subdir=dlio_config
--config-dir DIR``; every file mlpstorage's checks read must be there."""
import json
import os
import shutil
import subprocess
import sys

import yaml

from dlio_core.config import bundled_workload_path


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", "dlio_core.dlio_benchmark", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_mlpstorage_command_line_writes_every_file_it_reads(tmp_path):
    configs = tmp_path / "configs" / "workload"
    configs.mkdir(parents=True)
    shutil.copyfile(bundled_workload_path("default"), configs / "small_h100.yaml")
    out = tmp_path / "results"
    args = ["workload=small_h100", "++workload.workflow.generate_data=True",
            f"++workload.dataset.data_folder={tmp_path / 'data'}", "++workload.dataset.num_files_train=4",
            "++workload.dataset.num_samples_per_file=2", "++workload.dataset.record_length=1024",
            "++workload.train.epochs=1", "++workload.train.computation_time=0",
            f"++hydra.run.dir={out}", "++hydra.output_subdir=dlio_config",
            f"--config-dir={tmp_path / 'configs'}"]  # mlpstorage spells it with "="
    done = _run(args, tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("summary.json", "0_output.json", "0_per_epoch_stats.json", "per_epoch_stats.json",
                 "dlio_config/config.yaml", "dlio_config/overrides.yaml", "dlio_config/hydra.yaml"):
        assert (out / name).is_file(), name
    assert "host_meminfo" in json.loads((out / "0_output.json").read_text())
    assert json.loads((out / "per_epoch_stats.json").read_text()) == \
        json.loads((out / "0_per_epoch_stats.json").read_text())
    overrides = yaml.safe_load((out / "dlio_config" / "overrides.yaml").read_text())
    assert "workload=small_h100" in overrides
    hydra = yaml.safe_load((out / "dlio_config" / "hydra.yaml").read_text())["hydra"]
    assert hydra["runtime"]["choices"]["workload"] == "small_h100"
    assert hydra["run"]["dir"] == str(out)
    assert "workload=small_h100" in hydra["overrides"]["task"]


def test_bad_argument_is_one_line_error(tmp_path):
    done = _run(["workload=default", "--bogus"], tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--bogus" in lines[0]


# The keys of DLIO's config.yaml that mlpstorage's result reader and rules checkers read (mlcommons/storage
# mlpstorage/rules.py: BenchmarkRun from config.yaml's workload, calculate_training_data_size, the checkers).
MLPSTORAGE_READS = {
    "workflow": {"generate_data", "train", "checkpoint"},
    "model": {"name"},
    "dataset": {"num_files_train", "num_subfolders_train", "num_samples_per_file", "record_length_bytes",
                "data_folder", "format"},
    "reader": {"batch_size", "read_threads", "odirect", "data_loader"},
    "train": {"epochs", "computation_time"},
}


def test_default_output_subdir_is_dot_hydra_in_dlio_spellings(tmp_path):
    configs = tmp_path / "configs" / "workload"
    configs.mkdir(parents=True)
    shutil.copyfile(bundled_workload_path("default"), configs / "small_h100.yaml")
    out = tmp_path / "results"
    done = _run(["workload=small_h100", "++workload.workflow.generate_data=True",
                 f"++workload.dataset.data_folder={tmp_path / 'data'}", "++workload.dataset.num_files_train=4",
                 "++workload.dataset.num_samples_per_file=2", "++workload.dataset.record_length=1024",
                 "++workload.train.epochs=1", "++workload.train.computation_time=0", f"++hydra.run.dir={out}",
                 f"--config-dir={tmp_path / 'configs'}"], tmp_path)
    assert done.returncode == 0, done.stderr
    hydra_dir = out / ".hydra"  # DLIO's (Hydra's) default output_subdir
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        assert (hydra_dir / name).is_file(), name
    workload = yaml.safe_load((hydra_dir / "config.yaml").read_text())["workload"]
    for section, keys in MLPSTORAGE_READS.items():
        assert keys <= set(workload[section]), (section, keys - set(workload[section]))
    # DLIO's spellings and types: record_length given in the old spelling lands as record_length_bytes
    assert workload["dataset"]["record_length_bytes"] == 1024 and "record_length" not in workload["dataset"]
    assert workload["dataset"]["num_files_train"] == 4 and isinstance(workload["reader"]["batch_size"], int)
    assert workload["workflow"]["train"] is True and workload["workflow"]["generate_data"] is True
    overrides = yaml.safe_load((hydra_dir / "overrides.yaml").read_text())
    assert overrides[0] == "workload=small_h100" and "++workload.dataset.num_files_train=4" in overrides
    # mlpstorage splits each override on "=" into exactly key and value
    assert all(len(o.split("=")) == 2 for o in overrides)
