"""hdf5: both DLIO layouts written (h5py sees the datasets, chunking, compression and max shape the
config asks for), files laid out exactly as DLIO 2.0.0 and HEAD write them (fixtures written here
with h5py, independently of our writer) read back by our reader, bytes read counted (samples only
once the layout is known), byte-identical regeneration, and FormatError naming bad files."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="h5py is the hdf5 extra: pip install 'dl-driver[hdf5]'")

from dlio_core.config import ConfigError, load_config  # noqa: E402
from dlio_core.formats import FormatError, format_for, get_format  # noqa: E402
from dlio_core.formats import _hdf5_read  # noqa: E402
from dlio_core.formats.hdf5 import HDF5Format  # noqa: E402
from dlio_core.generate import DatasetError, generate_dataset  # noqa: E402
from dlio_core.storage import open_storage  # noqa: E402


@pytest.fixture
def st(tmp_path):
    return open_storage(str(tmp_path))


@pytest.fixture(autouse=True)
def _fresh_cache():
    _hdf5_read.LAYOUT_CACHE.clear()
    yield
    _hdf5_read.LAYOUT_CACHE.clear()


def _x(d1=8, d2=6, n=5, seed=0, dtype="uint8"):
    return np.random.default_rng(seed).integers(0, 255, (d1, d2, n)).astype(dtype)


def _read(st, path, indices, keep=True):
    r = get_format("hdf5").open_reader(st, path, st.size(path))
    try:
        return r.read(indices, keep)
    finally:
        r.close()


# --- writing: layouts and options as h5py sees them ------------------------------------------------------

def test_head_layout_default(st):
    x = _x()
    get_format("hdf5").write_file(st, "a.hdf5", x)
    with h5py.File(st.path("a.hdf5"), "r") as f:
        assert sorted(f) == ["labels", "records_0"]
        assert f["records_0"].shape == (5, 8, 6) and f["records_0"].dtype == np.uint8
        assert f["records_0"].chunks is None and f["records_0"].compression is None
        assert f["labels"][()].tolist() == [0] * 5 and f["labels"].dtype == np.int64
        assert np.array_equal(f["records_0"][3], x[..., 3])
    assert st.read("a.hdf5")[8] == 3                    # superblock v3: libver='latest', as HEAD opens it


def test_head_layout_k_datasets_split_each_sample(st):
    x = _x(d1=6, d2=4, n=3)
    HDF5Format(num_dset_per_record=3).write_file(st, "k.hdf5", x)
    with h5py.File(st.path("k.hdf5"), "r") as f:
        assert sorted(f) == ["labels", "records_0", "records_1", "records_2"]
        assert all(f[f"records_{j}"].shape == (3, 2, 4) for j in range(3))
        assert np.array_equal(np.concatenate([f[f"records_{j}"][1] for j in range(3)]), x[..., 1])
    # record_dims (3, 5, 4) with k = 3: DLIO HEAD drops the leading 1 -> (n, 5, 4) per dataset
    y = np.random.default_rng(1).integers(0, 9, (3, 5, 4, 2)).astype(np.uint8)
    HDF5Format(num_dset_per_record=3).write_file(st, "k3.hdf5", y)
    with h5py.File(st.path("k3.hdf5"), "r") as f:
        assert f["records_2"].shape == (2, 5, 4) and np.array_equal(f["records_2"][1], y[2, ..., 1])
    _, _, samples, _, _ = _read(st, "k3.hdf5", [1])
    assert samples[0].tobytes() == y[..., 1].tobytes()


def test_dlio_2_0_0_layout(st):
    x = _x()
    HDF5Format(layout="records").write_file(st, "old.hdf5", x)
    with h5py.File(st.path("old.hdf5"), "r") as f:
        assert sorted(f) == ["labels", "records"] and f["records"].shape == (5, 8, 6)
        assert np.array_equal(f["records"][4], x[..., 4])
    assert st.read("old.hdf5")[8] == 0                  # superblock v0: h5py's default, as 2.0.0 wrote
    with pytest.raises(FormatError, match="num_dset_per_record=2 needs dataset.hdf5.layout: records_k"):
        HDF5Format(layout="records", num_dset_per_record=2)


def _ds(**kw):
    from types import SimpleNamespace as NS
    h = NS(layout=kw.pop("layout", "records_k"), chunk_dims=kw.pop("chunk_dims", ()),
           num_dset_per_record=kw.pop("k", 1), max_shape=kw.pop("max_shape", ()))
    base = dict(format="hdf5", hdf5=h, enable_chunking=False, chunk_size=0, compression_level=4,
                record_length_bytes=64 * 64, num_samples_per_file=4)
    base.update(kw)
    return NS(**base)


@pytest.mark.parametrize("ds, chunks", [
    (_ds(chunk_dims=(1, 16, 32)), (1, 16, 32)),                                  # HEAD: chunk_dims as given
    (_ds(chunk_dims=(2, 100, 100)), (2, 64, 64)),                               # clipped to the file's shape
    (_ds(enable_chunking=True, chunk_size=100), (1, 10, 10)),                   # 2.0.0: ceil(sqrt(chunk_size))
    (_ds(enable_chunking=True, chunk_size=10**6, layout="records"), (1, 64, 64)),   # capped at the dimension
])
def test_chunking_options(st, ds, chunks):
    fmt = format_for(ds)
    fmt.write_file(st, "c.hdf5", _x(64, 64, 4))
    with h5py.File(st.path("c.hdf5"), "r") as f:
        name = "records" if fmt.layout == "records" else "records_0"
        assert f[name].chunks == chunks
    _, _, samples, _, _ = _read(st, "c.hdf5", [3, 0])
    assert np.array_equal(samples[0], _x(64, 64, 4)[..., 3])


def test_compression_and_max_shape(st):
    x = _x(64, 64, 4)
    format_for(_ds(compression_level=7)).write_file(st, "g.hdf5", x, compression="gzip")
    format_for(_ds()).write_file(st, "l.hdf5", x, compression="lzf")
    format_for(_ds(max_shape=(None, 128))).write_file(st, "m.hdf5", x)
    with h5py.File(st.path("g.hdf5"), "r") as f:
        assert (f["records_0"].compression, f["records_0"].compression_opts) == ("gzip", 7)
    with h5py.File(st.path("l.hdf5"), "r") as f:
        assert f["records_0"].compression == "lzf"
    with h5py.File(st.path("m.hdf5"), "r") as f:
        assert f["records_0"].maxshape == (4, None, 128) and f["records_0"].chunks is not None
    for p in ("g.hdf5", "l.hdf5", "m.hdf5"):
        _, sb, samples, _, _ = _read(st, p, [2, 1])
        assert sb == 2 * 4096 and np.array_equal(samples[1], x[..., 1])
    with pytest.raises(FormatError, match="not an HDF5 filter"):
        HDF5Format().write_file(st, "b.hdf5", x, compression="bz2")
    with pytest.raises(FormatError, match="chunk_dims .* has 2 dims"):
        HDF5Format(chunk_dims=(1, 8)).write_file(st, "b.hdf5", x)
    with pytest.raises(FormatError, match="gzip levels are 0..9"):
        HDF5Format(compression_level=12).write_file(st, "b.hdf5", x, compression="gzip")


def test_rewrite_is_byte_identical(st):
    x = _x()
    for fmt in (HDF5Format(), HDF5Format(layout="records"), HDF5Format(chunk_dims=(1, 4, 4)),
                HDF5Format(num_dset_per_record=2), HDF5Format(max_shape=(None, 7)),
                HDF5Format(enable_chunking=True, chunk_size=20)):
        assert fmt.build(x) == fmt.build(x.copy())
        assert fmt.build(x, compression="gzip") == fmt.build(x.copy(), compression="gzip")
        assert fmt.build(x, compression="lzf") == fmt.build(x.copy(), compression="lzf")


# --- reading files laid out exactly as DLIO writes them ----------------------------------------------------

def _dlio_2_0_0_file(path, n, d1, d2, chunks=None, compression=None):
    """As DLIO 2.0.0's hdf5_generator: records (n, d1, d2) filled from a (d1, d2, n) array, labels."""
    records = np.random.default_rng(7).integers(0, 255, (d1, d2, n), dtype=np.uint8)
    with h5py.File(path, "w") as hf:
        hf.create_dataset("records", (n, d1, d2), chunks=chunks, compression=compression,
                          compression_opts=None, dtype=np.uint8, data=records)
        hf.create_dataset("labels", data=[0] * n)
    return records.reshape(n, d1, d2)            # h5py stores the buffer as given


