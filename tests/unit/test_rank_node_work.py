"""Once-per-node work (dlio_core/node_work.py): which files a host's ranks read, and their page-cache eviction."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from dlio_core.dist import Dist
from dlio_core.node_work import EVICT_ENV, NodeWork, eviction_wanted, host_file_indices
from dlio_core.sampling import EpochPlan
from dlio_core.storage import open_storage


def _resident_bytes(path) -> int:
    """Bytes of ``path`` in the page cache, as util-linux's fincore counts them."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


needs_fincore = pytest.mark.skipif(shutil.which("fincore") is None, reason="util-linux fincore not installed")


@pytest.mark.parametrize("shuffle", ["off", "seed"])
def test_host_files_are_the_union_of_its_ranks_reads(shuffle):
    plans = [EpochPlan(num_files=50, samples_per_file=3, batch_size=4, world=4, rank=r, epoch=2,
                       sample_shuffle=shuffle, file_shuffle=shuffle, seed=7) for r in range(4)]
    mine = [plans[1], plans[3]]  # a host running ranks 1 and 3
    expect = sorted({int(f) for p in mine for s in range(p.steps) for f in p.batch(s)[0]})
    assert host_file_indices(mine, steps=10**9).tolist() == expect
    first_two = sorted({int(f) for p in mine for s in range(2) for f in p.batch(s)[0]})
    assert host_file_indices(mine, steps=2).tolist() == first_two  # total_training_steps caps the epoch
    assert host_file_indices([], steps=5).tolist() == []


def test_the_setting_is_checked():
    assert eviction_wanted({EVICT_ENV: "off"}) is False and eviction_wanted({EVICT_ENV: "1"}) is True
    with pytest.raises(ValueError, match=f"{EVICT_ENV}='maybe'"):
        eviction_wanted({EVICT_ENV: "maybe"})


@needs_fincore
def test_the_leader_evicts_exactly_its_hosts_files(tmp_path):
    storage = open_storage(f"file://{tmp_path}")
    files = []
    for i in range(8):
        (tmp_path / f"f{i}.bin").write_bytes(os.urandom(64 * 1024))
        files.append((f"f{i}.bin", 64 * 1024))
    for name, _ in files:  # read them all: in the page cache now
        (tmp_path / name).read_bytes()
    if _resident_bytes(tmp_path / "f0.bin") == 0:
        pytest.skip("this file system keeps no page cache for tmp_path")
    plans = {r: EpochPlan(num_files=8, samples_per_file=1, batch_size=2, world=4, rank=r) for r in range(4)}
    leader = NodeWork(storage, files, leader=True, ranks_here=[0, 1])
    other = NodeWork(storage, files, leader=False, ranks_here=[0, 1])
    assert other.before_epoch(plans.__getitem__, steps=1) == 0 and other.stats() == {}
    assert leader.active and leader.before_epoch(plans.__getitem__, steps=1) == 4
    resident = [_resident_bytes(tmp_path / name) for name, _ in files]
    assert resident[:4] == [0, 0, 0, 0] and all(r > 0 for r in resident[4:])  # files 4-7: another host's
    stats = leader.stats()
    assert (stats["evicted_files"], stats["epochs"], stats["ranks"]) == (4, 1, [0, 1])
    assert stats["page_cache_eviction"].startswith("posix_fadvise")


def test_nothing_to_evict_on_remote_storage_or_when_off(tmp_path):
    remote_storage = open_storage("s3://bucket/data", {"endpoint_url": "http://127.0.0.1:9"})  # never contacted
    files = [("a.npz", 1)]
    remote = NodeWork(remote_storage, files, leader=True, ranks_here=[0])
    assert not remote.active and remote.before_epoch(lambda r: pytest.fail("no plan needed"), steps=1) == 0
    assert remote.stats()["page_cache_eviction"].startswith("not local storage (s3://)")
    off = NodeWork(open_storage(f"file://{tmp_path}"), files, leader=True, ranks_here=[0], enabled=False)
    assert not off.active and off.stats()["page_cache_eviction"] == f"off (${EVICT_ENV}=0)"


def test_for_run_takes_rank_0s_setting_and_this_hosts_ranks(tmp_path, monkeypatch):
    storage = open_storage(f"file://{tmp_path}")
    dist = Dist(rank=2, world=4, host_names=("h1", "h2"), host_of_rank=(0, 1, 1, 0), node=1, local_rank=1,
                local_world=2)
    monkeypatch.setenv(EVICT_ENV, "0")
    work = NodeWork.for_run(dist, storage, [("a", 1)])
    assert (work.leader, list(work.ranks_here), work.enabled) == (False, [1, 2], False)
    monkeypatch.setenv(EVICT_ENV, "bad")
    with pytest.raises(ValueError, match=EVICT_ENV):
        NodeWork.for_run(Dist(), storage, [("a", 1)])
    assert np.array_equal(host_file_indices([], 1), np.zeros(0, np.int64))
