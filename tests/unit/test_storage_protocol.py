"""What the Storage protocol says about a backend, instead of type or scheme probes: a local path only
where plain file I/O is equivalent, and whole-file put/get on every backend."""

from __future__ import annotations

import os

import pytest

from dlio_core.storage import Storage, StorageError, StorageNotFoundError, open_storage
from dlio_core.storage.direct import DirectStorage

BIG = 8 * 2**20 * 2 + 12345  # more than two copy chunks


@pytest.fixture
def payload() -> bytes:
    return os.urandom(BIG)


@pytest.mark.parametrize("uri, opts", [("s3://b/d", {"endpoint_url": "http://127.0.0.1:1"}), ("gs://b/d", {}),
                                       ("az://c/d", {"connection_string": "AccountName=a;AccountKey=eA=="})])
def test_object_stores_have_no_local_path_and_make_no_request(uri, opts):
    st = open_storage(uri, opts)
    assert isinstance(st, Storage)
    assert st.local_path("train/a.npz") is None and st._fs is None  # answered without a client


def test_local_storage_gives_the_os_path(tmp_path):
    st = open_storage(str(tmp_path))
    assert isinstance(st, Storage)
    assert st.local_path("a/b.npz") == str(tmp_path / "a" / "b.npz")
    assert st.local_path(f"file://{tmp_path}/x") == f"{tmp_path}/x" and st.local_path("") == str(tmp_path)


def test_direct_storage_has_no_local_path(tmp_path):
    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    st = DirectStorage(str(tmp_path))
    assert isinstance(st, Storage) and st.local_path("a") is None  # plain reads would use the page cache


def test_local_put_and_get_whole_files(tmp_path, payload):
    st = open_storage(str(tmp_path / "root"))
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    assert st.put_file(str(src), "d/e/f.bin") == BIG and st.read("d/e/f.bin") == payload
    assert [n for n in os.listdir(tmp_path / "root" / "d" / "e")] == ["f.bin"]  # no temporary left
    dest = tmp_path / "out" / "deep" / "g.bin"
    assert st.get_file("d/e/f.bin", str(dest)) == BIG and dest.read_bytes() == payload
    st.write_atomic("empty", b"")
    assert st.get_file("empty", str(tmp_path / "empty")) == 0 and (tmp_path / "empty").read_bytes() == b""


def test_local_put_and_get_errors_name_the_file(tmp_path):
    st = open_storage(str(tmp_path))
    with pytest.raises(StorageError, match="nope.bin"):
        st.put_file(str(tmp_path / "nope.bin"), "x")
    assert not st.exists("x")
    with pytest.raises(StorageNotFoundError, match="missing.bin"):
        st.get_file("missing.bin", str(tmp_path / "out.bin"))


def test_direct_get_file_reads_through_o_direct(tmp_path, payload, monkeypatch):
    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    st = DirectStorage(str(tmp_path))
    st.write_atomic("f.bin", payload)
    try:
        st.read_into("f.bin", bytearray(1))
    except StorageError as e:
        pytest.skip(f"this file system refuses O_DIRECT ({e})")
    calls = []
    real = DirectStorage.read_into
    monkeypatch.setattr(DirectStorage, "read_into", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    assert st.get_file("f.bin", str(tmp_path / "copy.bin")) == BIG
    assert (tmp_path / "copy.bin").read_bytes() == payload and len(calls) >= 3
