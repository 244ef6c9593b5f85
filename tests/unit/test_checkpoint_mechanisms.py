"""Checkpoint mechanisms without a framework: choosing one, the tensor layout, raw vs stream, O_DIRECT, records."""

from __future__ import annotations

import json
import os
import tempfile
from types import SimpleNamespace as NS

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlio_core.checkpoint import MARKER, CheckpointEngine, CheckpointError, ChunkSource
from dlio_core.checkpoint import mechanisms as mech_mod
from dlio_core.checkpoint import streams
from dlio_core.checkpoint.mechanisms import Context, create, resolve
from dlio_core.checkpoint.state import CheckpointPlan, FileSpec, ModelShape
from dlio_core.checkpoint.tensors import file_tensors
from dlio_core.config import ConfigError, load_config
from dlio_core.storage import open_storage

TINY_LLAMA = ["model.num_layers=2", "model.transformer.hidden_size=64", "model.transformer.ffn_hidden_size=128",
              "model.transformer.vocab_size=1000", "model.transformer.num_attention_heads=4",
              "model.transformer.num_kv_heads=2", "checkpoint.time_between_checkpoints=0"]


def config(tmp_path, name: str = "llama3_8b", *overrides: str):
    return load_config(name, [f"++workload.checkpoint.checkpoint_folder={tmp_path}/ck",
                              *[f"++workload.{o}" for o in overrides]])


def engine(tmp_path, *overrides: str, name: str = "llama3_8b", **kw) -> CheckpointEngine:
    return CheckpointEngine(config(tmp_path, name, *TINY_LLAMA, *overrides), progress=False, **kw)


def cfg_ns(framework: str, storage_type: str = "local_fs", mechanism: str = "none"):
    return NS(framework=framework, storage=NS(storage_type=storage_type),
              checkpoint=NS(checkpoint_mechanism=mechanism))


# --- choosing a mechanism -------------------------------------------------------------------------

@pytest.mark.parametrize("framework, storage_type, expected, asked", [
    ("pytorch", "local_fs", "stream", "pt_save"),
    ("pytorch", "s3", "stream", "pt_obj_save"),
    ("tensorflow", "local_fs", "tf_save", "tf_save"),
    ("tensorflow", "s3", "tf_save", "tf_save"),
    ("jax", "local_fs", "orbax", "orbax"),
])
def test_default_follows_framework_and_storage_as_dlio_does(framework, storage_type, expected, asked):
    choice = resolve(cfg_ns(framework, storage_type))
    assert (choice.name, choice.asked) == (expected, asked)


@pytest.mark.parametrize("value, expected", [("pt_save", "stream"), ("PT_S3_SAVE", "stream"),
                                             ("pt_obj_save", "stream"), ("torch_save", "torch_save"),
                                             ("raw", "raw"), ("dcp", "dcp"), ("tf_save", "tf_save"),
                                             ("orbax", "orbax")])
def test_named_mechanisms(value, expected):
    assert resolve(cfg_ns("pytorch", mechanism=value)).name == expected


def test_unknown_mechanism_names_the_key_and_the_nearest():
    with pytest.raises(ConfigError, match=r"checkpoint\.checkpoint_mechanism: 'torch_sav' .*did you mean torch_save"):
        resolve(cfg_ns("pytorch", mechanism="torch_sav"))
    with pytest.raises(ConfigError, match="custom needs DLIO plugin classes"):
        resolve(cfg_ns("pytorch", mechanism="custom"))


def test_a_missing_framework_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "tensorflow" else real(n, *a))
    with pytest.raises(ImportError, match=r"tf_save needs tensorflow.*dl-driver\[tf\]"):
        create("tf_save")


def test_engine_turns_a_missing_framework_into_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setattr(mech_mod, "FRAMEWORK_OF", {**mech_mod.FRAMEWORK_OF, "dcp": ("no_such_module_xyz", "torch")})
    with pytest.raises(ConfigError, match=r"dcp needs no_such_module_xyz"):
        engine(tmp_path, "checkpoint.checkpoint_mechanism=dcp")


