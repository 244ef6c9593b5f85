"""The torch plugin hands real training data: samples with their labels, decoded, transformed in the
workers, collated by a hook; from_config, make_dataloader and from_uri agree (issue 19)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

import dlio_torch  # noqa: E402
from dlio_core.config import load_config  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402
from dlio_core.storage import open_storage  # noqa: E402
from dlio_torch import DlioIterableDataset, make_dataloader  # noqa: E402

from ._torch_data import write_id_dataset  # noqa: E402

pytestmark = pytest.mark.integration

FILES, SPF = 12, 3  # small files: many in one engine batch (the burst read path)


def write_labelled_npz(root: str, files: int = FILES, spf: int = SPF) -> None:
    """``img_{i}.npz``: sample ``j`` of file ``i`` is a 2x2 array filled with id ``i * spf + j``, label ``1000 + id``."""
    st = open_storage(root)
    for i in range(files):
        ids = np.arange(i * spf, (i + 1) * spf)
        x = np.broadcast_to(ids.astype(np.int32), (2, 2, spf)).copy()
        raw = io.BytesIO()
        np.savez(raw, x=x, y=1000 + ids)
        st.write_atomic(f"img_{i:03d}.npz", raw.getvalue())


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("labelled"))
    write_labelled_npz(root)
    return root


def pairs_of(batches) -> list[tuple[int, int]]:
    out = []
    for x, y in batches:
        out += [(int(xi.reshape(-1)[0]), int(yi)) for xi, yi in zip(x, y)]
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_from_uri_yields_each_sample_with_its_own_label(labelled, workers):
    ds = DlioIterableDataset.from_uri(labelled, format="npz", batch_size=6, batched=True, shuffle=True, seed=3)
    got = pairs_of(DataLoader(ds, batch_size=None, num_workers=workers))
    assert sorted(i for i, _ in got) == list(range(FILES * SPF))  # every sample once
    assert all(y == 1000 + i for i, y in got)  # and the label of that very sample


def test_unbatched_items_are_sample_label_pairs(labelled):
    ds = DlioIterableDataset.from_uri(labelled, format="npz", batch_size=4)
    items = list(ds)
    assert len(items) == FILES * SPF
    x, y = items[5]
    assert tuple(x.shape) == (2, 2) and y.dtype == torch.int64 and int(y) == 1000 + int(x[0, 0])
    collated = next(iter(DataLoader(ds, batch_size=4)))  # torch's own collate stacks the pairs
    assert tuple(collated[0].shape) == (4, 2, 2) and collated[1].tolist() == [1000, 1001, 1002, 1003]


def _pid_and_double(x):
    return x * 2, torch.tensor(os.getpid())


def test_transform_runs_in_the_workers(labelled):
    ds = DlioIterableDataset.from_uri(labelled, format="npz", batch_size=3, batched=True, transform=_pid_and_double)
    pids = set()
    for (x2, pid), y in DataLoader(ds, batch_size=None, num_workers=2):
        assert (x2.reshape(3, -1)[:, 0] == 2 * (y - 1000)).all()  # default collate: ((X, PID), Y)
        pids.update(pid.tolist())
    assert len(pids) == 2 and os.getpid() not in pids


def _as_dict(items):
    return {"image": torch.stack([x for x, _ in items]), "label": torch.stack([y for _, y in items])}


def test_collate_fn_makes_the_batch(labelled):
    ds = DlioIterableDataset.from_uri(labelled, format="npz", batch_size=4, batched=True, collate_fn=_as_dict)
    first = next(iter(DataLoader(ds, batch_size=None, num_workers=1)))
    assert set(first) == {"image", "label"} and tuple(first["image"].shape) == (4, 2, 2)
    assert first["label"].tolist() == [1000, 1001, 1002, 1003]


def test_formats_without_labels_yield_samples_and_refuse_labels(tmp_path):
    write_id_dataset(str(tmp_path), 4, 2, fmt="npy")
    ds = DlioIterableDataset.from_uri(str(tmp_path), format="npy", batch_size=2, batched=True)
    assert [tuple(b.shape) for b in ds] == [(2, 1)] * 4  # npy carries no labels: samples only
    with pytest.raises(ValueError, match="npy files carry no labels.*labels=False"):
        DlioIterableDataset.from_uri(str(tmp_path), format="npy", labels=True)


def test_bad_hook_combinations_are_refused(labelled):
    with pytest.raises(ValueError, match="collate_fn .* needs batched=True"):
        DlioIterableDataset.from_uri(labelled, format="npz", collate_fn=_as_dict)
    with pytest.raises(ValueError, match="need content='samples'"):
        DlioIterableDataset.from_uri(labelled, format="npz", content="constant", constant_shape=(2,), labels=True)


def _config(root, *more):
    return load_config("default", [f"++workload.dataset.data_folder={root}", "++workload.dataset.num_files_train=6",
                                   "++workload.dataset.num_files_eval=0", "++workload.dataset.num_samples_per_file=2",
                                   "++workload.dataset.record_length_bytes=64", "++workload.reader.batch_size=4",
                                   "++workload.reader.read_threads=0", *more])


def test_from_config_make_dataloader_and_from_uri_agree(tmp_path):
    cfg = _config(tmp_path)
    generate_dataset(cfg, progress=False)
    via_config = list(DlioIterableDataset.from_config(cfg, batched=True))
    via_loader = list(make_dataloader(cfg))
    via_uri = list(DlioIterableDataset.from_uri(str(tmp_path / "train"), format="npz", batch_size=4, batched=True))
    assert len(via_config) == len(via_loader) == len(via_uri) == 3
    for (xa, ya), (xb, yb), (xc, yc) in zip(via_config, via_loader, via_uri):
        assert tuple(xa.shape) == (4, 8, 8) and xa.dtype == torch.uint8  # the samples, not DLIO's constant
        assert torch.equal(xa, xb) and torch.equal(xa, xc) and ya.tolist() == yb.tolist() == yc.tolist() == [0] * 4
    constant = next(iter(DlioIterableDataset.from_config(cfg, batched=True, content="constant")))
    assert isinstance(constant, torch.Tensor)  # DLIO's tensor only when asked for


def test_from_config_decodes_images(tmp_path):
    pytest.importorskip("PIL")
    cfg = _config(tmp_path, "++workload.dataset.format=png", "++workload.dataset.num_samples_per_file=1",
                  "++workload.dataset.record_length_bytes=256")
    generate_dataset(cfg, progress=False)
    x = next(iter(DlioIterableDataset.from_config(cfg, batched=True)))
    assert x.dtype == torch.uint8 and tuple(x.shape[:3]) == (4, 16, 16)  # pixels, not the file's bytes


def test_batches_keep_data_and_device_loader_is_exported():
    assert "DeviceLoader" in dlio_torch.__all__ and hasattr(dlio_torch, "DeviceLoader")
    assert dlio_torch.TorchBatch(step=0, num_samples=1, data=torch.zeros(1)).data.shape == (1,)


@pytest.mark.parametrize("prefetch_factor", [2, 8])
def test_worker_batches_through_shared_slots_are_exact(labelled, prefetch_factor):
    # 8 steps in flight per worker outnumber its ring's slots: the busy ones fall back to PyTorch's sharing.
    ds = DlioIterableDataset.from_uri(labelled, format="npz", batch_size=2, batched=True, shuffle=True, seed=5)
    loader = DataLoader(ds, batch_size=None, num_workers=2, prefetch_factor=prefetch_factor, persistent_workers=True)
    for epoch in range(3):
        ds.set_epoch(epoch)
        batches = list(loader)  # every batch kept past the next steps: none overwritten by a later one
        got = pairs_of(batches)
        assert sorted(i for i, _ in got) == list(range(FILES * SPF)) and all(y == 1000 + i for i, y in got)
