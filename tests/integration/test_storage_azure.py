"""Azure Blob through adlfs against Azurite on 127.0.0.1."""

from __future__ import annotations

import multiprocessing as mp
import uuid

import pytest

from dlio_core.storage import StorageError, open_storage

from ._storage_checks import checkpoint_roundtrip, generate_and_run, reader_in_process

pytestmark = pytest.mark.integration


def _container() -> str:
    return f"c{uuid.uuid4().hex[:12]}"


def test_generate_and_run_native_on_azure(azurite_server, tmp_path):
    uri = f"az://{_container()}/unet"
    summary = generate_and_run(uri, tmp_path / "out", azurite_server.options)
    assert summary["num_files_train"] == 16
    assert len(open_storage(uri, azurite_server.options).list_files("train", ".npz")) == 16


def test_adls_gen2_storage_type_maps_root_to_the_container(azurite_server, tmp_path):
    container = _container()
    generate_and_run("data", tmp_path / "out", azurite_server.options, storage_type="adls_gen2",
                     storage_root=container)
    assert len(open_storage(f"abfs://{container}/data", azurite_server.options).list_files("train", ".npz")) == 16


def test_checkpoint_sized_write_read(azurite_server):
    checkpoint_roundtrip(open_storage(f"az://{_container()}/run", azurite_server.options))


def test_connection_string_from_the_environment(azurite_server, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_server.options["connection_string"])
    st = open_storage(f"az://{_container()}/env")
    st.makedirs("")
    st.write_atomic("a.bin", b"from env")
    assert st.read("a.bin") == b"from env"


def test_account_key_never_appears_in_errors_or_repr(azurite_server):
    conn = azurite_server.options["connection_string"]
    key = conn.split("AccountKey=")[1].split(";")[0]
    st = open_storage(f"az://{_container()}/x", {"connection_string": conn})
    with pytest.raises(StorageError) as ei:
        st.read("missing.bin")
    assert key not in str(ei.value) and key not in repr(st) and "az://" in str(ei.value)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pickled_storage_reads_in_worker_processes(azurite_server, method):
    st = open_storage(f"az://{_container()}/mp", azurite_server.options)
    st.makedirs("")
    st.write_atomic("w.bin", b"azure-worker-payload")
    assert st.read("w.bin")
    ctx = mp.get_context(method)
    q = ctx.Queue()
    p = ctx.Process(target=reader_in_process, args=(st, None, "w.bin", q))
    p.start()
    result = q.get(timeout=60)
    p.join(30)
    assert result[0] != "error", result
    assert result[1] == b"azure-worker-pay" and result[2] == 20
