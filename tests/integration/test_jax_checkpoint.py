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


# --- the workload's orbax mechanism (dlio_core.checkpoint.fw_orbax) -----------------------------------

TINY_LLAMA = ["model.num_layers=2", "model.transformer.hidden_size=64", "model.transformer.ffn_hidden_size=128",
              "model.transformer.vocab_size=1000", "model.transformer.num_attention_heads=4",
              "model.transformer.num_kv_heads=2", "checkpoint.time_between_checkpoints=0"]


def _engine(root, *overrides, storage=None):
    from dlio_core.checkpoint import CheckpointEngine
    from dlio_core.config import load_config

    cfg = load_config("llama3_8b", [f"++workload.checkpoint.checkpoint_folder={root}", "++workload.framework=jax",
                                    *[f"++workload.{o}" for o in (*TINY_LLAMA, *overrides)]])
    return CheckpointEngine(cfg, storage=storage, progress=False)


def test_workload_orbax_mechanism_round_trips_and_loads_with_orbax(tmp_path):
    import orbax.checkpoint as ocp

    eng = _engine(tmp_path, "checkpoint.fsync=True")  # framework: jax -> orbax, as DLIO derives by framework
    rec = eng.save(1, 1)
    assert rec.mechanism == "orbax" and rec.bytes == eng.plan.total_bytes and rec.blocked_s <= rec.duration_s
    assert rec.stored_bytes > 0 and (rec.peak_memory_bytes is None or rec.peak_memory_bytes >= 0)
    folder = tmp_path / "global_epoch1_step1"
    assert sorted(p.name for p in folder.iterdir()) == [
        ".dl-driver-complete", "zero_pp_rank_0_mp_rank_0_model_states.orbax",
        "zero_pp_rank_0_mp_rank_0_optim_states.orbax"]
    with ocp.StandardCheckpointer() as ck:  # Orbax's own loader opens what the workload wrote
        optim = ck.restore(folder / "zero_pp_rank_0_mp_rank_0_optim_states.orbax" / "ckpt")
    assert sorted(optim, key=int) == [str(i) for i in range(6)]
    assert sum(np.asarray(v).nbytes for v in optim.values()) == eng.plan.part_bytes("optimizer")
    assert eng.load(1, 1).bytes == rec.bytes


@pytest.fixture
def disk_dir():
    """A folder on a disk file system (/tmp may be tmpfs, which refuses O_DIRECT), removed afterwards."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(dir="/var/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_workload_orbax_on_direct_and_through_the_local_stage(tmp_path, disk_dir):
    eng = _engine("direct://" + disk_dir)
    rec = eng.save(1, 1)
    assert eng.load(1, 1).bytes == rec.bytes

    class Remote:  # an object store as far as the engine can tell: no OS path
        def __init__(self, st):
            self._st, self.url = st, "mem://bucket/ck"

        def __getattr__(self, name):
            return getattr(self._st, name)

        def local_path(self, path):
            return None

    remote = Remote(open_storage(str(tmp_path / "bucket")))
    staged = _engine(tmp_path / "unused", storage=remote)
    rec = staged.save(1, 1)
    assert remote.exists(f"global_epoch1_step1/{COMMIT_MARKER}")
    assert staged.load(1, 1).bytes == rec.bytes


def test_workload_orbax_on_s3_and_azure_through_the_local_stage(s3_uri, azurite_server, tmp_path):
    import uuid

    uri, options = s3_uri
    for storage in (open_storage(uri, options),
                    open_storage(f"az://c{uuid.uuid4().hex[:12]}/run", azurite_server.options)):
        eng = _engine(tmp_path / "unused", storage=storage)
        rec = eng.save(1, 1)
        assert storage.exists(f"global_epoch1_step1/{COMMIT_MARKER}") and rec.mechanism == "orbax"
        assert eng.load(1, 1).bytes == rec.bytes == eng.plan.total_bytes
