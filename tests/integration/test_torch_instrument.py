"""instrument(): io and decode filled from the engine's own figures when the source is ours (issue 19)."""

from __future__ import annotations

import time

import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from dlio_torch import DeviceLoader, DlioIterableDataset, DlioMapDataset, instrument  # noqa: E402

from ._torch_data import write_id_dataset  # noqa: E402
from .test_torch_samples import labelled  # noqa: E402,F401 - a fixture

pytestmark = pytest.mark.integration

FILES, SPF, BATCH = 12, 2, 4


@pytest.fixture
def ids(tmp_path):
    root = str(tmp_path / "ids")
    write_id_dataset(root, FILES, SPF)
    return root


def _assert_engine_figures(report, steps):
    assert report["steps"] == steps and report["io_decode_note"] is None
    assert report["io_s"] > 0 and report["decode_s"] >= 0
    assert report["io_s"] <= report["wall_s"]  # one reader thread per process: thread time within the pass
    assert report["stages"]["io"]["count"] == steps and report["stages"]["decode"]["count"] == steps
    assert report["stages"]["io"]["mean_s"] == pytest.approx(report["io_s"] / steps)


@pytest.mark.parametrize("workers", [0, 2])
def test_iterable_dataset_fills_io_and_decode(ids, workers):
    ds = DlioIterableDataset.from_uri(ids, format="npy", batch_size=BATCH, batched=True, rank=0, world=1)
    timed = instrument(DataLoader(ds, batch_size=None, num_workers=workers))
    got = [int(v) for batch in timed for v in batch.reshape(-1).tolist()]
    assert sorted(got) == list(range(FILES * SPF))  # the loop still gets every sample, unchanged
    report = timed.report()
    _assert_engine_figures(report, FILES * SPF // BATCH)
    assert report["stages"]["h2d"]["mean_s"] is None  # no device copy asked for


def test_second_pass_reports_its_own_reads(ids):
    ds = DlioIterableDataset.from_uri(ids, format="npy", batch_size=BATCH, batched=True, rank=0, world=1)
    timed = instrument(DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True))
    for _ in timed:
        pass
    first = ds.engine_figures.totals()
    for _ in timed:
        pass
    total = ds.engine_figures.totals()
    report = timed.report()
    assert report["passes"] == 2 and first[2] == FILES * SPF // BATCH and total[2] == 2 * first[2]
    assert report["io_s"] == pytest.approx(total[0]) and report["decode_s"] == pytest.approx(total[1])


def test_map_dataset_in_workers_fills_io(ids):
    ds = DlioMapDataset.from_uri(ids, format="npy")
    timed = instrument(DataLoader(ds, batch_size=BATCH, num_workers=2))
    assert sum(len(b) for b in timed) == FILES * SPF
    _assert_engine_figures(timed.report(), FILES * SPF // BATCH)


def test_plain_torch_dataset_leaves_io_and_decode_null():
    data = TensorDataset(torch.arange(24).reshape(12, 2))
    timed = instrument(DataLoader(data, batch_size=4, num_workers=0))
    assert sum(len(b[0]) for b in timed) == 12
    report = timed.report()
    assert report["steps"] == 3 and report["io_s"] is None and report["decode_s"] is None
    assert report["stages"]["io"]["mean_s"] is None and report["stages"]["decode"]["count"] == 0
    assert "not a dl-driver dataset" in report["io_decode_note"]


def test_device_loader_batches_carry_exact_figures_and_no_h2d_on_cpu(tmp_path):
    loader = DeviceLoader("default", device="cpu", overrides=[f"++workload.dataset.data_folder={tmp_path}",
                                                              "++workload.workflow.generate_data=True",
                                                              "++workload.dataset.num_files_train=8"])
    timed = instrument(loader, device="cpu")  # a CPU "device": nothing is copied, so h2d stays null
    batches = [(b.num_samples, b.io_s, b.decode_s, tuple(b.data.shape)) for b in timed]
    report = timed.report()
    assert report["steps"] == len(batches) == 2 and report["samples"] == sum(n for n, *_ in batches) == 8
    assert report["batch_bytes"] == sum(n * 64 * 64 for n, *_ in batches)  # the tensors, not the wrapper
    assert report["io_s"] == pytest.approx(sum(io for _, io, _, _ in batches)) and report["io_s"] > 0
    assert report["stages"]["h2d"]["mean_s"] is None and report["stages"]["h2d"]["count"] == 0
    assert report["io_decode_note"] is None


def test_stall_still_tracks_a_slow_source(ids):
    def slow(x):
        time.sleep(0.01)  # reading is slow: the loop waits
        return x

    ds = DlioIterableDataset.from_uri(ids, format="npy", batch_size=BATCH, batched=True, rank=0, world=1,
                                      transform=slow)
    timed = instrument(DataLoader(ds, batch_size=None, num_workers=0))
    for _ in timed:
        pass
    slow_source = timed.report()["data_stall_percentage"]
    fast = DlioIterableDataset.from_uri(ids, format="npy", batch_size=BATCH, batched=True, rank=0, world=1)
    timed = instrument(DataLoader(fast, batch_size=None, num_workers=0))
    for _ in timed:
        time.sleep(0.02)  # the step is slow: the data is ready each time
    assert slow_source > 50 > timed.report()["data_stall_percentage"]


def _device_loader_over(root, **kwargs):
    from dlio_core.storage import open_storage

    from .test_torch_samples import FILES as NPZ_FILES, SPF as NPZ_SPF

    st = open_storage(root)
    files = sorted(st.list_files("", ".npz"))
    overrides = ["++workload.dataset.format=npz", f"++workload.dataset.num_files_train={NPZ_FILES}",
                 f"++workload.dataset.num_samples_per_file={NPZ_SPF}", "++workload.reader.batch_size=6",
                 "++workload.reader.sample_shuffle=seed", "++workload.workflow.generate_data=False"]
    return DeviceLoader("default", device="cpu", storage=st, files=files, overrides=overrides, **kwargs)


def test_device_loader_yields_each_sample_with_its_own_label(labelled):
    from .test_torch_samples import FILES as NPZ_FILES, SPF as NPZ_SPF

    loader = _device_loader_over(labelled)
    assert loader.labels
    pairs = []
    for b in loader:
        assert b.labels.dtype == torch.int64 and tuple(b.labels.shape) == (b.num_samples,)
        pairs += [(int(x.reshape(-1)[0]), int(y)) for x, y in zip(b.data, b.labels)]
    assert sorted(i for i, _ in pairs) == list(range(NPZ_FILES * NPZ_SPF))  # shuffled, every sample once
    assert pairs != sorted(pairs) and all(y == 1000 + i for i, y in pairs)  # each with its own label
    assert all(b.labels is None for b in _device_loader_over(labelled, labels=False))


def test_device_loader_refuses_labels_for_a_format_without_them(tmp_path):
    with pytest.raises(ValueError, match="npy files carry no labels.*labels=False"):
        DeviceLoader("default", device="cpu", labels=True,
                     overrides=[f"++workload.dataset.data_folder={tmp_path}", "++workload.dataset.format=npy",
                                "++workload.workflow.generate_data=True", "++workload.dataset.num_files_train=4"])
