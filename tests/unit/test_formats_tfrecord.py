"""tfrecord: CRC-32C against references, DLIO's Example layout, exact sizes and DALI index files,
ranged reads (index, header scan, single-record files) counting the bytes read, byte-identical
regeneration, FormatError naming the file on truncated or corrupt data, and no TensorFlow import.
(TensorFlow itself reads our files in tests/integration/test_formats_frameworks.py.)"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
from types import SimpleNamespace as NS

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_

from dlio_core.formats import FormatError, format_for, get_format
from dlio_core.formats import _crc32c, tfrecord
from dlio_core.formats._tfexample import ProtoError, example_parts, find_feature, varint
from dlio_core.generate import generate_dataset
from dlio_core.storage import open_storage

FMT = get_format("tfrecord")


@pytest.fixture
def st(tmp_path):
    return open_storage(str(tmp_path))


@pytest.fixture(autouse=True)
def _fresh_cache():
    tfrecord.INDEX_CACHE.clear()
    yield
    tfrecord.INDEX_CACHE.clear()


def _crc_reference(data: bytes) -> int:
    """Bit-at-a-time CRC-32C (RFC 3720 B.4), independent of the module's tables."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _x(d1=8, d2=6, n=5, seed=0, dtype="uint8"):
    return np.random.default_rng(seed).integers(0, 255, (d1, d2, n)).astype(dtype)


def _records(raw: bytes):
    """Walk TFRecord framing independently of the module: (offset, payload) per record, CRCs checked."""
    out, pos = [], 0
    while pos < len(raw):
        (length,) = struct.unpack_from("<Q", raw, pos)
        (lcrc,) = struct.unpack_from("<I", raw, pos + 8)
        payload = raw[pos + 12:pos + 12 + length]
        (pcrc,) = struct.unpack_from("<I", raw, pos + 12 + length)
        assert lcrc == _crc32c.mask(_crc_reference(raw[pos:pos + 8]))
        assert pcrc == _crc32c.mask(_crc_reference(payload))
        out.append((pos, payload))
        pos += 16 + length
    return out


# --- CRC-32C ---------------------------------------------------------------------------------------------

def test_crc32c_known_vectors():
    # RFC 3720 B.4 test vectors
    assert _crc32c.crc32c(b"123456789") == 0xE3069283
    assert _crc32c.crc32c(bytes(32)) == 0x8A9136AA
    assert _crc32c.crc32c(b"\xff" * 32) == 0x62A8AB43
    assert _crc32c.crc32c(bytes(range(32))) == 0x46DD794E
    assert _crc32c.mask(0) == 0xA282EAD8


@settings(max_examples=60, deadline=None)
@given(st_.binary(min_size=0, max_size=1500), st_.integers(1, 4))
def test_crc32c_rows_match_reference(data, rows):
    arr = np.frombuffer(data * rows, np.uint8).reshape(rows, len(data)) if data else np.zeros((rows, 0), np.uint8)
    want = _crc_reference(data)
    assert _crc32c.crc32c(data) == want
    assert all(int(c) == want for c in _crc32c.crc32c_rows(arr))


def test_crc32c_strided_rows_and_long_inputs(monkeypatch):
    rng = np.random.default_rng(3)
    big = rng.integers(0, 256, (3, 9000), dtype=np.uint8)
    view = big[:, 17:8017]                                   # strided rows, unaligned start
    want = [_crc_reference(bytes(r)) for r in view]
    assert _crc32c.crc32c_rows(view).tolist() == want
    monkeypatch.setattr(_crc32c, "_SLAB", 1024)              # rows longer than a slab: block slabs per row
    assert _crc32c.crc32c_rows(view).tolist() == want


def test_crc32c_agrees_with_google_crc32c_when_installed():
    g = pytest.importorskip("google_crc32c", reason="google-crc32c not installed (optional cross-check)")
    data = np.random.default_rng(5).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    assert _crc32c.crc32c(data) == g.value(data)


# --- Example encoding ------------------------------------------------------------------------------------

def test_example_parts_layout_and_parse():
    def field(tag, payload):                                  # independent protobuf framing
        return bytes([tag]) + varint(len(payload)) + payload

    for n in (0, 1, 127, 128, 300, 70000):
        head, tail = example_parts(n, n)
        data = head + b"\x07" * n + tail
        assert find_feature(data, b"image") == (len(head), n)
        image_entry = field(0x0A, field(0x0A, b"image") + field(0x12, field(0x0A, field(0x0A, b"\x07" * n))))
        size_entry = field(0x0A, field(0x0A, b"size") + field(0x12, field(0x1A, field(0x0A, varint(n)))))
        assert data == field(0x0A, image_entry + size_entry)


def test_find_feature_any_order_and_errors():
    head, tail = example_parts(3, 3)
    img_entry = head[2:]                                     # Features entries without the Example wrapper
    features = tail + img_entry + b"abc"                     # "size" first, then "image" (TF may do either)
    data = b"\x0a" + varint(len(features)) + features
    start, n = find_feature(data, b"image")
    assert data[start:start + n] == b"abc"
    with pytest.raises(ProtoError):
        find_feature(data[:-2], b"image")
    with pytest.raises(ProtoError):
        find_feature(b"\x0f\x00", b"image")                  # wire type 7


# --- writing ---------------------------------------------------------------------------------------------

def test_write_matches_size_framing_and_index(st):
    x = _x()
    n = FMT.write_file(st, "train/1/img_1_of_4.tfrecord", x)
    raw = st.read("train/1/img_1_of_4.tfrecord")
    assert n == len(raw) == FMT.file_size(x.shape, x.dtype)
    recs = _records(raw)
    assert len(recs) == x.shape[-1]
    for i, (_, payload) in enumerate(recs):
        s, k = find_feature(payload, b"image")
        assert payload[s:s + k] == x[..., i].tobytes()
    # DALI index, flat under index/{split} even for files in subfolders: "offset length" per record
    lines = st.read("index/train/img_1_of_4.tfrecord.idx").decode().splitlines()
    rec_len = len(raw) // len(recs)
    assert lines == [f"{off} {rec_len}" for off, _ in recs]
    assert [a.tolist() for a in tfrecord.record_index(raw)] == [[o for o, _ in recs], [rec_len] * len(recs)]


def test_non_uint8_samples_are_their_raw_bytes(st):
    x = _x(dtype="float32")
    FMT.write_file(st, "valid/a.tfrecord", x)
    assert st.exists("index/valid/a.tfrecord.idx")
    parsed = FMT.parse(st.read("valid/a.tfrecord"), "a")
    assert parsed.shape == (8 * 6 * 4, 5)
    assert parsed[:, 2].tobytes() == x[..., 2].tobytes()


def test_no_index_without_a_split_folder_and_compression_refused(st):
    FMT.write_file(st, "loose.tfrecord", _x(n=2))
    assert sorted(p for p, _ in st.list_files("", ".idx")) == []
    with pytest.raises(FormatError, match="uncompressed"):
        FMT.write_file(st, "z.tfrecord", _x(), compression="gzip")


# --- reading ---------------------------------------------------------------------------------------------

def _reader(st, path, fmt=FMT):
    return fmt.open_reader(st, path, st.size(path))


def test_reader_reads_only_the_records_asked(st):
    x = _x(n=8)
    FMT.write_file(st, "train/f.tfrecord", x)
    size = st.size("train/f.tfrecord")
    rec = size // 8
    idx_bytes = st.size("index/train/f.tfrecord.idx")
    r = _reader(st, "train/f.tfrecord")
    n, sb, samples, io_s, dec_s = r.read([6, 2, 3, 2], keep=True)
    r.close()
    assert n == 3 * rec + idx_bytes                     # 3 distinct records, the index once
    assert sb == 4 * 8 * 6 and io_s >= 0 and dec_s >= 0
    assert [bytes(s) for s in samples] == [x[..., i].tobytes() for i in (6, 2, 3, 2)]
    n2, sb2, none, _, _ = _reader(st, "train/f.tfrecord").read([0, 1, 2, 3, 4, 5, 6, 7], keep=False)
    assert (n2, sb2, none) == (size, 8 * 48, None)      # index cached: exactly the file's bytes


def test_reader_scans_headers_without_index(st):
    x = _x(n=4)
    FMT.write_file(st, "train/f.tfrecord", x)
    st.delete("index/train/f.tfrecord.idx")
    rec = st.size("train/f.tfrecord") // 4
    n, _, samples, _, _ = _reader(st, "train/f.tfrecord").read([3], keep=True)
    assert n == 4 * 12 + rec                            # 12 header bytes per record, then the record
    assert bytes(samples[0]) == x[..., 3].tobytes()


def test_single_sample_files_skip_the_index(st):
    x = _x(n=1)
    FMT.write_file(st, "train/one.tfrecord", x)
    st.delete("index/train/one.tfrecord.idx")
    fmt = format_for(NS(format="tfrecord", num_samples_per_file=1))
    n, sb, samples, _, _ = _reader(st, "train/one.tfrecord", fmt).read([0], keep=True)
    assert n == st.size("train/one.tfrecord") and sb == 48
    assert bytes(samples[0]) == x[..., 0].tobytes()


