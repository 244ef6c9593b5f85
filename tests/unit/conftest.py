"""Fixtures shared by the unit tests: the engine's ``dataset`` (files on local storage) and ``mode``
(every read path of the engine). Plain helpers are in ``_engine_helpers.py``."""

from __future__ import annotations

import pytest

from dlio_core.engine import pooled, whole_file
from dlio_core.formats import get_format
from dlio_core.storage import open_storage

from ._engine_helpers import _x


@pytest.fixture
def dataset(tmp_path):
    """Build ``n`` files of ``spf`` samples in ``fmt``; returns (storage, paths, sizes)."""

    def make(n: int, spf: int, fmt: str = "npz", *, vary: bool = False):
        st = open_storage(str(tmp_path))
        f = get_format(fmt)
        paths, sizes = [], []
        for i in range(n):
            dims = (3 + (i % 3 if vary else 0),)
            rel = f"train/f{i:03d}.{fmt}"
            sizes.append(f.write_file(st, rel, _x(i, spf, dims)))
            paths.append(rel)
        return st, paths, sizes

    return make


@pytest.fixture(params=["pooled", "burst", "chunks", "one-by-one", "python-reads"])
def mode(request, monkeypatch):
    """Every read path of the engine for plain local files: native reader threads (pooled.py); Python
    reader threads reading a batch back to back (with the C extension), a large batch a chunk of files
    at a time, or one large file at a time; and Python threads without the C extension
    (os.open/os.preadv/os.close)."""
    if request.param == "pooled" and whole_file._cread is None:
        pytest.skip("the C extension dlio_core.engine._cread is not built")
    if request.param == "pooled":  # every one of read_threads native threads here (the CPU cap has its test)
        monkeypatch.setattr(pooled, "usable_cpus", lambda: 64)
    else:
        monkeypatch.setattr(pooled, "can_pool", lambda inputs, batch_size: False)
    if request.param in ("chunks", "one-by-one"):
        monkeypatch.setattr(whole_file, "BURST_MAX_BYTES", 0)
    if request.param == "chunks":  # a few files a chunk, so that batches have several chunks
        monkeypatch.setattr(whole_file, "CHUNK_MAX_BYTES", 1000)
    if request.param == "one-by-one":
        monkeypatch.setattr(whole_file, "CHUNK_MAX_BYTES", 0)
    if request.param == "python-reads":
        monkeypatch.setattr(whole_file, "_cread", None)
    return request.param
