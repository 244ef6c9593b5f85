"""dlio_tf's tf.data source: TFRecord parsing, InputContext sharding, seeded shuffles, the runner path.

All in one process (TensorFlow imports once); the only subprocess is the missing-tensorflow check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
tf = pytest.importorskip("tensorflow")

import dlio_tf  # noqa: E402
from dlio_core.config import load_config  # noqa: E402
from dlio_core.formats import get_format  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402

from ._tfdata import write_tfrecords  # noqa: E402

pytestmark = pytest.mark.integration

FILES, SPF, DIM, BATCH = 8, 4, 16, 4


def _overrides(folder, fmt, *extra):
    return [f"++workload.dataset.data_folder={folder}", f"++workload.dataset.format={fmt}",
            f"++workload.dataset.num_files_train={FILES}", "++workload.dataset.num_files_eval=0",
            f"++workload.dataset.num_samples_per_file={SPF}", f"++workload.dataset.record_length_bytes={DIM * DIM}",
            "++workload.dataset.num_subfolders_train=0", f"++workload.reader.batch_size={BATCH}",
            "++workload.reader.read_threads=2", *extra]


@pytest.fixture(scope="module")
def tfrecord_data(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tfr"))
    return folder, write_tfrecords(folder, FILES, SPF, DIM)


@pytest.fixture(scope="module")
def npz_data(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("npz"))
    manifest = generate_dataset(load_config("default", _overrides(folder, "npz")), progress=False)
    fmt = get_format("npz")
    samples = []
    for rel, _ in manifest.train:
        with open(os.path.join(folder, rel), "rb") as f:
            x = fmt.parse(np.frombuffer(f.read(), np.uint8), rel)
        samples += [x[..., i].tobytes() for i in range(SPF)]
    return folder, samples


@pytest.fixture(params=["tfrecord", "npz"])
def data(request, tfrecord_data, npz_data):
    folder, samples = tfrecord_data if request.param == "tfrecord" else npz_data
    return request.param, folder, samples


def _records(ds):
    return [bytes(r) for b in ds for r in b["image"].numpy().reshape(b["image"].shape[0], -1)]


def test_generated_tfrecords_parse_with_plain_tfdata(tmp_path, tfrecord_data):
    from dlio_core.formats import FormatError

    try:
        get_format("tfrecord")
    except FormatError:  # the tfrecord writer is not in this build: check our test writer's files instead
        folder = tfrecord_data[0]
    else:
        folder = str(tmp_path)
        generate_dataset(load_config("default", _overrides(folder, "tfrecord")), progress=False)
    feats = {"image": tf.io.FixedLenFeature([], tf.string), "size": tf.io.FixedLenFeature([], tf.int64)}
    names = sorted(tf.io.gfile.glob(os.path.join(folder, "train", "*.tfrecord")))
    assert len(names) == FILES
    parsed = [tf.io.parse_single_example(r, feats) for r in tf.data.TFRecordDataset(names)]
    assert len(parsed) == FILES * SPF
    assert all(int(p["size"]) == len(p["image"].numpy()) == DIM * DIM for p in parsed)
    assert len(os.listdir(os.path.join(folder, "index", "train"))) == FILES


def test_native_path_matches_the_files(tfrecord_data):
    folder, images = tfrecord_data
    one = _overrides(folder, "tfrecord", "++workload.reader.read_threads=1")
    ds = dlio_tf.make_dataset("default", overrides=one, deterministic=True)
    assert ds.element_spec["image"].shape.as_list() == [BATCH, DIM * DIM]  # TFRecord samples are their flat bytes, as in every plugin
    assert _records(ds) == images  # one reader, no shuffle: file order
    # Two readers interleave two files record by record.
    two = _records(dlio_tf.make_dataset("default", overrides=_overrides(folder, "tfrecord"), deterministic=True))
    assert two[:2] == [images[0], images[SPF]] and sorted(two) == sorted(images)


@pytest.mark.parametrize("pipelines", [2, 4, 16])  # 16 > files: records are sharded instead of files
def test_input_context_shards_cover_all_samples_without_overlap(data, pipelines):
    fmt, folder, samples = data
    batch = 2 if pipelines == 16 else BATCH
    seen = []
    counts = []
    for pid in range(pipelines):
        ctx = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=pid,
                                         num_replicas_in_sync=pipelines)
        ds = dlio_tf.make_dataset("default", overrides=_overrides(folder, fmt, f"++workload.reader.batch_size={batch}"),
                                  input_context=ctx)
        got = _records(ds)
        counts.append(len(got))
        seen += got
    assert len(set(counts)) == 1  # every pipeline yields the same number of batches
    assert sorted(seen) == sorted(samples)


def test_short_shards_are_padded_to_equal_steps(tfrecord_data):
    folder, _ = tfrecord_data
    over = _overrides(folder, "tfrecord", "++workload.dataset.num_files_train=3", "++workload.reader.batch_size=1")
    # 12 records, 2 pipelines, batch 1: 6 steps each, although file sharding gives 8 and 4 records.
    lens = [len(list(dlio_tf.make_dataset("default", overrides=over,
                                          input_context=tf.distribute.InputContext(2, pid, 2)))) for pid in range(2)]
    assert lens == [6, 6]


def test_shuffle_is_deterministic_per_seed(data):
    fmt, folder, samples = data

    def order(seed, epoch=1):
        over = _overrides(folder, fmt, "++workload.reader.sample_shuffle=seed", "++workload.reader.file_shuffle=seed",
                          f"++workload.train.seed={seed}", "++workload.reader.shuffle_size=64")
        return _records(dlio_tf.make_dataset("default", overrides=over, epoch=epoch, deterministic=True))

    a = order(1)
    assert a == order(1)
    assert a != order(2) and a != order(1, epoch=2)
    assert sorted(a) == sorted(samples) and a != samples


def test_tensorflow_loader_runs_a_workload(tmp_path, data):
    from dlio_core.runner import run

    fmt, folder, _ = data
    cfg = load_config("default", _overrides(folder, fmt, "++workload.reader.data_loader=tensorflow",
                                            "++workload.train.epochs=1", "++workload.train.computation_time=0.001",
                                            "++workload.workflow.evaluation=False", f"++hydra.run.dir={tmp_path}/out"))
    result = run(cfg, quiet=True)
    assert result.summary["metric"]["train_throughput_samples_per_second"][0] > 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["data_loader"] == "tensorflow"
    stages = report["train"]["stages"]
    steps = FILES * SPF // BATCH
    if fmt == "tfrecord":  # tf.data's own reader: I/O and decode time are not measured, not invented
        assert stages["io"]["count"] == 0 and stages["io"]["not_measured_steps"] == steps
        assert stages["decode"]["mean_s"] is None
        framed = FILES * SPF * DIM * DIM
        assert report["train"]["bytes_read_in_windows"] > framed * (steps - 2) / steps  # payload + framing
    else:
        assert stages["io"]["count"] == steps and stages["io"]["mean_s"] > 0
        assert report["train"]["read_amplification"] >= 1.0


def test_h2d_is_none_without_a_gpu_and_timed_when_placed():
    x = {"image": tf.zeros([2, 8], tf.uint8)}
    if dlio_tf.default_device() is None:
        assert dlio_tf.to_device(x)[1] is None
    placed, seconds = dlio_tf.to_device(x, device="/CPU:0")
    assert seconds is not None and seconds >= 0 and placed["image"].shape == (2, 8)


@pytest.mark.gpu
def test_batches_are_placed_on_the_gpu():
    if dlio_tf.default_device() is None:
        pytest.skip("no GPU visible to TensorFlow")
    placed, seconds = dlio_tf.to_device({"image": tf.zeros([64, 1 << 16], tf.uint8)})
    assert "GPU" in placed["image"].device and seconds > 0


def test_missing_tensorflow_gives_the_install_hint():
    code = ("import sys\nsys.modules['tensorflow'] = None\n"
            "try:\n    import dlio_tf\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'dl-driver[tf]'" in out


def test_keras_example_learns_from_the_files_labels(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples"))
    try:
        import keras_input_fn
    finally:
        sys.path.pop(0)
    history = keras_input_fn.main(["--data-folder", str(tmp_path / "data"), "--epochs", "3", "--files", "16"])
    loss = history.history["loss"]
    assert len(loss) == 3 and loss[-1] < 0.25 * loss[0]  # real labels: the model learns (no steps_per_epoch)
