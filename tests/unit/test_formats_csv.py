"""csv: DLIO's rows (one sample per line, no header) read back by content and by np.loadtxt, the codecs
DLIO's pandas writer applies (gzip, bz2, zip, xz) with their suffix appended and readable by the
standard library, files written the way pandas writes them read back, byte-identical reruns, and
FormatError naming the file on truncated, corrupt or non-numeric data."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from types import SimpleNamespace as NS

import numpy as np
import pytest

from dlio_core.formats import FormatError
from dlio_core.formats.csv import CODECS, FORMAT, data_path, rows_text
from dlio_core.storage import open_storage

OPEN = {"gzip": gzip.decompress, "bz2": bz2.decompress, "xz": lzma.decompress,
        "zip": lambda b: zipfile.ZipFile(io.BytesIO(b)).read(zipfile.ZipFile(io.BytesIO(b)).namelist()[0])}


@pytest.fixture
def st(tmp_path):
    return open_storage(str(tmp_path))


def _x(shape, dtype, seed=3):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int64", "float32", "float64", "float16"])
def test_round_trip_by_content_and_np_loadtxt_reads_ours(st, dtype):
    x = _x((4, 5, 6), dtype)
    rows = [x[..., i].reshape(-1) for i in range(6)]
    assert len({r.tobytes() for r in rows}) == 6  # distinct samples
    n = FORMAT.write_file(st, "train/img_0_of_1.csv", x)
    raw = st.read("train/img_0_of_1.csv")
    assert n == len(raw) and raw.count(b"\n") == 6 and not raw.startswith(b"0,1,2")  # no header
    theirs = np.loadtxt(st.path("train/img_0_of_1.csv"), delimiter=",", dtype=dtype, ndmin=2)
    np.testing.assert_array_equal(theirs, np.stack(rows))
    fmt = FORMAT.configure(NS(record_element_type=dtype))
    got = fmt.parse(raw, "train/img_0_of_1.csv")
    assert got.shape == (20, 6) and got.dtype == np.dtype(dtype)
    for i in range(6):
        np.testing.assert_array_equal(got[:, i], rows[i])


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codecs_append_dlio_suffix_and_open_with_the_standard_library(st, codec):
    x = _x((8, 8, 3), "uint8")
    n = FORMAT.write_file(st, "img_0_of_1.csv", x, compression=codec)
    name = data_path("img_0_of_1.csv", codec)
    assert name == "img_0_of_1.csv" + CODECS[codec] and not st.exists("img_0_of_1.csv")
    raw = st.read(name)
    assert n == len(raw)
    assert OPEN[codec](raw) == rows_text(x)  # what pandas.read_csv(compression="infer") opens
    if codec == "zip":  # one member named after the csv file, as pandas names it
        assert zipfile.ZipFile(io.BytesIO(raw)).namelist() == ["img_0_of_1.csv"]
    np.testing.assert_array_equal(FORMAT.parse(raw, name), x.reshape(64, 3))
    FORMAT.write_file(st, "again/img_0_of_1.csv", x, compression=codec)  # fixed timestamps: byte-identical
    assert st.read(data_path("again/img_0_of_1.csv", codec)) == raw
    assert FORMAT.file_size(x.shape, x.dtype, compression=codec) is None


def test_reads_csv_written_as_pandas_writes_it(st):
    # pandas.DataFrame(rows).to_csv(path, index=False, header=False): no header, '\n' line ends; floats
    # in their shortest repr; gzip streams carry a timestamp and a file name, which readers ignore.
    rows = _x((3, 10), "float64")
    text = "".join(",".join(repr(float(v)) for v in r) + "\n" for r in rows).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(filename="img_0_of_1.csv", mode="wb", fileobj=buf, mtime=1700000000) as g:
        g.write(text)
    np.testing.assert_array_equal(FORMAT.parse(buf.getvalue(), "p.csv.gz").T, rows)
    ints = "1,2,3\n4,5,6\n".encode()
    got = FORMAT.parse(ints)
    assert got.dtype == np.int64 and got.T.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert FORMAT.parse(b"1,2.5\n").dtype == np.float64  # not all integers: float64
    assert FORMAT.parse(b"").shape == (0, 0)


def test_failures_name_the_file(st):
    x = _x((4, 4, 2), "uint8")
    FORMAT.write_file(st, "a.csv", x)
    raw = st.read("a.csv")
    with pytest.raises(FormatError, match=r"a\.csv: truncated csv"):
        FORMAT.parse(raw[:-3], "a.csv")
    with pytest.raises(FormatError, match=r"a\.csv: not DLIO's csv"):
        FORMAT.parse(b"1,2,3\n4,5\n", "a.csv")  # ragged rows
    with pytest.raises(FormatError, match=r"a\.csv: not DLIO's csv"):
        FORMAT.parse(b"x,y\n1,2\n", "a.csv")   # a header
    with pytest.raises(FormatError, match=r"a\.csv: not csv text"):
        FORMAT.parse(b"\xff\xfe1,2\n", "a.csv")
    for codec in sorted(CODECS):
        FORMAT.write_file(st, "c.csv", x, compression=codec)
        packed = st.read(data_path("c.csv", codec))
        with pytest.raises(FormatError, match=rf"c\.csv{CODECS[codec]}: corrupt or truncated {codec} csv"):
            FORMAT.parse(packed[:len(packed) // 2], data_path("c.csv", codec))
    with pytest.raises(FormatError, match="none, gzip, bz2, zip or xz"):
        FORMAT.write_file(st, "d.csv", x, compression="lzf")
    with pytest.raises(FormatError, match="sample axis"):
        FORMAT.write_file(st, "d.csv", np.zeros((), np.uint8))
