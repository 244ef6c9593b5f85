"""parquet: the fork's layouts (legacy ``data`` column, typed columns with size and read flags), exact
row groups, codecs, partitions, read back by content through pyarrow and through our reader in bytes
mode (exactly the selected column chunks) and decode mode; files pyarrow writes as the fork does read
with the right counts and bytes; FormatError naming the file on truncated or foreign files, and
naming the key on bad options."""

from __future__ import annotations

import sys
from dataclasses import replace
from types import SimpleNamespace as NS

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from dlio_core.config.frozen import freeze
from dlio_core.formats import FormatError
from dlio_core.formats.parquet import FOOTERS, FORMAT, ParquetFormat, columns_from

DLRM_LIKE = [{"name": f"f{i}", "dtype": dt, "read": i % 3 == 0}
             for i, dt in enumerate(["int8", "float16", "float32", "float64", "uint16", "int64", "float32"])]
FLUX_LIKE = [{"name": "t5", "dtype": "float32", "size": 50}, {"name": "clip", "dtype": "float32", "size": 7},
             {"name": "ts", "dtype": "float32", "size": 1}]


@pytest.fixture
def st(tmp_path):
    from dlio_core.storage import open_storage
    return open_storage(str(tmp_path))


@pytest.fixture(autouse=True)
def _fresh_cache():
    FOOTERS.clear()
    yield
    FOOTERS.clear()


def _chunk_bytes(path, columns=None):
    """What the fork's file reader reads for every row group: the selected columns' compressed chunks."""
    meta = pq.read_metadata(path)
    total = 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for j in range(rg.num_columns):
            if columns is None or rg.column(j).path_in_schema.split(".")[0] in columns:
                total += rg.column(j).total_compressed_size
    return total


def _cfg(columns=None, decode=False, **parquet):
    p = dict(parquet)
    if columns is not None:
        p["columns"] = columns
    ds = NS(parquet=freeze(p), record_length_bytes=64, record_dims=(), record_element_type="uint8")
    return FORMAT.configure(ds, NS(decode=decode))


def test_legacy_data_column_round_trip(st):
    x = np.random.default_rng(0).integers(0, 256, (8, 8, 10)).astype(np.uint8)
    fmt = _cfg(row_group_size=4)
    n = fmt.write_file(st, "train/img_0_of_1.parquet", x)
    path = st.path("train/img_0_of_1.parquet")
    assert n == st.size("train/img_0_of_1.parquet") and fmt.file_size(x.shape, x.dtype) is None
    f = pq.ParquetFile(path)
    t = f.schema_arrow.field("data").type
    assert pa.types.is_fixed_size_list(t) and t.list_size == 64 and t.value_type == pa.uint8()
    assert [f.metadata.row_group(g).num_rows for g in range(3)] == [4, 4, 2]
    rows = f.read().column("data").to_pylist()
    assert rows == [x[..., i].reshape(-1).tolist() for i in range(10)]
    dec = replace(fmt, decode=True).open_reader(st, "train/img_0_of_1.parquet", n)
    nbytes, sample_bytes, got, _, _ = dec.read([9, 0, 5], keep=True)
    assert [g.tolist() for g in got] == [rows[9], rows[0], rows[5]] and sample_bytes == 3 * 64
    footer = nbytes - sum(f.metadata.row_group(g).column(0).total_compressed_size for g in range(3))
    assert 0 < footer <= n  # the footer the first time
    np.testing.assert_array_equal(fmt.parse(st.read("train/img_0_of_1.parquet"))[:, 3], x[..., 3].reshape(-1))


@pytest.mark.parametrize("schema", [DLRM_LIKE, FLUX_LIKE], ids=["dlrm-like", "flux-like"])
def test_typed_columns_read_selectively_by_row_group(st, schema):
    fmt = _cfg(schema, row_group_size=16)
    n = fmt.write_rows(st, "d.parquet", 40, key=(10, 0, 1))
    path = st.path("d.parquet")
    table = pq.read_table(path)
    assert table.num_rows == 40 and table.column_names == [c["name"] for c in schema]
    for c in columns_from(schema):
        assert table.schema.field(c.name).type == c.arrow_type()
    chosen = [c["name"] for c in schema if c.get("read", True)]
    assert fmt.selected == tuple(chosen)
    rows = [b"".join(np.asarray(table.column(c)[i].as_py(), columns_from(schema)[[s["name"] for s in schema].index(c)]
                                .values_dtype).tobytes() for c in chosen) for i in range(40)]
    assert len(set(rows)) == 40  # distinct samples
    # bytes mode: the selected chunks of every row group touched, nothing decoded
    r = fmt.open_reader(st, "d.parquet", n)
    nbytes, sample_bytes, got, _, decode_s = r.read(list(range(40)), keep=True)
    assert decode_s == 0.0 and sample_bytes == _chunk_bytes(path, chosen) == sum(g.nbytes for g in got)
    if len(chosen) < len(schema):
        assert _chunk_bytes(path, chosen) < _chunk_bytes(path)
    again = fmt.open_reader(st, "d.parquet", n).read([0], keep=False)  # footer cached: one row group's chunks
    meta = pq.read_metadata(path)
    assert again[0] == sum(meta.row_group(0).column(j).total_compressed_size for j in range(meta.num_columns)
                           if meta.row_group(0).column(j).path_in_schema.split(".")[0] in chosen)
    # decode mode: the values of the selected columns, row by row
    got = replace(fmt, decode=True).open_reader(st, "d.parquet", n).read([39, 17, 0], keep=True)[2]
    assert [g.tobytes() for g in got] == [rows[39], rows[17], rows[0]]


def test_reads_files_pyarrow_writes_as_the_fork_does(st, tmp_path):
    # The fork's legacy mode: ParquetWriter(compression=None) and write_table per generation batch.
    rng = np.random.default_rng(4)
    flat = rng.integers(0, 256, 30 * 25).astype(np.uint8)
    schema = pa.schema([("data", pa.list_(pa.uint8(), 25))])
    with pq.ParquetWriter(str(tmp_path / "fork.parquet"), schema, compression=None) as w:
        for b in range(3):
            part = pa.array(flat[b * 250:(b + 1) * 250], type=pa.uint8())
            w.write_table(pa.table({"data": pa.FixedSizeListArray.from_arrays(part, 25)}), row_group_size=10)
    size = st.size("fork.parquet")
    r = replace(FORMAT, decode=True).open_reader(st, "fork.parquet", size)
    nbytes, sample_bytes, got, _, _ = r.read(list(range(30)), keep=True)
    assert sample_bytes == 750 and b"".join(g.tobytes() for g in got) == flat.tobytes()
    # The fork's schema mode with a codec, and columns it does not read (storage_options.columns)
    t = pa.table({"label": pa.array(rng.random(12, dtype=np.float32)),
                  "emb": pa.FixedSizeListArray.from_arrays(pa.array(rng.random(48, dtype=np.float32)), 4),
                  "aux": pa.array(rng.integers(0, 9, 12), type=pa.int64())})
    pq.write_table(t, str(tmp_path / "cols.parquet"), compression="snappy", row_group_size=5)
    size = st.size("cols.parquet")
    fmt = replace(FORMAT, read_columns=("emb", "label"))
    assert fmt.open_reader(st, "cols.parquet", size).read(list(range(12)), keep=False)[1] == \
        _chunk_bytes(str(tmp_path / "cols.parquet"), ["emb", "label"])
    got = replace(fmt, decode=True).open_reader(st, "cols.parquet", size).read([11], keep=True)[2][0]
    assert got.tobytes() == np.asarray(t["emb"][11].as_py(), np.float32).tobytes() + \
        np.float32(t["label"][11].as_py()).tobytes()  # in the file's column order
    # Lists written without the Arrow schema (variable-length lists of one length) and strings
    v = pa.table({"v": pa.array([[1.0, 2.0], [3.0, 4.0]], type=pa.list_(pa.float64())), "s": ["ab", "c"]})
    pq.write_table(v, str(tmp_path / "var.parquet"), store_schema=False)
    got = replace(FORMAT, read_columns=("v", "s"), decode=True).open_reader(
        st, "var.parquet", st.size("var.parquet")).read([1, 0], keep=True)[2]
    assert [g.tobytes() for g in got] == [np.array([3.0, 4.0]).tobytes() + b"c", np.array([1.0, 2.0]).tobytes() + b"ab"]


@pytest.mark.parametrize("codec, name", [("none", "UNCOMPRESSED"), ("snappy", "SNAPPY"), ("gzip", "GZIP"),
                                         ("zstd", "ZSTD"), ("lz4", "LZ4")])
def test_codecs_are_applied(st, codec, name):
    fmt = _cfg(FLUX_LIKE, row_group_size=8)
    n = fmt.write_rows(st, "c.parquet", 20, key=(1,), compression=codec)
    meta = pq.read_metadata(st.path("c.parquet"))
    assert meta.row_group(0).column(0).compression.startswith(name)
    want = pq.read_table(st.path("c.parquet"))["ts"].to_pylist()
    got = replace(fmt, read_columns=("ts",), decode=True).open_reader(st, "c.parquet", n).read(range(20), keep=True)[2]
    assert [float(g.view(np.float32)[0]) for g in got] == want


def test_row_groups_exact_batches_bounded_and_reruns_identical(st):
    fmt = _cfg(FLUX_LIKE, row_group_size=4, generation_batch_size=3)
    assert fmt._batch_rows() == 4 and replace(fmt, generation_batch_size=10)._batch_rows() == 12
    fmt.write_rows(st, "a.parquet", 10, key=(7, 7))
    meta = pq.read_metadata(st.path("a.parquet"))
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [4, 4, 2]
    fmt.write_rows(st, "b.parquet", 10, key=(7, 7))
    fmt.write_rows(st, "c.parquet", 10, key=(7, 8))
    assert st.read("a.parquet") == st.read("b.parquet") != st.read("c.parquet")