def _dlio_head_file(path, n, shape, k, chunk_dims=(), compression=None, level=None):
    """As DLIO HEAD's hdf5_generator: the same records array in records_0..k-1, libver latest, labels."""
    records = np.random.default_rng(8).integers(0, 255, (n, *shape), dtype=np.uint8)
    kwargs = {"chunks": tuple(chunk_dims)} if chunk_dims else {}
    with h5py.File(path, "w", libver="latest") as hf:
        for j in range(k):
            hf.create_dataset(f"records_{j}", (n, *shape), compression=compression, compression_opts=level,
                              dtype=np.uint8, data=records, **kwargs)
        hf.create_dataset("labels", data=[0] * n)
    return records


@pytest.mark.parametrize("chunks, compression", [(None, None), ((1, 8, 8), None), ((1, 8, 8), "gzip")])
def test_reads_dlio_2_0_0_files(st, chunks, compression):
    want = _dlio_2_0_0_file(st.path("img_0_of_1.hdf5"), 6, 16, 12, chunks, compression)
    n, sb, samples, _, _ = _read(st, "img_0_of_1.hdf5", [5, 0, 2])
    assert sb == 3 * 16 * 12
    assert all(np.array_equal(s, want[i]) for s, i in zip(samples, (5, 0, 2)))


@pytest.mark.parametrize("k, chunk_dims, compression", [(1, (), None), (3, (), None), (2, (1, 4, 12), "gzip"),
                                                        (2, (), "lzf")])
