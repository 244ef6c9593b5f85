"""`dlio_core.launch` / `dlio_core.dist`: which launcher announces the world, and the torch.distributed collectives."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from dlio_core import dist
from dlio_core.launch import Launch, detect, launcher_world_size

LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "TORCHELASTIC_RUN_ID", "LOCAL_RANK",
                 "WORLD_SIZE", "RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID",
                 "SLURM_STEP_NUM_TASKS", "PALS_RANKID")


@pytest.fixture
def clean_env(monkeypatch):
    for name in LAUNCHER_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_no_launcher_is_a_world_of_one(clean_env):
    assert dist.launcher_world_size() == 1
    d = dist.init()
    assert (d.rank, d.world, d.comm) == (0, 1, None)


def test_world_size_alone_is_not_torchrun(clean_env):
    clean_env.setenv("WORLD_SIZE", "4")  # set by many tools; without torchrun's markers it means nothing here
    assert dist.launcher_world_size() == 1


@pytest.mark.parametrize("marker", ["TORCHELASTIC_RUN_ID", "LOCAL_RANK"])
def test_torchrun_environment(clean_env, marker):
    clean_env.setenv(marker, "0")
    clean_env.setenv("WORLD_SIZE", "4")
    assert dist.launcher_world_size() == 4


def test_mpi_launcher_wins_over_torchrun(clean_env):
    clean_env.setenv("TORCHELASTIC_RUN_ID", "x")
    clean_env.setenv("WORLD_SIZE", "4")
    clean_env.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert dist.launcher_world_size() == 2


def test_torch_collectives_over_gloo():
    """The torch.distributed adapter on a one-rank gloo group (in a subprocess: the group is global)."""
    pytest.importorskip("torch")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = f"""
import os
os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="{port}")
from dlio_core.dist import _init_torchrun
d = _init_torchrun(1)
d.barrier()
assert (d.rank, d.world) == (0, 1)
assert d.bcast({{"a": 1}}) == {{"a": 1}}
assert d.allgather("h") == ["h"]
assert d.gather((1, 2)) == [(1, 2)]
assert d.hosts() == [d.hostname] and (d.num_hosts, d.local_rank, d.local_world, d.node) == (1, 0, 1, 0)
from dlio_core.dist import RankStatus
out = d.step_status(RankStatus.FAILED, "bad file", where="step 1")
assert (out.status, out.rank, out.message) == (RankStatus.FAILED, 0, "bad file"), out
assert d.step_status().ok
d.barrier(timeout_s=5)
d.close()
import torch.distributed as td
assert not td.is_initialized()
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr


# --- every launcher, from its environment alone ------------------------------------------------------

OPENMPI = {"OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
           "OMPI_COMM_WORLD_LOCAL_SIZE": "4"}
TORCHRUN = {"TORCHELASTIC_RUN_ID": "abc", "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1",
            "LOCAL_WORLD_SIZE": "2", "GROUP_RANK": "1", "GROUP_WORLD_SIZE": "2"}
SRUN = {"SLURM_PROCID": "6", "SLURM_STEP_NUM_TASKS": "8", "SLURM_NTASKS": "8", "SLURM_LOCALID": "2",
        "SLURM_NODEID": "1", "SLURM_STEP_NUM_NODES": "2"}
PALS = {"PALS_RANKID": "13", "PALS_LOCAL_RANKID": "1", "PALS_LOCAL_SIZE": "12", "PALS_NODEID": "1",
        "PMI_RANK": "13", "PMI_SIZE": "24"}
HYDRA = {"PMI_RANK": "2", "PMI_SIZE": "4", "MPI_LOCALRANKID": "0", "MPI_LOCALNRANKS": "2"}


@pytest.mark.parametrize(("environ", "expected"), [
    (OPENMPI, Launch("openmpi", 5, 8, 1, 4, None, None, "mpi")),
    (TORCHRUN, Launch("torchrun", 3, 4, 1, 2, 1, 2, "torch")),
    ({"LOCAL_RANK": "0", "RANK": "0", "WORLD_SIZE": "2"}, Launch("torchrun", 0, 2, 0, None, None, None, "torch")),
    (SRUN, Launch("slurm", 6, 8, 2, None, 1, 2, "mpi")),
    (PALS, Launch("pals", 13, 24, 1, 12, 1, None, "mpi")),
    ({"PALS_RANKID": "0", "PALS_LOCAL_RANKID": "0"}, Launch("pals", 0, None, 0, None, None, None, "mpi")),
    (HYDRA, Launch("pmi", 2, 4, 0, 2, None, None, "mpi")),
    ({"PMI_RANK": "1", "PMI_SIZE": "2", "PMI_LOCAL_RANK": "1", "PMI_LOCAL_SIZE": "2"},
     Launch("pmi", 1, 2, 1, 2, None, None, "mpi")),
    ({"PMIX_RANK": "3"}, Launch("pmix", 3, None, backend="mpi")),
    ({}, Launch()),
], ids=["openmpi", "torchrun", "torchrun-local-rank-only", "srun", "pals", "pals-no-world", "hydra", "cray-pmi",
        "pmix", "none"])
def test_detect_each_launcher(environ, expected):
    assert detect(environ) == expected
    assert detect(environ).is_distributed == (expected.backend is not None)


def test_a_slurm_batch_shell_is_not_a_launch():
    """sbatch's own shell carries SLURM_PROCID=0 and SLURM_NTASKS, but only srun starts several ranks."""
    batch = {"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_JOB_ID": "1"}
    assert detect(batch) == Launch()
    assert launcher_world_size(batch) == 1


@pytest.mark.parametrize(("environ", "winner"), [
    ({**OPENMPI, **TORCHRUN}, "openmpi"),  # as before: the MPI launcher wins
    ({**SRUN, **TORCHRUN}, "torchrun"),  # srun starting torchrun agents: the worker's rank is torchrun's
    ({**SRUN, **HYDRA}, "slurm"),
    ({**PALS, **HYDRA}, "pals"),
])
def test_precedence_between_launchers(environ, winner):
    assert detect(environ).launcher == winner


def test_a_launcher_announcing_one_rank_is_not_distributed():
    single = detect({"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1"})
    assert single.launcher == "openmpi" and not single.is_distributed


def test_launcher_world_size_reads_the_environment_by_default(clean_env):
    clean_env.setenv("PMI_RANK", "0")
    clean_env.setenv("PMI_SIZE", "6")
    assert launcher_world_size() == dist.launcher_world_size() == 6


def test_mpi_world_that_disagrees_with_srun_is_an_error():
    """srun without an MPI plugin gives every task a singleton MPI world: refuse rather than multiply the work."""
    pytest.importorskip("mpi4py")
    env = {k: v for k, v in __import__("os").environ.items() if k not in LAUNCHER_VARS}
    env.update(SRUN)
    code = "from dlio_core.dist import init\ntry:\n    init()\nexcept RuntimeError as e:\n    print(e)\n"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert "slurm started 8 ranks but MPI sees 1" in res.stdout, res.stdout + res.stderr
    assert "srun --mpi=pmix" in res.stdout
