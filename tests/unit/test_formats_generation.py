"""Every format added for DLIO HEAD and the MLCommons fork generates through generate_dataset (names,
sizes in the manifest, files a reader reads back by content) and is chosen by its dataset.format name."""

from __future__ import annotations

import warnings
from dataclasses import replace
from types import SimpleNamespace as NS

import numpy as np
import pytest

from dlio_core.formats import format_for
from dlio_core.generate import CONTENT_SEED, generate_dataset, sample_array
from dlio_core.storage import open_storage

DEFAULTS = dict(num_files_train=3, num_files_eval=1, num_samples_per_file=2, record_length_bytes=64,
                record_length_bytes_stdev=0, num_subfolders_train=0, num_subfolders_eval=0, file_prefix="img",
                compression="none", record_dims=(), record_element_type="uint8")


def _cfg(folder, **dataset):
    ds = NS(data_folder=str(folder), **{**DEFAULTS, **dataset})
    return NS(dataset=ds, storage=NS(storage_type="local_fs", storage_root="./", storage_options={}),
              to_dict=lambda: {"dataset": dict(vars(ds))})


@pytest.mark.parametrize("name, extra", [
    ("csv", {}), ("jpeg", {"num_samples_per_file": 1}), ("png", {"num_samples_per_file": 1}),
    ("indexed_binary", {}), ("mmap_indexed_binary", {}), ("parquet", {}), ("synthetic", {}),
])
def test_generates_and_reads_back(tmp_path, name, extra):
    cfg = _cfg(tmp_path, format=name, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing about these formats is dropped or ignored
        manifest = generate_dataset(cfg, progress=False)
    st = open_storage(str(tmp_path))
    fmt = format_for(cfg.dataset)
    assert [p for p, _ in manifest.train] == [f"train/img_{i}_of_3.{name}" for i in range(3)]
    assert all(size == st.size(p) for p, size in manifest.train + manifest.valid)
    spf = cfg.dataset.num_samples_per_file
    path, size = manifest.train[1]
    layout = getattr(fmt, "samples_first", False)  # indexed_binary's content is made sample after sample
    want = [sample_array((8, 8, spf), "uint8", (CONTENT_SEED, 0, 1), samples_first=layout)[..., i] for i in range(spf)]
    if name == "synthetic":
        assert st.read(path) == b"1"
        return
    if hasattr(fmt, "decode"):  # compare contents: decode (parquet values, image pixels)
        fmt = replace(fmt, decode=True)
    if getattr(fmt, "whole_file", True):
        x = fmt.parse(st.read(path), path)
        got = [x[..., i] for i in range(x.shape[-1])]
    else:
        got = fmt.open_reader(st, path, size).read(list(range(spf)), keep=True)[2]
    if name == "jpeg":  # lossy: the right image size
        assert got[0].shape == (8, 8)
        return
    assert [np.asarray(g).reshape(-1).tolist() for g in got] == [w.reshape(-1).tolist() for w in want]
