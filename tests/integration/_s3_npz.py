"""A small npz dataset on the test S3 server, shared by the plugin tests that read from object stores."""

from __future__ import annotations

import numpy as np

from dlio_core.config import load_config
from dlio_core.formats import get_format
from dlio_core.generate import generate_dataset
from dlio_core.storage import open_storage

FILES, SPF, DIM, BATCH = 6, 4, 8, 4


def s3_overrides(folder: str, options: dict, *extra: str) -> list[str]:
    """The default workload shrunk to ``FILES`` npz files of ``SPF`` samples under ``folder`` on S3."""
    return [f"++workload.dataset.data_folder={folder}", "++workload.dataset.format=npz",
            *(f"++workload.storage.storage_options.{k}={v}" for k, v in options.items()),
            f"++workload.dataset.num_files_train={FILES}", "++workload.dataset.num_files_eval=0",
            f"++workload.dataset.num_samples_per_file={SPF}", f"++workload.dataset.record_length_bytes={DIM * DIM}",
            "++workload.dataset.num_subfolders_train=0", f"++workload.reader.batch_size={BATCH}",
            "++workload.reader.read_threads=2", *extra]


def generate_samples(folder: str, options: dict) -> list[bytes]:
    """Generate the dataset on S3 and return every sample's bytes (distinct, so reads can be counted)."""
    manifest = generate_dataset(load_config("default", s3_overrides(folder, options)), progress=False)
    st = open_storage(folder, options)
    fmt = get_format("npz")
    samples: list[bytes] = []
    for rel, _ in manifest.train:
        x = fmt.parse(np.frombuffer(st.read(rel), np.uint8), rel)
        samples += [x[..., i].tobytes() for i in range(SPF)]
    assert len(samples) == FILES * SPF and len(set(samples)) == len(samples)  # samples can be told apart
    return samples


def assert_each_epoch_reads_every_sample_once(read_epoch, samples: list[bytes]) -> None:
    """``read_epoch(epoch, shuffle_overrides) -> list[bytes]`` over epochs 1 and 2 (seeded shuffles): every
    sample exactly once per epoch, in an order that changes between epochs."""
    from collections import Counter

    shuffled = ["++workload.reader.sample_shuffle=seed", "++workload.reader.file_shuffle=seed"]
    orders = []
    for epoch in (1, 2):
        got = read_epoch(epoch, shuffled)
        assert Counter(got) == Counter(samples)  # every sample exactly once per epoch
        orders.append(got)
    assert orders[0] != orders[1]  # the shuffle changes per epoch
