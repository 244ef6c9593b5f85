"""The JAX and DALI paths build their reader, format and plan through ``dlio_core.reader``: the dataset
section's format options reach them and every engine takes the one per-rank seed."""

from __future__ import annotations

import pytest

pytest.importorskip("jax")

from dlio_core.reader import epoch_plan, reader_seed  # noqa: E402

from .._reader_probe import bound, bound_dataset, record_readers  # noqa: E402

pytestmark = pytest.mark.integration


def test_jax_loader_reader(tmp_path, monkeypatch):
    from dlio_jax._loader import make_loader

    cfg, storage, files = bound_dataset(tmp_path)
    built = record_readers(monkeypatch)
    make_loader(cfg, storage, files, split="train", rank=2)
    (args, kwargs), = built
    assert bound(args[1]) and kwargs["seed"] == reader_seed(cfg, 2) == 11 + 2 * 7919
    assert kwargs["keep_samples"] is True and kwargs["read_threads"] == 2


def test_jax_iterator_plan_and_reader(tmp_path):
    from dlio_jax import JaxIterator

    cfg, storage, _ = bound_dataset(tmp_path)
    it = JaxIterator(cfg, process_index=1, process_count=2, random_seed=3, storage=storage)
    try:
        assert it.plan == epoch_plan(cfg, epoch=1, world=2, rank=1, random_seed=3)
        assert next(it).shape == (2, 256)  # tfrecord samples are flat byte records
    finally:
        it.close()


def test_grain_source_takes_the_bound_format(tmp_path):
    import pickle

    from dlio_jax import DlioSource

    cfg = bound_dataset(tmp_path)[0]
    src = pickle.loads(pickle.dumps(DlioSource.from_config(cfg)))
    assert bound(src._format) and src.format == "tfrecord"
    assert len(src) == 16 and src[5].shape == (256,)


def test_dali_external_reader(tmp_path, monkeypatch):
    pytest.importorskip("nvidia.dali")
    from dlio_jax.dali import pipeline

    cfg, storage, files = bound_dataset(tmp_path)
    built = record_readers(monkeypatch)
    pipe = pipeline(cfg, reader="external", rank=1, world=2, random_seed=3, storage=storage, files=files)
    (args, kwargs), = built
    assert bound(args[1]) and kwargs["seed"] == reader_seed(cfg, 1) and kwargs["keep_samples"] is True
    tail = pipe.dlio.feed.make_plan(2)  # the plan, planned a block of steps at a time (PlanTail)
    assert tail.start == 0 and tail.plan == epoch_plan(cfg, epoch=2, world=2, rank=1, random_seed=3)
