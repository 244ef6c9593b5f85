"""indexed_binary and mmap_indexed_binary: DLIO's data + .off.idx/.sz.idx layout read by numpy, ranged
reads of exactly the samples' bytes (runs of adjacent samples in one read), index files of DLIO's
shape built with numpy (uneven sizes, gaps), the mmap variant copying from the mapping and falling back
to ranged reads off local storage, and FormatError naming the file on missing, short or stale index files."""

from __future__ import annotations

import numpy as np
import pytest

from dlio_core.formats import FormatError
from dlio_core.formats import _indexed_read
from dlio_core.formats.indexed_binary import FORMAT, MMAP_FORMAT, index_paths
from dlio_core.storage import open_storage

FORMATS = [FORMAT, MMAP_FORMAT]


@pytest.fixture
def st(tmp_path):
    return open_storage(str(tmp_path))


@pytest.fixture(autouse=True)
def _fresh_caches():
    _indexed_read.INDEX_CACHE.clear()
    _indexed_read.MAPS.clear()
    yield
    _indexed_read.INDEX_CACHE.clear()
    _indexed_read.MAPS.clear()


class _Remote:
    """A storage that is not local files (no local_path): the mmap variant must read ranges."""

    def __init__(self, inner):
        self.inner, self.reads = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def local_path(self, path):
        return None

    def read_into(self, path, buf, offset=0):
        self.reads.append((path, offset, memoryview(buf).nbytes))
        return self.inner.read_into(path, buf, offset)


def _x(shape, dtype="uint8", seed=1):
    return np.random.default_rng(seed).integers(0, 250, shape).astype(dtype)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
@pytest.mark.parametrize("shape, dtype", [((8, 8, 5), "uint8"), ((3, 4, 2, 6), "float32"), ((17, 3), "int16")])
def test_round_trip_by_content(st, fmt, shape, dtype):
    x = _x(shape, dtype)
    path = f"train/img_0_of_1.{fmt.extension}"
    n = fmt.write_file(st, path, x)
    assert n == st.size(path) == fmt.file_size(x.shape, x.dtype)
    samples = [x[..., i].tobytes() for i in range(shape[-1])]
    assert len(set(samples)) == len(samples)  # distinct, so order and placement are checked
    r = fmt.open_reader(st, path, n)
    order = list(range(shape[-1]))[::-1] + [0]
    nbytes, sample_bytes, got, _, _ = r.read(order, keep=True)
    r.close()
    each = len(samples[0])
    assert [g.tobytes() for g in got] == [samples[i] for i in order]
    assert sample_bytes == each * len(order)
    assert nbytes == each * shape[-1] + 16 * shape[-1]  # each sample once, plus both index files
    # Second reader in the process: the index is cached, only the samples are read.
    assert fmt.open_reader(st, path, n).read([1], keep=False)[:2] == (each, each)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_numpy_reads_our_files_as_dlio_does(st, fmt):
    x = _x((16, 16, 7))
    path = f"a.{fmt.extension}"
    fmt.write_file(st, path, x)
    data = np.fromfile(st.path(path), np.uint8)
    off, sz = (np.fromfile(st.path(p), np.uint64) for p in index_paths(path))  # DLIO reads them so
    assert off.tolist() == [i * 256 for i in range(7)] and sz.tolist() == [256] * 7
    for i in range(7):
        np.testing.assert_array_equal(data[off[i]:off[i] + sz[i]].reshape(16, 16), x[..., i])
    np.testing.assert_array_equal(fmt.parse(st.read(path), path, offsets=off, sizes=sz)[:, 3],
                                  x[..., 3].reshape(-1))


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_reads_index_files_with_uneven_samples_and_gaps(st, fmt):
    # A Megatron-style file built with numpy: samples of different sizes, one gap, listed out of order.
    chunks = [bytes([k]) * s for k, s in enumerate([5, 1, 9, 4])]
    offsets = [0, 5, 10, 19]            # a 1-byte gap before sample 2
    data = bytearray(23)
    for o, c in zip(offsets, chunks):
        data[o:o + len(c)] = c
    path = f"d.{fmt.extension}"
    st.write_atomic(path, bytes(data))
    st.write_atomic(path + ".off.idx", np.array(offsets, "<u8").tobytes())
    st.write_atomic(path + ".sz.idx", np.array([len(c) for c in chunks], "<u8").tobytes())
    r = fmt.open_reader(st, path, 23)
    nbytes, sample_bytes, got, _, _ = r.read([3, 0, 2, 1], keep=True)
    assert [g.tobytes() for g in got] == [chunks[3], chunks[0], chunks[2], chunks[1]]
    assert sample_bytes == nbytes - 64 == 19  # the gap byte is not read
    with pytest.raises(FormatError, match="different sizes"):
        fmt.parse(bytes(data), path, offsets=offsets, sizes=[5, 1, 9, 4])


