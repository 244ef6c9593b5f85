"""The torch and TF paths build their reader, format and plan through ``dlio_core.reader``: the dataset
section's format options reach them and every engine takes the one per-rank seed."""

from __future__ import annotations

import os

import pytest

from dlio_core.config import load_config
from dlio_core.reader import epoch_plan, reader_seed

from .._reader_probe import bound, bound_dataset, record_readers

pytestmark = pytest.mark.integration


def test_torch_device_loader_reader_and_plan(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from dlio_torch import DeviceLoader

    cfg, storage, files = bound_dataset(tmp_path)
    built = record_readers(monkeypatch)
    loader = DeviceLoader(cfg, device="cpu", storage=storage, files=files, threads=3, rank=1, world=2)
    (args, kwargs), = built
    assert bound(args[1]) and kwargs["seed"] == reader_seed(cfg, 1) == 11 + 7919
    assert (kwargs["read_threads"], kwargs["keep_samples"]) == (3, True)
    assert loader.plan == epoch_plan(cfg, epoch=1, world=2, rank=1)


def test_torch_dataset_and_loader_take_the_bound_format_and_the_configs_plan(tmp_path):
    pytest.importorskip("torch")
    from dlio_core.loaders import make_loader
    from dlio_torch import DlioIterableDataset

    cfg, storage, files = bound_dataset(tmp_path)
    ds = DlioIterableDataset.from_config(cfg, rank=0, world=1, random_seed=3)
    assert bound(ds.source.fmt())
    assert ds.plan(1) == epoch_plan(cfg, epoch=1, random_seed=3)
    runner_loader = make_loader(load_config(cfg, ["++workload.reader.data_loader=pytorch"]), storage, files,
                                split="train")
    assert bound(runner_loader.source.fmt())


def test_tf_core_reader_takes_the_bound_format(tmp_path, monkeypatch):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    pytest.importorskip("tensorflow")
    from dlio_tf._batches import _Batches
    from dlio_tf._pipeline import Source

    cfg, _, files = bound_dataset(tmp_path)
    src = Source.from_config(cfg)
    assert src.files == tuple(files)
    built = record_readers(monkeypatch)
    with pytest.raises(AttributeError):  # the stand-in reads nothing: what matters is what it was given
        next(_Batches(src, [epoch_plan(cfg, epoch=1)], [1], labels=False, stats=False)())
    (args, kwargs), = built
    assert bound(args[1]) and kwargs["seed"] == reader_seed(cfg, 0)
