"""``reader.data_loader: pytorch``: a workload through the real DataLoader, figures in the report."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.integration


def run_args(tmp_path, *extra):
    return [
        "default", f"++workload.dataset.data_folder={tmp_path}/data", "++workload.reader.data_loader=pytorch",
        "++workload.workflow.generate_data=True", "++workload.train.epochs=2", "++workload.train.computation_time=0",
        "++workload.evaluation.eval_time=0", "++workload.reader.read_threads=2", f"++hydra.run.dir={tmp_path}/out",
        *extra,
    ]


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_pytorch_loader_runs_workload(tmp_path, run_cli, context):
    res = run_cli("run", *run_args(tmp_path, f"++workload.reader.multiprocessing_context={context}"))
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metric"]["train_throughput_samples_per_second"][0] > 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["data_loader"] == "pytorch"
    stages = report["train"]["stages"]
    assert stages["io"]["count"] > 0 and stages["io"]["mean_s"] > 0  # measured in the workers, carried back
    assert report["train"]["bytes_read_in_windows"] > 0
    per_rank = json.loads((tmp_path / "out" / "0_output.json").read_text())
    assert per_rank  # DLIO's per-step file is written


def test_pytorch_and_native_read_the_same_steps(tmp_path):
    """Same plan, same steps, same bytes: the loaders differ only in how they move batches."""
    from dlio_core.config import load_config
    from dlio_core.generate import generate_dataset
    from dlio_core.listing import dataset_files, dataset_storage
    from dlio_core.loaders import make_loader
    from dlio_core.sampling import EpochPlan

    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data", "++workload.reader.read_threads=2",
                                  "++workload.reader.file_shuffle=seed", "++workload.reader.sample_shuffle=seed"])
    generate_dataset(cfg, progress=False)
    storage = dataset_storage(cfg)
    files = dataset_files(cfg, storage, "train")
    plan = EpochPlan.from_config(cfg, epoch=1)
    got = {}
    for name in ("native", "pytorch"):
        loader = make_loader(load_config(cfg, [f"++workload.reader.data_loader={name}"]), storage, files, split="train")
        batches = list(loader.epoch(plan, max_steps=10))
        got[name] = [(b.step, b.num_samples, b.bytes_read) for b in batches]
        if name == "pytorch":
            assert all(b.h2d_s is None for b in batches)  # no CUDA here: no copy, no figure
    assert got["native"] == got["pytorch"] and len(got["native"]) == 10
