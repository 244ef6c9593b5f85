"""dlio_tf.make_iterator: one epoch of make_dataset's batches, resumable through the Stateful protocol."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
tf = pytest.importorskip("tensorflow")

import dlio_tf  # noqa: E402
from dlio_core.config import load_config  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402
from dlio_core.state import IterationState, Stateful  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    folder = tmp_path_factory.mktemp("npz")
    cfg = load_config("default", [f"++workload.dataset.data_folder={folder}", "++workload.dataset.num_files_train=12",
                                  "++workload.dataset.num_samples_per_file=2", "++workload.reader.batch_size=4",
                                  "++workload.reader.sample_shuffle=seed", "++workload.reader.file_shuffle=seed"])
    generate_dataset(cfg, progress=False)
    return cfg


def _bytes(batches):
    return [b["image"].numpy().tobytes() for b in batches]


def test_resume_yields_the_rest_of_the_epoch(cfg):
    full = _bytes(dlio_tf.make_iterator(cfg, epoch=2, deterministic=True))
    it = dlio_tf.make_iterator(cfg, epoch=2, deterministic=True)
    assert isinstance(it, Stateful)
    head = _bytes([next(it), next(it)])
    state = it.state_dict()
    assert IterationState.from_dict(state) == IterationState(epoch=2, next_step=2, seed=cfg.train.seed)
    rest = dlio_tf.make_iterator(cfg, deterministic=True)  # epoch 1: the state says which epoch
    rest.load_state_dict(state)
    assert rest.state_dict() == state
    assert head + _bytes(rest) == full and len(full) == 6
    assert _bytes(dlio_tf.make_dataset(cfg, epoch=2, deterministic=True)) == full  # the same batches as the dataset


def test_resume_refuses_another_input_pipeline(cfg):
    state = dlio_tf.make_iterator(cfg).state_dict()
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    with pytest.raises(ValueError, match="num_input_pipelines=1.*num_input_pipelines=2"):
        dlio_tf.make_iterator(cfg, input_context=ctx).load_state_dict(state)
    with pytest.raises(ValueError, match="next_step"):
        dlio_tf.make_iterator(cfg).load_state_dict({k: v for k, v in state.items() if k != "next_step"})
