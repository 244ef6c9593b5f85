"""dlio_jax as a trainer uses it (issue 19): keyword construction, labels, transform, an iterator state Orbax
stores as is, epochs on re-iteration, no made-up host-to-device time on a CPU."""

from __future__ import annotations

import os

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import dlio_jax  # noqa: E402

from ._jax_data import ids, overrides, write_labelled_npy  # noqa: E402

pytestmark = pytest.mark.integration


def _labelled_npz(folder, files=6, spf=3):
    os.makedirs(folder, exist_ok=True)
    for f in range(files):
        x = np.zeros((4, 4, spf), np.uint8)
        x[0, 0, :] = f
        x[0, 1, :] = np.arange(spf)
        np.savez(os.path.join(folder, f"img_{f}_of_{files}.npz"), x=x, y=10 * f + np.arange(spf))
    return str(folder)


def test_from_uri_yields_images_with_their_files_labels(tmp_path):
    root = _labelled_npz(tmp_path / "d")
    it = dlio_jax.from_uri(root, format="npz", batch_size=4, shuffle=True, seed=1)
    assert len(it) == 4
    got = list(it)
    assert all(x.shape == (4, 4, 4) for x, _ in got)
    for x, y in got:
        assert np.asarray(y).tolist() == [10 * f + s for f, s in ids(x)]
    assert len({i for x, _ in got for i in ids(x)}) == 16
    (x, *_), = [next(iter(dlio_jax.from_uri(root, format="npz", batch_size=2, labels=False)))]
    assert x.shape == (4, 4)  # labels=False: images alone (first image of the first batch)


def test_from_uri_and_labels_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no \*.npz files"):
        dlio_jax.from_uri(str(tmp_path), format="npz")
    write_labelled_npy(tmp_path, 4, 1)
    with pytest.raises(ValueError, match="carry no labels"):
        dlio_jax.make_iterator("default", overrides=overrides(tmp_path, 4, 1, 2), labels=True)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        dlio_jax.from_uri(str(tmp_path / "train"), format="npy", batch_size=0)


def test_transform_runs_on_the_host_batch_before_the_copy(tmp_path):
    root = _labelled_npz(tmp_path / "d")
    it = dlio_jax.from_uri(root, format="npz", batch_size=3, transform=lambda x: x.astype(np.float32) / 2)
    x, y = next(it)
    assert x.dtype == np.float32 and float(x[1, 0, 1]) == 0.5 and np.asarray(y).tolist() == [0, 1, 2]
    it.close()


def test_iterating_again_starts_the_next_epoch(tmp_path):
    write_labelled_npy(tmp_path, 8, 1)
    ov = overrides(tmp_path, 8, 1, 2, "++workload.reader.sample_shuffle=seed", "++workload.reader.file_shuffle=seed")
    it = dlio_jax.make_iterator("default", overrides=ov)
    first = [ids(b) for b in it]
    second = [ids(b) for b in it]  # iterated again: epoch 2, reshuffled
    assert len(first) == len(second) == 4 and it.epoch == 2
    assert sorted(sum(first, [])) == sorted(sum(second, [])) and first != second
    again = dlio_jax.make_iterator("default", overrides=ov, epoch=2)
    assert [ids(b) for b in again] == second
    it.set_epoch(1)
    assert [ids(b) for b in it] == first


