"""Checks every object-store backend passes: generate + a short native run, and a checkpoint-sized
write/read through the storage layer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dlio_core.config import load_config
from dlio_core.runner import run
from dlio_core.storage import Storage, open_storage


def small_config(data_folder: str, out: Path, options: dict[str, Any] | None = None, *, storage_type: str | None = None,
                 storage_root: str | None = None, extra: list[str] | tuple[str, ...] = (), source: str = "default"):
    """The default workload shrunk to seconds, its data folder on a backend, options set as a user would
    in the YAML storage section."""
    base = load_config(source).to_dict()
    storage = base.setdefault("storage", {})
    if options is not None:
        storage["storage_options"] = dict(options)
    if storage_type is not None:
        storage["storage_type"] = storage_type
    if storage_root is not None:
        storage["storage_root"] = storage_root
    overrides = [
        f"++workload.dataset.data_folder={data_folder}",
        "++workload.reader.data_loader=native",
        "++workload.workflow.generate_data=True",
        "++workload.workflow.checkpoint=False",
        "++workload.dataset.num_files_train=16",
        "++workload.dataset.num_files_eval=4",
        "++workload.workflow.evaluation=True",
        "++workload.reader.batch_size=4",
        "++workload.reader.read_threads=4",
        "++workload.train.epochs=2",
        "++workload.train.computation_time=0.002",
        "++workload.evaluation.eval_time=0.001",
        f"++hydra.run.dir={out}",
        *extra,
    ]
    return load_config(base, overrides)


def generate_and_run(data_folder: str, out: Path, options: dict[str, Any] | None = None, **kw: Any) -> dict:
    """Generate on the backend, run 2 epochs with the native engine; return the summary."""
    cfg = small_config(data_folder, out, options, **kw)
    result = run(cfg, quiet=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 2
    metric = summary["metric"]
    assert all(v > 0 for v in metric["train_throughput_samples_per_second"])
    assert metric["train_io_mean_MB_per_second"] > 0
    assert result.epochs and result.epochs[0].eval is not None
    return summary


def checkpoint_roundtrip(st: Storage, nbytes: int = 24 * 2**20) -> None:
    """A checkpoint-sized object written with write_atomic (parts) and open_write, read back by ranges."""
    rng = np.random.default_rng(7)
    blob = rng.integers(0, 256, nbytes, dtype=np.uint8)
    half = nbytes // 2
    assert st.write_atomic("ckpt/step-1/model.bin", [blob[:half], blob[half:]]) == nbytes
    with st.open_write("ckpt/step-1/optim.bin") as f:
        for i in range(0, nbytes, 5 * 2**20 + 3):
            f.write(memoryview(blob[i:i + 5 * 2**20 + 3]))
    for name in ("model.bin", "optim.bin"):
        path = f"ckpt/step-1/{name}"
        assert st.size(path) == nbytes
        whole = np.empty(nbytes, np.uint8)
        assert st.read_into(path, whole) == nbytes
        assert np.array_equal(whole, blob)
        part = bytearray(1000)
        assert st.read_into(path, part, offset=nbytes - 400) == 400  # short only at the end
        assert bytes(part[:400]) == blob[-400:].tobytes()
    listed = dict(st.list_files("ckpt"))
    assert listed == {"ckpt/step-1/model.bin": nbytes, "ckpt/step-1/optim.bin": nbytes}
    st.delete("ckpt")
    assert st.list_files("ckpt") == []


def reader_in_process(uri: str, options: dict | None, path: str, queue: Any) -> None:
    """Worker-process body: read through a storage that arrived pickled (or was made in the child)."""
    try:
        st = open_storage(uri, options) if isinstance(uri, str) else uri
        buf = bytearray(st.size(path))
        st.read_into(path, buf)
        queue.put((os.getpid(), bytes(buf[:16]), len(buf)))
    except BaseException as e:  # the parent asserts on what arrives
        queue.put(("error", repr(e), 0))
