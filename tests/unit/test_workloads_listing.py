"""How a run finds and reads its files beyond a plain listing: parquet partition_by folders, the fork's
skip_listing (zero LISTs, spot checks), per-rank endpoints, direct_fs, and parquet row groups read once
per pass however many batches share them."""

from __future__ import annotations


import numpy as np
import pytest

from dlio_core.config import load_config
from dlio_core.formats._parquet_groups import GROUPS, GroupCache
from dlio_core.generate import generate_dataset
from dlio_core.listing import dataset_files, dataset_storage, rank_endpoint
from dlio_core.manifest import DatasetError
from dlio_core.reader import epoch_plan, native_reader

PARTITIONED = "++workload.dataset.parquet={partition_by: k, columns: [{name: k, dtype: bool}, {name: v, dtype: int32, size: 4}]}"

from ._workload_helpers import small_cfg


def _cfg(tmp_path, *overrides):
    return small_cfg(tmp_path, "++workload.reader.read_threads=2", *overrides)


def _epoch(cfg, epoch=1, decode=None):
    st = dataset_storage(cfg)
    files = dataset_files(cfg, st, "train")
    return files, list(native_reader(cfg, st, files, keep_samples=True).epoch(epoch_plan(cfg, epoch=epoch)))


def test_partitioned_parquet_reads_every_row_of_each_logical_file(tmp_path):
    cfg = _cfg(tmp_path, "++workload.dataset.format=parquet", "++workload.dataset.num_samples_per_file=32",
               PARTITIONED, "++workload.reader.decode=True")
    generate_dataset(cfg, progress=False)
    st = dataset_storage(cfg)
    parts = st.list_files("train", ".parquet")
    assert {p.split("/")[1] for p, _ in parts} == {"k=false", "k=true"}
    files, batches = _epoch(cfg)
    assert [p for p, _ in files] == [f"train/img_{i}_of_4.parquet" for i in range(4)]
    assert [n for _, n in files] == [sum(n for p, n in parts if p.endswith(f"img_{i}_of_4.parquet")) for i in range(4)]
    rows = [s.view(np.int32).tolist() for b in batches for s in b.samples]
    assert len(rows) == 128 and len({tuple(r) for r in rows}) == 128  # every row once, all distinct


def test_skip_listing_names_files_without_listing(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, "++workload.dataset.format=npz", "++workload.dataset.skip_listing=True",
               "++workload.dataset.listing_validation_interval=2", "++workload.dataset.num_subfolders_train=2")
    manifest = generate_dataset(cfg, progress=False)
    st = dataset_storage(cfg)
    monkeypatch.setattr(type(st), "list_files", lambda *a, **k: pytest.fail("listed the data folder"))
    assert dataset_files(cfg, st, "train") == list(manifest.train)  # DLIO's order, sizes from the manifest
    checked = []
    real = type(st).size
    monkeypatch.setattr(type(st), "size", lambda self, p: (checked.append(p), real(self, p))[1])
    dataset_files(cfg, st, "train")
    assert [c.rsplit("/", 1)[1] for c in checked] == ["img_0_of_4.npz", "img_2_of_4.npz", "img_3_of_4.npz"]
    st.delete(manifest.train[2][0])
    with pytest.raises(DatasetError, match="skip_listing: .*img_2_of_4.npz does not exist"):
        dataset_files(cfg, st, "train")


def test_skip_listing_without_a_manifest_asks_each_size(tmp_path):
    cfg = _cfg(tmp_path, "++workload.dataset.format=npy", "++workload.dataset.skip_listing=True")
    manifest = generate_dataset(cfg, progress=False)
    st = dataset_storage(cfg)
    st.delete("dl-driver-manifest.json")
    assert dataset_files(cfg, st, "train") == list(manifest.train)


def test_skip_listing_refuses_partitions(tmp_path):
    cfg = _cfg(tmp_path, "++workload.dataset.format=parquet", PARTITIONED, "++workload.dataset.skip_listing=True")
    with pytest.raises(DatasetError, match="skip_listing cannot name partitioned"):
        dataset_files(cfg, dataset_storage(cfg), "train")


def test_rank_endpoints():
    from types import SimpleNamespace as NS

    uris = ("http://a", "http://b", "http://c", "http://d")
    mpi = NS(endpoint_uris=uris, use_mpi_endpoint_distribution=True)
    assert [rank_endpoint(mpi, r, 16)[-1] for r in range(16)] == list("aaaabbbbccccdddd")
    rr = NS(endpoint_uris=uris, use_mpi_endpoint_distribution=False, load_balance_strategy="round_robin")
    assert [rank_endpoint(rr, r, 6)[-1] for r in range(6)] == list("abcdab")
    rnd = NS(endpoint_uris=uris, use_mpi_endpoint_distribution=False, load_balance_strategy="random")
    assert rank_endpoint(rnd, 5, 8) == rank_endpoint(rnd, 5, 8) in uris
    assert rank_endpoint(NS(endpoint_uris=()), 0, 1) is None


def test_endpoint_uris_give_each_rank_its_endpoint():
    cfg = load_config("default", ["++workload.storage.storage_type=s3", "++workload.storage.storage_root=bkt",
                                  "++workload.storage.endpoint_uris=[http://127.0.0.1:9001,http://127.0.0.1:9002]"])
    assert dataset_storage(cfg, rank=1, world=2).endpoint() == "http://127.0.0.1:9002"
    assert dataset_storage(cfg, rank=0, world=2).endpoint() == "http://127.0.0.1:9001"


def test_direct_fs_is_local_files_with_o_direct(tmp_path):
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}", "++workload.storage.storage_type=direct_fs"])
    assert dataset_storage(cfg).url.startswith("direct://")


def test_a_row_group_is_read_once_per_pass(tmp_path):
    cfg = _cfg(tmp_path, "++workload.dataset.format=parquet", "++workload.dataset.num_samples_per_file=64",
               "++workload.dataset.parquet={row_group_size: 32, columns: [{name: a, dtype: float32, size: 64}]}")
    generate_dataset(cfg, progress=False)
    GROUPS.clear()
    files, first = _epoch(cfg, 1)
    _, second = _epoch(cfg, 2)
    read1, read2 = (sum(b.bytes_read for b in bs) for bs in (first, second))
    data = sum(n for _, n in files)
    assert sum(b.num_samples for b in first) == 256
    # 64 batches over 8 row groups, each group read once: the second epoch (footers cached) reads the
    # chunks once more, from storage again (not from memory), and no more
    assert 0.8 * data < read2 <= data
    assert read1 >= read2  # the first also read the footers (pyarrow's 64 KiB tail: these whole small files)
    assert GROUPS.nbytes == 0               # every group's rows handed out: nothing held


def test_group_cache_bound_and_failures():
    cache = GroupCache(max_bytes=8)
    assert cache.take("a", [0], 2, lambda: (np.zeros(16, np.uint8), 16))[1] == 16
    assert cache.nbytes == 0  # larger than the bound: not kept
    with pytest.raises(OSError):
        cache.take("b", [0], 2, lambda: (_ for _ in ()).throw(OSError("gone")))
    assert cache.take("b", [0], 2, lambda: (b"ok", 2)) == (b"ok", 2)  # a failed load leaves nothing behind
