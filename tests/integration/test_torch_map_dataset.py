"""DlioMapDataset: random access, batched ``__getitems__``, labels, transform, samplers (issue 19)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader, RandomSampler  # noqa: E402

from dlio_core.config import load_config  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402
from dlio_core.manifest import DatasetError  # noqa: E402
from dlio_torch import DlioMapDataset  # noqa: E402

from .test_torch_samples import FILES, SPF, labelled  # noqa: E402,F401 - labelled is a fixture

pytestmark = pytest.mark.integration


def test_random_access_reads_the_sample_asked_for(labelled):
    ds = DlioMapDataset.from_uri(labelled, format="npz")
    assert len(ds) == FILES * SPF
    for i in (17, 0, 35, 4, 17, -1):
        x, y = ds[i]
        want = i % len(ds)
        assert int(x[0, 0]) == want and int(y) == 1000 + want and tuple(x.shape) == (2, 2)


def test_getitems_reads_a_batch_in_the_order_asked(labelled):
    ds = DlioMapDataset.from_uri(labelled, format="npz")
    items = ds.__getitems__([30, 2, 1, 30, 9])
    assert [int(x[0, 0]) for x, _ in items] == [30, 2, 1, 30, 9]
    assert [int(y) for _, y in items] == [1030, 1002, 1001, 1030, 1009]


def test_out_of_range_is_an_index_error(labelled):
    ds = DlioMapDataset.from_uri(labelled, format="npz")
    with pytest.raises(IndexError, match="sample index 36 is out of range for a dataset of 36 samples"):
        ds[36]
    with pytest.raises(IndexError):
        ds.__getitems__([0, -37])


def _double(x):
    return x * 2


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_with_a_random_sampler_covers_every_sample_once(labelled, workers):
    ds = DlioMapDataset.from_uri(labelled, format="npz", transform=_double)
    loader = DataLoader(ds, batch_size=5, sampler=RandomSampler(ds, generator=torch.Generator().manual_seed(1)),
                        num_workers=workers)
    seen = []
    for x, y in loader:
        assert (x[:, 0, 0] == 2 * (y - 1000)).all()  # transformed in the worker, label of that sample
        seen += (y - 1000).tolist()
    assert sorted(seen) == list(range(FILES * SPF)) and seen != sorted(seen)


def test_from_config_and_samples_per_file_checks(tmp_path):
    over = [f"++workload.dataset.data_folder={tmp_path}", "++workload.dataset.num_files_train=4",
            "++workload.dataset.num_files_eval=0", "++workload.dataset.num_samples_per_file=2",
            "++workload.dataset.record_length_bytes=64"]
    generate_dataset(load_config("default", over), progress=False)
    ds = DlioMapDataset.from_config("default", overrides=over)
    x, y = ds[7]
    assert len(ds) == 8 and tuple(x.shape) == (8, 8) and int(y) == 0
    with pytest.raises(DatasetError, match="num_samples_per_file is 1, but the files hold 2"):
        DlioMapDataset.from_config("default", overrides=[*over, "++workload.dataset.num_samples_per_file=1"])


def test_npy_has_no_labels(tmp_path):
    from ._torch_data import write_id_dataset

    write_id_dataset(str(tmp_path), 3, 2)
    ds = DlioMapDataset.from_uri(str(tmp_path), format="npy")
    assert ds[4].tolist() == [4]
