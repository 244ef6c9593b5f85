"""npy/npz: files np.load reads as DLIO's arrays, byte-identical to np.save/np.savez (timestamps aside),
exact predicted sizes, zero-copy parse equal to np.load, and FormatError naming the file on bad bytes."""

from __future__ import annotations

import hashlib
import io
import time
import timeit
import zipfile
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st_

from dlio_core.formats import Format, FormatError, get_format, supported_formats
from dlio_core.formats import _zip, npy, npz
from dlio_core.storage import open_storage

DTYPES = ["uint8", "int16", "float32", "float64", "<u4", ">i2", "bool"]


@pytest.fixture
def st(tmp_path):
    return open_storage(str(tmp_path))


def _x(shape, dtype="uint8", seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.random(shape).astype(dt)
    if dt.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(0, 100, shape).astype(dt)


def _fixed_time():
    # np.savez stamps localtime(); pin it to the ZIP epoch our writer uses.
    return mock.patch.object(zipfile.time, "localtime", lambda *a: time.struct_time((1980, 1, 1, 0, 0, 0, 1, 1, 0)))


def _joined(parts) -> bytes:
    return b"".join(bytes(memoryview(p).cast("B")) for p in parts)


# --- registry -------------------------------------------------------------------------------------------

def test_registry():
    assert supported_formats() == ("csv", "hdf5", "indexed_binary", "jpeg", "mmap_indexed_binary", "npy", "npz",
                                   "parquet", "png", "synthetic", "tfrecord")
    assert get_format("npz").name == "npz" and get_format("NPY").extension == "npy"
    for name in supported_formats():  # every DLIO format (HEAD and the MLCommons fork) has a module
        fmt = get_format(name)
        assert isinstance(fmt, Format) and fmt.name == name == fmt.extension
    with pytest.raises(FormatError, match="did you mean 'npz'"):
        get_format("npzz")


# --- writing ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, dtype", [((64, 64, 1), "uint8"), ((3, 5, 7), "float32"), ((10, 10, 4), "int16"),
                                          ((2, 3, 4, 5), "float64"), ((1, 1, 1), "uint8"), ((0, 4, 2), "uint8")])
def test_npz_matches_np_savez_byte_for_byte(shape, dtype):
    x = _x(shape, dtype)
    n = shape[-1]
    with _fixed_time():
        ref, refc = io.BytesIO(), io.BytesIO()
        np.savez(ref, x=x, y=[0] * n)            # DLIO's call
        np.savez_compressed(refc, x=x, y=[0] * n)  # what DLIO means by compression: zip
    stored = _joined(_zip.build([(name, p, _zip.STORED) for name, p in npz.members(x)]))
    deflated = _joined(_zip.build([(name, p, _zip.DEFLATED) for name, p in npz.members(x)]))
    assert stored == ref.getvalue()
    assert deflated == refc.getvalue()
    assert npz.file_size(shape, dtype) == len(stored)


@pytest.mark.parametrize("shape, dtype", [((64, 64, 1), "uint8"), ((3, 5, 7), "float32"), ((2, 3, 4, 5), "<u4")])
def test_npy_matches_np_save_byte_for_byte(st, shape, dtype):
    x = _x(shape, dtype)
    ref = io.BytesIO()
    np.save(ref, x)  # DLIO's call
    n = npy.write_file(st, "a.npy", x)
    assert st.read("a.npy") == ref.getvalue() and n == len(ref.getvalue()) == npy.file_size(shape, dtype)


@pytest.mark.parametrize("fmt", ["npz", "npy"])
def test_written_files_open_with_np_load_as_dlio_arrays(st, fmt):
    f = get_format(fmt)
    x = _x((32, 32, 3))
    n = f.write_file(st, f"d/a.{fmt}", x)
    assert n == st.size(f"d/a.{fmt}") == f.file_size(x.shape, x.dtype)
    loaded = np.load(st.path(f"d/a.{fmt}"))
    if fmt == "npz":
        assert sorted(loaded.files) == ["x", "y"]
        assert loaded["x"].shape == (32, 32, 3) and loaded["x"].dtype == np.uint8
        np.testing.assert_array_equal(loaded["x"], x)
        assert loaded["y"].dtype == np.int64 and loaded["y"].tolist() == [0, 0, 0]
    else:
        np.testing.assert_array_equal(loaded, x)


