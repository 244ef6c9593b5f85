"""dlio_jax against a real S3 server (seaweedfs on 127.0.0.1): Orbax checkpoints staged locally and
uploaded through ``dlio_core.storage.stage`` (commit marker last), and ``make_iterator`` over npz data
generated on ``s3://``. Runs in the JAX pytest process (see the Makefile): keep JAX imports here.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("orbax.checkpoint")
pytest.importorskip("s3fs")

from dlio_core.storage import open_storage  # noqa: E402
from dlio_core.storage.stage import COMMIT_MARKER  # noqa: E402
from dlio_jax import make_iterator  # noqa: E402
from dlio_jax.checkpoint import OrbaxCheckpointer  # noqa: E402

pytestmark = pytest.mark.integration

from ._s3_npz import assert_each_epoch_reads_every_sample_once, generate_samples, s3_overrides  # noqa: E402


def _state(seed: int) -> dict:
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    return {"w": jnp.asarray(rng.standard_normal((64, 32), dtype=np.float32)),
            "opt": {"m": rng.standard_normal(100), "count": np.int64(seed)}}


def _same(a, b) -> bool:
    import jax

    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def test_orbax_round_trip_on_s3(s3_uri, tmp_path):
    uri, options = s3_uri
    st = open_storage(f"{uri}/orbax", options)
    with OrbaxCheckpointer(st, stage_dir=str(tmp_path / "stage")) as ck:
        t = ck.save(5, _state(5), wait=True)
        assert t.upload_s > 0 and t.finish_s >= t.upload_s and t.bytes_written == 64 * 32 * 4 + 100 * 8 + 8
    assert st.exists(f"5/{COMMIT_MARKER}")
    marker = json.loads(st.read(f"5/{COMMIT_MARKER}"))  # the shared marker: every uploaded file with its size
    objects = {rel.split("/", 1)[1]: n for rel, n in st.list_files("5") if not rel.endswith(COMMIT_MARKER)}
    assert marker["files"] == objects and len(objects) > 2

    fresh = OrbaxCheckpointer(open_storage(f"{uri}/orbax", options), stage_dir=str(tmp_path / "stage2"))
    try:
        assert fresh.all_steps() == [5]
        assert _same(fresh.restore(5), _state(5)) and _same(fresh.restore(), _state(5))
        st.delete(f"5/{COMMIT_MARKER}")  # an upload that never committed is not a checkpoint
        assert fresh.latest_step() is None
        with pytest.raises(FileNotFoundError, match="no committed checkpoint"):
            fresh.restore(5)
    finally:
        fresh.close()


def test_make_iterator_reads_npz_on_s3(s3_uri):
    uri, options = s3_uri
    folder = f"{uri}/npz"
    samples = generate_samples(folder, options)

    def read_epoch(epoch: int, shuffled: list[str]) -> list[bytes]:
        it = make_iterator("default", overrides=s3_overrides(folder, options, "++workload.workflow.generate_data=False", *shuffled),
                           epoch=epoch)
        # npz carries labels: items are (images, labels), the labels read from s3 too
        got = [row.tobytes() for b, y in it for row in np.asarray(b).reshape(len(b), -1)]
        assert it.last.bytes_read > 0
        return got

    assert_each_epoch_reads_every_sample_once(read_epoch, samples)
