"""dlio_jax.dali as a trainer uses it (issue 19): true len() and step counts, operators after the reader,
the sample shape every plugin shares, and no JAX needed for PyTorch users."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nvidia.dali")

from dlio_core.config import tiny_run_config  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402
from dlio_jax.dali import pipeline, torch_iterator  # noqa: E402

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _cfg(tmp_path, fmt="npy", files=64, spf=1, batch=4):
    cfg = tiny_run_config(str(tmp_path), overrides=(f"++workload.dataset.format={fmt}",
                                                    f"++workload.dataset.num_files_train={files}",
                                                    f"++workload.dataset.num_samples_per_file={spf}",
                                                    f"++workload.reader.batch_size={batch}"))
    generate_dataset(cfg, progress=False)
    return cfg


@pytest.mark.parametrize("reader", ["external", "native"])
def test_len_and_steps_count_the_batches_an_epoch_yields(tmp_path, reader):
    pytest.importorskip("torch")
    cfg = _cfg(tmp_path)
    pipe = pipeline(cfg, reader=reader)
    it = torch_iterator(pipe)
    batches = [b for b in it]
    assert len(batches) == len(it) == pipe.dlio.steps == 16  # 64 samples / 4
    it.reset()
    assert sum(1 for _ in it) == 16  # the next epoch, as long


def test_transform_adds_operators_and_named_outputs(tmp_path):
    pytest.importorskip("torch")
    from nvidia.dali import fn, types

    cfg = _cfg(tmp_path, files=8)

    def ops(data):
        scaled = fn.cast(data, dtype=types.FLOAT) / 255.0
        return scaled, fn.shapes(data)

    pipe = pipeline(cfg, reader="external", transform=ops, output_names=("image", "shape"))
    (batch,) = next(iter(torch_iterator(pipe)))
    assert str(batch["image"].dtype) == "torch.float32" and float(batch["image"].max()) <= 1.0
    assert batch["shape"].tolist() == [[64, 64]] * 4


@pytest.mark.parametrize("fmt,shape", [("npy", (64, 64)), ("npz", (64, 64)), ("tfrecord", (4096,))])
def test_samples_have_the_shape_the_torch_plugin_yields(tmp_path, fmt, shape):
    torch_mod = pytest.importorskip("torch")
    import dlio_torch

    cfg = _cfg(tmp_path, fmt=fmt, files=8)
    torch_batch = next(iter(dlio_torch.DlioIterableDataset.from_config(cfg, content="samples", batched=True)))
    if isinstance(torch_batch, (tuple, list)):  # (images, labels) where the files carry labels
        torch_batch = torch_batch[0]
    assert tuple(torch_batch.shape[1:]) == shape and torch_batch.dtype == torch_mod.uint8
    readers = ["external"] + (["native"] if fmt in ("npy", "tfrecord") else [])
    for reader in readers:
        out = pipeline(cfg, reader=reader).run()[0]  # npz adds a label output
        assert {tuple(s) for s in out.shape()} == {shape}, reader
        assert np.asarray(out.as_array()).dtype == np.uint8


def test_importable_and_usable_without_jax(tmp_path):
    pytest.importorskip("torch")
    cfg = _cfg(tmp_path, files=8)
    over = [f"++workload.dataset.data_folder={cfg.dataset.data_folder}", "++workload.dataset.format=npy",
            "++workload.dataset.num_files_train=8"]
    code = ("import sys\nsys.modules['jax'] = None\nimport dlio_jax.dali as d\n"
            f"it = d.torch_iterator(d.pipeline('default', overrides={over!r}, reader='external'))\n"
            "print(len(it), [tuple(b[0]['data'].shape) for b in it])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["2 [(4, 64, 64), (4, 64, 64)]"]


def test_external_source_yields_the_files_labels(tmp_path):
    pytest.importorskip("torch")
    import os

    from dlio_core.config import load_config

    folder = tmp_path / "d" / "train"
    os.makedirs(folder)
    for f in range(6):
        x = np.zeros((4, 4, 2), np.uint8)
        x[0, 0, :] = f
        np.savez(folder / f"img_{f}_of_6.npz", x=x, y=np.array([10 * f, 10 * f + 1]))
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path / 'd'}", "++workload.dataset.num_files_train=6",
                                  "++workload.dataset.num_files_eval=0", "++workload.dataset.num_samples_per_file=2",
                                  "++workload.dataset.num_subfolders_train=0", "++workload.reader.batch_size=4",
                                  "++workload.reader.sample_shuffle=seed"])
    pipe = pipeline(cfg)
    assert pipe.dlio.output_names == ("data", "label")
    batches = [b[0] for b in torch_iterator(pipe)]
    assert len(batches) == 3
    for b in batches:  # the label of each sample is the one its file stores for it
        files = b["data"][:, 0, 0].tolist()
        assert all(y // 10 == f for y, f in zip(b["label"].reshape(-1).tolist(), files))
    assert sorted(y for b in batches for y in b["label"].reshape(-1).tolist()) == sorted(
        10 * f + s for f in range(6) for s in range(2))
    with pytest.raises(ValueError, match="labels=True needs reader='external'"):
        pipeline(cfg, reader="native", labels=True)
    (plain,) = pipeline(cfg, labels=False).run()  # one output: the samples alone
    assert {tuple(s) for s in plain.shape()} == {(4, 4)}


def test_batch_size_keyword_on_the_eval_split(tmp_path):
    cfg = tiny_run_config(str(tmp_path), overrides=("++workload.dataset.format=npy", "++workload.dataset.num_files_train=4",
                                                    "++workload.dataset.num_files_eval=8", "++workload.reader.batch_size=4"))
    generate_dataset(cfg, progress=False)
    assert pipeline(cfg, split="valid").dlio.steps == 8  # the config's batch_size_eval (1), as DLIO's runner
    pipe = pipeline(cfg, split="valid", batch_size=4)
    (out,) = pipe.run()
    assert pipe.dlio.steps == 2 and len(out) == 4
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        pipeline(cfg, batch_size=0)
