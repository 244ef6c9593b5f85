"""Real Grain over dlio_jax.DlioSource (issue 19): MapDataset chains, DataLoader with worker processes, and
Grain's checkpointing resuming exactly (its own get_state/set_state and its Orbax handler)."""

from __future__ import annotations

import os

import numpy as np
import pytest

grain = pytest.importorskip("grain")

from dlio_jax import DlioSource  # noqa: E402

pytestmark = pytest.mark.integration

# Grain's worker processes read absl flags; outside an absl app (pytest, a notebook) they were never parsed.
from absl import flags  # noqa: E402

if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()

FILES, SPF = 12, 2


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grain")
    for f in range(FILES):
        x = np.zeros((4, 4, SPF), np.uint8)
        x[0, 0, :] = f
        x[0, 1, :] = np.arange(SPF)
        np.savez(os.path.join(folder, f"img_{f:02d}_of_{FILES}.npz"), x=x, y=100 * f + np.arange(SPF))
    return DlioSource.from_uri(str(folder), format="npz")


def _ids(images):
    a = np.asarray(images)
    return list(zip(a[:, 0, 0].tolist(), a[:, 0, 1].tolist()))


def _check_labels(batch):
    images, labels = batch
    assert np.asarray(labels).tolist() == [100 * f + s for f, s in _ids(images)]
    return _ids(images)


def test_map_dataset_chain_shuffles_batches_and_keeps_labels(source):
    ds = grain.MapDataset.source(source).shuffle(seed=3).map(lambda r: (r[0].astype(np.float32), r[1])).batch(4)
    assert len(ds) == FILES * SPF // 4
    seen = [i for b in ds for i in _check_labels(b)]
    assert sorted(seen) == [(f, s) for f in range(FILES) for s in range(SPF)]
    assert seen != sorted(seen)  # shuffled
    assert ds[0][0].dtype == np.float32 and ds[0][0].shape == (4, 4, 4)


def test_iter_dataset_with_worker_processes_and_exact_resume(source):
    def pipeline(workers=2):
        ds = grain.MapDataset.source(source).shuffle(seed=5).batch(4).to_iter_dataset()
        return ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers)) if workers else ds

    full = [_check_labels(b) for b in pipeline(workers=0)]  # the order does not depend on the workers
    it = iter(pipeline())
    head = [_check_labels(next(it)) for _ in range(2)]
    state = it.get_state()
    del it
    again = iter(pipeline())
    again.set_state(state)
    assert head + [_check_labels(b) for b in again] == full and len(full) == 6


def test_data_loader_with_workers_and_orbax_checkpoint_resumes_exactly(source, tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")

    def loader(workers=2):
        sampler = grain.samplers.IndexSampler(len(source), shuffle=True, seed=7, num_epochs=1,
                                              shard_options=grain.sharding.NoSharding())
        return grain.DataLoader(data_source=source, sampler=sampler, worker_count=workers,
                                operations=[grain.transforms.Batch(batch_size=4, drop_remainder=True)])

    full = [_check_labels(b) for b in loader()]  # batches are made per worker: the same count of them
    assert sorted(i for b in full for i in b) == [(f, s) for f in range(FILES) for s in range(SPF)]
    it = iter(loader())
    head = [_check_labels(next(it)) for _ in range(3)]
    with ocp.CheckpointManager(str(tmp_path / "ckpt"), item_names=("loader",),
                               item_handlers={"loader": grain.checkpoint.CheckpointHandler()}) as mngr:
        mngr.save(3, args=ocp.args.Composite(loader=grain.checkpoint.CheckpointSave(it)))
        mngr.wait_until_finished()
        resumed = iter(loader())
        mngr.restore(3, args=ocp.args.Composite(loader=grain.checkpoint.CheckpointRestore(resumed)))
    assert head + [_check_labels(b) for b in resumed] == full


def test_a_changed_dataset_is_refused_on_restore(source, tmp_path):
    """Grain keys its state on the source's repr: a source over other files must not resume silently."""
    sampler = grain.samplers.IndexSampler(len(source), shuffle=False, seed=0, num_epochs=1,
                                          shard_options=grain.sharding.NoSharding())
    it = iter(grain.DataLoader(data_source=source, sampler=sampler, worker_count=0))
    next(it)
    state = it.get_state()
    fewer = DlioSource(source.storage, "npz", source.files[:-1], SPF)
    other = iter(grain.DataLoader(data_source=fewer, sampler=grain.samplers.IndexSampler(
        len(fewer), shuffle=False, seed=0, num_epochs=1, shard_options=grain.sharding.NoSharding()), worker_count=0))
    with pytest.raises(ValueError):
        other.set_state(state)


def test_records_without_labels_and_bad_labels_request(source, tmp_path):
    plain = DlioSource(source.storage, "npz", source.files, SPF, labels=False)
    assert plain[3].shape == (4, 4) and _ids(plain[3][None]) == [(1, 1)]
    np.save(tmp_path / "a.npy", np.zeros((2, 2, 1), np.uint8))
    with pytest.raises(ValueError, match="carry no labels"):
        DlioSource.from_uri(str(tmp_path), format="npy", labels=True)
    with pytest.raises(IndexError, match="out of range"):
        source[FILES * SPF]
