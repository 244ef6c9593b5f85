"""Checkpoint content (ChunkSource) and the streamed transfer helpers."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlio_core.checkpoint import ChunkSource
from dlio_core.checkpoint.transfer import drop_cache, read_file, write_file
from dlio_core.storage import open_storage


def test_chunks_are_deterministic_per_nonce_path_and_index():
    a, b = ChunkSource(1 << 16, nonce=1), ChunkSource(1 << 16, nonce=1)
    assert bytes(a.chunk("f", 3, 1000)) == bytes(b.chunk("f", 3, 1000))
    assert bytes(a.chunk("f", 3, 1000)) != bytes(ChunkSource(1 << 16, nonce=2).chunk("f", 3, 1000))
    assert bytes(a.chunk("f", 3, 1000)) != bytes(a.chunk("f", 4, 1000))
    assert bytes(a.chunk("f", 3, 1000)) != bytes(a.chunk("g", 3, 1000))


def test_chunks_do_not_compress_or_repeat():
    src = ChunkSource(1 << 16, nonce=5)
    blocks = [bytes(src.chunk(f"global_epoch1_step{s}/x.pt", i, 1 << 16)) for s in (1, 2) for i in range(8)]
    assert len(set(blocks)) == len(blocks)
    assert all(len(zlib.compress(b, 9)) > 0.99 * len(b) for b in blocks)


@pytest.mark.parametrize("dtype, np_dtype", [("int8", "i1"), ("uint8", "u1"), ("fp16", "<f2"), ("fp32", "<f4"),
                                             ("fp64", "<f8")])
def test_ones_pattern_per_element_type(dtype, np_dtype):
    mv = ChunkSource(64, randomize=False).chunk("x", 5, 64, dtype=dtype)
    assert (np.frombuffer(bytes(mv), dtype=np_dtype) == 1).all()


def test_bf16_ones():
    assert bytes(ChunkSource(8, randomize=False).chunk("x", 0, 4, dtype="bf16")) == b"\x80\x3f\x80\x3f"


def test_chunk_size_limits():
    src = ChunkSource(10)
    assert src.chunk_bytes == 16  # whole 8-byte words
    with pytest.raises(ValueError, match="1..16"):
        src.chunk("x", 0, 17)
    with pytest.raises(ValueError):
        ChunkSource(0)


@settings(max_examples=25, deadline=None)
@given(nbytes=st.integers(0, 70_000), chunk=st.sampled_from([8, 1000, 4096, 1 << 16]),
       buffer=st.sampled_from([1, 777, 4096, 1 << 16]))
def test_write_then_read_any_size(tmp_path_factory, nbytes, chunk, buffer):
    st_ = open_storage(str(tmp_path_factory.mktemp("t")))
    src = ChunkSource(chunk, nonce=3)
    seen: list[int] = []
    assert write_file(st_, "d/f.pt", nbytes, src, on_chunk=seen.append) == nbytes
    assert sum(seen) == nbytes and st_.size("d/f.pt") == nbytes
    assert read_file(st_, "d/f.pt", bytearray(buffer)) == nbytes
    # the file is the concatenation of its chunks
    data = st_.read("d/f.pt")
    first = min(nbytes, src.chunk_bytes)
    if first:
        assert data[:first] == bytes(src.chunk("d/f.pt", 0, first))


def test_drop_cache_is_local_only(tmp_path):
    class Remote:
        url = "s3://bucket/ck"

        def path(self, p: str) -> str:
            return p

        def local_path(self, p: str) -> None:  # the protocol's answer for a remote storage
            return None

    local = open_storage(str(tmp_path))
    local.write_atomic("a", b"x")
    assert drop_cache(local, "a") is True
    assert drop_cache(local, "missing") is False
    assert drop_cache(Remote(), "a") is False
