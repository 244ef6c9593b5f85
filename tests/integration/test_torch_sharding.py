"""DlioIterableDataset through a real DataLoader: rank x worker sharding, epochs, fork and spawn."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

from dlio_torch import DlioIterableDataset  # noqa: E402

from ._torch_data import ids_of, write_id_dataset  # noqa: E402

pytestmark = pytest.mark.integration

FILES, SPF, BATCH = 13, 3, 4  # 39 samples: uneven for every world size tried


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("ids"))
    write_id_dataset(root, FILES, SPF)
    return root


def dataset(root, **kw):
    kw.setdefault("batch_size", BATCH)
    kw.setdefault("batched", True)
    return DlioIterableDataset.from_uri(root, format="npy", shuffle=True, seed=7, **kw)


def rank_batches(root, rank, world, workers, **kw):
    ds = dataset(root, rank=rank, world=world, **kw)
    loader = DataLoader(ds, batch_size=None, num_workers=workers)
    return [ids_of(b) for b in loader]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_ranks_disjoint_equal_and_covering(data, world):
    per_rank = {r: rank_batches(data, r, world, workers=2) for r in range(world)}
    steps = (FILES * SPF) // (BATCH * world)
    assert all(len(b) == steps for b in per_rank.values())  # equal counts: no DDP hang
    seen = [i for batches in per_rank.values() for b in batches for i in b]
    assert len(seen) == len(set(seen)) == steps * BATCH * world  # no overlap, only the tail dropped
    assert set(seen) <= set(range(FILES * SPF))


def test_same_batches_for_0_1_2_workers(data):
    runs = [rank_batches(data, 1, 2, workers=w) for w in (0, 1, 2)]
    assert runs[0] == runs[1] == runs[2]


def test_rank_from_environment(data, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    from_env = [ids_of(b) for b in DataLoader(dataset(data), batch_size=None, num_workers=2)]
    assert from_env == rank_batches(data, 1, 2, workers=0)


def test_per_sample_mode_matches_batched(data):
    ds = dataset(data, rank=0, world=2, batched=False)
    assert len(ds) == (FILES * SPF) // (BATCH * 2) * BATCH
    loader = DataLoader(ds, batch_size=BATCH, num_workers=2)
    assert [ids_of(b) for b in loader] == rank_batches(data, 0, 2, workers=0)


def test_set_epoch_reshuffles_and_seed_repeats(data):
    a, b = dataset(data, rank=0, world=1), dataset(data, rank=0, world=1)
    first = [ids_of(x) for x in a]
    assert [ids_of(x) for x in b] == first  # same seed, same order
    a.set_epoch(1)
    second = [ids_of(x) for x in a]
    assert second != first  # a new order (the dropped tail differs too: it is the shuffled order's tail)
    assert len(set(sum(second, []))) == len(sum(first, []))


def test_persistent_workers_see_set_epoch(data):
    ds = dataset(data, rank=0, world=1)
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True)
    orders = []
    for epoch in (0, 1, 0):
        ds.set_epoch(epoch)
        orders.append([ids_of(b) for b in loader])
    assert orders[0] != orders[1] and orders[0] == orders[2]


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_fork_and_spawn_pin_memory(data, context):
    loader = DataLoader(dataset(data, rank=0, world=1), batch_size=None, num_workers=2,
                        multiprocessing_context=context, pin_memory=torch.cuda.is_available())
    assert [ids_of(b) for b in loader] == rank_batches(data, 0, 1, workers=0)


def test_pickled_dataset_is_small(data):
    import pickle

    assert len(pickle.dumps(dataset(data, rank=0, world=1))) < 4096


def test_constant_content_reads_and_hands_a_constant(data):
    ds = dataset(data, rank=0, world=1, content="constant", constant_shape=(8, 8), with_info=True)
    items = list(DataLoader(ds, batch_size=None, num_workers=2))
    assert len(items) == ds.steps_per_epoch()
    for step, (tensor, info) in enumerate(items):
        assert tensor.shape == (BATCH, 8, 8) and tensor.dtype == torch.uint8
        assert info["step"] == step and info["num_samples"] == BATCH
        assert info["bytes_read"] > 0 and info["io_s"] >= 0 and info["decode_s"] >= 0
