"""synthetic: DLIO's index text on generation, no I/O on reading (0 bytes read, nominal sample bytes),
one shared zero sample per process, and the configured shape."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from dlio_core.formats import FormatError
from dlio_core.formats.synthetic import FORMAT, SyntheticFormat, file_index
from dlio_core.storage import open_storage


@pytest.fixture
def st(tmp_path):
    return open_storage(str(tmp_path))


def test_writes_dlio_index_text(st):
    for name, text in [("train/img_0_of_4.synthetic", b"0"), ("valid/3/img_0117_of_1024.synthetic", b"117")]:
        n = FORMAT.write_file(st, name, np.zeros((2, 2, 8), np.uint8))
        assert st.read(name) == text and n == len(text)
    assert FORMAT.file_size((2, 2, 8), "uint8") is None
    assert file_index("no-index-here") == 0


def test_reading_does_no_io_and_counts_nominal_bytes(st):
    fmt = FORMAT.configure(NS(record_length_bytes=4096, record_dims=(), record_element_type="uint8",
                              num_samples_per_file=4))
    assert fmt.sample_shape == (64, 64) and fmt.sample_nbytes == 4096
    # The file does not even need to exist: nothing is opened.
    r = fmt.open_reader(st, "train/absent.synthetic", 0)
    n, sample_bytes, samples, io_s, decode_s = r.read([0, 3, 3], keep=True)
    r.close()
    assert (n, sample_bytes, io_s, decode_s) == (0, 3 * 4096, 0.0, 0.0)
    assert all(s is samples[0] for s in samples) and samples[0].shape == (64, 64)
    assert not samples[0].any() and not samples[0].flags.writeable
    assert r.read([1], keep=False)[2] is None
    # One zero sample per shape for the whole process, as DLIO's loader preallocates one batch.
    assert fmt.open_reader(st, "x", 0).sample is samples[0]


def test_record_dims_and_dtype_and_parse(st):
    fmt = SyntheticFormat().configure(NS(record_dims=(3, 5), record_element_type="float32", num_samples_per_file=2))
    r = fmt.open_reader(st, "a.synthetic", 1)
    assert r.read([0], keep=False)[1] == 3 * 5 * 4
    x = fmt.parse(b"7", "a.synthetic")
    assert x.shape == (3, 5, 2) and x.dtype == np.float32 and not x.any()


def test_needs_a_sample_axis(st):
    with pytest.raises(FormatError, match="sample axis"):
        FORMAT.write_file(st, "a.synthetic", np.zeros((), np.uint8))