def test_npz_rerun_is_byte_identical(st):
    x = _x((16, 16, 2))
    npz.write_file(st, "a.npz", x)
    npz.write_file(st, "b.npz", x)
    h = [hashlib.sha256(st.read(p)).hexdigest() for p in ("a.npz", "b.npz")]
    assert h[0] == h[1]
    with zipfile.ZipFile(st.path("a.npz")) as z:
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())
        assert [i.compress_type for i in z.infolist()] == [zipfile.ZIP_STORED] * 2
        assert z.testzip() is None  # CRCs are right


def test_npz_zip_compression_deflates(st):
    x = np.zeros((64, 64, 2), np.uint8)
    n = npz.write_file(st, "c.npz", x, compression="zip")
    assert npz.file_size(x.shape, x.dtype, compression="zip") is None
    with zipfile.ZipFile(st.path("c.npz")) as z:
        assert [i.compress_type for i in z.infolist()] == [zipfile.ZIP_DEFLATED] * 2 and z.testzip() is None
    assert n == st.size("c.npz") < 1000
    np.testing.assert_array_equal(np.load(st.path("c.npz"))["x"], x)
    np.testing.assert_array_equal(npz.parse(st.read("c.npz")), x)
    with pytest.raises(FormatError, match="'none' or 'zip'"):
        npz.write_file(st, "d.npz", x, compression="gzip")


def test_zip64_fields_are_written_and_read(monkeypatch):
    # Archives past 2 GiB switch to zip64 central records; shrink the limit to exercise that path.
    monkeypatch.setattr(_zip, "ZIP64_LIMIT", 100)
    x = _x((20, 20, 2))
    raw = _joined(_zip.build([(name, p, _zip.STORED) for name, p in npz.members(x)]))
    assert len(raw) == _zip.stored_size([(b"x.npy", len(npy.npy_header(x.shape, x.dtype)) + x.nbytes),
                                         (b"y.npy", len(npy.npy_header((2,), "<i8")) + 16)])
    assert raw.find(b"PK\x06\x06") > 0  # zip64 end record present
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        np.testing.assert_array_equal(np.load(z.open("x.npy")), x)
    m = _zip.find_member(memoryview(raw), (b"y.npy",))
    assert m is not None and m.method == 0 and m.compressed_size == 128 + 16


# --- parsing -----------------------------------------------------------------------------------------------

shapes = st_.tuples(st_.integers(0, 9), st_.integers(1, 9), st_.integers(1, 5))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes, dtype=st_.sampled_from(DTYPES), compression=st_.sampled_from(["none", "zip"]))
def test_npz_parse_equals_np_load(shape, dtype, compression):
    x = _x(shape, dtype, seed=sum(shape))
    method = _zip.DEFLATED if compression == "zip" else _zip.STORED
    raw = _joined(_zip.build([(name, p, method) for name, p in npz.members(x)]))
    got = npz.parse(raw, "f.npz")
    want = np.load(io.BytesIO(raw))["x"]
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(shape=st_.lists(st_.integers(0, 6), min_size=0, max_size=4).map(tuple), dtype=st_.sampled_from(DTYPES),
       fortran=st_.booleans())
def test_npy_parse_equals_np_load(shape, dtype, fortran):
    x = _x(shape, dtype)
    if fortran:
        x = np.asfortranarray(x)
    b = io.BytesIO()
    np.save(b, x)  # np.save keeps Fortran order for F-contiguous arrays
    got = npy.parse(b.getvalue())
    want = np.load(io.BytesIO(b.getvalue()))
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_parse_reads_np_savez_files_in_any_member_order():
    x = _x((5, 6, 3), "int16")
    for kwargs in ({"x": x, "y": [0, 0, 0]}, {"y": [0, 0, 0], "x": x}, {"a": np.ones(3), "x": x}):
        b = io.BytesIO()
        np.savez(b, **kwargs)
        np.testing.assert_array_equal(npz.parse(b.getvalue()), x)
        b = io.BytesIO()
        np.savez_compressed(b, **kwargs)
        np.testing.assert_array_equal(npz.parse(b.getvalue()), x)


class _Unseekable(io.RawIOBase):
    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += b
        return len(b)


