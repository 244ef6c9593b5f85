"""Interchange with DLIO's files, both ways.

DLIO's datasets: files laid out as DLIO 2.0.0 (PyPI), DLIO HEAD and the MLCommons fork write them, built
here with the libraries they use (``_dlio_layouts``), are read by our engine with the right file and
sample counts, sample contents and byte totals, in both read modes; ``dl-driver run`` runs over them
with every loader this machine has, and read amplification is about 1 for whole-file reads.

Ours: what we generate opens the way DLIO's readers open it (``np.load``, ``h5py``, ``tf.data``
``TFRecordDataset`` + ``parse_single_example``, ``PIL.Image.open``, ``pyarrow.parquet``, the indexed
binary's ``.off.idx`` / ``.sz.idx``), and an hdf5 config in 2.0.0 spelling generates 2.0.0's layout.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ._cli import dl_driver
from ._dlio_layouts import CASES, dlio_name, write_dlio

FILES, SPF, SIDE = 4, 4, 64   # four files of four 64x64 uint8 samples (one per file for images)
NEEDS = {"hdf5": "h5py", "tfrecord": "tensorflow", "jpeg": "PIL", "png": "PIL", "parquet": "pyarrow"}
LOSSY = {("2.0.0", "jpeg")}   # JPEG of noise does not decode to the pixels written
_FLAT = ("++workload.dataset.num_subfolders_train=0", "++workload.dataset.num_files_eval=0")  # train/ only


def _needs(module: str | None) -> None:
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


def _spf(fmt: str) -> int:
    return 1 if fmt in ("jpeg", "png") else SPF


def _overrides(data: Path, fmt: str, version: str, decode: bool, spf: int) -> list[str]:
    out = [f"++workload.dataset.data_folder={data}", f"++workload.dataset.format={fmt}",
           f"++workload.dataset.num_files_train={FILES}", f"++workload.dataset.num_samples_per_file={spf}",
           f"++workload.dataset.record_length_bytes={SIDE * SIDE}", f"++workload.reader.batch_size={spf}",
           f"++workload.reader.decode={decode}", "++workload.train.epochs=1"]
    if version == "fork" and fmt in ("jpeg", "png"):
        out.append("++workload.dataset.image_encoding=raw")   # how the fork's datasets are described
    return out


def _read_all(cfg):
    """Every sample of the train split through the engine: (files, samples, bytes read, sample bytes)."""
    from dlio_core.listing import dataset_files, dataset_storage
    from dlio_core.reader import epoch_plan, native_reader

    storage = dataset_storage(cfg)
    files = dataset_files(cfg, storage, "train")
    samples, bytes_read, sample_bytes = [], 0, 0
    with native_reader(cfg, storage, files, keep_samples=True) as reader:
        for batch in reader.epoch(epoch_plan(cfg, split="train", epoch=1)):
            bytes_read += batch.bytes_read
            sample_bytes += batch.sample_bytes
            samples += [np.array(s) for s in batch.samples]
            batch.release()
    return files, samples, bytes_read, sample_bytes


def _side_files(data: Path) -> int:
    """Bytes of the index files next to the data (indexed binary's ``.off.idx`` and ``.sz.idx``)."""
    return sum(p.stat().st_size for p in (data / "train").glob("*.idx"))


@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "decode"])
@pytest.mark.parametrize("version,fmt", CASES, ids=[f"{v}-{f}" for v, f in CASES])
def test_dlio_datasets_read_with_counts_contents_and_bytes(tmp_path, version, fmt, decode):
    from dlio_core.config import load_config

    _needs(NEEDS.get(fmt))
    spf = _spf(fmt)
    written = write_dlio(tmp_path / "data", version, fmt, files=FILES, spf=spf, d=SIDE)
    cfg = load_config("default", _overrides(tmp_path / "data", fmt, version, decode, spf))
    files, samples, bytes_read, sample_bytes = _read_all(cfg)

    on_disk = sum(size for _, size in files)
    assert len(files) == FILES and on_disk == sum(p.stat().st_size for p in (tmp_path / "data/train").iterdir()
                                                  if not p.name.endswith(".idx"))
    assert len(samples) == FILES * spf
    payload = FILES * spf * SIDE * SIDE
    if fmt in ("npz", "npy", "csv", "jpeg", "png"):        # whole files, each read once
        assert bytes_read == on_disk
    elif fmt in ("indexed_binary", "mmap_indexed_binary"):  # the samples and their two index files
        assert bytes_read == on_disk + _side_files(tmp_path / "data")
    elif fmt == "parquet":                                  # the column chunks, plus the footer's tail read
        assert sample_bytes <= bytes_read <= on_disk + FILES * min(64 << 10, on_disk // FILES)
    else:                                                   # hdf5, tfrecord: the records and their framing
        assert payload <= bytes_read <= 1.1 * on_disk
    assert bytes_read >= (on_disk if fmt in ("jpeg", "png") and version != "fork" else
                          min(payload, on_disk))

    # Contents: every sample written comes back once (lossless formats, and where the mode hands samples back)
    views_are_samples = decode or fmt in ("npz", "npy", "hdf5", "tfrecord", "indexed_binary",
                                          "mmap_indexed_binary") or version == "fork" and fmt in ("jpeg", "png")
    if views_are_samples and (version, fmt) not in LOSSY:
        want = sorted(x[..., s].tobytes() for x in written for s in range(spf))
        got = sorted(s.astype(np.uint8, copy=False).tobytes() for s in samples)
        assert got == want
        assert sample_bytes == payload
    if decode and fmt in ("jpeg", "png") and version != "fork":
        assert {s.shape[:2] for s in samples} == {(SIDE, SIDE)}


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_fork_raw_images_cannot_be_decoded_and_say_how_to_read_them(tmp_path, fmt):
    from dlio_core.config import load_config
    from dlio_core.formats import FormatError

    _needs("PIL")
    write_dlio(tmp_path / "data", "fork", fmt, files=2, spf=1, d=SIDE)
    over = [o for o in _overrides(tmp_path / "data", fmt, "2.0.0", True, 1) if "num_files" not in o]
    cfg = load_config("default", [*over, "++workload.dataset.num_files_train=2"])
    with pytest.raises(Exception, match=rf"img_0_of_2\.{fmt}: not a {fmt.upper()} file .*image_encoding: raw") as info:
        _read_all(cfg)
    assert isinstance(info.value, FormatError) or isinstance(info.value.__cause__, FormatError)


def test_csv_of_dlio_2_with_a_header_and_index_decodes_to_the_samples(tmp_path):
    from dlio_core.formats import get_format

    x = write_dlio(tmp_path / "data", "2.0.0", "csv", files=1, spf=3, d=4)[0]
    text = (tmp_path / "data/train" / dlio_name(0, 1, "csv")).read_bytes()
    assert text.startswith(b",0,1,2,")                       # pandas' header row, as 2.0.0 wrote it
    parsed = get_format("csv").parse(text, "a.csv")
    assert parsed.shape == (16, 3)
    assert [parsed[:, s].astype(np.uint8).tobytes() for s in range(3)] == [x[..., s].tobytes() for s in range(3)]


# --------------------------------------------------------------------------- dl-driver run over DLIO's files
def _loaders() -> list[str]:
    have = {"native": None, "pytorch": "torch", "tensorflow": "tensorflow", "jax": "jax"}
    return [name for name, mod in have.items() if mod is None or importlib.util.find_spec(mod) is not None]


def _run(tmp_path: Path, fmt: str, loader: str, *extra: str, spf: int = SPF):
    res = dl_driver("run", "default", f"++workload.dataset.data_folder={tmp_path}/data",
                    f"++workload.dataset.format={fmt}", f"++workload.dataset.num_files_train={FILES}",
                    f"++workload.dataset.num_samples_per_file={spf}",
                    f"++workload.dataset.record_length_bytes={SIDE * SIDE}", f"++workload.reader.batch_size={spf}",
                    f"++workload.reader.data_loader={loader}", "++workload.workflow.generate_data=False",
                    "++workload.workflow.evaluation=False", "++workload.train.epochs=1",
                    "++workload.train.computation_time=0", "++workload.output.metric.exclude_start_steps=0",
                    "++workload.output.metric.exclude_end_steps=0", *_FLAT, f"++hydra.run.dir={tmp_path}/out", *extra,
                    timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res, json.loads((tmp_path / "out/report.json").read_text())


@pytest.mark.parametrize("version", ["2.0.0", "head"])
def test_tensorflow_loader_reads_dlio_tfrecords_without_false_amplification(tmp_path, version):
    """DLIO 2.0.0 stores the image's side length in ``size``: the loader's sample bytes must not come from
    it (it reported 51-256x read amplification, and warned, on 2.0.0's files)."""
    _needs("tensorflow")
    write_dlio(tmp_path / "data", version, "tfrecord", files=FILES, spf=SPF, d=SIDE)
    res, report = _run(tmp_path, "tfrecord", "tensorflow")
    train = report["train"]
    assert train["sample_bytes_in_windows"] == FILES * SPF * SIDE * SIDE
    assert 1.0 <= train["read_amplification"] < 1.05          # framing and the Example's few bytes
    assert "read amplification" not in res.stderr


@pytest.mark.parametrize("loader", _loaders())
def test_every_loader_reads_whole_dlio_files_once(tmp_path, loader):
    """Read amplification of whole-file reads is ~1 with every loader (one batch = one file's samples)."""
    write_dlio(tmp_path / "data", "2.0.0", "npz", files=FILES, spf=SPF, d=SIDE)
    res, report = _run(tmp_path, "npz", loader)
    train = report["train"]
    on_disk = sum(p.stat().st_size for p in (tmp_path / "data/train").iterdir())
    assert train["sample_bytes_in_windows"] == FILES * SPF * SIDE * SIDE
    assert train["bytes_read_in_windows"] == on_disk
    assert 1.0 <= train["read_amplification"] < 1.05          # the npz's zip and npy headers
    assert "read amplification" not in res.stderr


@pytest.mark.parametrize("version,fmt", [("2.0.0", "hdf5"), ("2.0.0", "csv"), ("fork", "parquet"),
                                         ("fork", "indexed_binary"), ("fork", "jpeg")])
def test_dl_driver_runs_over_dlio_datasets(tmp_path, version, fmt):
    """``dl-driver run`` (native loader, bytes mode) over each DLIO version's files: every sample read once."""
    _needs(NEEDS.get(fmt))
    spf = _spf(fmt)
    write_dlio(tmp_path / "data", version, fmt, files=FILES, spf=spf, d=SIDE)
    extra = ["++workload.dataset.image_encoding=raw"] if fmt == "jpeg" else []
    res, report = _run(tmp_path, fmt, "native", *extra, spf=spf)
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["num_files_train"] == FILES and report["read_mode"] == "bytes"
    train = report["train"]
    assert train["bytes_read_in_windows"] >= FILES * spf * SIDE * SIDE
    # hdf5: its metadata; parquet: the footer's tail (8 KiB of these 16 KiB files), read once per process
    assert train["read_amplification"] < {"hdf5": 1.2, "parquet": 1.6}.get(fmt, 1.1), train
    assert "whole files were read" not in res.stderr
    if fmt != "parquet":
        assert "read amplification" not in res.stderr


def test_the_amplification_warning_names_the_cause_of_the_format():
    """Whole-file formats read whole files for single samples; ranged ones (parquet, hdf5, tfrecord,
    indexed binary) read indexes, footers or headers, never "whole files"."""
    from types import SimpleNamespace as NS

    from dlio_core.report.dlio import _amplification_note

    def note(fmt: str) -> str:
        return _amplification_note(NS(dataset=NS(format=fmt, num_samples_per_file=4)), 2.0)

    assert note("npz") == ("read amplification 2.0x: whole files were read for single samples (4 samples per npz "
                           "file); see report.json")
    for fmt in ("parquet", "hdf5", "tfrecord", "indexed_binary"):
        assert "whole files" not in note(fmt) and f"{fmt} is read by ranges" in note(fmt)


# --------------------------------------------------------------------------- ours, opened as DLIO opens it
def _generate(tmp_path: Path, fmt: str, *extra: str, spf: int = SPF):
    from dlio_core.config import load_config
    from dlio_core.generate import generate_dataset

    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data", f"++workload.dataset.format={fmt}",
                                  f"++workload.dataset.num_files_train={FILES}",
                                  f"++workload.dataset.num_samples_per_file={spf}", *_FLAT, *extra])
    generate_dataset(cfg, progress=False)
    paths = sorted((tmp_path / "data/train").glob(f"*.{fmt}"))
    assert [p.name for p in paths] == [dlio_name(i, FILES, fmt) for i in range(FILES)]
    return paths