def test_reads_files_written_with_a_different_field_order(st):
    # TensorFlow may serialise the map with "size" first; the reader finds "image" wherever it is.
    head, tail = example_parts(4, 4)
    features = tail + head[2:] + b"WXYZ"
    payload = b"\x0a" + varint(len(features)) + features
    length = struct.pack("<Q", len(payload))
    rec = (length + struct.pack("<I", _crc32c.masked_crc32c(length)) + payload +
           struct.pack("<I", _crc32c.masked_crc32c(payload)))
    st.write_atomic("train/tf.tfrecord", rec * 3)
    _, _, samples, _, _ = _reader(st, "train/tf.tfrecord").read([1, 2], keep=True)
    assert [bytes(s) for s in samples] == [b"WXYZ", b"WXYZ"]


@pytest.mark.parametrize("with_index", [True, False])
def test_truncated_file_is_a_format_error_naming_it(st, with_index):
    FMT.write_file(st, "train/t.tfrecord", _x(n=4))
    raw = st.read("train/t.tfrecord")
    st.write_atomic("train/t.tfrecord", raw[:-30])
    if not with_index:
        st.delete("index/train/t.tfrecord.idx")
    with pytest.raises(FormatError, match=r"train/t\.tfrecord"):
        _reader(st, "train/t.tfrecord").read([3], keep=False)


def test_corrupt_record_and_bad_requests(st):
    FMT.write_file(st, "train/c.tfrecord", _x(n=3))
    raw = bytearray(st.read("train/c.tfrecord"))
    raw[0] ^= 0xFF                                        # length field of record 0
    st.write_atomic("train/c.tfrecord", bytes(raw))
    with pytest.raises(FormatError, match=r"c\.tfrecord: record at byte 0"):
        _reader(st, "train/c.tfrecord").read([0], keep=False)
    st.delete("index/train/c.tfrecord.idx")
    tfrecord.INDEX_CACHE.clear()
    with pytest.raises(FormatError, match=r"c\.tfrecord: corrupt record header at byte 0"):
        _reader(st, "train/c.tfrecord").read([1], keep=False)
    FMT.write_file(st, "train/d.tfrecord", _x(n=3))
    with pytest.raises(FormatError, match=r"d\.tfrecord: sample 3 asked for, but the file holds 3"):
        _reader(st, "train/d.tfrecord").read([3], keep=False)
    st.write_atomic("index/train/d.tfrecord.idx", b"0 10\nnot numbers\n")
    tfrecord.INDEX_CACHE.clear()
    with pytest.raises(FormatError, match=r"d\.tfrecord\.idx"):
        _reader(st, "train/d.tfrecord").read([0], keep=False)


# --- generation ------------------------------------------------------------------------------------------

def _cfg(folder, **kw):
    ds = dict(data_folder=str(folder), format="tfrecord", num_files_train=6, num_files_eval=2,
              num_samples_per_file=4, record_length_bytes=1024, record_length_bytes_stdev=0,
              record_length_bytes_resize=0, num_subfolders_train=2, num_subfolders_eval=0, file_prefix="img",
              compression="none", compression_level=4, record_dims=(), record_element_type="uint8")
    ds.update(kw)
    d = NS(**ds)
    return NS(dataset=d, storage=NS(storage_type="local_fs", storage_root="./", storage_options={}),
              to_dict=lambda: {"dataset": dict(vars(d))})


def _tree(root):
    """relpath -> sha256 of every file but the manifest (which names the data folder)."""
    out = {}
    for d, _, names in os.walk(root):
        for name in names:
            if name == "dl-driver-manifest.json":
                continue
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_generate_names_sizes_indexes_and_identical_rerun(tmp_path):
    m = generate_dataset(_cfg(tmp_path / "a"), progress=False, threads=3)
    generate_dataset(_cfg(tmp_path / "b"), progress=False, threads=1)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert m.train[0][0] == "train/0/img_0_of_6.tfrecord" and m.valid[1][0] == "valid/img_1_of_2.tfrecord"
    for rel, size in m.train + m.valid:
        path = tmp_path / "a" / rel
        assert path.stat().st_size == size
        split = rel.split("/")[0]
        idx = (tmp_path / "a" / "index" / split / (path.name + ".idx")).read_text().splitlines()
        offsets, lengths = tfrecord.record_index(path.read_bytes())
        assert idx == [f"{o} {n}" for o, n in zip(offsets.tolist(), lengths.tolist())]
        assert len(idx) == 4


def test_generation_and_reading_never_import_tensorflow(tmp_path):
    code = (
        "import sys; from types import SimpleNamespace as NS\n"
        "from dlio_core.formats import get_format\n"
        "from dlio_core.storage import open_storage\n"
        "import numpy as np\n"
        f"st = open_storage({str(tmp_path)!r}); f = get_format('tfrecord')\n"
        "f.write_file(st, 'train/a.tfrecord', np.zeros((4, 4, 3), np.uint8))\n"
        "f.open_reader(st, 'train/a.tfrecord', st.size('train/a.tfrecord')).read([1], True)\n"
        "assert not [m for m in sys.modules if m.startswith(('tensorflow', 'google.protobuf'))], 'imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