def test_parse_reads_streamed_archives_with_data_descriptors():
    x = _x((7, 7, 2))
    sink = _Unseekable()
    with zipfile.ZipFile(sink, "w") as z:  # unseekable: sizes come after the data
        with z.open("y.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros(2, np.int64))
        with z.open("x.npy", "w") as f:
            np.lib.format.write_array(f, x)
    raw = bytes(sink.buf)
    assert np.load(io.BytesIO(raw))["x"].shape == (7, 7, 2)
    np.testing.assert_array_equal(npz.parse(raw), x)


def test_parse_is_zero_copy_for_stored_files():
    x = _x((8, 8, 2))
    for fmt, raw in [("npz", _joined(_zip.build([(n, p, 0) for n, p in npz.members(x)]))),
                     ("npy", npy.npy_header(x.shape, x.dtype) + x.tobytes())]:
        buf = np.frombuffer(raw, np.uint8).copy()  # a pooled, writable buffer
        got = get_format(fmt).parse(buf)
        assert np.shares_memory(got, buf)
        pos = got.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
        buf[pos] ^= 0xFF
        assert got[0, 0, 0] == x[0, 0, 0] ^ 0xFF
        mv = memoryview(bytearray(raw))
        assert np.shares_memory(get_format(fmt).parse(mv), np.frombuffer(mv, np.uint8))


def _valid_npz() -> bytes:
    return _joined(_zip.build([(n, p, 0) for n, p in npz.members(_x((16, 16, 2)))]))


def _valid_npy() -> bytes:
    x = _x((16, 16, 2))
    return npy.npy_header(x.shape, x.dtype) + x.tobytes()


@pytest.mark.parametrize("fmt, raw", [("npz", _valid_npz()), ("npy", _valid_npy()),
                                      ("npz", _joined(_zip.build([(n, p, 8) for n, p in npz.members(_x((16, 16, 2)))])))])
def test_truncated_files_raise_format_error_naming_the_file(fmt, raw):
    f = get_format(fmt)
    cuts = sorted({0, 1, 5, 9, 10, 20, 34, 40, 60, 100, 129, len(raw) // 2, len(raw) - 200, len(raw) - 23,
                   len(raw) - 22, len(raw) - 1})
    for k in cuts:
        with pytest.raises(FormatError, match="/data/train/img_3_of_8"):
            f.parse(raw[:k], f"/data/train/img_3_of_8.{fmt}")


@settings(max_examples=200, deadline=None)
@given(cut=st_.integers(0, 4700))
def test_any_truncation_of_npz_is_a_format_error(cut):
    raw = _valid_npz()
    if cut >= len(raw):
        return
    with pytest.raises(FormatError, match="f.npz"):
        npz.parse(raw[:cut], "f.npz")


@settings(max_examples=300, deadline=None)
@given(data=st_.binary(max_size=300), fmt=st_.sampled_from(["npz", "npy"]))
def test_garbage_raises_only_format_error(data, fmt):
    try:
        get_format(fmt).parse(data, "g")
    except FormatError as e:
        assert "g:" in str(e)


@settings(max_examples=300, deadline=None)
@given(pos=st_.integers(0, 4593), val=st_.integers(0, 255), fmt=st_.sampled_from(["npz", "npy"]))
def test_corrupted_bytes_never_raise_anything_but_format_error(pos, val, fmt):
    raw = bytearray(_valid_npz() if fmt == "npz" else _valid_npy())
    if pos >= len(raw):
        return
    raw[pos] = val
    try:
        out = get_format(fmt).parse(bytes(raw), "c")
    except FormatError as e:
        assert str(e).startswith("c:")
    else:
        assert isinstance(out, np.ndarray)


def test_specific_corruptions_are_explained():
    raw = bytearray(_valid_npy())
    raw[1] = ord("X")
    with pytest.raises(FormatError, match="p.npy: not an npy array"):
        npy.parse(bytes(raw), "p.npy")
    hdr = b"{'descr': '|u1', 'fortran_order': False, 'shape': (2, __import__('os')), }"
    bad = b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr
    with pytest.raises(FormatError, match="corrupt npy header"):
        npy.parse(bad, "evil.npy")
    b = io.BytesIO()
    np.save(b, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError, match="Python objects"):
        npy.parse(b.getvalue(), "obj.npy")
    b = io.BytesIO()
    np.savez(b, a=np.ones(3))
    with pytest.raises(FormatError, match="no array 'x'"):
        npz.parse(b.getvalue(), "nox.npz")
