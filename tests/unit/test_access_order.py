"""The access-order log records what the loader delivered: the samples' bytes match the files it names,
out-of-order or missing steps show as they happened, and a loader's own sample ids win over the plan."""

from __future__ import annotations

import json
from types import SimpleNamespace as NS

import numpy as np

from dlio_core.config import load_config
from dlio_core.formats import get_format
from dlio_core.generate import generate_dataset
from dlio_core.listing import dataset_files, dataset_storage
from dlio_core.reader import epoch_plan, native_reader
from dlio_core.report.access_order import AccessOrderLog
from dlio_core.sampling import EpochPlan


def test_recorded_samples_are_the_bytes_the_native_engine_delivered(tmp_path):
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data", "++workload.dataset.num_files_train=6",
                                  "++workload.dataset.num_files_eval=0", "++workload.dataset.num_samples_per_file=3",
                                  "++workload.dataset.record_length_bytes=64", "++workload.reader.batch_size=4",
                                  "++workload.reader.sample_shuffle=seed", "++workload.reader.file_shuffle=seed",
                                  "++workload.reader.data_loader=native", "++workload.reader.read_threads=2"])
    generate_dataset(cfg, progress=False)
    storage = dataset_storage(cfg)
    files = dataset_files(cfg, storage, "train")
    log = AccessOrderLog([rel for rel, _ in files])
    loader = log.watch(native_reader(cfg, storage, files, keep_samples=True))
    plan = epoch_plan(cfg, epoch=2)
    delivered = []
    for batch in loader.epoch(plan):
        delivered += [np.array(s, copy=True) for s in batch.samples]
        batch.release()
    log.add(2, plan, plan.steps)
    entries = log.epochs["2"]
    assert len(entries) == len(delivered) == plan.steps * 4
    fmt = get_format("npz")
    for entry, sample in zip(entries, delivered):
        rel, index = entry.rsplit(":", 1)
        whole = fmt.parse(np.frombuffer(storage.read(rel), np.uint8), rel)
        assert np.array_equal(whole[..., int(index)], sample), entry  # the bytes of the sample the log names
    path = tmp_path / "0_access_order.json"
    log.write(str(path))
    assert json.loads(path.read_text()) == {"2": entries}


def _loader(*batches):
    return NS(epoch=lambda plan, max_steps=None: iter(batches))


def test_out_of_order_and_missing_steps_are_recorded_as_delivered():
    plan = EpochPlan(num_files=4, samples_per_file=1, batch_size=1)
    log = AccessOrderLog(["a", "b", "c", "d"])
    list(log.watch(_loader(NS(step=3), NS(step=0))).epoch(plan))  # two of four steps, reversed
    log.add(1, plan, steps=4)
    assert log.epochs["1"] == ["d:0", "a:0"]


def test_a_loaders_own_sample_ids_win_over_the_plan():
    plan = EpochPlan(num_files=2, samples_per_file=2, batch_size=2)
    log = AccessOrderLog(["a", "b"])
    batch = NS(step=0, sample_ids=(np.array([1, 1]), np.array([1, 0])))
    list(log.watch(_loader(batch)).epoch(plan))
    log.add(1, plan, steps=1)
    assert log.epochs["1"] == ["b:1", "b:0"]


def test_a_step_cut_short_keeps_only_what_was_delivered():
    plan = EpochPlan(num_files=4, samples_per_file=1, batch_size=1)
    log = AccessOrderLog(["a", "b", "c", "d"])
    batches = log.watch(_loader(NS(step=0), NS(step=1), NS(step=2))).epoch(plan)
    next(batches)
    batches.close()  # the run stopped after the first step
    log.add(1, plan, steps=1)
    assert log.epochs["1"] == ["a:0"]


def test_the_watched_loader_is_the_loader_otherwise():
    inner = NS(epoch=lambda plan, max_steps=None: iter(()), read_path="pooled")
    assert AccessOrderLog([]).watch(inner).read_path == "pooled"