def test_our_npz_and_npy_open_with_numpy_as_dlio_reads_them(tmp_path):
    for fmt in ("npz", "npy"):
        paths = _generate(tmp_path / fmt, fmt, f"++workload.dataset.record_length_bytes={SIDE * SIDE}")
        for p in paths:
            x = np.load(p)["x"] if fmt == "npz" else np.load(p)
            assert x.shape == (SIDE, SIDE, SPF) and x.dtype == np.uint8
        if fmt == "npz":
            assert np.load(paths[0])["y"].shape == (SPF,)


@pytest.mark.parametrize("spelling,dataset", [("dataset.record_length", "records"),
                                              ("dataset.record_length_bytes", "records_0")])
def test_our_hdf5_follows_the_configs_dialect_and_opens_with_h5py(tmp_path, spelling, dataset):
    """A config in DLIO 2.0.0's spelling generates 2.0.0's layout (its reader opens ``records``), one in
    HEAD's spelling HEAD's (``records_0``)."""
    _needs("h5py")
    import h5py

    for p in _generate(tmp_path, "hdf5", f"++workload.{spelling}={SIDE * SIDE}"):
        with h5py.File(p, "r") as f:
            assert sorted(f) == sorted([dataset, "labels"])
            assert f[dataset].shape == (SPF, SIDE, SIDE)
            assert f[dataset][SPF - 1].shape == (SIDE, SIDE)   # DLIO's get_sample: records[sample_index]


