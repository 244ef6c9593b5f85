"""The workload's framework mechanisms (torch_save, dcp, tf_save): what they write loads with the framework's
own loader, holds DLIO's tensors (the raw bytes plus the framework's metadata), and is timed and committed."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pytest

from dlio_core.checkpoint import MARKER, CheckpointEngine, CheckpointError
from dlio_core.config import load_config

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.integration

TINY_LLAMA = ["model.num_layers=2", "model.transformer.hidden_size=64", "model.transformer.ffn_hidden_size=128",
              "model.transformer.vocab_size=1000", "model.transformer.num_attention_heads=4",
              "model.transformer.num_kv_heads=2", "checkpoint.time_between_checkpoints=0"]


def engine(root: str, mechanism: str, *overrides: str, name: str = "llama3_8b") -> CheckpointEngine:
    cfg = load_config(name, [f"++workload.checkpoint.checkpoint_folder={root}",
                             f"++workload.checkpoint.checkpoint_mechanism={mechanism}",
                             *[f"++workload.{o}" for o in (*TINY_LLAMA, *overrides)]])
    return CheckpointEngine(cfg, progress=False)


class Payload:
    """Any pickled class: torch.load(weights_only=True) must refuse it."""


def folder_bytes(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


@pytest.mark.parametrize("mechanism", ["torch_save", "dcp", "tf_save"])
def test_framework_mechanisms_hold_the_raw_bytes_plus_metadata(tmp_path, mechanism):
    raw = engine(str(tmp_path / "raw"), "raw").save(1, 1)
    eng = engine(str(tmp_path / "fw"), mechanism, "checkpoint.fsync=True")
    rec = eng.save(1, 1)
    folder = tmp_path / "fw/global_epoch1_step1"
    entries = sorted(n for n in os.listdir(folder) if n != MARKER)
    assert len(entries) == 2 and not any(n.startswith(".") for n in entries)  # no temporary left
    assert rec.mechanism == mechanism and rec.bytes == raw.bytes == eng.plan.total_bytes
    assert rec.stored_bytes == sum(folder_bytes(str(folder / n)) for n in entries)
    overhead = rec.to_dict()["overhead_bytes"]
    assert 0 < overhead < 64 * 1024 + rec.bytes // 20  # the framework's metadata, small against the tensors
    assert rec.blocked_s <= rec.duration_s and rec.cache_dropped
    assert json.loads((folder / MARKER).read_text())["mechanism"] == mechanism
    back = eng.load(1, 1)
    assert (back.bytes, back.stored_bytes, back.mechanism) == (rec.bytes, rec.stored_bytes, mechanism)


def test_torch_save_files_open_with_torch_load_weights_only(tmp_path):
    eng = engine(str(tmp_path), "torch_save", "checkpoint.randomize_tensor=False")
    eng.save(1, 1)
    folder = tmp_path / "global_epoch1_step1"
    model = torch.load(folder / "zero_pp_rank_0_mp_rank_0_model_states.pt", weights_only=True)
    optim = torch.load(folder / "zero_pp_rank_0_mp_rank_0_optim_states.pt", weights_only=True)
    assert sorted(model, key=int) == ["0", "1", "2", "3", "4"]  # embedding, 2 layers, lm_head, final norm
    assert sorted(model["1"], key=int) == ["0", "1", "2", "3", "4", "5"]
    assert model["1"]["1"].dtype == torch.float16 and bool((model["1"]["1"] == 1).all())  # DLIO's torch.ones
    assert sorted(optim, key=int) == [str(i) for i in range(6)] and optim["0"].dtype == torch.float32
    nbytes = sum(t.numel() * t.element_size() for layer in model.values() for t in layer.values())
    nbytes += sum(t.numel() * t.element_size() for t in optim.values())
    assert nbytes == eng.plan.total_bytes


def test_dcp_folders_load_with_dcp_and_tf_bundles_with_tf(tmp_path):
    import torch.distributed.checkpoint as dcp

    engine(str(tmp_path / "dcp"), "dcp").save(1, 1)
    target = tmp_path / "dcp/global_epoch1_step1/zero_pp_rank_0_mp_rank_0_optim_states.dcp"
    meta = dcp.FileSystemReader(str(target)).read_metadata()
    assert sorted(meta.state_dict_metadata) == [str(i) for i in range(6)]
    engine(str(tmp_path / "tf"), "tf_save").save(1, 1)
    reader = tf.train.load_checkpoint(str(tmp_path / "tf/global_epoch1_step1/zero_pp_rank_0_mp_rank_0_optim_states.pb"
                                          "/ckpt"))
    shapes = {k: v for k, v in reader.get_variable_to_shape_map().items() if k.startswith("state/")}
    assert len(shapes) == 6 and reader.get_variable_to_dtype_map()[next(iter(shapes))] == tf.float32


@pytest.fixture
def disk_dir():
    """A folder on a disk file system (/tmp may be tmpfs, which refuses O_DIRECT), removed afterwards."""
    import shutil

    folder = tempfile.mkdtemp(dir="/var/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("mechanism", ["torch_save", "dcp", "tf_save"])
def test_framework_mechanisms_on_direct_storage(mechanism, disk_dir):
    root = disk_dir
    eng = engine("direct://" + root, mechanism)
    rec = eng.save(1, 1)
    assert eng.load(1, 1).bytes == rec.bytes == eng.plan.total_bytes


@pytest.mark.parametrize("mechanism, inner", [("dcp", ".metadata"), ("tf_save", "ckpt.index")])
def test_a_half_written_framework_folder_is_a_clear_error(tmp_path, mechanism, inner):
    eng = engine(str(tmp_path), mechanism)
    eng.save(1, 1)
    entry = "zero_pp_rank_0_mp_rank_0_model_states." + ("dcp" if mechanism == "dcp" else "pb")
    os.unlink(tmp_path / "global_epoch1_step1" / entry / inner)
    with pytest.raises(CheckpointError, match="its save did not finish"):
        eng.load(1, 1)
    os.unlink(tmp_path / "global_epoch1_step1" / MARKER)
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        eng.load(1, 1)


def test_torch_save_refuses_a_pickled_object_and_a_wrong_size(tmp_path):
    eng = engine(str(tmp_path), "torch_save")
    eng.save(1, 1)
    path = tmp_path / "global_epoch1_step1/zero_pp_rank_0_mp_rank_0_model_states.pt"
    torch.save({"x": Payload()}, path)  # not weights-only: code could run on load
    with pytest.raises(CheckpointError, match="does not load with torch.load\\(weights_only=True\\)"):
        eng.load(1, 1)
    torch.save({"a": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="holds 12 bytes of tensors but this configuration expects"):
        eng.load(1, 1)


def test_checkpoint_only_run_reports_the_mechanism(tmp_path, run_cli):
    res = run_cli("run", "llama3_8b", f"++workload.checkpoint.checkpoint_folder={tmp_path}/ckpt",
                  *[f"++workload.{o}" for o in TINY_LLAMA], "++workload.checkpoint.checkpoint_mechanism=torch_save",
                  "++workload.checkpoint.num_checkpoints_write=1", "++workload.checkpoint.num_checkpoints_read=1",
                  f"++hydra.run.dir={tmp_path}/out")
    assert res.returncode == 0, res.stderr
    records = json.loads((tmp_path / "out/report.json").read_text())["checkpoint"]["records"]
    assert [(r["kind"], r["mechanism"]) for r in records] == [("save", "torch_save"), ("load", "torch_save")]
    assert records[0]["overhead_bytes"] > 0 and records[0]["stored_bytes"] > records[0]["bytes"]
    log = (tmp_path / "out/dlio.log").read_text() if (tmp_path / "out/dlio.log").exists() else ""
    assert "Checkpoint mechanism: torch_save (checkpoint.checkpoint_mechanism)" in log + res.stdout


def test_randomized_framework_tensors_differ_per_checkpoint(tmp_path):
    eng = engine(str(tmp_path), "torch_save")
    eng.save(1, 1)
    eng.save(1, 2)
    a = torch.load(tmp_path / "global_epoch1_step1/zero_pp_rank_0_mp_rank_0_optim_states.pt", weights_only=True)
    b = torch.load(tmp_path / "global_epoch1_step2/zero_pp_rank_0_mp_rank_0_optim_states.pt", weights_only=True)
    assert not np.array_equal(a["0"].view(torch.int32).numpy(), b["0"].view(torch.int32).numpy())


class Remote:
    """A storage with no OS path, as an object store answers: framework mechanisms go through a local stage."""

    def __init__(self, root: str) -> None:
        from dlio_core.storage import open_storage

        self._st, self.url = open_storage(root), "mem://bucket/ck"

    def __getattr__(self, name):
        return getattr(self._st, name)

    def local_path(self, path):
        return None


@pytest.mark.parametrize("mechanism", ["torch_save", "dcp", "tf_save", "stream"])
def test_framework_mechanisms_through_the_local_stage(tmp_path, mechanism):
    remote = Remote(str(tmp_path / "bucket"))
    cfg = load_config("llama3_8b", [f"++workload.checkpoint.checkpoint_folder={tmp_path}/unused",
                                    f"++workload.checkpoint.checkpoint_mechanism={mechanism}",
                                    *[f"++workload.{o}" for o in TINY_LLAMA]])
    eng = CheckpointEngine(cfg, storage=remote, progress=False)
    before = set(os.listdir(tempfile.gettempdir()))
    rec = eng.save(1, 1)
    assert remote.exists(f"global_epoch1_step1/{MARKER}") and eng.load(1, 1).bytes == rec.bytes
    stages = {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("dl-driver-ckpt-stage-")}
    assert stages == set()  # every stage removed after its upload or download
