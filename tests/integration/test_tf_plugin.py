"""dlio_tf as a trainer uses it (issue 19): keyword construction, labels, transform, cardinality for Keras,
the evaluation batch size, the sample shape every plugin shares, variable-size samples."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

import dlio_tf  # noqa: E402
from dlio_core.config import load_config  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402

pytestmark = pytest.mark.integration


def _labelled_npz(folder, files=6, spf=3, shape=(4, 4)):
    os.makedirs(folder, exist_ok=True)
    for f in range(files):
        x = np.zeros((*shape, spf), np.uint8)
        x[0, 0, :] = f
        x[0, 1, :] = np.arange(spf)
        np.savez(os.path.join(folder, f"img_{f}_of_{files}.npz"), x=x, y=10 * f + np.arange(spf))
    return str(folder)


def _ids(batch):
    img = batch["image"].numpy()
    return list(zip(img[:, 0, 0].tolist(), img[:, 0, 1].tolist()))


def test_from_uri_takes_keywords_and_yields_the_files_labels(tmp_path):
    root = _labelled_npz(tmp_path / "d")
    ds = dlio_tf.from_uri(root, format="npz", batch_size=4)
    assert len(ds) == 18 // 4 == ds.cardinality().numpy()
    batches = list(ds)
    assert len(batches) == 4 and all(tuple(b["image"].shape) == (4, 4, 4) for b in batches)
    for b in batches:  # each label is the one its file stores for that sample
        assert b["label"].numpy().tolist() == [10 * f + s for f, s in _ids(b)]
    seen = [i for b in batches for i in _ids(b)]
    assert seen == [(f, s) for f in range(6) for s in range(3)][:16]  # no shuffle: file order
    one = [i for b in dlio_tf.from_uri(root, format="npz", batch_size=4, shuffle=True, seed=5) for i in _ids(b)]
    two = [i for b in dlio_tf.from_uri(root, format="npz", batch_size=4, shuffle=True, seed=5) for i in _ids(b)]
    other = [i for b in dlio_tf.from_uri(root, format="npz", batch_size=4, shuffle=True, seed=5, epoch=2)
             for i in _ids(b)]
    assert one == two != seen and other != one and len(set(one)) == 16
    assert "label" not in dlio_tf.from_uri(root, format="npz", batch_size=4, labels=False).element_spec


def test_from_uri_bad_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no \*.npz files"):
        dlio_tf.from_uri(str(tmp_path), format="npz")
    root = _labelled_npz(tmp_path / "d")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        dlio_tf.from_uri(root, format="npz", batch_size=0)


def test_transform_maps_each_batch_in_the_pipeline(tmp_path):
    root = _labelled_npz(tmp_path / "d")
    ds = dlio_tf.from_uri(root, format="npz", batch_size=3,
                          transform=lambda b: (tf.cast(b["image"], tf.float32) / 255.0, b["label"]))
    x, y = next(iter(ds))
    assert x.dtype == tf.float32 and tuple(x.shape) == (3, 4, 4) and y.numpy().tolist() == [0, 1, 2]
    assert len(ds) == 6


def test_keras_fit_needs_no_steps_per_epoch(tmp_path):
    root = _labelled_npz(tmp_path / "d")
    ds = dlio_tf.from_uri(root, format="npz", batch_size=3,
                          transform=lambda b: (tf.cast(b["image"], tf.float32), tf.cast(b["label"] % 2, tf.float32)))
    model = tf.keras.Sequential([tf.keras.Input((4, 4)), tf.keras.layers.Flatten(), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(ds.repeat(2).apply(tf.data.experimental.assert_cardinality(12)), epochs=2, verbose=0,
                        shuffle=False)
    assert len(history.history["loss"]) == 2
    history = model.fit(ds, epochs=2, verbose=0, shuffle=False)  # one pass per epoch, re-iterated: no steps_per_epoch
    assert len(history.history["loss"]) == 2


def _workload(folder, *extra):
    cfg = load_config("default", [f"++workload.dataset.data_folder={folder}", "++workload.dataset.num_files_train=8",
                                  "++workload.dataset.num_files_eval=4", "++workload.reader.batch_size=4",
                                  "++workload.dataset.num_subfolders_train=0", *extra])
    generate_dataset(cfg, progress=False)
    return cfg


def test_eval_split_keeps_the_batch_size(tmp_path):
    cfg = _workload(tmp_path)
    assert cfg.reader.batch_size_eval == 1  # DLIO's default, which the plugin does not switch to
    valid = dlio_tf.make_dataset(cfg, split="valid")
    assert len(valid) == 1 and [tuple(b["image"].shape)[0] for b in valid] == [4]
    assert len(dlio_tf.make_dataset(cfg, split="valid", batch_size=2)) == 2
    assert len(dlio_tf.make_dataset(cfg, split="valid", batch_size=cfg.reader.batch_size_eval)) == 4
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        dlio_tf.make_dataset(cfg, batch_size=0)


@pytest.mark.parametrize("fmt,shape", [("npz", (64, 64)), ("npy", (64, 64)), ("tfrecord", (4096,)),
                                       ("hdf5", (64, 64))])
def test_sample_shape_and_dtype_are_the_formats_own(tmp_path, fmt, shape):
    """The shape the format reader gives (the one the torch plugin yields), on both TF paths."""
    cfg = _workload(tmp_path, f"++workload.dataset.format={fmt}", "++workload.dataset.num_samples_per_file=2")
    batch = next(iter(dlio_tf.make_dataset(cfg)))
    assert tuple(batch["image"].shape) == (4, *shape) and batch["image"].dtype == tf.uint8
    assert batch["size"].numpy().tolist() == [int(np.prod(shape))] * 4
    assert ("label" in batch) == (fmt == "npz")


def test_variable_size_samples_are_ragged_or_refused(tmp_path):
    root = tmp_path / "d"
    _labelled_npz(root, files=2, spf=2, shape=(4, 4))
    _labelled_npz(tmp_path / "e", files=2, spf=2, shape=(6, 6))
    for name in os.listdir(tmp_path / "e"):
        os.rename(tmp_path / "e" / name, root / ("z" + name))
    with pytest.raises(tf.errors.InvalidArgumentError, match="variable_size=True"):  # our ValueError, via TF
        list(dlio_tf.from_uri(str(root), format="npz", batch_size=4))
    batches = list(dlio_tf.from_uri(str(root), format="npz", batch_size=3, variable_size=True))
    assert all(isinstance(b["image"], tf.RaggedTensor) for b in batches)
    assert [b["image"].row_lengths().numpy().tolist() for b in batches] == [[16, 16, 16], [16, 36, 36]]


def test_iterator_starts_the_next_epoch_when_iterated_again(tmp_path):
    _labelled_npz(tmp_path / "train")
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}", "++workload.dataset.num_files_train=6",
                                  "++workload.dataset.num_files_eval=0", "++workload.dataset.num_samples_per_file=3",
                                  "++workload.dataset.num_subfolders_train=0", "++workload.reader.batch_size=4",
                                  "++workload.reader.sample_shuffle=seed", "++workload.reader.file_shuffle=seed"])
    it = dlio_tf.make_iterator(cfg, deterministic=True)
    first = [i for b in it for i in _ids(b)]
    second = [i for b in it for i in _ids(b)]  # iterated again: epoch 2, reshuffled, as long
    assert it.epoch == 2 and len(first) == len(second) == 16 and first != second
    again = [i for b in dlio_tf.make_iterator(cfg, epoch=2, deterministic=True) for i in _ids(b)]
    assert again == second
    it.set_epoch(1)
    assert [i for b in it for i in _ids(b)] == first


@pytest.mark.parametrize("fmt", ["jpeg", "csv"])
def test_formats_read_as_bytes_come_ragged(tmp_path, fmt):
    """Undecoded jpeg/csv samples are their bytes, of content-dependent length: ragged, as the runner reads them."""
    cfg = _workload(tmp_path, f"++workload.dataset.format={fmt}", "++workload.dataset.num_samples_per_file=1",
                    "++workload.dataset.record_length_bytes=1024")
    batch = next(iter(dlio_tf.make_dataset(cfg)))
    assert isinstance(batch["image"], tf.RaggedTensor) and batch["image"].shape[0] == 4
    assert batch["size"].numpy().tolist() == batch["image"].row_lengths().numpy().tolist()
