"""The engine's read paths as objects: which one an epoch takes, what they are built from
(``ReadInputs``), and that any ``BatchReader`` plugs into the threaded path with its errors in step order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dlio_core.config.timespec import TimeSpec
from dlio_core.engine import Batch, NativeLoader, ReadPath
from dlio_core.engine import whole_file
from dlio_core.engine.buffers import ScratchShelf
from dlio_core.engine.pooled import PooledPath
from dlio_core.engine.read_path import ReadInputs
from dlio_core.engine.threaded import ThreadedPath
from dlio_core.formats import get_format

from ._engine_helpers import Recording, _NoFiles, _plan, _RangedFormat, os_threads, threads_settle_at

pytestmark = pytest.mark.timeout(60)


def test_each_epoch_takes_the_read_path_its_inputs_allow(dataset):
    st, paths, sizes = dataset(8, 1)
    npz = get_format("npz")
    local = NativeLoader(st, npz, paths, sizes=sizes)
    want = PooledPath if whole_file._cread is not None else ThreadedPath
    assert type(local.read_path(2)) is want and local.read_path(2) is local.read_path(2)  # built once
    assert isinstance(NativeLoader(Recording(st), npz, paths, sizes=sizes).read_path(2), ThreadedPath)
    for loader in (local, NativeLoader(Recording(st), npz, paths, sizes=sizes)):
        for size in (1, 2, 10**6):
            path = loader.read_path(size)
            assert isinstance(path, ReadPath) and path.name in ("pooled", "threaded")


def test_ranged_formats_take_the_threaded_path_without_scratch():
    loader = NativeLoader(_NoFiles(), _RangedFormat(), ["p0", "p1"], sizes=[100, 100])
    assert loader.read_path(2).name == "threaded" and loader._scratches.take() is None


def test_inputs_are_built_once_and_frozen(dataset):
    st, paths, sizes = dataset(3, 1)
    zero = TimeSpec.parse(0, key="reader.preprocess_time")
    inputs = ReadInputs.build(st, get_format("npz"), paths, sizes=sizes, read_threads=0, prefetch_size=4,
                              preprocess_s=zero)
    assert inputs.read_threads == 1 and inputs.in_flight == 4 and inputs.preprocess_s is None
    assert inputs.plain_local_files and inputs.paths == [st.path(p) for p in paths]
    assert list(inputs.size_list) == sizes and inputs.sizes.dtype == np.int64
    assert inputs.preprocess(5, np.random.default_rng(0)) == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        inputs.keep_samples = True  # type: ignore[misc]


def test_an_epoch_of_no_steps_is_an_empty_closable_generator(dataset):
    st, paths, sizes = dataset(4, 1)
    it = NativeLoader(st, get_format("npz"), paths, sizes=sizes).epoch(_plan(4, 1, 2), max_steps=0)
    assert list(it) == []
    it.close()


class _FailsAt:
    """A BatchReader of made-up batches that raises at one step."""

    def __init__(self, bad: int) -> None:
        self.bad = bad

    def read(self, step, files, samples, scratch, rng) -> Batch:
        if step == self.bad:
            raise ValueError(f"step {step} is bad")
        return Batch(step, len(files))


@pytest.mark.parametrize("threads", [1, 3])
def test_any_batch_reader_plugs_into_the_threaded_path_with_errors_in_step_order(threads):
    base = os_threads()
    inputs = ReadInputs.build(Recording(None), get_format("npz"), ["f"] * 12, read_threads=threads)
    path = ThreadedPath(inputs, _FailsAt(4), ScratchShelf(None, enabled=False))
    steps = []
    with pytest.raises(ValueError, match="step 4 is bad"):
        for b in path.epoch(_plan(12, 1, 1), 12):
            steps.append(b.step)
    assert steps == [0, 1, 2, 3]
    assert threads_settle_at(base)
