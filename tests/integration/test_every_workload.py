"""Every bundled workload validates, generates and runs at test size with the loader it names.

Each workload is shrunk by ``_every_workload.scaled`` (file and row counts, record and batch sizes,
epochs, compute time 0, ``train.total_training_steps=-1``, checkpoint counts, a two-layer model with
TP/PP 1); nothing else changes. The commands are the CLI's own (``dlio_core.cli.main``), run in this process so that
torch and TensorFlow are imported once. Each workload generates its own dataset: its schema and sizes
are its own, and at this size generation takes well under a second.

Object-store workloads (``storage_type`` s3 or s3dlio) run against the session's S3 server (seaweedfs on
127.0.0.1, ``s3_server``): their bucket and credentials are the server's, every endpoint of
``storage.endpoint_uris`` is that server, and the layout (root, prefix, folder) stays the workload's.
DALI workloads run in test_dali_every_workload.py (DALI runs in its own pytest process); none is
bundled today, which ``test_no_bundled_workload_needs_dali`` keeps true until that file exists.

What each run must show: exit 0; summary.json and report.json with status complete; ``Read mode:``
in the log and report.json's ``read_mode`` as ``reader.decode`` says; every generated sample read once
per epoch; and the bytes read equal to what the format must touch (see ``expected_bytes``).
Generate-only workloads must leave their files; checkpoint workloads their checkpoints.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from dlio_core.cli import main
from dlio_core.config import bundled_workloads, load_config
from dlio_core.formats._parquet_read import footer_tail_bytes  # the footer read, once per file and process

from ._every_workload import OBJECT_STORES, TRAIN_FILES, scaled, stock

pytestmark = pytest.mark.integration

DALI_LOADERS = ("dali", "native_dali")
WORKLOADS = bundled_workloads()


def _kind(name: str) -> str:
    cfg = stock(name)
    if cfg.reader.data_loader.value in DALI_LOADERS:
        return "dali"
    return "object" if cfg.storage.storage_type.value in OBJECT_STORES else "local"


KINDS = {name: _kind(name) for name in WORKLOADS}
LOCAL = [n for n in WORKLOADS if KINDS[n] == "local"]
OBJECT = [n for n in WORKLOADS if KINDS[n] == "object"]


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _split(files: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(data files, index files): indexed binary keeps ``.off.idx``/``.sz.idx`` beside each data file."""
    index = [f for f in files if f[0].endswith(".idx")]
    return [f for f in files if not f[0].endswith(".idx")], index


def _parquet_chunk_bytes(storage, files, columns) -> int:
    """The compressed bytes of the columns read (all when the schema marks none), in every row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = 0
    for rel, size in files:
        buf = np.empty(size, np.uint8)
        storage.read_into(rel, memoryview(buf), 0)
        meta = pq.read_metadata(pa.BufferReader(buf.tobytes()))
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            total += sum(rg.column(c).total_compressed_size for c in range(rg.num_columns)
                         if columns is None or rg.column(c).path_in_schema.split(".")[0] in columns)
    return total


def expected_bytes(cfg, storage, epochs: int) -> int:
    """What the readers must read: whole files, every epoch; for indexed binary the samples every epoch
    and the index files once (kept per process); for parquet the chunks of the columns read every epoch
    and each file's footer tail once (kept per process)."""
    fmt = cfg.dataset.format.value
    data, index = _split(storage.list_files("train"))
    if fmt == "parquet":
        schema = cfg.dataset.parquet.get("columns") or ()
        chosen = {c["name"] for c in schema if c.get("read", True)} if schema else None
        return (_parquet_chunk_bytes(storage, data, chosen) * epochs
                + sum(_footer_read(storage, rel, size) for rel, size in data))
    return sum(size for _, size in data) * epochs + sum(size for _, size in index)


