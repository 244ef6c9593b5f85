"""Batches too big for one burst: chunks of files read side by side (``whole_file.read_large``), and raw
image bytes, whose parse looks at lengths only (``parse_reads_length_only``), read a batch at a time into
one reused buffer (pooled or threaded path); figures as file-by-file reads give them, errors naming the
first bad file in order."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from dlio_core.engine import NativeLoader, ReadError, pooled, whole_file
from dlio_core.formats import get_format
from dlio_core.storage import open_storage

from ._engine_helpers import _drain, _plan, _run_in_thread

pytestmark = pytest.mark.timeout(60)


def _raw_images(tmp_path, n: int):
    st = open_storage(str(tmp_path))
    fmt = get_format("jpeg").configure(NS(num_samples_per_file=1, image_encoding="raw"), NS(decode=False))
    paths, sizes = [], []
    for i in range(n):
        x = np.full((20 + i % 3, 16, 1), i, np.uint8)  # sizes differ: 320, 336, 352 bytes
        paths.append(f"train/img_{i:03d}.jpeg")
        sizes.append(fmt.write_file(st, paths[-1], x))
    return st, fmt, paths, sizes


@pytest.fixture
def large(monkeypatch):
    """Every batch counts as too big for one burst; the calls to the C reads are recorded."""
    monkeypatch.setattr(whole_file, "BURST_MAX_BYTES", 0)
    calls = []
    real = whole_file.WholeFileBatches.read_files

    def spy(self, paths, bufs, sizes):
        starts = {np.frombuffer(b, np.uint8).ctypes.data for b in bufs}  # where each read lands
        calls.append((len(paths), len(starts)))
        return real(self, paths, bufs, sizes)

    monkeypatch.setattr(whole_file.WholeFileBatches, "read_files", spy)
    return calls


@pytest.mark.parametrize("path", ["pooled", "threaded"])
def test_raw_image_bytes_land_in_one_buffer_a_batch_with_every_file_counted(tmp_path, monkeypatch, large, path):
    st, fmt, paths, sizes = _raw_images(tmp_path, 12)
    assert fmt.parse_reads_length_only and not get_format("jpeg").parse_reads_length_only
    if path == "threaded":
        monkeypatch.setattr(pooled, "can_pool", lambda inputs, batch_size: False)
    elif whole_file._cread is None:
        pytest.skip("the C extension _cread is not built")
    planned = []
    real = whole_file.WholeFileBatches.prepare

    def spy(self, files, scratch):
        prep = real(self, files, scratch)
        planned.append({np.frombuffer(b, np.uint8).ctypes.data for b in prep.bufs})
        return prep

    monkeypatch.setattr(whole_file.WholeFileBatches, "prepare", spy)
    loader = NativeLoader(st, fmt, paths, sizes=sizes, read_threads=2)
    assert loader.read_path(6).name == path
    batches = _drain(loader, _plan(12, 1, 6))
    assert [b.num_samples for b in batches] == [6, 6]
    assert sum(b.bytes_read for b in batches) == sum(sizes) == sum(b.sample_bytes for b in batches)
    assert [len(p) for p in planned] == [1, 1]  # every file of a batch into the same memory
    if path == "threaded":
        assert [c[0] for c in large] == [6, 6]  # one read call a batch


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_raw_image_batch_names_the_bad_file(tmp_path, large, damage):
    st, fmt, paths, sizes = _raw_images(tmp_path, 12)
    if damage == "truncated":
        with open(st.path(paths[8]), "r+b") as f:
            f.truncate(sizes[8] - 1)
    else:
        (tmp_path / paths[8]).unlink()
    loader = NativeLoader(st, fmt, paths, sizes=sizes, read_threads=1)
    box = _run_in_thread(lambda: _drain(loader, _plan(12, 1, 6)))
    assert isinstance(box.get("error"), ReadError) and "img_008.jpeg" in str(box["error"])


def test_chunks_give_the_figures_of_file_by_file_reads(tmp_path, monkeypatch, large):
    st = open_storage(str(tmp_path))
    npz = get_format("npz")
    paths = [f"train/f{i:02d}.npz" for i in range(10)]
    sizes = [npz.write_file(st, p, np.full((30 + i, 1), i, np.uint32)) for i, p in enumerate(paths)]
    figures = []
    for chunk in (0, 3 * max(sizes)):
        monkeypatch.setattr(whole_file, "CHUNK_MAX_BYTES", chunk)
        loader = NativeLoader(st, npz, paths, sizes=sizes, read_threads=1)
        figures.append([(b.num_samples, b.bytes_read, b.sample_bytes) for b in _drain(loader, _plan(10, 1, 5))])
    assert figures[0] == figures[1] and sum(f[1] for f in figures[0]) == sum(sizes)
    calls = [c[0] for c in large]
    assert calls[:10] == [1] * 10 and max(calls[10:]) == 3  # file by file, then chunks of up to three
    assert all(c[1] == c[0] for c in large)  # side by side: each file of a chunk in its own place
