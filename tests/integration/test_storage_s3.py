"""S3 through s3fs against real servers on 127.0.0.1: seaweedfs (`weed mini`, enforces credentials) and moto."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import pickle
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from dlio_core.config import load_config
from dlio_core.listing import dataset_files
from dlio_core.runner import run
from dlio_core.storage import StorageError, open_storage
from dlio_core.storage.stage import COMMIT_MARKER, download_stage, is_committed, upload_stage

from . import conftest_servers as servers
from ._kill_mid_run import run_on_vanishing_s3
from ._proxy import Proxy
from ._storage_checks import checkpoint_roundtrip, generate_and_run, reader_in_process, small_config

pytestmark = pytest.mark.integration


def _bucket() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def test_generate_and_run_native_on_s3(s3_server, tmp_path):
    uri = f"s3://{_bucket()}/unet"
    summary = generate_and_run(uri, tmp_path / "out", s3_server.options)
    assert summary["num_files_train"] == 16
    st = open_storage(uri, s3_server.options)
    assert len(st.list_files("train", ".npz")) == 16 and st.exists("dl-driver-manifest.json")


def test_stock_s3_workload_runs_unmodified(s3_server, tmp_path):
    """unet3d_h100_s3 as DLIO ships it: data_folder s3://s3pytorchconnector, storage_root the bucket, DLIO's
    storage_options (a comma-separated endpoint list, region us-east-1, s3_force_path_style, s3_max_attempts).
    Only the endpoint, the credentials and the sizes are overridden."""
    o = s3_server.options
    cfg = load_config("unet3d_h100_s3", [
        f"++workload.storage.storage_options.endpoint_url={o['endpoint_url']},{o['endpoint_url']}",
        f"++workload.storage.storage_options.access_key_id={o['access_key_id']}",
        f"++workload.storage.storage_options.secret_access_key={o['secret_access_key']}",
        "++workload.reader.data_loader=native",   # the stock pytorch loader is another issue's
        "++workload.dataset.num_files_train=14",
        "++workload.dataset.record_length_bytes=262144",
        "++workload.dataset.record_length_bytes_resize=262144",
        "++workload.train.epochs=1",
        "++workload.train.computation_time=0.001",
        f"++hydra.run.dir={tmp_path}/out",
    ])
    assert cfg.dataset.data_folder == "s3://s3pytorchconnector" and cfg.storage.storage_options["region"] == "us-east-1"
    run(cfg, quiet=True)
    st = open_storage("s3://s3pytorchconnector", dict(o))
    assert len(st.list_files("train", ".npz")) == 14
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metric"]["train_throughput_samples_per_second"][0] > 0


def test_relative_data_folder_joins_storage_root(s3_server, tmp_path):
    bucket = _bucket()
    cfg = small_config("runs/a", tmp_path / "out", dict(s3_server.options), storage_type="s3", storage_root=bucket,
                       extra=["++workload.train.epochs=1", "++workload.workflow.evaluation=False"])
    run(cfg, quiet=True)
    st = open_storage(f"s3://{bucket}", s3_server.options)
    assert len(st.list_files("runs/a/train", ".npz")) == 16


def test_environment_credentials(s3_server, monkeypatch):
    o = s3_server.options
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", o["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", o["secret_access_key"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", o["endpoint_url"])
    st = open_storage(f"s3://{_bucket()}/env")
    st.makedirs("")
    st.write_atomic("a.bin", b"from env")
    assert st.read("a.bin") == b"from env" and st.endpoint() == o["endpoint_url"]


def test_wrong_secret_is_a_clear_error_without_the_secret(s3_server):
    bad = "WRONG-secret-value-123"
    st = open_storage(f"s3://{_bucket()}/x", {**s3_server.options, "secret_access_key": bad})
    with pytest.raises(StorageError) as ei:
        st.makedirs("")
    assert "s3://" in str(ei.value) and bad not in str(ei.value) and bad not in repr(st)


def test_checkpoint_sized_write_read(s3_server):
    checkpoint_roundtrip(open_storage(f"s3://{_bucket()}/run", s3_server.options))


def test_bucket_creation_with_a_region(s3_server, moto_s3_server):
    # DLIO's default region is never sent as a location constraint; another one is, and dropped where refused.
    for srv in (s3_server, moto_s3_server):
        for region in ("us-east-1", "eu-west-1"):
            st = open_storage(f"s3://{_bucket()}/p", {**srv.options, "region": region})
            st.makedirs("")
            st.write_atomic("x", b"1")
            assert st.read("x") == b"1", (srv.name, region)


class _CountCalls:
    def __init__(self, monkeypatch):
        import s3fs

        self.calls: list[str] = []
        orig = s3fs.S3FileSystem._call_s3

        async def counting(fs, method, *args, **kwargs):
            self.calls.append(method if isinstance(method, str) else getattr(method, "__name__", str(method)))
            return await orig(fs, method, *args, **kwargs)

        monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", counting)

    def count(self, prefix: str) -> int:
        return sum(1 for c in self.calls if c.startswith(prefix))


def test_listing_is_one_paginated_find_and_none_with_a_manifest(s3_server, tmp_path, monkeypatch):
    uri = f"s3://{_bucket()}/ds"
    cfg = small_config(uri, tmp_path / "out", dict(s3_server.options), extra=["++workload.dataset.num_files_train=40",
                                                                                "++workload.dataset.num_files_eval=0"])
    from dlio_core.generate import generate_dataset

    generate_dataset(cfg, progress=False)
    st = open_storage(uri, s3_server.options)
    counter = _CountCalls(monkeypatch)
    files = st.list_files("train", ".npz")
    assert len(files) == 40
    assert counter.count("list_objects") == 1 and counter.count("head_object") == 0, counter.calls
    counter.calls.clear()
    assert len(dataset_files(cfg, st, "train")) == 40  # from the manifest
    assert counter.count("list_objects") == 0, counter.calls
    st.delete("dl-driver-manifest.json")
    counter.calls.clear()
    assert len(dataset_files(cfg, st, "train")) == 40  # no manifest: one listing
    assert counter.count("list_objects") == 1 and counter.count("head_object") == 0, counter.calls


def test_read_threads_requests_are_in_flight_together(s3_server):
    st0 = open_storage(f"s3://{_bucket()}/conc", s3_server.options)
    st0.makedirs("")
    for i in range(8):
        st0.write_atomic(f"o{i}.bin", bytes([i]) * 300_000)
    proxy = Proxy(s3_server.port, delay_s=0.3)
    try:
        st = open_storage(st0.url, {**s3_server.options, "endpoint_url": proxy.endpoint})
        st.read_into("o0.bin", bytearray(10))  # warm: the first call builds the client
        bufs = [bytearray(300_000) for _ in range(8)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as ex:
            got = list(ex.map(lambda i: st.read_into(f"o{i}.bin", bufs[i]), range(8)))
        elapsed = time.perf_counter() - t0
    finally:
        proxy.close()
    assert got == [300_000] * 8 and all(b[0] == i for i, b in enumerate(bufs))
    # One after another would take at least 8 x 0.3 s = 2.4 s.
    assert elapsed < 1.5, f"8 concurrent reads took {elapsed:.2f} s: requests are serialised"


def test_transient_faults_are_retried_and_bounded(s3_server):
    st0 = open_storage(f"s3://{_bucket()}/flaky", s3_server.options)
    st0.makedirs("")
    st0.write_atomic("a.bin", b"payload")
    proxy = Proxy(s3_server.port)
    try:
        proxy.drop_next = 2
        st = open_storage(st0.url, {**s3_server.options, "endpoint_url": proxy.endpoint, "s3_max_attempts": 4})
        buf = bytearray(7)
        assert st.read_into("a.bin", buf) == 7 and bytes(buf) == b"payload"
        assert proxy.drop_next == 0
        proxy.drop_next = 5
        st1 = open_storage(st0.url, {**s3_server.options, "endpoint_url": proxy.endpoint, "s3_max_attempts": 2})
        t0 = time.perf_counter()
        with pytest.raises(StorageError, match=r"cannot read s3://.*/flaky/a\.bin.*s3_max_attempts"):
            st1.read_into("a.bin", buf)
        assert time.perf_counter() - t0 < 10
    finally:
        proxy.close()


def test_server_gone_mid_epoch_fails_promptly_and_keeps_metrics(tmp_path):
    out = tmp_path / "out"
    error, killed_at, failed_at, options = run_on_vanishing_s3(tmp_path)
    assert failed_at - killed_at < 30, f"took {failed_at - killed_at:.1f} s to give up"
    msg = str(error)
    assert "s3://" in msg and "/gone/train/" in msg and "reachable" in msg, msg
    assert options["secret_access_key"] not in msg
    summary = json.loads((out / "summary.json").read_text())  # the runner's finally still wrote reports
    assert summary["epochs"] >= 1


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pickled_storage_reads_in_worker_processes(s3_server, method):
    st = open_storage(f"s3://{_bucket()}/mp", s3_server.options)
    st.makedirs("")
    st.write_atomic("w.bin", b"worker-payload-0123456789")
    assert st.read("w.bin")  # the parent's client (and fsspec's loop) are live before the fork
    blob = pickle.dumps(st)
    assert b"S3FileSystem" not in blob and s3_server.options["secret_access_key"] not in repr(st)
    ctx = mp.get_context(method)
    q = ctx.Queue()
    procs = [ctx.Process(target=reader_in_process, args=(st, None, "w.bin", q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(r[0] != "error" for r in results), results
    assert {r[1] for r in results} == {b"worker-payload-0"} and all(r[2] == 25 for r in results)
    t0 = time.perf_counter()
    assert st.read("w.bin") == b"worker-payload-0123456789"  # the parent still works afterwards,
    assert time.perf_counter() - t0 < 5  # at once: the children did not close its pooled connections


def test_stage_uploads_with_a_commit_marker_last(s3_server, tmp_path):
    st = open_storage(f"s3://{_bucket()}/ckpts", s3_server.options)
    payload = np.random.default_rng(1).integers(0, 256, 3 * 2**20, dtype=np.uint8).tobytes()
    with upload_stage(st, "step-5") as d:
        with open(f"{d}/model.pt", "wb") as f:
            f.write(payload)
        os.makedirs(f"{d}/shards")
        with open(f"{d}/shards/0.bin", "wb") as f:
            f.write(b"shard0")
    assert is_committed(st, "step-5")
    marker = json.loads(st.read(f"step-5/{COMMIT_MARKER}"))
    assert marker["files"] == {"model.pt": len(payload), "shards/0.bin": 6}
    with download_stage(st, "step-5") as d:
        assert open(f"{d}/model.pt", "rb").read() == payload
        assert open(f"{d}/shards/0.bin", "rb").read() == b"shard0"
    with pytest.raises(RuntimeError):
        with upload_stage(st, "step-6") as d:
            open(f"{d}/model.pt", "wb").write(b"half")
            raise RuntimeError("trainer crashed")
    assert not st.exists("step-6/model.pt") and not is_committed(st, "step-6")
    st.write_atomic("step-7/model.pt", b"no marker")
    with pytest.raises(StorageError, match="did not complete"):
        with download_stage(st, "step-7"):
            pass