def _footer_read(storage, rel: str, size: int) -> int:
    """Bytes the parquet reader reads for a file's footer: its tail, or the whole footer when larger."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = np.empty(size, np.uint8)
    storage.read_into(rel, memoryview(buf), 0)
    return max(footer_tail_bytes(size), pq.read_metadata(pa.BufferReader(buf.tobytes())).serialized_size + 8)


def _storage(cfg):
    from dlio_core.listing import dataset_storage

    return dataset_storage(cfg)


def _check_training(s, cfg, out: str) -> None:
    mode = "decode" if cfg.reader.decode else "bytes"
    assert f"Read mode: {mode}" in out
    report = json.loads((s.out / "report.json").read_text())
    summary = json.loads((s.out / "summary.json").read_text())
    assert report["read_mode"] == mode and report["run_status"]["status"] == "complete"
    assert summary["num_files_train"] == TRAIN_FILES
    steps = np.load(s.out / "0_steps.npz")
    train = steps["phase"] == 0
    samples = TRAIN_FILES * s.samples_per_file
    assert samples % s.batch_size == 0  # whole steps: every sample is read
    assert int(steps["samples"][train].sum()) == samples * s.epochs
    measured, expected = int(steps["bytes_read"][train].sum()), expected_bytes(cfg, _storage(cfg), s.epochs)
    if _reads_whole_files_per_sample(cfg):  # a batch reads each file its samples come from, once
        assert expected <= measured <= expected * s.samples_per_file
        assert report["train"]["read_amplification"] > 1
    else:
        assert measured == expected


def _reads_whole_files_per_sample(cfg) -> bool:
    """npz and npy keep samples on the last axis and are read whole: with a sample shuffle over files of
    several samples, a file is read in every batch that takes one of its samples (the design's "report
    that amplification")."""
    return (cfg.dataset.format.value in ("npz", "npy") and cfg.dataset.num_samples_per_file > 1
            and cfg.reader.sample_shuffle.value != "off")


def _check_checkpoints(s, cfg) -> None:
    steps = np.load(s.out / "0_steps.npz")
    saves = int((steps["ckpt_kind"] == 0).sum())
    loads = int((steps["ckpt_kind"] == 1).sum())
    c = cfg.checkpoint
    if not cfg.workflow.train:  # checkpoint-only: write then read the counts asked
        assert (saves, loads) == (c.num_checkpoints_write, max(c.num_checkpoints_read, 0))
    else:
        assert saves >= 1
    written = steps["ckpt_rank_bytes"][steps["ckpt_kind"] == 0]
    assert written.min() > 0
    from dlio_core.storage import open_storage

    opts = dict(cfg.storage.storage_options) if c.checkpoint_folder.startswith("s3://") else None
    on_store = open_storage(c.checkpoint_folder, opts).list_files("")
    assert sum(size for _, size in on_store) >= int(written.sum())


def _run_workload(name: str, folder, capsys, s3=None) -> None:
    s = scaled(name, folder, s3=s3)
    cfg = stock(name, s.overrides)
    rc, out, err = _cli(capsys, "validate", name, *s.overrides)
    assert rc == 0, err
    if cfg.workflow.train and not cfg.workflow.generate_data:
        rc, out, err = _cli(capsys, "generate", name, *s.overrides)
        assert rc == 0, err
    rc, out, err = _cli(capsys, "run", name, *s.overrides)
    assert rc == 0, err
    if cfg.workflow.generate_data:
        data, _ = _split(_storage(cfg).list_files("train"))
        assert len(data) == TRAIN_FILES and all(size > 0 for _, size in data)
    if cfg.workflow.train:
        _check_training(s, cfg, out)
    if cfg.workflow.checkpoint:
        _check_checkpoints(s, cfg)


@pytest.mark.parametrize("name", LOCAL)
def test_workload_runs_at_test_size(name, tmp_path, capsys):
    _run_workload(name, tmp_path, capsys)


@pytest.mark.parametrize("name", OBJECT)
def test_object_store_workload_runs_on_the_test_s3_server(name, tmp_path, capsys, s3_server):
    _run_workload(name, tmp_path, capsys, s3=(f"t-{uuid.uuid4().hex[:12]}", dict(s3_server.options)))


def test_no_bundled_workload_needs_dali():
    """The DALI workloads belong in test_dali_every_workload.py; when one is bundled, write that file."""
    assert [n for n in WORKLOADS if KINDS[n] == "dali"] == []
    assert sorted(LOCAL + OBJECT) == sorted(WORKLOADS)


def test_the_checks_fail_on_a_wrong_byte_count(tmp_path, capsys):
    """The byte check is not vacuous: the same run, counted as if every column of the schema were read
    (no column selection), misses it."""
    s = scaled("dlrm_b200", tmp_path)
    cfg = stock("dlrm_b200", s.overrides)
    assert _cli(capsys, "generate", "dlrm_b200", *s.overrides)[0] == 0
    assert _cli(capsys, "run", "dlrm_b200", *s.overrides)[0] == 0
    all_columns = load_config(cfg, ["++workload.dataset.parquet.columns=[]"])
    steps = np.load(s.out / "0_steps.npz")
    measured = int(steps["bytes_read"][steps["phase"] == 0].sum())
    assert measured == expected_bytes(cfg, _storage(cfg), 1)
    assert measured < expected_bytes(all_columns, _storage(cfg), 1)


def _one_training_workload_per_format() -> list[str]:
    chosen: dict[str, str] = {}
    for name in LOCAL:
        cfg = stock(name)
        if cfg.workflow.train and cfg.dataset.num_files_train > 0:
            chosen.setdefault(cfg.dataset.format.value, name)
    return [chosen[f] for f in sorted(chosen)]


@pytest.mark.parametrize("name", _one_training_workload_per_format())
def test_decode_mode_runs_each_format_with_its_workload_s_loader(name, tmp_path, capsys):
    """``reader.decode: true`` (decode as a trainer would) on one workload per format: the same samples
    and bytes read, the mode printed and reported as decode."""
    s = scaled(name, tmp_path)
    overrides = (*s.overrides, "++workload.reader.decode=True")
    cfg = stock(name, overrides)
    assert _cli(capsys, "generate", name, *overrides)[0] == 0
    rc, out, err = _cli(capsys, "run", name, *overrides)
    assert rc == 0, err
    _check_training(s, cfg, out)


STOCK_200 = sorted((Path(__file__).parents[1] / "fixtures" / "stock" / "argonne_v2.0.0").glob("*.yaml"))


@pytest.mark.parametrize("path", STOCK_200, ids=[p.stem for p in STOCK_200])
def test_dlio_200_stock_workload_runs_as_spelled(path, tmp_path, capsys):
    """DLIO 2.0.0's own files (its spellings: ``record_length``, ``model: NAME``, ``workflow.do_eval``), not
    our bundled copies, at test size: the overrides in HEAD's spelling win over the file's."""
    _run_workload(str(path), tmp_path, capsys)
