"""The runner's ``tensorflow`` loader on every format it reads, in both read modes (``reader.decode``), against
the native engine on the same files.

In bytes mode jpeg, png, csv and parquet samples are the bytes read, whose length is the content's
(an encoded JPEG of noise is not ``record_length_bytes`` long), so ``tf.data`` must take them as ragged
batches; it used to stop the run with "samples vary in size". Each case generates one tiny dataset,
copies it so that each loader starts with cold per-process caches (parquet footers, hdf5 layouts,
indexes are read once per file and process), runs both loaders and compares, step by step, the samples,
the bytes read and the sample bytes. The exceptions, asserted exactly: tfrecord, which TensorFlow's own
reader reads whole without our ``.idx`` files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dlio_core.config import load_config
from dlio_core.generate import generate_dataset
from dlio_core.runner import run

pytestmark = pytest.mark.integration

RECORD_BYTES = 1024          # 32 x 32 uint8: a 32x32 greyscale image, 1024 csv values
FILES = 8
# format -> samples per file (image files hold one, as DLIO writes them)
FORMATS = {"jpeg": 1, "png": 1, "csv": 2, "npz": 2, "npy": 2, "hdf5": 2, "tfrecord": 2, "parquet": 2,
           "indexed_binary": 2, "mmap_indexed_binary": 2}
NEEDS = {"jpeg": "PIL", "png": "PIL", "parquet": "pyarrow", "hdf5": "h5py"}
# formats whose bytes mode hands back the whole file's bytes undecoded (parquet hands back its row groups'
# column chunks, after reading each file's footer once: 2x the bytes of these tiny files, as native reads)
WHOLE_FILE_BYTES = ("jpeg", "png", "csv")


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install 'dl-driver[tf]')")


def _overrides(folder: Path, fmt: str, *extra: str) -> list[str]:
    return [f"++workload.dataset.data_folder={folder}", f"++workload.dataset.format={fmt}",
            f"++workload.dataset.num_samples_per_file={FORMATS[fmt]}", f"++workload.dataset.num_files_train={FILES}",
            "++workload.dataset.num_files_eval=0", f"++workload.dataset.record_length_bytes={RECORD_BYTES}",
            "++workload.reader.batch_size=2", "++workload.train.epochs=1", "++workload.train.computation_time=0",
            "++workload.workflow.generate_data=False", *extra]


def _run(tmp_path: Path, fmt: str, loader: str, decode: bool, *extra: str):
    """Run ``loader`` on a copy of the generated data (``gen``): its own storage, so its own cold caches."""
    data, out = tmp_path / f"data-{loader}", tmp_path / f"out-{loader}"
    shutil.copytree(tmp_path / "gen", data)
    cfg = load_config("default", _overrides(data, fmt, f"++workload.reader.data_loader={loader}",
                                            f"++workload.reader.decode={decode}", f"++hydra.run.dir={out}", *extra))
    result = run(cfg, quiet=True)
    assert result.end.complete and result.end.exit_code == 0, result.end
    report = json.loads((out / "report.json").read_text())
    return result.epochs[0].train, report


def _file_bytes(folder: Path, pattern: str) -> int:
    """Bytes of the files matching ``pattern`` under ``folder`` (data files in ``train/``, indexes in ``index/``)."""
    return sum(p.stat().st_size for p in folder.rglob(pattern))


@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "decode"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_tensorflow_loader_reads_as_native(tmp_path, tf, fmt, decode):
    if fmt in NEEDS:
        pytest.importorskip(NEEDS[fmt], reason=f"{fmt} needs {NEEDS[fmt]} (pip install 'dl-driver[formats]')")
    generate_dataset(load_config("default", _overrides(tmp_path / "gen", fmt)), progress=False)
    native, native_report = _run(tmp_path, fmt, "native", decode)
    tfl, tf_report = _run(tmp_path, fmt, "tensorflow", decode)

    samples = FILES * FORMATS[fmt]
    assert sum(native.samples) == sum(tfl.samples) == samples
    assert tf_report["read_mode"] == native_report["read_mode"] == ("decode" if decode else "bytes")
    assert tfl.sample_bytes == native.sample_bytes
    if fmt == "tfrecord":
        # TensorFlow reads the record files whole (payload + framing) and never opens our .idx files;
        # the native engine reads the same records by their index, each index once.
        data = tmp_path / "data-tensorflow"
        assert sum(tfl.bytes_read) == _file_bytes(data, "*.tfrecord")
        assert sum(native.bytes_read) - sum(tfl.bytes_read) == _file_bytes(tmp_path / "data-native", "*.idx")
    else:
        assert tfl.samples == native.samples and tfl.bytes_read == native.bytes_read
        assert tf_report["train"]["read_amplification"] == native_report["train"]["read_amplification"]

    if fmt in WHOLE_FILE_BYTES:
        if not decode:   # bytes mode: the samples are the bytes read, nothing more read than they hold
            amplification = sum(tfl.bytes_read) / sum(tfl.sample_bytes)
            assert 1.0 <= amplification < 1.001, amplification
        files = _file_bytes(tmp_path / "data-tensorflow", f"*.{fmt}")
        assert sum(tfl.bytes_read) == files   # every file read whole, once
        # decode mode: the pixels or values of the 32x32 samples; bytes mode: the files' bytes (csv's
        # last partial share of a file aside), which for an encoded image are not RECORD_BYTES long
        decoded = samples * RECORD_BYTES
        if decode:
            assert sum(tfl.sample_bytes) == decoded
        else:
            assert files - samples < sum(tfl.sample_bytes) <= files and sum(tfl.sample_bytes) != decoded


@pytest.mark.filterwarnings("ignore:dataset.record_length_bytes=1024 is ignored for parquet")
def test_parquet_rows_of_varying_size_in_decode_mode(tmp_path, tf):
    """A string column makes decoded parquet rows differ in size (``s_`` and up to 10 digits): the
    tensorflow loader reads them as the native engine does (it stopped with "samples vary in size")."""
    pytest.importorskip("pyarrow", reason="parquet needs pyarrow (pip install 'dl-driver[formats]')")
    columns = ("++workload.dataset.parquet.columns=[{name: label, dtype: int8}, {name: tag, dtype: string}, "
               "{name: feature, dtype: float32, size: 4}]")
    generate_dataset(load_config("default", _overrides(tmp_path / "gen", "parquet", columns)), progress=False)
    native, _ = _run(tmp_path, "parquet", "native", True, columns)
    tfl, _ = _run(tmp_path, "parquet", "tensorflow", True, columns)
    assert sum(tfl.samples) == FILES * FORMATS["parquet"]
    assert (tfl.samples, tfl.bytes_read, tfl.sample_bytes) == (native.samples, native.bytes_read, native.sample_bytes)
    assert len(set(tfl.sample_bytes)) > 1   # the rows did vary (steps of 2 rows hold different bytes)


def _cli_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["default", *_overrides(tmp_path / "data", "jpeg", "++workload.reader.data_loader=tensorflow"),
            f"++hydra.run.dir={tmp_path}/out", *extra]


def test_cli_runs_jpeg_bytes_and_names_a_truncated_file(tmp_path, tf, run_cli):
    """``dl-driver run`` of encoded JPEGs in bytes mode through TensorFlow exits 0 (it exited 1 with
    "samples vary in size"); a truncated JPEG stops it with a one-line error naming the file, exit 2."""
    pytest.importorskip("PIL", reason="jpeg needs Pillow (pip install 'dl-driver[formats]')")
    generate_dataset(load_config("default", _overrides(tmp_path / "data", "jpeg")), progress=False)
    res = run_cli("run", *_cli_args(tmp_path))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["read_mode"] == "bytes" and report["data_loader"] == "tensorflow"

    victim = sorted((tmp_path / "data" / "train").rglob("*.jpeg"))[0]
    victim.write_bytes(victim.read_bytes()[:300])   # no end-of-image marker any more
    res = run_cli("run", *_cli_args(tmp_path, f"++hydra.run.dir={tmp_path}/out2"))
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    error = [line for line in res.stderr.splitlines() if line.startswith("dl-driver: error:")]
    assert len(error) == 1 and victim.name in error[0] and "truncated" in error[0], res.stderr[-2000:]
