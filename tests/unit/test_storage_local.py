"""LocalStorage and open_storage: paths, reads into caller buffers, atomic writes, listing, errors."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from dlio_core.storage import (
    BACKENDS,
    LocalStorage,
    Storage,
    StorageError,
    StorageNotFoundError,
    open_storage,
    redact_uri,
    register_backend,
    registered_schemes,
)
from dlio_core.storage import local as local_mod


@pytest.fixture
def st(tmp_path) -> LocalStorage:
    return open_storage(str(tmp_path))


def _entries(d) -> list[str]:
    return sorted(os.listdir(d))


# --- open_storage and the registry ---------------------------------------------------------------

def test_plain_path_and_file_uri_give_local_storage(tmp_path):
    a = open_storage(str(tmp_path))
    b = open_storage(f"file://{tmp_path}")
    assert isinstance(a, LocalStorage) and isinstance(a, Storage)
    assert a == b and a.url == f"file://{tmp_path}"


def test_relative_path_resolves_against_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_storage("data/x").root == str(tmp_path / "data" / "x")


def test_unknown_scheme_lists_known_ones():
    with pytest.raises(StorageError, match=r"unknown storage scheme 'foo://'.*s3://"):
        open_storage("foo://x/y")


def test_credentials_never_reach_error_text():
    with pytest.raises(StorageError) as ei:
        open_storage("s3://AKIAEXAMPLE:SUPERSECRET@bucket/data")
    assert "SUPERSECRET" not in str(ei.value) and "AKIAEXAMPLE" not in str(ei.value)
    assert redact_uri("s3://a:b@bucket/x") == "s3://***@bucket/x"


def test_register_backend_is_one_line(tmp_path):
    register_backend("mylocal", "dlio_core.storage.local:LocalStorage", note="test")
    try:
        with pytest.raises(StorageError, match="LocalStorage cannot open mylocal://"):
            open_storage(f"mylocal://{tmp_path}")  # resolved to our class, which then refuses the scheme
    finally:
        BACKENDS.unregister("mylocal")
    assert "mylocal" not in registered_schemes()


def test_register_backend_refuses_to_replace_a_scheme_without_clobber(tmp_path):
    with pytest.raises(StorageError, match=r"'file://' is already registered.*clobber=True"):
        register_backend("file", "dlio_core.storage.direct:DirectStorage")
    register_backend("file", "dlio_core.storage.local:LocalStorage")  # the same target again: a no-op
    assert type(open_storage(str(tmp_path))) is LocalStorage


def test_missing_client_module_names_the_extra(tmp_path):
    register_backend("nofs", "no_such_module_xyz:Storage", extra="nofs")
    try:
        with pytest.raises(StorageError, match=r"nofs://x: storage scheme 'nofs://' needs no_such_module_xyz.*"
                                               r"pip install 'dl-driver\[nofs\]'"):
            open_storage("nofs://x")
    finally:
        BACKENDS.unregister("nofs")


def test_empty_location_is_an_error():
    with pytest.raises(StorageError):
        open_storage("")


def test_options_are_warned_about_by_name_only(tmp_path):
    with pytest.warns(UserWarning, match="region") as rec:
        open_storage(str(tmp_path), {"region": "us-east-1", "secret_access_key": "TOPSECRET"})
    assert "TOPSECRET" not in str(rec[0].message)


def test_pickles_as_its_root(st):
    clone = pickle.loads(pickle.dumps(st))
    assert clone == st and clone.url == st.url


# --- paths -----------------------------------------------------------------------------------------

def test_join_and_path(st):
    assert st.join("train", "", "0", "a.npz") == "train/0/a.npz"
    assert st.join("/abs", "x") == "/abs/x"
    assert st.path("train/a") == os.path.join(st.root, "train/a")
    assert st.path("/etc/hosts") == "/etc/hosts"
    assert st.path("file:///etc/hosts") == "/etc/hosts"
    with pytest.raises(StorageError):
        st.path("s3://bucket/key")


# --- reads -------------------------------------------------------------------------------------------

def test_read_into_fills_buffer_and_reports_bytes(st):
    data = bytes(range(256)) * 40
    st.write_atomic("f.bin", data)
    buf = bytearray(len(data))
    assert st.read_into("f.bin", buf) == len(data) and bytes(buf) == data
    arr = np.zeros(100, np.uint8)
    assert st.read_into("f.bin", arr, offset=1000) == 100 and arr.tobytes() == data[1000:1100]
    big = np.zeros(len(data) + 50, np.uint8)  # larger than the file: short count at EOF
    assert st.read_into("f.bin", big) == len(data) and big[: len(data)].tobytes() == data
    words = np.zeros(4, np.uint32)  # any C-contiguous buffer
    assert st.read_into("f.bin", words) == 16 and words.tobytes() == data[:16]
    assert st.read_into("f.bin", bytearray(10), offset=len(data) + 5) == 0


def test_read_into_loops_on_short_reads(st, monkeypatch):
    data = os.urandom(10_000)
    st.write_atomic("f.bin", data)
    real = os.preadv
    calls = []

    def short_preadv(fd, bufs, offset):
        (b,) = bufs
        calls.append(offset)
        return real(fd, [b[:333]], offset)

    monkeypatch.setattr(local_mod.os, "preadv", short_preadv)
    buf = bytearray(len(data))
    assert st.read_into("f.bin", buf) == len(data) and bytes(buf) == data
    assert len(calls) > 20


def test_read_errors_name_the_path(st):
    with pytest.raises(StorageNotFoundError, match="missing.bin") as ei:
        st.read_into("missing.bin", bytearray(4))
    assert isinstance(ei.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        st.read("missing.bin")
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        st.size("missing.bin")
    st.write_atomic("f.bin", b"abc")
    with pytest.raises(StorageError, match="read-only"):
        st.read_into("f.bin", b"xyz")
    with pytest.raises(StorageError, match="C-contiguous"):
        st.read_into("f.bin", np.zeros((4, 4), np.uint8)[:, 1])


def test_read_size_exists(st):
    assert not st.exists("a/b.bin")
    st.write_atomic("a/b.bin", b"hello")
    assert st.exists("a/b.bin") and st.exists("a") and st.size("a/b.bin") == 5 and st.read("a/b.bin") == b"hello"


# --- atomic writes --------------------------------------------------------------------------------------

def test_write_atomic_parts_and_overwrite(st):
    n = st.write_atomic("d/x.bin", [b"ab", bytearray(b"cd"), memoryview(b"ef"), np.arange(3, dtype=np.uint8)])
    assert n == 9 and st.read("d/x.bin") == b"abcdef\x00\x01\x02"
    assert st.write_atomic("d/x.bin", b"new") == 3 and st.read("d/x.bin") == b"new"
    assert _entries(st.path("d")) == ["x.bin"]  # no temporary left behind


def test_write_atomic_loops_on_short_writes(st, monkeypatch):
    real = os.writev

    def short_writev(fd, bufs):
        return real(fd, [bufs[0][:7]])

    monkeypatch.setattr(local_mod.os, "writev", short_writev)
    data = [os.urandom(100), os.urandom(50), os.urandom(3)]
    assert st.write_atomic("x.bin", data) == 153 and st.read("x.bin") == b"".join(data)


def test_failed_write_leaves_no_partial_file(st, monkeypatch):
    st.write_atomic("keep.bin", b"old content")

    def boom(fd, bufs):
        os.write(fd, bytes(bufs[0][:3]))  # some bytes reached the temporary file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local_mod.os, "writev", boom)
    with pytest.raises(StorageError, match="keep.bin.*No space left"):
        st.write_atomic("keep.bin", [b"new ", b"content"])
    with pytest.raises(StorageError, match="fresh.bin"):
        st.write_atomic("fresh.bin", [b"a", b"b"])
    assert _entries(st.root) == ["keep.bin"] and st.read("keep.bin") == b"old content"


def test_open_write_is_atomic(st):
    with st.open_write("sub/y.bin") as f:
        f.write(b"abc")
        assert not st.exists("sub/y.bin")  # invisible until complete
        f.seek(0)
        f.write(b"X")
    assert st.read("sub/y.bin") == b"Xbc"
    with pytest.raises(RuntimeError):
        with st.open_write("sub/z.bin") as f:
            f.write(b"partial")
            raise RuntimeError("writer failed")
    assert _entries(st.path("sub")) == ["y.bin"]


def test_write_atomic_fsync(st):
    assert st.write_atomic("s.bin", b"durable", fsync=True) == 7
    with st.open_write("t.bin", fsync=True) as f:
        f.write(b"t")
    assert st.read("s.bin") == b"durable" and st.read("t.bin") == b"t"


# --- listing, directories, deletion ---------------------------------------------------------------------

def test_list_files_walks_once_sorted_with_sizes(st):
    for rel, size in [("train/1/b.npz", 3), ("train/0/a.npz", 1), ("train/0/c.npy", 2), ("valid/v.npz", 4),
                      ("train/x.npz", 5)]:
        st.write_atomic(rel, b"z" * size)
    open(st.path("train/0/.a.npz.tmp-1-abcd"), "wb").close()  # someone's in-flight temporary
    assert st.list_files("train", ".npz") == [("train/0/a.npz", 1), ("train/1/b.npz", 3), ("train/x.npz", 5)]
    assert [p for p, _ in st.list_files()] == ["train/0/a.npz", "train/0/c.npy", "train/1/b.npz", "train/x.npz",
                                              "valid/v.npz"]
    assert st.list_files("nothing-here", ".npz") == []


def test_makedirs_and_delete(st):
    st.makedirs("a/b/c")
    st.makedirs("a/b/c")
    assert os.path.isdir(st.path("a/b/c"))
    st.write_atomic("a/b/f.bin", b"1")
    st.delete("a/b/f.bin")
    assert not st.exists("a/b/f.bin")
    st.delete("a")
    assert not st.exists("a")
    with pytest.raises(StorageNotFoundError, match="a"):
        st.delete("a")
    st.delete("a", missing_ok=True)