def test_our_tfrecords_parse_with_tf_data_as_dlio_reads_them(tmp_path):
    _needs("tensorflow")
    import tensorflow as tf

    paths = _generate(tmp_path, "tfrecord", f"++workload.dataset.record_length_bytes={SIDE * SIDE}")
    features = {"image": tf.io.FixedLenFeature([], tf.string), "size": tf.io.FixedLenFeature([], tf.int64)}
    ds = tf.data.TFRecordDataset([str(p) for p in paths]).map(lambda r: tf.io.parse_single_example(r, features))
    records = list(ds)
    assert len(records) == FILES * SPF
    assert {int(tf.strings.length(r["image"])) for r in records} == {SIDE * SIDE}
    assert {int(r["size"]) for r in records} == {SIDE * SIDE}                       # HEAD: bytes per record
    assert len({r["image"].numpy() for r in records}) == FILES * SPF                # distinct samples
    assert (tmp_path / "data/index/train" / f"{paths[0].name}.idx").exists()       # DALI's index, as DLIO


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_our_images_open_with_pillow(tmp_path, fmt):
    _needs("PIL")
    from PIL import Image

    for p in _generate(tmp_path, fmt, f"++workload.dataset.record_length_bytes={SIDE * SIDE}", spf=1):
        with Image.open(p) as im:
            assert im.format == fmt.upper() and np.asarray(im).shape == (SIDE, SIDE)