def test_config_rejects_a_bad_compression_before_the_run(tmp_path):
    with pytest.raises(ConfigError, match="checkpoint.compression_level"):
        config(tmp_path, "llama3_8b", "checkpoint.compression_level=40")
    with pytest.raises(ConfigError, match="applies to the raw and stream mechanisms"):
        engine(tmp_path, "checkpoint.compression=zstd", "checkpoint.checkpoint_mechanism=torch_save")
    with pytest.raises(ConfigError, match="'gzip' is not supported for checkpoints"):
        engine(tmp_path, "checkpoint.compression=gzip")


# --- the tensors of a file --------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(zero=st.integers(0, 3), tp=st.sampled_from([1, 2, 4]), pp=st.sampled_from([1, 2, 3]),
       dp=st.integers(1, 3), layers=st.integers(3, 7), model_dt=st.sampled_from(["fp16", "bf16", "fp32"]),
       legacy=st.booleans())
def test_tensors_add_up_to_the_planned_bytes(zero, tp, pp, dp, layers, model_dt, legacy):
    if zero == 3 and pp > 1:
        pp = 1
    shape = ModelShape(model_type="transformer", num_layers=layers, hidden_size=32, ffn_hidden_size=64,
                       vocab_size=100, num_attention_heads=4, num_kv_heads=2, tensor=tp, pipeline=pp, zero_stage=zero,
                       model_datatype=model_dt, layer_parameters=(40, 0, 16) if legacy else (),
                       optimization_groups=(8, 24) if legacy else ())
    plan = CheckpointPlan(shape, world=tp * pp * dp)
    for rank in range(plan.world):
        for spec in plan.rank_specs(rank):
            tensors = file_tensors(plan, spec)
            assert sum(t.nbytes for t in tensors) == spec.nbytes
            assert len({t.path for t in tensors}) == len(tensors)  # no two tensors share a key


def test_dlio_keys_for_each_kind_of_file():
    cnn = CheckpointPlan(ModelShape(model_type="cnn", model_size_bytes=100), world=1)
    assert [t.path for t in file_tensors(cnn, cnn.rank_specs(0)[0])] == [("a",)]
    llama = CheckpointPlan(ModelShape(model_type="transformer", num_layers=2, hidden_size=8, ffn_hidden_size=16,
                                      vocab_size=10, num_attention_heads=2, num_kv_heads=1), world=1)
    model, optim = llama.rank_specs(0)
    paths = [t.path for t in file_tensors(llama, model)]
    assert paths[0] == ("0", "0") and paths[-1] == ("4", "0") and ("1", "5") in paths
    assert [t.path for t in file_tensors(llama, optim)] == [(str(i),) for i in range(6)]
    per_layer = CheckpointPlan(ModelShape(model_type="transformer", num_layers=2, hidden_size=8, ffn_hidden_size=16,
                                          vocab_size=10, num_attention_heads=2, num_kv_heads=1, pipeline=2,
                                          zero_stage=1), world=2)
    first = per_layer.rank_specs(0)[0]
    assert first.name.startswith("layer_0-") and [t.path for t in file_tensors(per_layer, first)] == [("0",)]


# --- raw and stream ---------------------------------------------------------------------------------

def ctx_for(root: str, chunk: int = 1 << 16, **kw) -> Context:
    return Context(open_storage(root), ChunkSource(chunk, nonce=5), CheckpointPlan(ModelShape()), **kw)


@pytest.mark.parametrize("nbytes, chunk", [(1, 1 << 16), (4095, 1 << 16), (65536, 1 << 16), (300_001, 1 << 16),
                                           # pieces raw makes in several slices, the last one short
                                           (2 * (5 << 20) + 12345, 5 << 20)])
