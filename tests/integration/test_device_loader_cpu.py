"""``dlio_torch.DeviceLoader`` on the CPU: the same path as on CUDA, with plain numpy staging buffers."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlio_core.config import load_config  # noqa: E402
from dlio_core.engine import NativeLoader, ReadError  # noqa: E402
from dlio_core.formats import get_format  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402
from dlio_core.listing import dataset_files, dataset_storage  # noqa: E402
from dlio_core.storage import open_storage  # noqa: E402
from dlio_torch import DeviceLoader  # noqa: E402
from dlio_torch._device_loader import CUDA_ERROR, make_device_loader  # noqa: E402

from ._torch_data import ids_of, write_id_dataset  # noqa: E402

pytestmark = pytest.mark.integration


def _id_loader(root: str, files: int, spf: int, batch: int, threads: int = 2, **kw) -> DeviceLoader:
    write_id_dataset(root, files, spf)
    st = open_storage(root)
    cfg = load_config("default", [f"++workload.dataset.data_folder={root}", "++workload.dataset.format=npy",
                                  f"++workload.dataset.num_files_train={files}",
                                  f"++workload.dataset.num_samples_per_file={spf}",
                                  f"++workload.reader.batch_size={batch}", "++workload.reader.sample_shuffle=seed",
                                  "++workload.reader.file_shuffle=seed"])
    names = [(f"f{i:03d}.npy", st.size(f"f{i:03d}.npy")) for i in range(files)]
    return DeviceLoader(cfg, device="cpu", storage=st, files=names, threads=threads, **kw)


@pytest.mark.parametrize("spf", [1, 3])  # 3: strided sample views (samples on the last axis)
def test_every_sample_arrives_once_per_epoch(tmp_path, spf):
    loader = _id_loader(str(tmp_path), files=12, spf=spf, batch=4, threads=3)
    seen = []
    for b in loader:
        assert b.data.device.type == "cpu" and b.data.shape == (4, 1) and b.num_samples == 4
        assert b.h2d_s is None  # no copy to a device happened: no figure, never a made-up 0
        assert b.bytes_read > 0 and b.io_s >= 0
        seen += ids_of(b.data)
    assert sorted(seen) == list(range(12 * spf))
    assert seen != list(range(12 * spf))  # the plan's shuffle really applies
    assert loader.pinned is False and loader.notes == []


def test_batches_equal_the_native_engines_samples(tmp_path):
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}", "++workload.dataset.num_files_train=10",
                                  "++workload.reader.batch_size=3", "++workload.reader.file_shuffle=seed"])
    generate_dataset(cfg, progress=False)
    loader = DeviceLoader(cfg, device="cpu", threads=2)
    st = dataset_storage(cfg)
    files = dataset_files(cfg, st, "train")
    native = NativeLoader(st, get_format("npz"), [st.join(r) for r, _ in files], sizes=[s for _, s in files],
                          read_threads=1, keep_samples=True)
    expected = []
    for b in native.epoch(loader.plan):
        expected.append((b.step, b.bytes_read, np.stack(b.samples)))
        b.release()
    got = [(b.step, b.bytes_read, b.data.numpy()) for b in loader]
    assert len(got) == len(expected) == loader.steps == 3
    for (s1, n1, a1), (s2, n2, a2) in zip(got, expected):
        assert s1 == s2 and n1 == n2 and np.array_equal(a1, a2)


def test_ragged_samples_are_zero_padded(tmp_path):
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}", "++workload.dataset.num_files_train=8",
                                  "++workload.dataset.record_length_bytes_stdev=1024", "++workload.reader.batch_size=4"])
    generate_dataset(cfg, progress=False)
    st = dataset_storage(cfg)
    files = dataset_files(cfg, st, "train")
    native = NativeLoader(st, get_format("npz"), [st.join(r) for r, _ in files], sizes=[s for _, s in files],
                          keep_samples=True)
    loader = DeviceLoader(cfg, device="cpu")
    for b, ref in zip(loader, native.epoch(loader.plan)):
        for row, s in zip(b.data.numpy(), ref.samples):
            assert np.array_equal(row[tuple(slice(0, n) for n in s.shape)], s)
            assert row.sum() == s.sum()  # the rest is zeros
        ref.release()


def test_runner_factory_and_early_close(tmp_path):
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}", "++workload.dataset.num_files_train=16",
                                  "++workload.reader.batch_size=2"])
    generate_dataset(cfg, progress=False)
    st = dataset_storage(cfg)
    loader = make_device_loader(cfg, st, dataset_files(cfg, st, "train"), split="train")
    before = threading.active_count()
    it = loader.epoch(loader.plan, max_steps=5)
    next(it)
    it.close()  # stops the copier and the engine's readers
    assert threading.active_count() <= before
    assert len(list(loader.epoch(loader.plan, max_steps=5))) == 5


def test_read_errors_reach_the_consumer(tmp_path):
    loader = _id_loader(str(tmp_path), files=4, spf=1, batch=2)
    os.remove(tmp_path / "f002.npy")
    with pytest.raises(ReadError, match="f002.npy"):
        list(loader)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the error cannot happen")
def test_cuda_without_a_device_names_the_cpu_path(tmp_path):
    with pytest.raises(RuntimeError) as exc:
        DeviceLoader("default", overrides=[f"++workload.dataset.data_folder={tmp_path}"])
    assert 'device="cpu"' in str(exc.value) and str(exc.value) == CUDA_ERROR


def test_a_file_table_is_read_as_it_is_not_copied_to_a_list(tmp_path):
    from dlio_core.file_table import FileTable

    root = str(tmp_path)
    write_id_dataset(root, 6, 1)
    st = open_storage(root)
    cfg = load_config("default", [f"++workload.dataset.data_folder={root}", "++workload.dataset.format=npy",
                                  "++workload.dataset.num_files_train=6", "++workload.reader.batch_size=2"])
    table = FileTable.from_pairs([(f"f{i:03d}.npy", st.size(f"f{i:03d}.npy")) for i in range(6)])
    loader = DeviceLoader(cfg, device="cpu", storage=st, files=table, threads=2)
    assert loader.files is table
    assert sorted(i for b in loader for i in ids_of(b.data)) == list(range(6))
