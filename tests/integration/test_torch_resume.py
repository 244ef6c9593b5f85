"""Mid-epoch resume: the dataset's and DlioDataLoader's state_dict, and torchdata's StatefulDataLoader."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

from dlio_core.state import IterationState, Stateful  # noqa: E402
from dlio_torch import DlioDataLoader, DlioIterableDataset  # noqa: E402

from ._torch_data import ids_of, write_id_dataset  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("ids"))
    write_id_dataset(root, 20, 2)
    return root


def dataset(root, **kw):
    return DlioIterableDataset.from_uri(root, format="npy", batch_size=4, batched=True, shuffle=True, seed=3,
                                        rank=0, world=1, **kw)


def test_dataset_resume_in_process(data):
    full = [ids_of(b) for b in dataset(data)]
    ds = dataset(data)
    it = iter(ds)
    head = [ids_of(next(it)) for _ in range(3)]
    state = ds.state_dict()
    assert state["next_step"] == 3
    fresh = dataset(data)
    fresh.load_state_dict(state)
    assert head + [ids_of(b) for b in fresh] == full


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_resume_with_workers(data, workers):
    loader = DlioDataLoader(dataset(data), batch_size=None, num_workers=workers)
    loader.set_epoch(2)
    full = [ids_of(b) for b in loader]
    head = []
    for b in loader:
        head.append(ids_of(b))
        if len(head) == 4:
            break
    state = loader.state_dict()
    assert state == {**state, "epoch": 2, "next_step": 4}
    resumed = DlioDataLoader(dataset(data), batch_size=None, num_workers=workers)
    resumed.load_state_dict(state)
    assert head + [ids_of(b) for b in resumed] == full
    resumed.set_epoch(3)  # the next epoch starts from its beginning
    assert len([b for b in resumed]) == len(full)


def test_resume_rejects_other_batching(data):
    state = dataset(data).state_dict()
    other = DlioIterableDataset.from_uri(data, format="npy", batch_size=8, batched=True, rank=0, world=1)
    with pytest.raises(ValueError, match="batch_size"):
        other.load_state_dict(state)


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_dataloader(data, workers):
    sdl = pytest.importorskip("torchdata.stateful_dataloader")
    full = [ids_of(b) for b in dataset(data)]
    loader = sdl.StatefulDataLoader(dataset(data), batch_size=None, num_workers=workers)
    it = iter(loader)
    head = [ids_of(next(it)) for _ in range(3)]
    state = loader.state_dict()
    resumed = sdl.StatefulDataLoader(dataset(data), batch_size=None, num_workers=workers)
    resumed.load_state_dict(state)
    assert head + [ids_of(b) for b in resumed] == full


@pytest.mark.parametrize("kind", ["dataset", "dataloader"])
def test_dataset_and_dataloader_follow_the_stateful_protocol(data, kind):
    def make():
        ds = dataset(data)
        return ds if kind == "dataset" else DlioDataLoader(ds, batch_size=None)

    obj = make()
    assert isinstance(obj, Stateful)
    it = iter(obj)
    next(it), next(it)
    state = obj.state_dict()
    assert IterationState.from_dict(state) == IterationState(epoch=0, next_step=2, seed=3)
    fresh = make()
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state


def test_load_state_dict_names_a_missing_field(data):
    with pytest.raises(ValueError, match="next_step"):
        dataset(data).load_state_dict({"epoch": 1})


@pytest.mark.parametrize("workers", [0, 2])
def test_set_epoch_after_load_keeps_the_resume_point(data, workers):
    """Issue 19: ``set_epoch`` at the top of the resumed epoch used to replay the consumed batches."""
    loader = DlioDataLoader(dataset(data), batch_size=None, num_workers=workers)
    loader.set_epoch(1)
    full = [ids_of(b) for b in loader]
    loader.set_epoch(1)
    head = []
    for b in loader:
        head.append(ids_of(b))
        if len(head) == 2:
            break
    resumed = DlioDataLoader(dataset(data), batch_size=None, num_workers=workers)
    resumed.load_state_dict(loader.state_dict())
    resumed.set_epoch(1)  # the usual loop: set_epoch(epoch) then iterate
    rest = [ids_of(b) for b in resumed]
    assert len(rest) == len(full) - 2
    assert head + rest == full
    resumed.set_epoch(1)  # a later set_epoch of that epoch replays it whole
    assert len(list(resumed)) == len(full)
