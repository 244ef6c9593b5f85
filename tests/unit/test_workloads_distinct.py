"""Generated samples are distinct from each other in every format (no repeated content, within a file or
across files), so a reader can be checked by content: a sample read twice, or one read in the place of
another, shows. Each format's dataset is generated small and read back whole by the native engine, in
both read modes. ``synthetic`` is the exception by design: it reads nothing and hands out zero samples
(the harness-overhead baseline; tests/unit/test_formats_synthetic.py)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from dlio_core.generate import generate_dataset
from dlio_core.listing import dataset_files, dataset_storage
from dlio_core.reader import epoch_plan, native_reader

from ._workload_helpers import small_cfg

# format -> overrides beyond small_cfg's (4 files, batch 4); images hold one sample a file
FORMATS = {
    "npz": ("++workload.dataset.num_samples_per_file=4",),
    "npy": ("++workload.dataset.num_samples_per_file=4",),
    "hdf5": ("++workload.dataset.num_samples_per_file=4",),
    "tfrecord": ("++workload.dataset.num_samples_per_file=4",),
    "csv": ("++workload.dataset.num_samples_per_file=4",),
    "jpeg": (),
    "png": (),
    "indexed_binary": ("++workload.dataset.num_samples_per_file=4",),
    "mmap_indexed_binary": ("++workload.dataset.num_samples_per_file=4",),
    "parquet": ("++workload.dataset.num_samples_per_file=4",),
}
FORMAT_EXTRAS = {"hdf5": "h5py", "parquet": "pyarrow", "jpeg": "PIL", "png": "PIL"}


def _sample_digests(cfg) -> list[str]:
    """The digest of every sample of one epoch, taken as each batch arrives (kept samples are views of
    pooled buffers that later batches reuse)."""
    st = dataset_storage(cfg)
    files = dataset_files(cfg, st, "train")
    digests = []
    for batch in native_reader(cfg, st, files, keep_samples=True).epoch(epoch_plan(cfg, epoch=1)):
        digests += [hashlib.sha256(np.ascontiguousarray(s).tobytes()).hexdigest() for s in batch.samples]
    return digests


@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "decode"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_generated_sample_is_distinct(tmp_path, fmt, decode):
    if fmt in FORMAT_EXTRAS:
        pytest.importorskip(FORMAT_EXTRAS[fmt], reason=f"{fmt} needs the formats/hdf5 extra")
    cfg = small_cfg(tmp_path, f"++workload.dataset.format={fmt}", "++workload.dataset.record_length_bytes=256",
                    f"++workload.reader.decode={decode}", *FORMATS[fmt])
    generate_dataset(cfg, progress=False)
    digests = _sample_digests(cfg)
    expected = 4 * cfg.dataset.num_samples_per_file
    assert len(digests) == expected
    assert len(set(digests)) == expected, f"{fmt}: {expected - len(set(digests))} samples repeat another's content"


def test_the_check_sees_a_repeated_sample(tmp_path):
    """The digest check is not vacuous: a file copied over another makes its samples repeat."""
    import shutil

    cfg = small_cfg(tmp_path, "++workload.dataset.format=npy", "++workload.dataset.record_length_bytes=256")
    generate_dataset(cfg, progress=False)
    st = dataset_storage(cfg)
    (a, _), (b, _) = dataset_files(cfg, st, "train")[:2]
    shutil.copyfile(st.path(a), st.path(b))
    digests = _sample_digests(cfg)
    assert len(digests) == 4 and len(set(digests)) == 3


def test_parquet_rows_from_a_schema_are_distinct(tmp_path):
    pytest.importorskip("pyarrow")
    cfg = small_cfg(tmp_path, "++workload.dataset.format=parquet", "++workload.dataset.num_samples_per_file=6",
                    "++workload.dataset.parquet={row_group_size: 2, columns: [{name: a, dtype: int8}, "
                    "{name: b, dtype: float16, size: 3}, {name: c, dtype: float32, read: false}]}")
    generate_dataset(cfg, progress=False)
    for decode in (False, True):
        from dlio_core.config import load_config

        digests = _sample_digests(load_config(cfg, [f"++workload.reader.decode={decode}"]))
        assert len(digests) == 24 and len(set(digests)) == 24