def test_raw_and_stream_write_the_same_bytes(tmp_path, nbytes, chunk):
    spec = FileSpec("m.pt", nbytes, "model", "fp16")
    for m in (streams.RawMechanism(), streams.StreamMechanism()):  # same path in two roots: same content
        assert m.save(ctx_for(str(tmp_path / m.name), chunk), "c/m.pt", spec).wait().stored_bytes == nbytes
    raw = (tmp_path / "raw/c/m.pt").read_bytes()
    assert raw == (tmp_path / "stream/c/m.pt").read_bytes()
    src = ChunkSource(chunk, nonce=5)  # and each piece is the chunk the content source makes whole
    assert all(raw[off:off + chunk] == bytes(src.chunk("c/m.pt", i, min(chunk, nbytes - off)))
               for i, off in enumerate(range(0, nbytes, chunk)))


def test_chunk_slices_must_start_on_a_word_and_fit():
    src = ChunkSource(64, nonce=1)
    with pytest.raises(ValueError, match="multiple of 8"):
        src.chunk("a", 0, 8, start=4)
    with pytest.raises(ValueError, match="1..16 bytes"):
        src.chunk("a", 0, 17, start=48)
    assert bytes(ChunkSource(64, randomize=False).chunk("a", 0, 4, dtype="fp16", start=8)).hex() == "003c003c"


