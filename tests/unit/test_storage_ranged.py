"""Ranged reads through one open file (``Storage.open_ranged`` / ``backend.open_ranged``): a parquet or
indexed binary batch opens each data file once however many spans it reads (the old path opened and
closed the file per span), with the same bytes and samples; nothing stays open after the batch; the
fallback for backends without the method (object stores, wrappers, ``direct://``) goes through their
own ``read_into``; errors name the path."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from dlio_core.engine.ranged import RangedBatches
from dlio_core.engine.read_path import ReadInputs
from dlio_core.formats.indexed_binary import FORMAT as INDEXED
from dlio_core.formats.indexed_binary import INDEX_CACHE
from dlio_core.storage import StorageError, StorageNotFoundError, open_storage
from dlio_core.storage.backend import ReadIntoRanged, open_ranged
from dlio_core.storage.local_ranged import LocalRangedFile


@pytest.fixture
def st(tmp_path):
    return open_storage(str(tmp_path))


@pytest.fixture
def opens(monkeypatch):
    """Paths passed to ``os.open`` while the test runs (the real call still happens)."""
    seen: Counter = Counter()
    real = os.open

    def counting(path, *args, **kwargs):
        seen[os.path.basename(str(path))] += 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    return seen


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _parquet(st, rows=96):
    pytest.importorskip("pyarrow")
    from dlio_core.formats._parquet_read import FOOTERS, GROUPS
    from dlio_core.formats.parquet import ParquetFormat, columns_from
    FOOTERS.clear()
    GROUPS.clear()
    # every third of 12 columns selected: 4 chunks per row group, none adjacent (4 reads per group)
    cols = columns_from([{"name": f"c{i}", "dtype": "float32", "size": 4, "read": i % 3 == 0} for i in range(12)])
    fmt = ParquetFormat(columns=cols, row_group_size=16)
    fmt.write_rows(st, "d.parquet", rows, key=(3, 1))
    return fmt, st.size("d.parquet")


def _batches(st, fmt, path, size, keep=True):
    return RangedBatches(ReadInputs.build(st, fmt, [path], sizes=[size], keep_samples=keep))


def _chunk_bytes(st, path, groups, names):
    import pyarrow.parquet as pq
    meta = pq.ParquetFile(st.path(path)).metadata
    total = 0
    for g in groups:
        rg = meta.row_group(g)
        total += sum(rg.column(j).total_compressed_size for j in range(rg.num_columns)
                     if rg.column(j).path_in_schema.split(".")[0] in names)
    return total


@pytest.mark.parametrize("shuffled", [False, True])
def test_parquet_batch_opens_its_file_once(st, opens, shuffled):
    fmt, size = _parquet(st)
    reads = _batches(st, fmt, "d.parquet", size)
    rows = np.arange(8, 56)  # row groups 0..3 (16 rows each): 16 spans, plus the footer
    if shuffled:
        rows = np.random.default_rng(0).permutation(rows)
    before = _open_fds()
    batch = reads.read(0, np.zeros(len(rows), np.int64), rows, None, None)
    assert opens["d.parquet"] == 1  # one open for the footer and every chunk; one per span before
    assert _open_fds() == before    # and it is closed when the batch is read
    from dlio_core.formats._parquet_read import footer_tail_bytes
    footer_len = int(np.frombuffer(st.read("d.parquet")[-8:-4], "<u4")[0])
    footer = max(footer_tail_bytes(size), footer_len + 8)
    assert batch.bytes_read == footer + _chunk_bytes(st, "d.parquet", range(4), {"c0", "c3", "c6", "c9"})
    assert batch.num_samples == len(rows) and len(batch.samples) == len(rows)

    opens.clear()  # the next batch: rows 56..63 of group 3 (cached) and group 4 (read): one open again
    batch2 = reads.read(1, np.zeros(16, np.int64), np.arange(56, 72), None, None)
    assert opens["d.parquet"] == 1
    assert batch2.bytes_read == _chunk_bytes(st, "d.parquet", [4], {"c0", "c3", "c6", "c9"})


def test_parquet_cached_batch_opens_nothing(st, opens):
    fmt, size = _parquet(st)
    reads = _batches(st, fmt, "d.parquet", size)
    reads.read(0, np.zeros(8, np.int64), np.arange(8), None, None)
    opens.clear()
    batch = reads.read(1, np.zeros(8, np.int64), np.arange(8, 16), None, None)  # rest of group 0: cached
    assert opens["d.parquet"] == 0 and batch.bytes_read == 0


def test_parquet_samples_same_in_any_order(st):
    fmt, size = _parquet(st)
    rows = np.random.default_rng(1).permutation(96)[:40]
    got = _batches(st, replace(fmt, decode=True), "d.parquet", size).read(0, np.zeros(40, np.int64), rows, None, None)
    import pyarrow.parquet as pq
    table = pq.read_table(st.path("d.parquet"), columns=["c0", "c3", "c6", "c9"])
    for r, sample in zip(rows.tolist(), got.samples):
        want = np.concatenate([np.asarray(table.column(c)[r].as_py(), np.float32) for c in ("c0", "c3", "c6", "c9")])
        assert sample.tobytes() == want.tobytes()


def _indexed(st, samples=64, each=8):
    INDEX_CACHE.clear()
    x = np.random.default_rng(2).integers(0, 255, (each, samples)).astype(np.uint8)
    size = INDEXED.write_file(st, "d.indexed_binary", x)
    return x, size


@pytest.mark.parametrize("shuffled", [False, True])
def test_indexed_batch_opens_its_data_file_once(st, opens, shuffled):
    x, size = _indexed(st)
    want = np.concatenate([np.arange(0, 10), np.arange(20, 30), np.arange(40, 50)])  # three runs: three reads
    if shuffled:
        want = np.random.default_rng(3).permutation(want)
    before = _open_fds()
    batch = _batches(st, INDEXED, "d.indexed_binary", size).read(0, np.zeros(30, np.int64), want, None, None)
    assert opens["d.indexed_binary"] == 1  # three before
    assert _open_fds() == before
    assert batch.sample_bytes == 30 * 8
    assert batch.bytes_read == 30 * 8 + 2 * 64 * 8  # the samples, and both index files the first time
    assert [s.tobytes() for s in batch.samples] == [x[:, i].tobytes() for i in want.tolist()]


def test_indexed_repeated_samples_still_read_once_each(st):
    x, size = _indexed(st)
    want = np.array([5, 3, 5, 4, 3])
    batch = _batches(st, INDEXED, "d.indexed_binary", size).read(0, np.zeros(5, np.int64), want, None, None)
    assert batch.bytes_read - 2 * 64 * 8 == 3 * 8 and batch.sample_bytes == 5 * 8
    assert [s.tobytes() for s in batch.samples] == [x[:, i].tobytes() for i in want.tolist()]


class _Counting:
    """A storage wrapper with its own ``read_into`` that forwards everything else (as test and
    instrumenting wrappers do): ranged reads must go through its ``read_into``."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def read_into(self, path, buf, offset=0):
        self.calls.append((path, offset))
        return self.inner.read_into(path, buf, offset)


