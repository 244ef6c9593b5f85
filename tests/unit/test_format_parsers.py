"""The per-thread parsers (``Format.parser()``) the engine uses with reused buffers give exactly what
``parse`` gives for the same bytes: same arrays, same errors, whatever was in the buffer before."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_

from dlio_core.formats import FormatError, get_format, npy, npz
from dlio_core.formats import _zip


def _npz(x: np.ndarray) -> bytes:
    return b"".join(bytes(memoryview(p).cast("B")) for p in _zip.build([(n, p, 0) for n, p in npz.members(x)]))


def _npy(x: np.ndarray) -> bytes:
    return npy.npy_header(x.shape, x.dtype) + x.tobytes()


def _savez(x: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.savez(b, x=x, y=np.zeros(x.shape[-1], np.int64))
    return b.getvalue()


def _outcome(fn, buf, path="f"):
    try:
        x = fn(buf, path)
    except FormatError as e:
        return ("error", str(e))
    return ("ok", x.dtype.str, x.shape, x.tobytes())


def _files(fmt: str) -> list[bytes]:
    """Files of one size with different contents, shapes and dtypes (same total data bytes)."""
    make = _npz if fmt == "npz" else _npy
    xs = [np.arange(48, dtype=np.uint8).reshape(4, 4, 3), np.full((4, 4, 3), 9, np.uint8),
          np.arange(48, dtype=np.uint8).reshape(8, 2, 3), np.arange(12, dtype="<u4").reshape(2, 2, 3),
          np.arange(48, dtype=np.uint8).reshape(4, 4, 3).T.copy()]
    out = [make(x) for x in xs]
    size = len(out[0])
    return [f for f in out if len(f) == size]


@pytest.mark.parametrize("fmt", ["npz", "npy"])
def test_parser_matches_parse_on_a_reused_buffer(fmt):
    files = _files(fmt)
    assert len(files) >= 3
    f = get_format(fmt)
    p = f.parser()
    buf = memoryview(bytearray(len(files[0])))
    for raw in files * 3:
        buf[:] = raw
        assert _outcome(p, buf) == _outcome(f.parse, bytes(raw))


@pytest.mark.parametrize("fmt", ["npz", "npy"])
def test_parser_returns_a_view_of_the_buffer(fmt):
    raw = _files(fmt)[0]
    buf = memoryview(bytearray(raw))
    p = get_format(fmt).parser()
    a = p(buf, "f")
    b = p(buf, "f")
    assert a is b and np.shares_memory(a, np.frombuffer(buf, np.uint8))
    buf[-1 if fmt == "npy" else len(raw) - 200] ^= 0xFF  # data bytes change: the view shows them
    assert p(buf, "f") is a


def test_parser_reads_np_savez_files():
    x = np.arange(64, dtype=np.uint8).reshape(4, 4, 4)
    raw = _savez(x)
    p = npz.Parser()
    buf = memoryview(bytearray(raw))
    np.testing.assert_array_equal(p(buf, "s.npz"), x)
    np.testing.assert_array_equal(p(buf, "s.npz"), x)


@settings(max_examples=300, deadline=None)
@given(fmt=st_.sampled_from(["npz", "npy"]), edits=st_.lists(
    st_.tuples(st_.integers(0, 10_000), st_.integers(0, 255), st_.booleans()), min_size=1, max_size=6))
def test_parser_agrees_with_parse_through_any_corruption_sequence(fmt, edits):
    files = _files(fmt)
    f = get_format(fmt)
    p = f.parser()
    buf = memoryview(bytearray(len(files[0])))
    buf[:] = files[0]
    assert _outcome(p, buf) == _outcome(f.parse, bytes(buf))  # primes the parser's cache
    for pos, val, restore in edits:
        if restore:  # back to a valid file first, as the next file read would be
            buf[:] = files[pos % len(files)]
        buf[pos % len(buf)] = val
        assert _outcome(p, buf) == _outcome(f.parse, bytes(buf))


def test_npz_header_claiming_more_data_than_its_member_holds_is_an_error():
    raw = bytearray(_npz(np.full((3, 1), 7, np.uint32)))
    i = raw.index(b"'shape': (")
    raw[i + 10] = ord("9")  # (9, 1): 36 bytes, but the member holds 12 (the rest is y and the directory)
    with pytest.raises(FormatError, match="truncated npy data"):
        npz.parse(bytes(raw), "a.npz")
    with pytest.raises(FormatError, match="truncated npy data"):
        npz.Parser()(memoryview(raw), "a.npz")
