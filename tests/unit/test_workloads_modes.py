"""The read mode (reader.decode: bytes or decode) reaches every format and every report; the MLCommons
fork's keys load with their meaning (or a warning that they have none); generation applies csv and
parquet codecs, writes parquet rows from the schema, and honours reader.write_threads."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest

from dlio_core.config import ConfigError, load_config
from dlio_core.formats import format_for
from dlio_core.generate import generate_dataset
from dlio_core.listing import dataset_files, dataset_storage
from dlio_core.manifest import DatasetError
from dlio_core.reader import epoch_plan, native_reader, read_mode, reader_format

from ._workload_helpers import small_cfg


def _cfg(tmp_path, *overrides):
    return small_cfg(tmp_path, "++workload.reader.batch_size=2", *overrides)


def _read_all(cfg):
    st = dataset_storage(cfg)
    files = dataset_files(cfg, st, "train")
    batches = list(native_reader(cfg, st, files, keep_samples=True).epoch(epoch_plan(cfg, epoch=1)))
    return files, batches


def test_bytes_is_the_default_and_decode_reaches_the_formats(tmp_path):
    cfg = _cfg(tmp_path, "++workload.dataset.format=png", "++workload.dataset.record_length_bytes=64")
    assert cfg.reader.decode is False and read_mode(cfg) == "bytes"
    assert reader_format(cfg).decode is False
    dec = load_config(cfg, ["++workload.reader.decode=True"])
    assert read_mode(dec) == "decode" and reader_format(dec).decode is True
    generate_dataset(cfg, progress=False)
    _, raw = _read_all(cfg)
    _, pixels = _read_all(dec)
    assert raw[0].samples[0].ndim == 1 and raw[0].samples[0][:4].tobytes() == b"\x89PNG"  # the file's bytes
    assert pixels[0].samples[0].shape == (8, 8)                                          # decoded


def test_csv_bytes_mode_hands_out_shares_of_the_file_and_decode_the_values(tmp_path):
    cfg = _cfg(tmp_path, "++workload.dataset.format=csv", "++workload.dataset.num_samples_per_file=2",
               "++workload.dataset.record_length_bytes=16")
    generate_dataset(cfg, progress=False)
    files, batches = _read_all(cfg)
    assert sum(b.bytes_read for b in batches) == sum(n for _, n in files)
    assert all(s.dtype == np.uint8 for b in batches for s in b.samples)
    _, decoded = _read_all(load_config(cfg, ["++workload.reader.decode=True"]))
    text = bytes(batches[0].samples[0]).decode()  # bytes mode: the csv text itself
    assert text.count(",") >= 8 and decoded[0].samples[0].shape == (16,)  # decode: the 16 values


def test_format_for_passes_the_reader_section_only_to_formats_that_take_it():
    from types import SimpleNamespace as NS

    assert format_for(NS(format="hdf5", hdf5=None), NS(decode=True)).name == "hdf5"
    assert format_for(NS(format="jpeg", num_samples_per_file=1, image_encoding="raw"), NS(decode=True)).encoding == "raw"


def test_fork_keys_load_with_meaning_or_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = load_config("default", ["++workload.dataset.skip_listing=True",
                                      "++workload.dataset.listing_validation_interval=10",
                                      "++workload.reader.write_threads=3", "++workload.storage.storage_type=direct_fs",
                                      "++workload.storage.endpoint_uris=[http://a:9000,http://b:9000]",
                                      "++workload.dataset.compression=brotli", "++workload.dataset.data_gen_method=dgen",
                                      "++workload.storage.post_generation_settle_seconds=5",
                                      "++workload.dataset.image_encoding=raw"])
    said = " ".join(str(w.message) for w in caught)
    assert cfg.dataset.skip_listing and cfg.dataset.listing_validation_interval == 10
    assert cfg.reader.write_threads == 3 and cfg.storage.storage_type.value == "direct_fs"
    assert cfg.storage.endpoint_uris == ("http://a:9000", "http://b:9000")
    assert cfg.dataset.compression.value == "brotli" and cfg.dataset.image_encoding.value == "raw"
    assert "dataset.data_gen_method: has no effect" in said
    assert "storage.post_generation_settle_seconds: has no effect" in said
    with pytest.raises(ConfigError, match="dataset.image_encoding"):
        load_config("default", ["++workload.dataset.image_encoding=webp"])


def test_dlio_environment_fill_ins(monkeypatch):
    monkeypatch.setenv("DLIO_BUCKET", "bkt")
    monkeypatch.setenv("DLIO_STORAGE_TYPE", "S3")
    monkeypatch.setenv("DLIO_STORAGE_LIBRARY", "s3dlio")
    monkeypatch.setenv("DLIO_OUTPUT_FOLDER", "/tmp/dlio-out")
    cfg = load_config("default")
    assert (cfg.storage.storage_root, cfg.storage.storage_type.value) == ("bkt", "s3")
    assert cfg.storage.storage_options["storage_library"] == "s3dlio" and cfg.output.folder == "/tmp/dlio-out"
    mine = load_config("default", ["++workload.storage.storage_root=mine", "++hydra.run.dir=/tmp/h"])
    assert mine.storage.storage_root == "mine" and mine.output.folder == "/tmp/h"  # explicit values win


def test_csv_codecs_apply_and_name_the_files(tmp_path):
    cfg = _cfg(tmp_path, "++workload.dataset.format=csv", "++workload.dataset.compression=gzip")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dropped
        manifest = generate_dataset(cfg, progress=False)
    assert all(p.endswith(".csv.gz") for p, _ in manifest.train)
    st = dataset_storage(cfg)
    assert dataset_files(cfg, st, "train") == list(manifest.train)
    st.delete("dl-driver-manifest.json")
    assert dataset_files(cfg, st, "train") == list(manifest.train)  # listing finds .csv.gz too
    with pytest.raises(DatasetError, match="not a csv codec"):
        generate_dataset(load_config(cfg, ["++workload.dataset.compression=lzf"]), progress=False)


@pytest.mark.parametrize("codec", ["brotli", "zstd", "gzip"])
def test_parquet_codecs_apply(tmp_path, codec):
    import pyarrow.parquet as pq

    cfg = _cfg(tmp_path, "++workload.dataset.format=parquet", f"++workload.dataset.compression={codec}",
               "++workload.dataset.record_length_bytes=64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        manifest = generate_dataset(cfg, progress=False)
    meta = pq.ParquetFile(dataset_storage(cfg).path(manifest.train[0][0])).metadata
    assert meta.row_group(0).column(0).compression.lower() == codec


def test_parquet_with_a_schema_generates_rows_not_a_sample_array(tmp_path, monkeypatch):
    import dlio_core.generate as gen

    def no_array(*a, **k):
        raise AssertionError("a sample array was built for a schema")

    monkeypatch.setattr(gen, "sample_array", no_array)
    cfg = _cfg(tmp_path, "++workload.dataset.format=parquet", "++workload.dataset.num_samples_per_file=5",
               "++workload.dataset.parquet={columns: [{name: a, dtype: float32, size: 4}]}")
    with pytest.warns(UserWarning, match="record_length_bytes=4096 is ignored for parquet"):
        manifest = generate_dataset(cfg, progress=False)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(dataset_storage(cfg).path(manifest.train[0][0])).metadata.num_rows == 5


def test_write_threads_sets_the_generation_threads(tmp_path, monkeypatch):
    import dlio_core.generate as gen

    seen = []
    real = gen._run
    monkeypatch.setattr(gen, "_run", lambda fn, items, n: (seen.append(n), real(fn, items, n))[1])
    generate_dataset(_cfg(tmp_path, "++workload.reader.write_threads=1"), progress=False)
    assert seen == [1]


def test_report_and_run_log_say_the_mode(tmp_path):
    from dlio_core.runner import run

    cfg = _cfg(tmp_path, "++workload.reader.data_loader=native", "++workload.workflow.generate_data=True",
               "++workload.workflow.evaluation=False", "++workload.train.epochs=1",
               "++workload.train.computation_time=0", f"++hydra.run.dir={tmp_path}/out", "++workload.reader.decode=True")
    run(cfg, quiet=True)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["read_mode"] == "decode"
    assert "Read mode: decode (reader.decode: true)" in (tmp_path / "out" / "dlio.log").read_text()


def test_ranged_formats_are_unchanged_by_the_mode(tmp_path):
    cfg = _cfg(tmp_path, "++workload.dataset.format=hdf5", "++workload.dataset.record_length_bytes=64")
    generate_dataset(cfg, progress=False)
    a = [s.tobytes() for b in _read_all(cfg)[1] for s in b.samples]
    b = [s.tobytes() for b in _read_all(replace(cfg, reader=replace(cfg.reader, decode=True)))[1] for s in b.samples]
    assert a == b
