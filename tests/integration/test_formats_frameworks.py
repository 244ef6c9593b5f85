"""hdf5 and tfrecord with real consumers: TensorFlow's own tf.data reads our TFRecord files (and its
TFRecordWriter writes the very same bytes), and the default workload runs end to end on both formats
with several samples per file, reading about as many bytes as the samples hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlio_core.config import load_config
from dlio_core.formats import get_format
from dlio_core.generate import generate_dataset
from dlio_core.runner import run
from dlio_core.storage import open_storage

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tf():
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install 'dl-driver[tf]')")
    return tf


def _overrides(folder: Path, fmt: str, *extra: str) -> list[str]:
    return [f"++workload.dataset.data_folder={folder}/data", f"++workload.dataset.format={fmt}",
            "++workload.dataset.num_samples_per_file=4", "++workload.reader.data_loader=native",
            "++workload.train.epochs=2", "++workload.train.computation_time=0.002",
            "++workload.evaluation.eval_time=0.001", f"++hydra.run.dir={folder}/out", *extra]


def test_tensorflow_reads_our_tfrecords(tmp_path, tf):
    cfg = load_config("default", _overrides(tmp_path, "tfrecord", "++workload.dataset.num_files_train=4",
                                            "++workload.dataset.num_files_eval=1"))
    manifest = generate_dataset(cfg, progress=False)
    st = open_storage(str(tmp_path / "data"))
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "size": tf.io.FixedLenFeature([], tf.int64)}
    for rel, size in manifest.train + manifest.valid:
        path = str(tmp_path / "data" / rel)
        examples = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(path)]
        assert len(examples) == 4
        reader = get_format("tfrecord").open_reader(st, rel, size)
        _, _, ours, _, _ = reader.read([0, 1, 2, 3], keep=True)
        for ex, mine in zip(examples, ours):
            image = ex["image"].numpy()
            assert len(image) == 64 * 64 and int(ex["size"].numpy()) == 64 * 64   # HEAD: size = sample bytes
            assert image == bytes(mine)


def test_tfrecordwriter_writes_the_same_bytes(tmp_path, tf):
    x = np.random.default_rng(2).integers(0, 255, (16, 12, 5), dtype=np.uint8)
    st = open_storage(str(tmp_path))
    get_format("tfrecord").write_file(st, "train/ours.tfrecord", x)
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as w:   # as DLIO's tf_generator writes
        for i in range(x.shape[-1]):
            img = x[..., i].tobytes()
            ex = tf.train.Example(features=tf.train.Features(feature={
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[img])),
                "size": tf.train.Feature(int64_list=tf.train.Int64List(value=[len(img)]))}))
            # DLIO calls SerializeToString(); protobuf orders map entries as it likes (image or size
            # first, varying between processes). Deterministic serialisation sorts keys: our order.
            w.write(ex.SerializeToString(deterministic=True))
    assert (tmp_path / "train" / "ours.tfrecord").read_bytes() == (tmp_path / "tf.tfrecord").read_bytes()
    # and our reader reads TensorFlow's file (no index: header scan)
    r = get_format("tfrecord").open_reader(st, "tf.tfrecord", st.size("tf.tfrecord"))
    assert bytes(r.read([4], keep=True)[2][0]) == x[..., 4].tobytes()


@pytest.mark.parametrize("fmt, extra", [
    ("tfrecord", ()),
    ("hdf5", ()),
    ("hdf5", ("++workload.dataset.hdf5.layout=records",)),
    ("hdf5", ("++workload.dataset.hdf5.num_dset_per_record=2",)),
])
def test_default_workload_end_to_end(tmp_path, fmt, extra):
    cfg = load_config("default", _overrides(tmp_path, fmt, "++workload.workflow.generate_data=True", *extra))
    result = run(cfg, quiet=True)
    metric = result.summary["metric"]
    assert all(t > 0 for t in metric["train_throughput_samples_per_second"])
    assert metric["train_io_mean_MB_per_second"] > 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    amplification = report["train"]["read_amplification"]
    # only what the samples need: record framing (~1%: tfrecord) and the .idx once per file, or HDF5's
    # metadata (~1-2.5 KiB) once per file; with 4 KiB samples and 2 epochs that is a few percent at most
    assert 1.0 <= amplification < 1.1, amplification
    assert len(list((tmp_path / "data" / "train").rglob(f"*.{fmt}"))) == 64
