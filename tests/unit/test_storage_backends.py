"""Object-store backends without a server: option mapping, laziness, pickling, redaction, missing extras,
and DLIO's storage section -> Storage."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from types import SimpleNamespace as NS

import pytest

from dlio_core.listing import dataset_storage
from dlio_core.storage import StorageError, open_storage

LAZY_CLIENTS = ("s3fs", "adlfs", "gcsfs", "fsspec", "aiobotocore", "botocore", "azure", "google")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         check=True, capture_output=True, text=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_import_dlio_core_loads_no_object_store_client():
    mods = _modules_after("import dlio_core, dlio_core.storage, dlio_core.listing\n"
                          "from dlio_core.storage import open_storage; open_storage('/tmp')")
    assert not [m for m in mods if m.split(".")[0] in LAZY_CLIENTS]


@pytest.mark.parametrize("uri, module, extra", [("s3://b/d", "s3fs", "s3"), ("az://c/d", "adlfs", "azure"),
                                                ("abfs://c/d", "adlfs", "azure"), ("gs://b/d", "gcsfs", "gcs")])
def test_missing_extra_names_the_pip_command(uri, module, extra):
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "from dlio_core.storage import open_storage, StorageError\n"
            f"try:\n    open_storage({uri!r})\nexcept StorageError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("ERR ") and f"pip install 'dl-driver[{extra}]'" in out and uri in out and module in out


# --- S3 options ---------------------------------------------------------------------------------------

DLIO_OPTS = {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "S3cr3t-Value-xyz", "endpoint_url": "http://h:9000",
             "region": "us-east-1", "s3_force_path_style": "true", "s3_max_attempts": 3}


def test_s3_maps_dlio_options():
    st = open_storage("s3://bucket/data/", DLIO_OPTS)
    k = st._kwargs
    assert (k["key"], k["secret"], k["endpoint_url"]) == ("AKIAEXAMPLE", "S3cr3t-Value-xyz", "http://h:9000")
    assert k["client_kwargs"]["region_name"] == "us-east-1"
    assert k["config_kwargs"]["s3"] == {"addressing_style": "path"}
    assert k["config_kwargs"]["retries"]["total_max_attempts"] == 1  # ours retry, not botocore's
    assert st.retry.max_attempts == 3 and st.url == "s3://bucket/data"
    assert st.uri("train/a.npz") == "s3://bucket/data/train/a.npz" and st._full("train/a.npz") == "bucket/data/train/a.npz"
    assert st._full("s3://bucket/other/x") == "bucket/other/x"
    with pytest.raises(StorageError, match="not under"):
        st._full("gs://bucket/x")


def test_s3_endpoint_list_is_spread_over_ranks(monkeypatch):
    opts = {**DLIO_OPTS, "endpoint_url": "http://a:1, http://b:2,http://c:3"}
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "4")
    assert open_storage("s3://b/d", opts).endpoint() == "http://b:2"
    monkeypatch.delenv("OMPI_COMM_WORLD_RANK")
    monkeypatch.setenv("PMI_RANK", "0")
    assert open_storage("s3://b/d", opts).endpoint() == "http://a:1"


def test_s3_unknown_option_is_an_error_with_a_hint():
    with pytest.raises(StorageError, match=r"storage_options\.endpoint_ur.*did you mean endpoint_url"):
        open_storage("s3://b/d", {"endpoint_ur": "http://h"})
    st = open_storage("s3://b/d", {"requester_pays": True, "config_kwargs": {"max_pool_connections": 8}})
    assert st._kwargs["requester_pays"] is True and st._kwargs["config_kwargs"]["max_pool_connections"] == 8


def test_s3_storage_library_of_the_mlcommons_fork_is_warned_about():
    with pytest.warns(UserWarning, match="storage_library='s3dlio' has no effect"):
        open_storage("s3://b/d", {"storage_library": "s3dlio"})


def test_s3_bad_values_are_errors():
    with pytest.raises(StorageError, match="s3_force_path_style"):
        open_storage("s3://b/d", {"s3_force_path_style": "maybe"})
    with pytest.raises(StorageError, match="max_attempts"):
        open_storage("s3://b/d", {"s3_max_attempts": 0})


def test_client_is_lazy_per_process_and_never_pickled():
    st = open_storage("s3://bucket/data", DLIO_OPTS)
    assert st._fs is None  # nothing built, no request made
    fs = st.fs
    assert st.fs is fs and st._fs_pid is not None
    blob = pickle.dumps(st)
    assert b"S3FileSystem" not in blob and b"aiobotocore" not in blob
    st2 = pickle.loads(blob)
    assert st2._fs is None and st2 == st and st2.url == st.url
    assert st2.fs is not fs


def test_secrets_stay_out_of_repr_url_and_errors():
    st = open_storage("s3://bucket/data", DLIO_OPTS)
    assert "S3cr3t-Value-xyz" not in repr(st) + st.url
    assert st._scrub("signature mismatch for S3cr3t-Value-xyz") == "signature mismatch for ***"
    with pytest.raises(StorageError) as ei:
        open_storage("s3://AKIA:S3cr3t-Value-xyz@bucket/data")
    assert "S3cr3t-Value-xyz" not in str(ei.value) and "credentials inside the URI" in str(ei.value)


# --- Azure and GCS options ------------------------------------------------------------------------------

def test_azure_options():
    key = "QWNjb3VudEtleVZhbHVlMTIzNDU2Nzg5MA=="
    st = open_storage("az://cont/data", {"endpoint_url": "http://127.0.0.1:10000/devstoreaccount1",
                                         "account_name": "devstoreaccount1", "account_key": key, "max_attempts": 2})
    conn = st._kwargs["connection_string"]
    assert "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;" in conn and key in conn
    assert st.retry.max_attempts == 2 and st.endpoint() == "http://127.0.0.1:10000/devstoreaccount1"
    assert key not in repr(st) and st._scrub(f"bad conn {conn}").count(key) == 0
    ab = open_storage("abfs://cont@acct.dfs.core.windows.net/x", {"anon": True})
    assert ab._kwargs["account_name"] == "acct" and ab._full("y") == "cont/x/y"
    with pytest.raises(StorageError, match="did you mean connection_string"):
        open_storage("az://c/d", {"connection_strin": "x"})


def test_gcs_options_pick_the_core_client_for_emulators():
    import gcsfs.core

    st = open_storage("gs://bkt/data", {"endpoint_url": "http://127.0.0.1:9023"})
    assert st._kwargs["token"] == "anon" and st._fs_class() is gcsfs.core.GCSFileSystem
    assert open_storage("gcs://bkt/x", {"project": "p"})._full("a") == "bkt/x/a"
    with pytest.raises(StorageError, match=r"gs:// backend.*did you mean token"):
        open_storage("gs://b/d", {"tokn": "anon"})


# --- DLIO's storage section ------------------------------------------------------------------------------

def _cfg(folder: str, stype: str = "local_fs", root: str = "./", options=None, odirect: bool = False):
    return NS(dataset=NS(data_folder=folder), reader=NS(odirect=odirect),
              storage=NS(storage_type=stype, storage_root=root, storage_options=options or {}))


@pytest.mark.parametrize("folder, stype, root, url", [
    ("s3://bkt/unet", "s3", "ignored", "s3://bkt/unet"),        # a URI is used as is
    ("s3://s3pytorchconnector", "s3", "s3pytorchconnector", "s3://s3pytorchconnector"),
    ("unet3d/", "s3", "bkt", "s3://bkt/unet3d"),                 # relative: joined under the bucket
    ("./data", "s3", "/bkt/", "s3://bkt/data"),
    ("data", "s3dlio", "bkt", "s3://bkt/data"),
    ("data", "adls_gen2", "cont", "az://cont/data"),
    ("gs://g/d", "local_fs", "./", "gs://g/d"),
])
def test_storage_section_to_uri(folder, stype, root, url):
    assert dataset_storage(_cfg(folder, stype, root, {"endpoint_url": "http://h:1"})).url == url


def test_storage_options_reach_the_backend():
    st = dataset_storage(_cfg("d", "s3", "bkt", {"endpoint_url": "http://h:1", "s3_max_attempts": 2}))
    assert st.endpoint() == "http://h:1" and st.retry.max_attempts == 2


def test_storage_section_errors():
    with pytest.raises(StorageError, match="storage_root.*names no bucket"):
        dataset_storage(_cfg("data", "s3", "./"))
    with pytest.raises(StorageError, match="aistore.*not supported"):
        dataset_storage(_cfg("data", "aistore", "bkt"))


def test_odirect_maps_local_reads_to_direct(tmp_path):
    assert dataset_storage(_cfg(str(tmp_path), odirect=True)).url == f"direct://{tmp_path}"
    assert dataset_storage(_cfg(f"file://{tmp_path}", odirect=True)).url == f"direct://{tmp_path}"
    assert dataset_storage(_cfg(str(tmp_path))).url == f"file://{tmp_path}"


def test_stock_s3_workload_config_maps_to_its_bucket():
    from dlio_core.config import load_config

    cfg = load_config("unet3d_h100_s3")
    st = dataset_storage(cfg)
    assert st.url == "s3://s3pytorchconnector" and st.retry.max_attempts == 5
    assert st.endpoint() == "http://localhost:9020"  # rank 0 of DLIO's comma-separated list
    assert st._kwargs["config_kwargs"].get("s3") is None  # s3_force_path_style: False
