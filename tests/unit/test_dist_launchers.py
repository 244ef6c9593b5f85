"""`dlio_core.dist`: which launcher announces the world, and the torch.distributed collectives."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from dlio_core import dist

LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "TORCHELASTIC_RUN_ID", "LOCAL_RANK",
                 "WORLD_SIZE", "RANK")


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
assert d.hosts() == [d.hostname]
import torch.distributed as td
td.destroy_process_group()
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr
