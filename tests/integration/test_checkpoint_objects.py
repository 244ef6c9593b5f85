"""Every checkpoint mechanism on object stores (an S3 server and Azurite on 127.0.0.1): raw and stream through
multipart uploads and ranged reads, torch_save streamed into an upload, dcp and tf_save through the shared local
stage (TensorFlow has no Azure support of its own). Orbax runs in test_jax_checkpoint.py (its own process)."""

from __future__ import annotations

import uuid

import pytest

from dlio_core.checkpoint import MARKER, CheckpointEngine, CheckpointError
from dlio_core.config import load_config
from dlio_core.storage import open_storage

pytestmark = pytest.mark.integration

TINY_LLAMA = ["model.num_layers=2", "model.transformer.hidden_size=64", "model.transformer.ffn_hidden_size=128",
              "model.transformer.vocab_size=1000", "model.transformer.num_attention_heads=4",
              "model.transformer.num_kv_heads=2", "checkpoint.time_between_checkpoints=0"]
MECHANISMS = ["raw", "stream", "stream+zstd", "torch_save", "dcp", "tf_save"]


def _roundtrip(storage, mechanism: str, tmp_path) -> None:
    name, _, codec = mechanism.partition("+")
    if name in ("torch_save", "dcp"):
        pytest.importorskip("torch")
    if name == "tf_save":
        pytest.importorskip("tensorflow")
    cfg = load_config("llama3_8b", [f"++workload.checkpoint.checkpoint_folder={tmp_path}/unused",
                                    f"++workload.checkpoint.checkpoint_mechanism={name}",
                                    f"++workload.checkpoint.compression={codec or 'none'}",
                                    *[f"++workload.{o}" for o in TINY_LLAMA]])
    eng = CheckpointEngine(cfg, storage=storage, progress=False, chunk_bytes=1 << 20)
    saved = eng.save(1, 1)
    assert storage.exists(f"global_epoch1_step1/{MARKER}") and saved.mechanism == name
    assert saved.bytes == eng.plan.total_bytes and saved.stored_bytes >= saved.bytes
    assert not saved.cache_dropped  # no client page cache to drop on an object store: said, not pretended
    loaded = eng.load(1, 1)
    assert (loaded.bytes, loaded.stored_bytes) == (saved.bytes, saved.stored_bytes)
    storage.delete(f"global_epoch1_step1/{MARKER}")
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        eng.load(1, 1)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_mechanism_on_s3(s3_uri, tmp_path, mechanism):
    uri, options = s3_uri
    _roundtrip(open_storage(uri, options), mechanism, tmp_path)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_mechanism_on_azure(azurite_server, tmp_path, mechanism):
    _roundtrip(open_storage(f"az://c{uuid.uuid4().hex[:12]}/run", azurite_server.options), mechanism, tmp_path)