def test_our_parquet_reads_with_pyarrow_as_the_fork_reads_it(tmp_path):
    _needs("pyarrow")
    import pyarrow.parquet as pq

    paths = _generate(tmp_path, "parquet", "++workload.dataset.record_length_bytes=256",
                      '++workload.dataset.parquet={columns: [{name: label, dtype: int8}, '
                      '{name: emb, dtype: float16, size: 8}], row_group_size: 2}')
    for p in paths:
        f = pq.ParquetFile(p)
        assert f.metadata.num_rows == SPF and f.metadata.num_row_groups == SPF // 2
        table = f.read_row_group(1, columns=["emb"])                  # column selection, one row group
        assert table.num_rows == 2 and str(table.schema.field("emb").type) == "fixed_size_list<element: halffloat>[8]"
        assert str(f.schema_arrow.field("label").type) == "int8"


def test_our_indexed_binary_reads_through_its_index_files(tmp_path):
    for fmt in ("indexed_binary", "mmap_indexed_binary"):
        for p in _generate(tmp_path / fmt, fmt, f"++workload.dataset.record_length_bytes={SIDE * SIDE}"):
            offsets = np.fromfile(f"{p}.off.idx", dtype=np.uint64)   # DLIO's reader: np.fromfile of both
            sizes = np.fromfile(f"{p}.sz.idx", dtype=np.uint64)
            assert offsets.tolist() == [i * SIDE * SIDE for i in range(SPF)] and set(sizes.tolist()) == {SIDE * SIDE}
            data = np.fromfile(p, dtype=np.uint8)
            assert data.size == SPF * SIDE * SIDE
            samples = {data[o:o + s].tobytes() for o, s in zip(offsets.tolist(), sizes.tolist())}
            assert len(samples) == SPF


def test_our_csv_has_dlio_heads_rows(tmp_path):
    for p in _generate(tmp_path, "csv", f"++workload.dataset.record_length_bytes={SIDE * SIDE}"):
        rows = p.read_text().splitlines()
        assert len(rows) == SPF and {len(r.split(",")) for r in rows} == {SIDE * SIDE}
