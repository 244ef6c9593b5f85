"""dlio_tf against a real S3 server (seaweedfs on 127.0.0.1): checkpoints staged locally and uploaded
through ``dlio_core.storage.stage`` (commit marker last), and ``make_dataset`` over npz data on ``s3://``.

No JAX here: the JAX tests run in a pytest process of their own (see the Makefile).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
tf = pytest.importorskip("tensorflow")
pytest.importorskip("s3fs")

import dlio_tf  # noqa: E402
from dlio_core.storage import open_storage  # noqa: E402
from dlio_core.storage import stage as stage_mod  # noqa: E402
from dlio_core.storage.stage import COMMIT_MARKER  # noqa: E402

pytestmark = pytest.mark.integration

from ._s3_npz import assert_each_epoch_reads_every_sample_once, generate_samples, s3_overrides  # noqa: E402


def _stage_left(folder) -> list[str]:
    return [p for p in os.listdir(folder) if p.startswith("dl-driver-")]


def test_checkpoint_round_trip_on_s3(s3_uri, tmp_path):
    uri, options = s3_uri
    w = tf.Variable(np.random.default_rng(1).standard_normal(5000).astype(np.float32))
    step = tf.Variable(11, dtype=tf.int64)
    want = w.numpy().copy()
    ck = dlio_tf.TFCheckpointer(f"{uri}/ck", storage_options=options, stage_dir=str(tmp_path), max_to_keep=1,
                                w=w, step=step)
    assert not ck.local
    t = ck.save(11)
    assert t.nbytes >= 20000 and t.save_s > 0 and t.publish_s > 0 and t.total_s >= t.save_s + t.publish_s * 0.99
    assert t.location.startswith("s3://") and t.location.endswith("/ck/ckpt-11")
    assert ck.steps() == [11] and not _stage_left(tmp_path)

    st = open_storage(f"{uri}/ck", options)
    objects = dict(st.list_files("ckpt-11"))
    marker = json.loads(st.read(f"ckpt-11/{COMMIT_MARKER}"))  # the shared marker: every file with its size
    assert marker["files"] == {rel.split("/", 1)[1]: n for rel, n in objects.items() if not rel.endswith(COMMIT_MARKER)}
    assert "ckpt.index" in marker["files"] and sum(marker["files"].values()) == t.nbytes

    w.assign(tf.zeros_like(w))
    step.assign(0)
    fresh = dlio_tf.TFCheckpointer(f"{uri}/ck", storage_options=options, stage_dir=str(tmp_path), w=w, step=step)
    r = fresh.restore()
    assert r.step == 11 and r.nbytes == t.nbytes and r.publish_s > 0 and r.restore_s > 0 and r.save_s is None
    assert np.array_equal(w.numpy(), want) and int(step) == 11 and not _stage_left(tmp_path)

    w.assign_add(tf.ones_like(w))
    ck.save(12)  # max_to_keep=1: the older one is deleted from the bucket
    assert ck.steps() == [12] and st.list_files("ckpt-11") == []
    w.assign(tf.zeros_like(w))
    ck.restore(12)
    assert np.array_equal(w.numpy(), want + 1)


def test_half_finished_upload_leaves_no_checkpoint(s3_uri, tmp_path, monkeypatch):
    uri, options = s3_uri
    v = tf.Variable(np.arange(64, dtype=np.int32))
    ck = dlio_tf.TFCheckpointer(f"{uri}/ck", storage_options=options, stage_dir=str(tmp_path), v=v)
    ck.save(1)
    st = open_storage(f"{uri}/ck", options)

    # The writer dies inside the stage block: nothing is uploaded.
    real_write = ck.checkpoint.write

    def write_then_die(prefix):
        real_write(prefix)
        raise RuntimeError("killed mid-save")

    monkeypatch.setattr(ck.checkpoint, "write", write_then_die)
    v.assign(v + 100)
    with pytest.raises(RuntimeError, match="killed mid-save"):
        ck.save(2)
    assert ck.steps() == [1] and st.list_files("ckpt-2") == [] and not _stage_left(tmp_path)
    monkeypatch.undo()

    # The upload dies after the data files, before the commit marker: the objects are there, the checkpoint is not.
    def no_commit(*a, **k):
        raise OSError("connection lost before the commit marker")

    monkeypatch.setattr(stage_mod, "write_marker", no_commit)
    with pytest.raises(OSError, match="connection lost"):
        ck.save(3)
    assert any(rel.endswith("ckpt.index") for rel, _ in st.list_files("ckpt-3"))
    assert not st.exists(f"ckpt-3/{COMMIT_MARKER}") and not _stage_left(tmp_path)
    assert ck.steps() == [1]
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        ck.restore(3)
    v.assign(tf.zeros_like(v))
    assert ck.restore().step == 1 and v.numpy().tolist() == list(range(64))  # the last complete one


def test_make_dataset_reads_npz_on_s3(s3_uri):
    uri, options = s3_uri
    folder = f"{uri}/npz"
    samples = generate_samples(folder, options)

    def read_epoch(epoch: int, shuffled: list[str]) -> list[bytes]:
        ds = dlio_tf.make_dataset("default", overrides=s3_overrides(folder, options, *shuffled), epoch=epoch)
        return [bytes(r) for b in ds for r in b["image"].numpy().reshape(b["image"].shape[0], -1)]

    assert_each_epoch_reads_every_sample_once(read_epoch, samples)


def test_from_uri_reads_labelled_npz_on_s3(s3_uri, tmp_path):
    import io

    uri, options = s3_uri
    storage = open_storage(f"{uri}/lab", options)
    for f in range(4):
        x = np.zeros((4, 4, 2), np.uint8)
        x[0, 0, :] = f
        buf = io.BytesIO()
        np.savez(buf, x=x, y=np.array([10 * f, 10 * f + 1]))
        storage.write_atomic(f"img_{f}_of_4.npz", buf.getvalue())
    ds = dlio_tf.from_uri(f"{uri}/lab", format="npz", batch_size=4, storage_options=options, shuffle=True, seed=2)
    batches = list(ds)
    assert len(ds) == len(batches) == 2
    for b in batches:  # each label read from its own object on the server
        files = b["image"].numpy()[:, 0, 0].tolist()
        assert [y // 10 for y in b["label"].numpy().tolist()] == files
    with pytest.raises(FileNotFoundError, match=r"no \*.npz files"):
        dlio_tf.from_uri(f"{uri}/none", format="npz", storage_options=options)
