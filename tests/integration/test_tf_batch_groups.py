"""dlio_tf's core path hands tf.data groups of batches: the same batches, in order, as one per call."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
tf = pytest.importorskip("tensorflow")

import dlio_tf._batches as batches_module  # noqa: E402
from dlio_core.config import load_config  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402
from dlio_core.reader import epoch_plan  # noqa: E402
from dlio_tf._pipeline import Source  # noqa: E402

pytestmark = pytest.mark.integration


def _cfg(tmp_path, *extra):
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}", "++workload.dataset.num_files_train=10",
                                  "++workload.dataset.num_files_eval=0", "++workload.dataset.num_samples_per_file=3",
                                  "++workload.dataset.record_length_bytes=256", "++workload.reader.batch_size=2",
                                  "++workload.reader.sample_shuffle=seed", "++workload.reader.file_shuffle=seed",
                                  "++workload.dataset.num_subfolders_train=0", *extra])
    generate_dataset(cfg, progress=False)
    return cfg


def _read(src, plan, monkeypatch, group):
    monkeypatch.setattr(batches_module, "GROUP_BATCHES", group)
    ds = batches_module.engine_batches(src, [plan], labels=True, stats=True)
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


def test_groups_yield_the_batches_one_call_each_yields(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    src, plan = Source.from_config(cfg), epoch_plan(cfg, epoch=2)
    assert plan.steps == 15  # 4 groups of 4: the last one shorter
    one = _read(src, plan, monkeypatch, 1)
    grouped = _read(src, plan, monkeypatch, 4)
    assert len(one) == len(grouped) == 15
    for a, b in zip(one, grouped):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
            if k not in ("dl_io_s", "dl_decode_s"):  # times differ between reads
                np.testing.assert_array_equal(a[k], b[k])
    assert grouped[0]["image"].shape == (2, 16, 16) and grouped[0]["label"].dtype == np.int64


def test_large_batches_and_ragged_ones_are_handed_one_a_call(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    assert batches_module.group_batches(Source.from_config(cfg)) == batches_module.GROUP_BATCHES
    monkeypatch.setattr(batches_module, "GROUP_MAX_BYTES", 3 * 512)  # three batches' bytes
    assert batches_module.group_batches(Source.from_config(cfg)) == 3
    monkeypatch.setattr(batches_module, "GROUP_MAX_BATCH_BYTES", 511)  # a batch is 512 bytes
    assert batches_module.group_batches(Source.from_config(cfg)) == 1
    varied = _cfg(tmp_path / "v", "++workload.dataset.record_length_bytes_stdev=64")
    assert batches_module.group_batches(Source.from_config(varied)) == 1


def test_a_sample_of_another_shape_is_named_in_a_group(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    src = Source.from_config(cfg)
    monkeypatch.setattr(Source, "record_shape", property(lambda self: (8, 8)))  # not the files' (16, 16)
    monkeypatch.setattr(batches_module, "GROUP_BATCHES", 4)
    gen = batches_module._Batches(src, [epoch_plan(cfg, epoch=1)], [3], labels=False, stats=False, group=4)
    with pytest.raises(ValueError, match=r"shape \(16, 16\) in a dataset of \(8, 8\) samples"):
        next(gen())
