"""dlio_jax.dali: external_source and native readers, shards, iterators, runs, and the GPU/extra errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("nvidia.dali")

from dlio_jax.dali import DaliDeviceError, jax_iterator, pipeline, torch_iterator  # noqa: E402

from ._jax_data import ids, overrides, write_labelled_npy  # noqa: E402

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _epoch(it) -> list[tuple[int, int]]:
    seen = [i for b in it for i in ids(b["data"])]
    it.reset()
    return seen


@pytest.mark.parametrize("world,shuffle", [(1, "off"), (2, "off"), (3, "off"), (3, "seed")])
def test_native_numpy_reader_reads_each_file_of_its_shard_once_per_epoch(tmp_path, world, shuffle):
    write_labelled_npy(tmp_path, 12, 1)
    epochs: list[list[set]] = [[], []]
    for rank in range(world):
        pipe = pipeline("default", overrides=overrides(tmp_path, 12, 1, 2, "++workload.reader.data_loader=native_dali",
                                                       f"++workload.reader.file_shuffle={shuffle}"),
                        rank=rank, world=world)
        assert pipe.dlio.reader == "native" and pipe.dlio.steps == 12 // world // 2
        it = jax_iterator(pipe)
        for e in range(2):
            seen = _epoch(it)
            assert len(seen) == len(set(seen)) == 12 // world  # the whole shard, each file once
            epochs[e].append(set(seen))
        if shuffle == "off":
            assert epochs[0][rank] == epochs[1][rank]  # a rank keeps its shard
    for shards in epochs:  # per epoch, the ranks read disjoint shards covering every file (DLIO: all shard 0)
        assert set().union(*shards) == {(f, 0) for f in range(12)} and sum(map(len, shards)) == 12


def test_native_numpy_counts_whole_files_as_spf_samples(tmp_path):
    write_labelled_npy(tmp_path, 8, 3)
    from dlio_core.sampling import EpochPlan
    from dlio_core.config import load_config
    from dlio_jax.dali._loader import make_native_loader
    from dlio_core.listing import dataset_files, dataset_storage

    cfg = load_config("default", overrides(tmp_path, 8, 3, 6))
    with pytest.raises(ValueError, match="whole_files=True"):  # no per-sample split inside DALI's reader
        pipeline(cfg, reader="native")
    pipe = pipeline(cfg, reader="native", whole_files=True)
    (out,) = pipe.run()
    assert len(out) == 2 and np.asarray(out[0]).shape == (4, 4, 3)  # 2 files = 6 DLIO samples
    st = dataset_storage(cfg)
    loader = make_native_loader(cfg, st, dataset_files(cfg, st, "train"), split="train")
    plan = EpochPlan.from_config(cfg, epoch=1)
    batches = list(loader.epoch(plan))
    assert len(batches) == plan.steps == 4 and {b.num_samples for b in batches} == {6}


@pytest.mark.parametrize("world", [1, 3])
def test_external_source_follows_the_rank_plan(tmp_path, world):
    write_labelled_npy(tmp_path, 9, 2)
    seen, steps = [], []
    for rank in range(world):
        pipe = pipeline("default", overrides=overrides(tmp_path, 9, 2, 3, "++workload.reader.sample_shuffle=seed"),
                        rank=rank, world=world)
        it = jax_iterator(pipe)
        epoch1 = _epoch(it)
        epoch2 = _epoch(it)  # reset moves the feed to the plan's next epoch: a new order, same samples
        assert sorted(epoch1) == sorted(epoch2) and epoch1 != epoch2 or world == 3
        steps.append(len(epoch1) // 3)
        seen += epoch1
    assert steps == [18 // (3 * world)] * world
    assert len(seen) == len(set(seen)) == steps[0] * 3 * world


def test_torch_iterator(tmp_path):
    pytest.importorskip("torch")
    write_labelled_npy(tmp_path, 4, 1)
    pipe = pipeline("default", overrides=overrides(tmp_path, 4, 1, 2))
    got = [tuple(b[0]["data"][:, 0, 0].tolist()) for b in torch_iterator(pipe)]
    assert got == [(0, 1), (2, 3)]


@pytest.mark.parametrize("loader", ["dali", "native_dali"])
def test_runs_through_dali_loaders(tmp_path, loader):
    from dlio_core.config import load_config
    from dlio_core.runner import run

    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data", f"++workload.reader.data_loader={loader}",
                                  "++workload.dataset.format=npy", "++workload.workflow.generate_data=True",
                                  "++workload.train.epochs=2", "++workload.train.computation_time=0.001",
                                  "++workload.evaluation.eval_time=0", f"++hydra.run.dir={tmp_path}/out"])
    result = run(cfg, quiet=True)
    assert [e.train.steps for e in result.epochs] == [16, 16]
    assert result.summary["metric"]["train_io_mean_MB_per_second"] > 0
    stages = json.loads((tmp_path / "out" / "report.json").read_text())["train"]["stages"]
    assert stages["h2d"]["mean_s"] is None  # CPU pipeline: no device copy, so null, never 0
    # DALI's own reader does its I/O inside pipe.run(): not measured (null); the external source's is.
    assert (stages["io"]["mean_s"] is None) == (loader == "native_dali")


def test_native_tfrecord_reader_uses_the_index_files(tmp_path):
    from dlio_core.config import load_config
    from dlio_core.generate import generate_dataset

    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data", "++workload.dataset.format=tfrecord",
                                  "++workload.dataset.num_files_train=4", "++workload.dataset.num_samples_per_file=4",
                                  "++workload.dataset.num_subfolders_train=0", "++workload.reader.batch_size=4"])
    generate_dataset(cfg, progress=False)
    seen = 0
    for rank in range(2):
        pipe = pipeline(cfg, reader="native", rank=rank, world=2)
        seen += sum(b["data"].shape[0] for b in jax_iterator(pipe))
    assert seen == 16


def test_gpu_pipeline_fails_clearly_without_a_gpu(tmp_path):
    write_labelled_npy(tmp_path, 4, 1)
    try:
        pipe = pipeline("default", overrides=overrides(tmp_path, 4, 1, 2), device="gpu")
    except DaliDeviceError as exc:
        assert "use device='cpu'" in str(exc) and "GPU" in str(exc)
    else:  # a GPU is present: the batch must land on it
        (out,) = pipe.run()
        assert "GPU" in type(out).__name__


def test_missing_dali_gives_the_install_hint():
    code = ("import sys\nsys.modules['nvidia.dali'] = None\ntry:\n    import dlio_jax.dali\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert "pip install 'dl-driver[dali]'" in out