def test_adjacent_samples_are_one_read_and_mmap_falls_back_off_local_storage(st):
    x = _x((4, 4, 10))
    for fmt in FORMATS:
        path = f"r.{fmt.extension}"
        fmt.write_file(st, path, x)
        remote = _Remote(st)
        got = fmt.open_reader(remote, path, 160).read([2, 3, 4, 8], keep=True)[2]
        assert [g.tobytes() for g in got] == [x[..., i].tobytes() for i in (2, 3, 4, 8)]
        assert remote.reads == [(path, 32, 48), (path, 128, 16)]


def test_mmap_copies_out_of_a_shared_mapping(st):
    x = _x((4, 4, 3))
    MMAP_FORMAT.write_file(st, "m.mmap_indexed_binary", x)
    got = MMAP_FORMAT.open_reader(st, "m.mmap_indexed_binary", 48).read([1], keep=True)[2][0]
    assert got.flags.writeable and got.base is not None  # a copy into the reader's buffer, not the map
    assert len(_indexed_read.MAPS._items) == 1
    MMAP_FORMAT.open_reader(st, "m.mmap_indexed_binary", 48).read([2], keep=False)
    assert len(_indexed_read.MAPS._items) == 1  # mapped once per process
    # Rewritten with other content and the same size: mapped anew, new bytes read.
    y = x[..., ::-1].copy()
    MMAP_FORMAT.write_file(st, "m.mmap_indexed_binary", y)
    got = MMAP_FORMAT.open_reader(st, "m.mmap_indexed_binary", 48).read([0], keep=True)[2][0]
    assert got.tobytes() == y[..., 0].tobytes()


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_failures_name_the_file(st, fmt):
    x = _x((4, 4, 4))
    path = f"f.{fmt.extension}"
    fmt.write_file(st, path, x)
    st.delete(path + ".sz.idx")
    with pytest.raises(FormatError, match=r"f\.\w+\.sz\.idx: missing index file"):
        fmt.open_reader(st, path, 64).read([0], keep=False)
    fmt.write_file(st, path, x)
    st.write_atomic(path + ".off.idx", st.read(path + ".off.idx")[:-3])  # truncated index
    with pytest.raises(FormatError, match=r"off\.idx: 29 bytes is not a whole number"):
        fmt.open_reader(st, path, 64).read([0], keep=False)
    fmt.write_file(st, path, x)
    st.write_atomic(path, st.read(path)[:40])  # truncated data file: the index no longer fits
    with pytest.raises(FormatError, match=r"off\.idx: the index does not fit .*\(40 bytes\)"):
        fmt.open_reader(st, path, 40).read([0], keep=False)
    fmt.write_file(st, path, x)
    with pytest.raises(FormatError, match=r"sample 4 asked for, but the index lists 4"):
        fmt.open_reader(st, path, 64).read([4], keep=False)
    with pytest.raises(FormatError, match="uncompressed"):
        fmt.write_file(st, path, x, compression="gzip")
    with pytest.raises(FormatError, match=r"f\.\w+: an \w+ data file is read with its \.off\.idx"):
        fmt.parse(st.read(path), path)


def test_data_file_shorter_than_listed_is_an_error(st):
    MMAP_FORMAT.write_file(st, "s.mmap_indexed_binary", _x((4, 4, 4)))
    with pytest.raises(FormatError, match=r"s\.mmap_indexed_binary: file is shorter than the 80 bytes listed"):
        MMAP_FORMAT.open_reader(st, "s.mmap_indexed_binary", 80).read([0], keep=False)
    FORMAT.write_file(st, "t.indexed_binary", _x((4, 4, 4)))
    remote = _Remote(st)
    remote.read_into = lambda path, buf, offset=0: 3  # a short read: the file shrank after listing
    with pytest.raises(FormatError, match=r"t\.indexed_binary: read 3 of 16 bytes"):
        FORMAT.open_reader(remote, "t.indexed_binary", 64).read([0], keep=False)