def test_stream_producer_failure_leaves_nothing(tmp_path, monkeypatch):
    ctx = ctx_for(str(tmp_path))
    real, calls = ChunkSource.chunk, {"n": 0}

    def failing(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("generator broke")
        return real(self, *a, **k)

    monkeypatch.setattr(ChunkSource, "chunk", failing)
    with pytest.raises(OSError, match="generator broke"):
        streams.StreamMechanism().save(ctx, "c/m.pt", FileSpec("m.pt", 1_000_000, "model", "int8"))
    assert os.listdir(tmp_path / "c") == []


@pytest.fixture
def disk_dir():
    """A folder on a disk file system (/tmp may be tmpfs, which refuses O_DIRECT), removed afterwards."""
    import shutil

    folder = tempfile.mkdtemp(dir="/var/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _direct_ok(folder: str) -> bool:
    try:
        fd = os.open(os.path.join(folder, "probe"), os.O_WRONLY | os.O_CREAT | getattr(os, "O_DIRECT", 0))
        os.close(fd)
        return hasattr(os, "O_DIRECT")
    except OSError:
        return False


@pytest.mark.parametrize("mechanism", ["raw", "stream"])
def test_direct_storage_writes_with_o_direct_and_reads_back(mechanism, monkeypatch, disk_dir):
    folder = disk_dir
    if not _direct_ok(folder):
        pytest.skip("this file system refuses O_DIRECT")
    opened: list[int] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, f, *a: (opened.append(f), real_open(p, f, *a))[1])
    ctx = Context(open_storage("direct://" + folder), ChunkSource(1 << 16, nonce=1), CheckpointPlan(ModelShape()),
                  fsync=True)
    spec = FileSpec("m.pt", 3 * 65536 + 123, "model", "int8")  # a partial last block
    m = create(mechanism)
    assert m.save(ctx, "c/m.pt", spec).wait() == mech_mod.Moved(spec.nbytes, spec.nbytes)
    assert any(f & os.O_DIRECT and f & os.O_WRONLY for f in opened)
    plain = ctx_for(f"{folder}/plain", 1 << 16)
    plain.source = ChunkSource(1 << 16, nonce=1)
    streams.RawMechanism().save(plain, "c/m.pt", spec)  # the page-cache writer: the same bytes
    assert open(f"{folder}/c/m.pt", "rb").read() == open(f"{folder}/plain/c/m.pt", "rb").read()
    before = len(opened)
    assert m.load(ctx, "c/m.pt", spec).payload_bytes == spec.nbytes
    read_flags = opened[before:]
    assert len(read_flags) == 1 and read_flags[0] & os.O_DIRECT  # one O_DIRECT descriptor for the whole file
    assert [n for n in os.listdir(f"{folder}/c")] == ["m.pt"]


def test_stream_memory_stays_near_its_ring(tmp_path):
    from dlio_core.checkpoint.memory import PeakMemory

    ctx = ctx_for(str(tmp_path), chunk=1 << 20)
    spec = FileSpec("m.pt", 96 << 20, "model", "int8")
    with PeakMemory() as mem:
        streams.StreamMechanism().save(ctx, "c/m.pt", spec).wait()
    if mem.grew_bytes is None:
        pytest.skip("no VmHWM here")
    assert mem.grew_bytes < (streams.RING + 8) << 20  # a few 1 MiB pieces, not the 96 MiB file


# --- records and markers ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, name", [("none", "stream"), ("raw", "raw"), ("pt_save", "stream")])
def test_records_and_marker_name_the_mechanism(tmp_path, value, name):
    eng = engine(tmp_path, f"checkpoint.checkpoint_mechanism={value}")
    rec = eng.save(1, 1)
    marker = json.loads((tmp_path / "ck/global_epoch1_step1" / MARKER).read_text())
    assert rec.mechanism == marker["mechanism"] == name and rec.compression == marker["compression"] == "none"
    assert rec.stored_bytes == rec.bytes == marker["stored_bytes"] and rec.to_dict()["overhead_bytes"] == 0
    assert rec.blocked_s <= rec.duration_s


def test_raw_and_stream_read_each_other_but_not_other_mechanisms(tmp_path):
    engine(tmp_path, "checkpoint.checkpoint_mechanism=raw").save(1, 1)
    assert engine(tmp_path, "checkpoint.checkpoint_mechanism=stream").load(1, 1).bytes > 0
    marker = tmp_path / "ck/global_epoch1_step1" / MARKER
    info = json.loads(marker.read_text())
    marker.write_text(json.dumps({**info, "mechanism": "torch_save"}))
    with pytest.raises(CheckpointError, match="written with checkpoint mechanism torch_save.*checkpoint_mechanism="
                                              "torch_save to read it"):
        engine(tmp_path, "checkpoint.checkpoint_mechanism=raw").load(1, 1)


def test_mechanism_is_logged(tmp_path):
    lines: list[str] = []
    log = NS(output=lines.append, warning=lines.append)
    CheckpointEngine(config(tmp_path, "llama3_8b", *TINY_LLAMA), log=log, progress=False)
    assert any(m.startswith("Checkpoint mechanism: stream (DLIO's pt_save as the MLCommons fork means it") for m in lines)


def test_content_stays_unique_per_file_with_fill(tmp_path):
    src = ChunkSource(4096, nonce=9)
    a, b = np.empty(4096, np.uint8), np.empty(4096, np.uint8)
    src.fill("x/a.pt", 0, a)
    src.fill("x/b.pt", 0, b)
    assert not np.array_equal(a, b) and bytes(a) == bytes(src.chunk("x/a.pt", 0, 4096))


@pytest.mark.parametrize("mechanism", ["raw", "stream"])
def test_engine_reports_memory_near_the_largest_piece(tmp_path, mechanism):
    cfg = load_config("unet3d_h100", [f"++workload.checkpoint.checkpoint_folder={tmp_path}/ck",
                                      f"++workload.checkpoint.checkpoint_mechanism={mechanism}",
                                      "++workload.model.model_size_bytes=134217728"])  # 128 MiB
    eng = CheckpointEngine(cfg, progress=False, chunk_bytes=1 << 20, read_buffer_bytes=1 << 20)
    saved, loaded = eng.save(1, 1), eng.load(1, 1)
    if saved.peak_memory_bytes is None:
        pytest.skip("the kernel gives no peak resident memory here")
    ring = streams.RING if mechanism == "stream" else 1
    assert saved.peak_memory_bytes < (ring + 8) << 20 and loaded.peak_memory_bytes < 9 << 20
    assert saved.blocked_s == pytest.approx(saved.rank_duration_s, rel=0.2)  # synchronous: blocked until durable