def test_reads_dlio_head_files(st, k, chunk_dims, compression):
    want = _dlio_head_file(st.path("h.hdf5"), 5, (8, 12), k, chunk_dims, compression, 4 if compression == "gzip"
                           else None)
    n, sb, samples, _, _ = _read(st, "h.hdf5", [4, 1])
    assert sb == 2 * k * 8 * 12
    for s, i in zip(samples, (4, 1)):
        assert np.array_equal(s, np.concatenate([want[i]] * k))


def test_contiguous_files_read_exactly_the_sample_bytes_once_known(st):
    x = _x(64, 64, 8)
    HDF5Format().write_file(st, "e.hdf5", x)
    first, sb, _, _, _ = _read(st, "e.hdf5", [1, 2, 7], keep=False)
    assert sb == 3 * 4096 and 3 * 4096 < first < 4 * 4096           # the samples plus ~1 KiB of metadata
    again, sb2, samples, _, _ = _read(st, "e.hdf5", [7, 1, 2, 1])
    assert again == 3 * 4096 and sb2 == 4 * 4096              # layout cached; duplicates read once
    assert np.array_equal(samples[3], x[..., 1]) and np.shares_memory(samples[1], samples[3])


def test_bad_files_are_format_errors_naming_them(st):
    HDF5Format().write_file(st, "t.hdf5", _x(64, 64, 8))
    raw = st.read("t.hdf5")
    st.write_atomic("t.hdf5", raw[: len(raw) - 5000])
    with pytest.raises(FormatError, match=r"t\.hdf5"):
        _read(st, "t.hdf5", [7])
    st.write_atomic("junk.hdf5", b"this is not hdf5" * 100)
    with pytest.raises(FormatError, match=r"junk\.hdf5: not a readable HDF5 file"):
        _read(st, "junk.hdf5", [0])
    with h5py.File(st.path("other.hdf5"), "w") as f:
        f.create_dataset("images", data=np.zeros((2, 2), np.uint8))
    with pytest.raises(FormatError, match=r"other\.hdf5: no 'records'"):
        _read(st, "other.hdf5", [0])
    HDF5Format().write_file(st, "ok.hdf5", _x(n=3))
    with pytest.raises(FormatError, match=r"ok\.hdf5: sample 3 asked for, but the file holds 3"):
        _read(st, "ok.hdf5", [3])


def test_parse_whole_file_either_layout(st):
    x = _x()
    for fmt in (HDF5Format(), HDF5Format(layout="records")):
        fmt.write_file(st, "p.hdf5", x)
        assert np.array_equal(get_format("hdf5").parse(st.read("p.hdf5"), "p.hdf5"), x)


# --- generation through the config -------------------------------------------------------------------------

def _cfg(folder, *extra):
    return load_config("default", [f"++workload.dataset.data_folder={folder}", "++workload.dataset.format=hdf5",
                                   "++workload.dataset.num_files_train=6", "++workload.dataset.num_files_eval=2",
                                   "++workload.dataset.num_samples_per_file=3", *extra])


def _tree(root):
    out = {}
    for d, _, names in os.walk(root):
        for name in names:
            if name != "dl-driver-manifest.json":
                with open(os.path.join(d, name), "rb") as f:
                    out[os.path.relpath(os.path.join(d, name), root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_generate_from_config_both_layouts_identical_rerun(tmp_path):
    m = generate_dataset(_cfg(tmp_path / "a"), progress=False, threads=2)
    generate_dataset(_cfg(tmp_path / "b"), progress=False, threads=1)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert m.train[0][0] == "train/0/img_0_of_6.hdf5"
    for rel, size in m.train + m.valid:
        assert (tmp_path / "a" / rel).stat().st_size == size
    with h5py.File(tmp_path / "a" / m.train[0][0], "r") as f:
        assert sorted(f) == ["labels", "records_0"] and f["records_0"].shape == (3, 64, 64)
    m2 = generate_dataset(_cfg(tmp_path / "c", "++workload.dataset.hdf5.layout=records",
                               "++workload.dataset.compression=gzip", "++workload.dataset.enable_chunking=True",
                               "++workload.dataset.chunk_size=1024"), progress=False)
    with h5py.File(tmp_path / "c" / m2.valid[0][0], "r") as f:
        assert sorted(f) == ["labels", "records"]
        assert f["records"].chunks == (1, 32, 32) and f["records"].compression == "gzip"


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="dataset.hdf5.layout"):
        _cfg(tmp_path, "++workload.dataset.hdf5.layout=flat")
    with pytest.raises(ConfigError, match="num_dset_per_record: 2 needs dataset.hdf5.layout: records_k"):
        _cfg(tmp_path, "++workload.dataset.hdf5.layout=records", "++workload.dataset.hdf5.num_dset_per_record=2")
    with pytest.raises(DatasetError, match="compression=xz is not an HDF5 filter"):
        generate_dataset(_cfg(tmp_path / "x", "++workload.dataset.compression=xz"), progress=False)
