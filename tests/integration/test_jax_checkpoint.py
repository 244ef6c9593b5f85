"""dlio_jax.checkpoint: Orbax round trips, local and staged to a store with a commit marker."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("orbax.checkpoint")

from dlio_core.storage import open_storage  # noqa: E402
from dlio_jax.checkpoint import COMMIT_MARKER, OrbaxCheckpointer, state_from_config  # noqa: E402

pytestmark = pytest.mark.integration


def _state(seed: int) -> dict:
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    return {"w": jnp.asarray(rng.standard_normal((8, 4), dtype=np.float32)), "b": rng.integers(0, 9, 5)}


def _same(a: dict, b: dict) -> bool:
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


@pytest.mark.parametrize("async_", [True, False])
def test_local_round_trip_with_timing(tmp_path, async_):
    with OrbaxCheckpointer(tmp_path / "ck", async_=async_) as ck:
        t1 = ck.save(1, _state(1))
        t2 = ck.save(2, _state(2))
        assert t1.blocking_s > 0 and t1.finish_s is None
        done = ck.wait_until_finished()
        assert [t.step for t in done] == [2] or [t.step for t in done] == [1, 2]
        assert t2.finish_s >= t2.blocking_s and t2.bytes_written == 8 * 4 * 4 + 5 * 8
        assert ck.all_steps() == [1, 2] and ck.latest_step() == 2
        assert _same(ck.restore(1), _state(1)) and _same(ck.restore(), _state(2))


def test_staged_upload_commits_last_and_restores(tmp_path):
    class Remote:  # a non-local Storage: the local backend behind a URL Orbax cannot write directly
        def __init__(self, root):
            self._st = open_storage(str(root))
            self.url = "mem://bucket/ck"

        def __getattr__(self, name):
            return getattr(self._st, name)

        def local_path(self, path):  # what a remote Storage answers: no OS path
            return None

    remote = Remote(tmp_path / "bucket")
    with OrbaxCheckpointer(remote, stage_dir=str(tmp_path / "stage")) as ck:
        t = ck.save(3, _state(3), wait=True)
        assert t.upload_s > 0 and t.finish_s >= t.upload_s
    assert remote.exists(f"3/{COMMIT_MARKER}")
    files = remote.list_files("3")
    assert len(files) > 2
    fresh = OrbaxCheckpointer(remote, stage_dir=str(tmp_path / "stage2"))
    assert fresh.latest_step() == 3 and _same(fresh.restore(3), _state(3))
    remote.delete(f"3/{COMMIT_MARKER}")  # an upload that never committed is not a checkpoint
    assert fresh.latest_step() is None
    with pytest.raises(FileNotFoundError, match="no committed checkpoint"):
        fresh.restore(3)
    fresh.close()


def test_state_from_config_follows_dlio_sizes():
    from dlio_core.config import load_config

    cfg = load_config("default", ["++workload.model.model_size_bytes=4096"])
    state = state_from_config(cfg)
    assert sum(v.nbytes for v in state.values()) == 4096
