"""dlio_tf's checkpoint hooks: round trips (local rename and stage + upload), commit visibility, sizing."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
tf = pytest.importorskip("tensorflow")

import dlio_tf  # noqa: E402
from dlio_core.checkpoint import MARKER  # noqa: E402
from dlio_core.config import load_config  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("upload", [False, True], ids=["local-rename", "stage-upload"])
def test_round_trip_restores_equal_values(tmp_path, upload):
    w = tf.Variable(np.arange(1000, dtype=np.float32))
    step = tf.Variable(7, dtype=tf.int64)
    ck = dlio_tf.TFCheckpointer(str(tmp_path / "ck"), upload=upload, stage_dir=str(tmp_path), w=w, step=step)
    t = ck.save(7)
    assert t.nbytes >= 4000 and t.save_s > 0 and t.publish_s >= 0 and t.total_s >= t.save_s
    assert ck.steps() == [7] and (tmp_path / "ck" / "ckpt-7" / MARKER).exists()
    w.assign(tf.zeros_like(w))
    step.assign(0)
    r = ck.restore()
    assert r.step == 7 and np.array_equal(w.numpy(), np.arange(1000, dtype=np.float32)) and int(step) == 7
    assert not [p for p in os.listdir(tmp_path) if p.startswith("dl-driver-")]  # stage cleaned up


def test_only_complete_checkpoints_are_visible(tmp_path):
    v = tf.Variable([1, 2, 3])
    ck = dlio_tf.TFCheckpointer(str(tmp_path), max_to_keep=2, v=v)
    for s in (1, 2, 3):
        ck.save(s)
    assert ck.steps() == [2, 3] and not (tmp_path / "ckpt-1").exists()
    (tmp_path / "ckpt-9").mkdir()  # a save that died before its commit marker
    (tmp_path / "ckpt-9" / "ckpt.index").write_bytes(b"partial")
    assert ck.steps() == [2, 3]
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        ck.restore(9)
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_state_sized_from_the_config(tmp_path):
    cfg = load_config("resnet50_tf", [f"++workload.checkpoint.checkpoint_folder={tmp_path}",
                                      "++workload.model.model_size_bytes=3000000"])
    ck = dlio_tf.TFCheckpointer.from_config(cfg)
    t = ck.save(1)
    assert 3_000_000 <= t.nbytes < 3_100_000  # the variables plus TensorFlow's index
    assert t.location.endswith("/ckpt-1") and ck.restore().nbytes == t.nbytes


def test_tensorflow_finds_our_checkpoints_and_restore_has_its_own_timing(tmp_path):
    v = tf.Variable([1.0, 2.0, 3.0])
    ck = dlio_tf.TFCheckpointer(str(tmp_path), max_to_keep=2, v=v)
    assert tf.train.latest_checkpoint(str(tmp_path)) is None
    for s in (1, 2, 3):
        v.assign_add([1.0, 1.0, 1.0])
        t = ck.save(s)
        assert t.save_s > 0 and t.restore_s is None
    latest = tf.train.latest_checkpoint(str(tmp_path))
    assert latest == os.path.join(str(tmp_path), "ckpt-3", "ckpt")
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert [os.path.relpath(p, str(tmp_path)) for p in state.all_model_checkpoint_paths] == ["ckpt-2/ckpt", "ckpt-3/ckpt"]
    other = tf.Variable([0.0, 0.0, 0.0])
    # TensorFlow's own restore (our bundles come from Checkpoint.write: no save_counter to match)
    tf.train.Checkpoint(v=other).restore(latest).expect_partial()
    assert other.numpy().tolist() == [4.0, 5.0, 6.0]
    mgr = tf.train.CheckpointManager(tf.train.Checkpoint(v=other), str(tmp_path), max_to_keep=None)
    assert mgr.latest_checkpoint == latest
    v.assign([0.0, 0.0, 0.0])
    r = ck.restore()
    assert r.step == 3 and r.save_s is None and r.restore_s > 0 and r.total_s >= r.restore_s
    assert v.numpy().tolist() == [4.0, 5.0, 6.0]
