"""``reader.data_loader: synthetic``: no I/O, zero batches of the nominal size, a full run on it."""

from __future__ import annotations

import json

import numpy as np

from dlio_core.config import load_config
from dlio_core.loaders import LOADERS, make_loader
from dlio_core.runner import run
from dlio_core.sampling import EpochPlan


class NoStorage:
    """A storage that fails on any use: the synthetic loader must not touch it."""

    def __getattr__(self, name):
        raise AssertionError(f"synthetic loader used storage.{name}")


def test_registered_and_reads_nothing():
    assert LOADERS["synthetic"].extra is None
    cfg = load_config("default", ["++workload.reader.data_loader=synthetic", "++workload.dataset.record_dims=[3,5]",
                                  "++workload.dataset.record_element_type=float32"])
    loader = make_loader(cfg, NoStorage(), [("train/a", 1)], split="train")
    batches = list(loader.epoch(EpochPlan(num_files=10, samples_per_file=1, batch_size=4), max_steps=5))
    assert [b.step for b in batches] == [0, 1]  # 10 samples / 4: two full steps
    assert all(b.bytes_read == 0 and b.io_s == 0 and b.decode_s == 0 and b.num_samples == 4 for b in batches)
    assert batches[0].sample_bytes == 4 * 3 * 5 * 4 and batches[0].samples is None


def test_samples_are_handed_out_when_asked_for():
    cfg = load_config("default", ["++workload.reader.data_loader=synthetic", "++workload.reader.batch_content=samples"])
    (batch,) = make_loader(cfg, None, [], split="train").epoch(EpochPlan(4, 1, 4))
    assert len(batch.samples) == 4 and batch.samples[0].shape == (64, 64) and not np.any(batch.samples[0])


def test_a_run_on_the_synthetic_loader_measures_the_harness_alone(tmp_path):
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data", "++workload.dataset.format=synthetic",
                                  "++workload.reader.data_loader=synthetic", "++workload.workflow.generate_data=True",
                                  "++workload.train.epochs=2", "++workload.train.computation_time=0",
                                  "++workload.workflow.evaluation=False", "++workload.output.record_access_order=True",
                                  f"++hydra.run.dir={tmp_path}/out"])
    result = run(cfg, quiet=True)
    assert all(sum(e.train.bytes_read) == 0 and e.train.steps == 16 for e in result.epochs)
    order = json.loads((tmp_path / "out" / "0_access_order.json").read_text())
    assert len(order["1"]) == 64 and len(set(order["1"])) == 64  # every sample once, as planned and delivered
