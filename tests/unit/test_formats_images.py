"""jpeg and png: real images that Pillow opens (the default) or the MLCommons fork's raw bytes, one
sample per file (another num_samples_per_file is a FormatError naming it), bytes mode handing back the
file's bytes without decoding and decode mode handing back pixels, images written as DLIO writes them
read back, and FormatError naming the file on a wrong signature or a truncated image."""

from __future__ import annotations

import io
import sys
from dataclasses import replace
from types import SimpleNamespace as NS

import numpy as np
import pytest
from PIL import Image

from dlio_core.formats import FormatError
from dlio_core.formats.images import JPEG, PNG, ImageFormat
from dlio_core.storage import open_storage

BOTH = [JPEG, PNG]


@pytest.fixture
def st(tmp_path):
    return open_storage(str(tmp_path))


def _noise(shape, dtype="uint8", seed=5):
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


def _cfg(fmt, *, decode=False, encoding=None, spf=1):
    ds = NS(num_samples_per_file=spf) if encoding is None else NS(num_samples_per_file=spf, image_encoding=encoding)
    return fmt.configure(ds, NS(decode=decode))


@pytest.mark.parametrize("fmt", BOTH, ids=lambda f: f.name)
@pytest.mark.parametrize("shape", [(32, 48, 1), (16, 16, 3, 1)])
def test_encoded_images_open_with_pillow_and_read_back(st, fmt, shape):
    x = _noise(shape)
    path = f"train/img_0_of_1.{fmt.extension}"
    n = fmt.write_file(st, path, x)
    assert n == st.size(path) and fmt.file_size(x.shape, x.dtype) is None
    with Image.open(st.path(path)) as im:  # what DLIO's reader and DALI's decoder open
        assert im.format == fmt.name.upper() and im.size == (shape[1], shape[0])
        assert im.mode == ("L" if len(shape) == 3 else "RGB")
        pixels = np.asarray(im)
    raw = st.read(path)
    got = _cfg(fmt).parse(raw, path)  # bytes mode: the file's bytes, nothing decoded
    assert got.shape == (len(raw), 1) and got[:, 0].tobytes() == raw
    dec = _cfg(fmt, decode=True).parse(raw, path)
    assert dec.shape == pixels.shape + (1,) and pixels.shape == tuple(s for s in shape[:-1] if s != 1)
    np.testing.assert_array_equal(dec[..., 0], pixels)
    if fmt is PNG:  # lossless: the samples come back exactly
        np.testing.assert_array_equal(dec[..., 0], x[..., 0].reshape(pixels.shape))
    else:  # lossy, but much closer to its sample than to other noise
        def err(a):
            return np.abs(dec[..., 0].astype(int) - a.reshape(pixels.shape)).mean()
        assert err(x[..., 0]) < 0.75 * err(_noise(shape, seed=99)[..., 0])


def test_png_keeps_16_bit_greyscale(st):
    x = _noise((9, 7, 1), "uint16")
    PNG.write_file(st, "a.png", x)
    np.testing.assert_array_equal(_cfg(PNG, decode=True).parse(st.read("a.png"))[..., 0], x[..., 0])


@pytest.mark.parametrize("fmt", BOTH, ids=lambda f: f.name)
def test_reads_images_written_as_dlio_writes_them(st, fmt):
    noise = _noise((40, 30))
    buf = io.BytesIO()  # DLIO's generator: im.fromarray(records).save(output, format=..., bits=8)
    Image.fromarray(noise).save(buf, format=fmt.name.upper(), bits=8)
    raw = buf.getvalue()
    assert _cfg(fmt).parse(raw, "d").shape == (len(raw), 1)
    dec = _cfg(fmt, decode=True).parse(raw, "d")
    assert dec.shape == (40, 30, 1) and dec.dtype == np.uint8


@pytest.mark.parametrize("fmt", BOTH, ids=lambda f: f.name)
def test_raw_bytes_as_the_fork_writes_them(st, fmt):
    raw_fmt = _cfg(fmt, encoding="raw", decode=True)
    x = _noise((20, 25, 1))
    path = f"r.{fmt.extension}"
    n = raw_fmt.write_file(st, path, x)
    assert n == raw_fmt.file_size(x.shape, x.dtype) == 500
    assert st.read(path) == x[..., 0].tobytes()  # the fork's local path: f.write(data)
    assert raw_fmt.parse(st.read(path), path)[:, 0].tobytes() == x.tobytes()
    # an encoded reader meets raw bytes: bytes mode counts them, as the fork's readers do; decoding cannot
    assert _cfg(fmt).parse(st.read(path), path)[:, 0].tobytes() == x.tobytes()
    with pytest.raises(FormatError, match=rf"r\.{fmt.extension}: not a {fmt.name.upper()} file .*image_encoding: raw"):
        _cfg(fmt, decode=True).parse(st.read(path), path)


def test_distinct_samples_make_distinct_files(st):
    files = set()
    for i in range(4):
        JPEG.write_file(st, f"img_{i}_of_4.jpeg", _noise((16, 16, 1), seed=i))
        files.add(st.read(f"img_{i}_of_4.jpeg"))
    assert len(files) == 4


@pytest.mark.parametrize("fmt", BOTH, ids=lambda f: f.name)
def test_one_sample_per_file(st, fmt):
    with pytest.raises(FormatError, match=rf"dataset\.num_samples_per_file: 4, but {fmt.name} files hold one sample"):
        _cfg(fmt, spf=4)
    with pytest.raises(FormatError, match=r"num_samples_per_file: 2"):
        fmt.write_file(st, "a", np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(FormatError, match=r"num_samples_per_file: 3"):
        fmt.file_size((8, 8, 3), "uint8")


@pytest.mark.parametrize("fmt", BOTH, ids=lambda f: f.name)
def test_failures_name_the_file(st, fmt):
    path = f"f.{fmt.extension}"
    fmt.write_file(st, path, _noise((32, 32, 1)))
    raw = st.read(path)
    with pytest.raises(FormatError, match=rf"f\.{fmt.extension}: truncated {fmt.name.upper()}"):
        _cfg(fmt).parse(raw[:-100], path)
    with pytest.raises(FormatError, match=rf"f\.{fmt.extension}: cannot decode {fmt.name.upper()}"):
        _cfg(fmt, decode=True).parse(raw[:len(raw) // 2], path)
    with pytest.raises(FormatError, match=rf"f\.{fmt.extension}: not a {fmt.name.upper()} file \(bad magic"):
        _cfg(fmt, decode=True).parse(b"GIF89a" + raw[6:], path)
    with pytest.raises(FormatError, match="cannot encode a sample of shape .* float32"):
        fmt.write_file(st, path, np.zeros((4, 4, 1), np.float32))
    with pytest.raises(FormatError, match="does not apply"):
        fmt.write_file(st, path, _noise((4, 4, 1)), compression="gzip")
    with pytest.raises(FormatError, match="image_encoding: 'pixels' is not one of encoded, raw"):
        replace(fmt, encoding="pixels")


def test_missing_pillow_names_the_extra(st, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(FormatError, match=r"jpeg needs Pillow.*pip install 'dl-driver\[formats\]'"):
        JPEG.write_file(st, "a.jpeg", _noise((4, 4, 1)))
    raw = replace(JPEG, encoding="raw")  # raw bytes need no Pillow
    assert raw.write_file(st, "a.jpeg", _noise((4, 4, 1))) == 16


def test_import_needs_no_pillow():
    assert isinstance(ImageFormat("png", "png"), ImageFormat)
