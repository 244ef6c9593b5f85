"""Google Cloud Storage through gcsfs against gcp-storage-emulator on 127.0.0.1."""

from __future__ import annotations

import uuid

import pytest

from dlio_core.storage import StorageError, open_storage

from ._storage_checks import checkpoint_roundtrip, generate_and_run

pytestmark = pytest.mark.integration


def _bucket() -> str:
    return f"g{uuid.uuid4().hex[:12]}"


def test_generate_and_run_native_on_gcs(gcs_server, tmp_path):
    uri = f"gs://{_bucket()}/unet"
    summary = generate_and_run(uri, tmp_path / "out", gcs_server.options)
    assert summary["num_files_train"] == 16
    assert len(open_storage(uri, gcs_server.options).list_files("train", ".npz")) == 16


def test_checkpoint_sized_write_read(gcs_server):
    checkpoint_roundtrip(open_storage(f"gs://{_bucket()}/run", gcs_server.options))


def test_emulator_from_the_environment(gcs_server, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    st = open_storage(f"gs://{_bucket()}/env", {"token": "anon"})
    st.makedirs("")
    st.write_atomic("a.bin", b"from env")
    assert st.read("a.bin") == b"from env"


def test_missing_object_is_not_found(gcs_server):
    st = open_storage(f"gs://{_bucket()}/x", gcs_server.options)
    st.makedirs("")
    with pytest.raises(FileNotFoundError):
        st.read("nope.bin")
    with pytest.raises(StorageError, match="gs://"):
        st.size("nope.bin")