def test_partition_by_writes_hive_folders(st, tmp_path):
    cols = [{"name": "flag", "dtype": "bool"}, {"name": "x", "dtype": "int32"}]
    fmt = _cfg(cols, partition_by="flag")
    total = fmt.write_rows(st, "train/p_0_of_1.parquet", 50, key=(3,))
    parts = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "train").rglob("*.parquet"))
    assert parts == ["train/flag=false/p_0_of_1.parquet", "train/flag=true/p_0_of_1.parquet"]
    assert total == sum((tmp_path / p).stat().st_size for p in parts)
    data = pads.dataset(str(tmp_path / "train"), format="parquet", partitioning="hive").to_table()
    assert data.num_rows == 50 and set(data.column_names) == {"flag", "x"}
    assert pq.read_schema(str(tmp_path / parts[0])).names == ["x"]  # the column lives in the path


def test_configure_reads_the_fork_keys():
    fmt = _cfg(DLRM_LIKE, row_group_size=6144, generation_batch_size=100, read_mode="row_group", use_s3dlio_gen=True)
    assert (fmt.row_group_size, fmt.generation_batch_size, fmt.partition_by) == (6144, 100, None)
    assert fmt.selected == ("f0", "f3", "f6") and not fmt.decode
    legacy = _cfg()
    assert legacy.selected == ("data",) and legacy.schema_columns[0].size == 64 and legacy.row_group_size == 1024
    assert columns_from(["plain"])[0].dtype == "float32"  # a bare name, as the fork reads it


def test_bad_options_name_the_key(st):
    with pytest.raises(FormatError, match=r"dataset\.parquet\.columns\[1\]\.dtype: 'cplx'"):
        _cfg([{"name": "a"}, {"name": "b", "dtype": "cplx"}])
    with pytest.raises(FormatError, match=r"dataset\.parquet\.columns\[0\]\.size: must be at least 1"):
        _cfg([{"name": "a", "size": 0}])
    with pytest.raises(FormatError, match="column names must be unique, a repeat"):
        _cfg([{"name": "a"}, {"name": "a"}])
    with pytest.raises(FormatError, match=r"dataset\.parquet\.read_mode: 'stream'"):
        _cfg(read_mode="stream")
    with pytest.raises(FormatError, match=r"dataset\.parquet\.partition_by: 'zz' is not one of the scalar"):
        _cfg(FLUX_LIKE, partition_by="zz")
    with pytest.raises(FormatError, match=r"dataset\.parquet\.row_group_size must be at least 1"):
        ParquetFormat(row_group_size=0)
    with pytest.raises(FormatError, match="parquet supports dataset.compression none, snappy"):
        FORMAT.write_file(st, "x.parquet", np.zeros((2, 2, 2), np.uint8), compression="xz")


def test_failures_name_the_file(st):
    fmt = _cfg(FLUX_LIKE, row_group_size=4)
    n = fmt.write_rows(st, "f.parquet", 10, key=(1,))
    raw = st.read("f.parquet")
    st.write_atomic("cut.parquet", raw[:-20])
    with pytest.raises(FormatError, match=r"cut\.parquet: not a parquet file \(no PAR1"):
        fmt.open_reader(st, "cut.parquet", n - 20).read([0], keep=False)
    st.write_atomic("bad.parquet", raw[:-200] + raw[-8:])  # footer length and magic, footer cut
    with pytest.raises(FormatError, match=r"bad\.parquet: corrupt parquet footer"):
        fmt.open_reader(st, "bad.parquet", n - 192).read([0], keep=False)
    st.write_atomic("tiny.parquet", b"PAR1")
    with pytest.raises(FormatError, match=r"tiny\.parquet: not a parquet file"):
        fmt.open_reader(st, "tiny.parquet", 4).read([0], keep=False)
    with pytest.raises(FormatError, match=r"f\.parquet: no column 'nope' \(the file has t5, clip, ts\)"):
        replace(fmt, read_columns=("nope",)).open_reader(st, "f.parquet", n).read([0], keep=False)
    with pytest.raises(FormatError, match=r"f\.parquet: sample 10 asked for, but the file holds 10"):
        fmt.open_reader(st, "f.parquet", n).read([10], keep=False)
    with pytest.raises(FormatError, match=r"f\.parquet: read \d+ of \d+ bytes"):  # listed bigger than it is
        FOOTERS.clear()
        fmt.open_reader(st, "f.parquet", n + 10).read([0], keep=False)
    with pytest.raises(FormatError, match=r"g\.parquet: not a readable parquet file"):
        fmt.parse(b"PAR1 not really", "g.parquet")


def test_missing_pyarrow_names_the_extra(st, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(FormatError, match=r"parquet needs pyarrow.*pip install 'dl-driver\[formats\]'"):
        FORMAT.write_file(st, "a.parquet", np.zeros((2, 2, 2), np.uint8))
