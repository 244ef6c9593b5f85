"""``dl-driver mlperf``'s launch line per launcher (Open MPI, HPE PALS mpiexec, Slurm srun, a batch
allocation's nodes) as ``--dry-run`` prints it, and the exit codes of ``dlio_core.exits``."""

from __future__ import annotations

import errno
import shlex

import pytest

from dlio_core.config import ConfigError
from dlio_core.mlperf.cli import Terminated, exit_code, main
from dlio_core.mlperf.errors import LaunchError, RulesError, UsageError
from dlio_core.mlperf.launchers import forwarded_env

RUN = ["whatif", "training", "unet3d", "run", "--accelerator-type", "b200", "--num-accelerators", "8",
       "--client-host-memory-in-gb", "64", "--data-dir", "/mnt/data", "--systemname", "s", "--dry-run"]
_LAUNCH_ENV = ("SLURM_JOB_ID", "SLURM_JOB_NUM_NODES", "PBS_NODEFILE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "PALS_SIZE",
               "SLURM_STEP_NUM_TASKS")


@pytest.fixture(autouse=True)
def outside_any_launcher(monkeypatch):
    """Each test starts outside any allocation or launched job, with nothing to forward."""
    for name in [*_LAUNCH_ENV, *forwarded_env()]:
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in __import__("os").environ if n.startswith("PALS_")]:
        monkeypatch.delenv(name)


def _line(capsys, tmp_path, *extra) -> list[str]:
    assert main([*RUN, "--results-dir", str(tmp_path), *extra]) == 0
    argv = shlex.split(capsys.readouterr().out.splitlines()[0])
    return argv[:argv.index(next(a for a in argv if a.endswith("dl-driver")))]


def test_srun_spelling(capsys, tmp_path):
    assert _line(capsys, tmp_path, "--mpi-bin", "srun", "--hosts", "n1", "n2")[1:] == \
        ["-n", "8", "--nodes", "2", "--ntasks-per-node", "4", "--nodelist", "n1,n2"]
    assert _line(capsys, tmp_path, "--mpi-bin", "srun", "--oversubscribe")[1:] == ["-n", "8", "--overcommit"]


def test_pals_mpiexec_spelling(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PALS_APID", "1234")  # set by PALS in a job
    line = _line(capsys, tmp_path, "--mpi-bin", "mpiexec", "--hosts", "x1:4", "x2:4", "--mpi-params=--cpu-bind none")
    assert line[0].endswith("mpiexec")
    assert line[1:] == ["-n", "8", "--ppn", "4", "--hosts", "x1,x2", "--cpu-bind", "none"]


@pytest.mark.parametrize("flag", ["--oversubscribe", "--allow-run-as-root", "--mpi-btl=tcp"])
def test_pals_refuses_open_mpi_flags(flag, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PALS_APID", "1234")
    assert main([*RUN, "--results-dir", str(tmp_path), "--mpi-bin", "mpiexec", flag]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag.split("=")[0] in err and "PALS" in err


def test_allocation_is_used_without_hosts(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "77")  # in a Slurm allocation: mpirun reads it, no -host
    assert _line(capsys, tmp_path)[1:] == ["-n", "8", "--bind-to", "none", "--map-by", "socket"]
    monkeypatch.delenv("SLURM_JOB_ID")
    nodefile = tmp_path / "nodes"
    nodefile.write_text("x1\nx1\nx2\nx2\n")  # PBS lists a node once per slot
    monkeypatch.setenv("PBS_NODEFILE", str(nodefile))
    monkeypatch.setenv("PALS_APID", "1")
    assert _line(capsys, tmp_path, "--mpi-bin", "mpiexec")[1:] == ["-n", "8", "--ppn", "4", "--hosts", "x1,x2"]
    monkeypatch.delenv("PALS_APID")
    assert _line(capsys, tmp_path)[1:5] == ["-n", "8", "-host", "x1:4,x2:4"]


def test_without_any_launcher_it_is_this_host(capsys, tmp_path):
    assert _line(capsys, tmp_path, "--mpi-btl", "tcp")[1:] == \
        ["-n", "8", "-host", "127.0.0.1:8", "--bind-to", "none", "--map-by", "socket", "--mca", "btl", "self,tcp"]


def test_refuses_to_run_as_one_rank_of_a_job(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "8")  # started under mpirun -n 8
    assert main([*RUN, "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "OMPI_COMM_WORLD_SIZE" in err and "start it once" in err


@pytest.mark.parametrize("error, code", [
    (UsageError("--loops must be at least 1"), 2),
    (RulesError("closed run refused"), 2),
    (LaunchError("--hosts: bad slots"), 2),
    (ConfigError("reader.batch_size: not a number"), 2),
    (OSError(errno.ENOSPC, "No space left on device"), 1),
    (RuntimeError("a bug"), 1),
    (KeyboardInterrupt(), 130),
    (Terminated(), 143),
])
def test_exit_codes_follow_dlio_core_exits(error, code):
    assert exit_code(error) == code


def test_datasize_counts_the_allocation_nodes_as_client_hosts(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "4")  # 4 clients x 64 GiB, no --hosts nor --num-client-hosts
    assert main(["whatif", "training", "unet3d", "datasize", "--accelerator-type", "h100", "--max-accelerators", "1",
                 "--client-host-memory-in-gb", "64", "--results-dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 client host(s) x 64 GiB" in out and "256.00 GiB declared" in out
