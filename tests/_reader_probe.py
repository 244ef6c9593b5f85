"""Probes for the rule "one place turns a config into a reader" (``dlio_core.reader``), shared by the unit
test of the factory and the integration tests of the torch, TF, JAX and DALI paths."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import dlio_core.reader as reader_module
from dlio_core.config import load_config
from dlio_core.generate import generate_dataset
from dlio_core.listing import dataset_files, dataset_storage

# tfrecord's samples per file: a dataset-section option the format's name alone does not carry.
BOUND_TFRECORD = ["++workload.dataset.format=tfrecord", "++workload.dataset.num_samples_per_file=4",
                  "++workload.dataset.num_files_train=4", "++workload.dataset.num_files_eval=0",
                  "++workload.dataset.record_length_bytes=256", "++workload.reader.batch_size=2",
                  "++workload.reader.read_threads=2", "++workload.train.seed=11"]


def bound(fmt: Any) -> bool:
    """Whether ``fmt`` carries :data:`BOUND_TFRECORD`'s samples per file (``get_format`` alone has None)."""
    return fmt.name == "tfrecord" and fmt.samples_per_file == 4


def bound_dataset(folder: Any) -> tuple[Any, Any, list[tuple[str, int]]]:
    """``(cfg, storage, train files)`` of a small generated :data:`BOUND_TFRECORD` dataset under ``folder``."""
    cfg = load_config("default", [f"++workload.dataset.data_folder={folder}/data", *BOUND_TFRECORD])
    generate_dataset(cfg, progress=False)
    storage = dataset_storage(cfg)
    return cfg, storage, dataset_files(cfg, storage, "train")


def record_readers(monkeypatch: Any) -> list[tuple[tuple, dict]]:
    """Replace NativeLoader in ``dlio_core.reader`` by a stand-in; return the list of what the factory passed."""
    built: list[tuple[tuple, dict]] = []

    def record(*args: Any, **kwargs: Any) -> NS:
        built.append((args, kwargs))
        return NS(fmt=args[1])

    monkeypatch.setattr(reader_module, "NativeLoader", record)
    return built
