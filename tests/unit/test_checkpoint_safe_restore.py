"""Safe restore: staging a remote checkpoint never writes outside its folder, and a manifest's paths stay inside
its dataset root."""

from __future__ import annotations

import json
import os

import pytest

from dlio_core.checkpoint.folders import fetched
from dlio_core.manifest import MANIFEST_NAME, load_manifest
from dlio_core.storage import StorageError, open_storage
from dlio_core.storage.stage import COMMIT_MARKER, download_dir, download_stage, inside


class Remote:
    """A storage with no OS path (an object store as far as the caller can tell), over a local folder."""

    def __init__(self, root: str) -> None:
        self._st, self.url = open_storage(root), "mem://bucket"

    def __getattr__(self, name):
        return getattr(self._st, name)

    def local_path(self, path):
        return None


@pytest.mark.parametrize("evil", ["../../x", "../x", "/tmp/x", "a/../../x", ""])
def test_a_marker_naming_a_path_outside_the_stage_is_refused(tmp_path, evil):
    store = open_storage(str(tmp_path / "bucket"))
    store.write_atomic("ck/ok.bin", b"fine")
    store.write_atomic("ck/" + COMMIT_MARKER, json.dumps({"version": 1, "files": {"ok.bin": 4, evil: 1}}).encode())
    stage = tmp_path / "deep" / "er" / "stage"
    stage.mkdir(parents=True)
    with pytest.raises(StorageError, match="outside"):
        download_dir(store, "ck", str(stage))
    assert os.listdir(stage) == []  # checked before any byte is written
    assert not (tmp_path / "deep" / "x").exists() and not (tmp_path / "x").exists()
    with pytest.raises(StorageError, match="outside"), download_stage(store, "ck", dir=str(tmp_path)):
        pass


def test_inside_accepts_nested_names(tmp_path):
    assert inside(str(tmp_path), "a/b/c.bin") == str(tmp_path / "a" / "b" / "c.bin")


def test_fetching_a_framework_folder_refuses_a_listing_that_leaves_the_stage(tmp_path):
    remote = Remote(str(tmp_path / "bucket"))
    remote.write_atomic("ck/x.orbax/good", b"1")
    real = remote._st.list_files
    remote.list_files = lambda prefix="", suffix="": real(prefix, suffix) + [("ck/x.orbax/../../../evil", 1)]
    with pytest.raises(StorageError, match="outside"), fetched(remote, "ck/x.orbax"):
        pass
    assert not (tmp_path / "evil").exists()


def test_fetching_from_rank_0s_listing_refuses_names_that_leave_the_stage(tmp_path):
    remote = Remote(str(tmp_path / "bucket"))
    remote.write_atomic("ck/x.orbax/good", b"1")
    listing = {"ck/x.orbax/good": 1, "ck/x.orbax/../../../evil": 1}  # as a broadcast listing would carry it
    remote.list_files = lambda *a, **k: pytest.fail("a rank with rank 0's listing must not list")
    with pytest.raises(StorageError, match="outside"), fetched(remote, "ck/x.orbax", listing):
        pass
    assert not (tmp_path / "evil").exists()
    with fetched(remote, "ck/x.orbax", {"ck/x.orbax/good": 1}) as d:
        assert os.listdir(d) == ["good"]


@pytest.mark.parametrize("evil", ["../secret.npz", "/etc/passwd", "s3://other/bucket.npz", "train/../../x.npz"])
def test_a_manifest_naming_files_outside_its_root_is_not_used(tmp_path, evil):
    store = open_storage(str(tmp_path))
    manifest = {"version": 1, "format": "npz", "dataset": {}, "train": [["train/a.npz", 1], [evil, 1]], "valid": []}
    store.write_atomic(MANIFEST_NAME, json.dumps(manifest).encode())
    with pytest.warns(UserWarning, match="is not a path inside the data folder"):
        assert load_manifest(store) is None  # the folder is listed instead