def test_backends_without_the_method_fall_back_to_their_read_into(st):
    st.write_atomic("a.bin", b"0123456789")
    wrapped = _Counting(st)
    f = open_ranged(wrapped, "a.bin")
    assert isinstance(f, ReadIntoRanged)
    buf = bytearray(3)
    assert (f.read_into(buf, 2), bytes(buf)) == (3, b"234")
    assert f.read_into(buf, 8) == 2  # short only at the end of the file
    f.close()
    assert wrapped.calls == [("a.bin", 2), ("a.bin", 8)]


def test_direct_storage_keeps_its_own_read_into(tmp_path):
    from dlio_core.storage.direct import DirectStorage
    try:
        direct = DirectStorage(str(tmp_path))
    except StorageError as e:  # a platform without O_DIRECT
        pytest.skip(str(e))
    assert isinstance(direct.open_ranged("x.bin"), ReadIntoRanged)
    assert isinstance(open_ranged(open_storage(str(tmp_path)), "x.bin"), LocalRangedFile)


def test_local_ranged_file_errors_name_the_path(st):
    f = st.open_ranged("missing.bin")  # nothing opened until a read
    with pytest.raises(StorageNotFoundError, match="missing.bin"):
        f.read_into(bytearray(4), 0)
    f.close()
    st.write_atomic("a.bin", b"abcd")
    with st.open_ranged("a.bin") as g:
        with pytest.raises(StorageError, match="read-only"):
            g.read_into(b"xx", 0)
        with pytest.raises(StorageError, match="C-contiguous"):
            g.read_into(np.zeros((4, 4), np.uint8)[:, 1], 0)
        assert g.read_into(bytearray(4), 10) == 0  # past the end: nothing
    g.close()  # a second close does nothing


def test_local_read_into_unchanged(st):
    st.write_atomic("a.bin", bytes(range(256)) * 4)
    buf = np.empty(100, np.uint8)
    assert st.read_into("a.bin", buf, 1000) == 24 and buf[:24].tolist() == list(range(232, 256))
    with pytest.raises(StorageNotFoundError, match="nope.bin"):
        st.read_into("nope.bin", buf)