def test_state_is_numeric_and_round_trips_through_orbax(tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    write_labelled_npy(tmp_path, 12, 1)
    ov = overrides(tmp_path, 12, 1, 2, "++workload.reader.sample_shuffle=random", "++workload.reader.file_shuffle=random")
    full = [ids(b) for b in dlio_jax.make_iterator("default", overrides=ov, random_seed=99)]
    it = dlio_jax.make_iterator("default", overrides=ov, random_seed=99)
    head = [ids(next(it)) for _ in range(2)]
    state = it.state_dict()
    it.close()
    assert all(isinstance(v, int) for v in state.values())  # no string, no None: Orbax stores it as is
    with ocp.CheckpointManager(str(tmp_path / "ckpt")) as mngr:
        mngr.save(2, args=ocp.args.Composite(loader=ocp.args.StandardSave(state)))
        mngr.wait_until_finished()
        restored = mngr.restore(2, args=ocp.args.Composite(loader=ocp.args.StandardRestore()))["loader"]
    resumed = dlio_jax.make_iterator("default", overrides=ov)  # no random_seed: the state carries it
    resumed.load_state_dict(restored)
    assert head + [ids(b) for b in resumed] == full
    with pytest.raises(ValueError, match="split"):  # an eval split's state is refused by a train iterator
        dlio_jax.make_iterator("default", overrides=ov).load_state_dict({**state, "split_id": 1})


def test_old_string_split_states_are_still_accepted(tmp_path):
    write_labelled_npy(tmp_path, 8, 1)
    ov = overrides(tmp_path, 8, 1, 2)
    state = {k: v for k, v in dlio_jax.make_iterator("default", overrides=ov).state_dict().items() if k != "split_id"}
    it = dlio_jax.make_iterator("default", overrides=ov)
    it.load_state_dict({**state, "split": "train", "random_seed": None, "next_step": 3})
    assert len(list(it)) == 1


def test_no_host_to_device_time_without_a_device_copy(tmp_path):
    write_labelled_npy(tmp_path, 4, 1)
    it = dlio_jax.make_iterator("default", overrides=overrides(tmp_path, 4, 1, 2))
    next(it)
    on_cpu = jax.devices()[0].platform == "cpu"
    assert (it.last.h2d_s is None) == on_cpu and it.last.io_s is not None
    it.close()


@pytest.mark.parametrize("fmt", ["npz", "npy", "tfrecord", "hdf5"])
def test_samples_have_the_shape_and_dtype_the_torch_plugin_yields(tmp_path, fmt):
    torch = pytest.importorskip("torch")
    import dlio_torch
    from dlio_core.config import tiny_run_config
    from dlio_core.generate import generate_dataset

    cfg = tiny_run_config(str(tmp_path), overrides=(f"++workload.dataset.format={fmt}",
                                                    "++workload.dataset.num_files_train=4",
                                                    "++workload.dataset.num_samples_per_file=2",
                                                    "++workload.reader.batch_size=4"))
    generate_dataset(cfg, progress=False)
    ref = next(iter(dlio_torch.DlioIterableDataset.from_config(cfg, content="samples", batched=True)))
    ref = ref[0] if isinstance(ref, (tuple, list)) else ref
    item = next(iter(dlio_jax.make_iterator(cfg)))
    images = item[0] if isinstance(item, tuple) else item
    assert images.shape == tuple(ref.shape) and ref.dtype == torch.uint8 and images.dtype == np.uint8
    assert isinstance(item, tuple) == (fmt == "npz")  # labels where the files carry them
    src = dlio_jax.DlioSource.from_config(cfg)
    record = src[0][0] if src.labels else src[0]
    assert record.shape == tuple(ref.shape[1:]) and record.dtype == np.uint8


def test_eval_split_keeps_the_batch_size(tmp_path):
    write_labelled_npy(tmp_path, 8, 1, split="valid")
    write_labelled_npy(tmp_path, 8, 1)
    ov = overrides(tmp_path, 8, 1, 4, "++workload.dataset.num_files_eval=8")
    it = dlio_jax.make_iterator("default", overrides=ov, split="valid")
    assert it.cfg.reader.batch_size == 4 and [b.shape[0] for b in it] == [4, 4]  # not DLIO's batch_size_eval=1
    assert len(dlio_jax.make_iterator("default", overrides=ov, split="valid", batch_size=2)) == 4
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        dlio_jax.make_iterator("default", overrides=ov, batch_size=0)
