"""torch_save with O_DIRECT on ``direct://`` (never through the page cache, loadable by torch), and a checkpoint
upload that fails half-way on the S3 test server: no object under its name and no multipart upload left behind."""

from __future__ import annotations

import os
import tempfile

import pytest

from dlio_core.checkpoint import MARKER, CheckpointEngine, CheckpointError
from dlio_core.checkpoint.coldread import resident_file_bytes
from dlio_core.config import load_config
from dlio_core.storage import open_storage
from dlio_core.storage.direct import ALIGN

pytestmark = pytest.mark.integration

MiB = 1 << 20


def engine(storage, mechanism: str, nbytes: int) -> CheckpointEngine:
    cfg = load_config("unet3d_h100", ["++workload.checkpoint.checkpoint_folder=/unused",
                                      f"++workload.checkpoint.checkpoint_mechanism={mechanism}",
                                      f"++workload.model.model_size_bytes={nbytes}", "++workload.checkpoint.fsync=True"])
    return CheckpointEngine(cfg, storage=storage, progress=False, chunk_bytes=MiB)


@pytest.fixture
def disk_dir():
    """A folder on a disk file system (/tmp may be tmpfs, whose pages never leave memory), removed afterwards."""
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="dl-driver-ck-") as folder:
        yield folder


def test_torch_save_on_direct_storage_bypasses_the_page_cache(disk_dir, monkeypatch):
    torch = pytest.importorskip("torch")
    opened: list[int] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, f, *a, **k: (opened.append(f), real_open(p, f, *a, **k))[1])
    eng = engine(open_storage("direct://" + disk_dir), "torch_save", 3 * MiB + 777)
    try:
        saved = eng.save(1, 1)
    except CheckpointError as e:
        assert "refuses direct I/O; use a plain path instead of direct://" in str(e)  # the clear refusal
        pytest.skip(f"this file system refuses O_DIRECT: {e}")
    assert any(f & os.O_DIRECT and f & os.O_WRONLY for f in opened)
    path = os.path.join(disk_dir, "global_epoch1_step1", "model_states-0.pt")
    assert saved.stored_bytes == os.path.getsize(path) > saved.bytes
    assert resident_file_bytes(path) <= 2 * ALIGN  # only the last, partial block went through the page cache
    state = torch.load(path, weights_only=True)
    assert sum(t.numel() * t.element_size() for t in state.values()) == 3 * MiB + 777
    loaded = eng.load(1, 1)
    assert (loaded.bytes, loaded.stored_bytes, loaded.cached_bytes) == (saved.bytes, saved.stored_bytes, 0)
    assert sorted(os.listdir(os.path.dirname(path))) == [MARKER, "model_states-0.pt"]  # no temporary left


@pytest.mark.parametrize("mechanism", ["stream", "torch_save"])
def test_a_failed_upload_leaves_no_object_and_no_parts(s3_uri, monkeypatch, mechanism):
    if mechanism == "torch_save":
        pytest.importorskip("torch")
    import s3fs

    uri, options = s3_uri
    storage = open_storage(uri, options)
    eng = engine(storage, mechanism, 64 * MiB)  # more than one 50 MiB part: a multipart upload
    eng.save(1, 2)  # the bucket exists; a checkpoint beside the failing one stays whole
    fs, bucket = storage.fs, uri.split("/")[2]
    in_flight: list[int] = []
    real_upload = s3fs.core.S3File._upload_chunk

    def upload_then_fail(self, final=False):  # the connection drops after the first part
        if self.parts:
            for up in fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", []):
                listed = fs.call_s3("list_parts", Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
                in_flight.append(len(listed.get("Parts", [])))
            raise OSError("injected failure half-way through the checkpoint")
        return real_upload(self, final)

    monkeypatch.setattr(s3fs.core.S3File, "_upload_chunk", upload_then_fail)
    with pytest.raises(CheckpointError, match="injected failure half-way"):
        eng.save(1, 1)
    assert in_flight == [1], "no multipart upload with a part before the failure: the test proves nothing"
    assert fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", []) == []  # aborted, not orphaned
    assert not storage.exists("global_epoch1_step1/model_states-0.pt")
    assert not storage.exists(f"global_epoch1_step1/{MARKER}")
    assert storage.exists(f"global_epoch1_step2/{MARKER}")


def test_a_framework_folder_on_direct_storage_says_it_uses_the_page_cache(disk_dir):
    pytest.importorskip("torch")
    warned: list[str] = []
    log = type("Log", (), {"output": lambda self, m: None, "warning": lambda self, m: warned.append(m)})()
    cfg = load_config("unet3d_h100", ["++workload.checkpoint.checkpoint_folder=/unused",
                                      "++workload.checkpoint.checkpoint_mechanism=dcp"])
    CheckpointEngine(cfg, storage=open_storage("direct://" + disk_dir), progress=False, log=log)
    assert any("dcp on direct:// writes and reads through its framework's own file I/O" in w for w in warned)
    warned.clear()
    CheckpointEngine(cfg, storage=open_storage(disk_dir), progress=False, log=log)
    assert not any("direct://" in w for w in warned)


ORBAX_ON_DIRECT = r'''
import sys
from dlio_core.checkpoint import CheckpointEngine
from dlio_core.config import load_config
from dlio_core.storage import open_storage
cfg = load_config("unet3d_h100", ["++workload.checkpoint.checkpoint_folder=/unused", "++workload.framework=jax",
                                  "++workload.model.model_size_bytes=1048576", "++workload.checkpoint.fsync=True"])
eng = CheckpointEngine(cfg, storage=open_storage("direct://" + sys.argv[1]), progress=False)
saved, loaded = eng.save(1, 1), eng.load(1, 1)
print("RESULT", saved.mechanism, saved.bytes, loaded.bytes, loaded.stored_bytes == saved.stored_bytes > saved.bytes,
      loaded.cached_bytes)
'''


def test_orbax_on_direct_storage_round_trips(disk_dir):
    import subprocess
    import sys

    pytest.importorskip("orbax.checkpoint")
    # its own process: JAX beside torch and TensorFlow in one interpreter is not what a run does
    out = subprocess.run([sys.executable, "-c", ORBAX_ON_DIRECT, disk_dir], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    assert line.split()[1:] == ["orbax", "1048576", "1048576", "True", "0"]
