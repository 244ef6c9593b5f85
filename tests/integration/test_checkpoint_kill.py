"""Nothing torn, nothing left behind: a checkpoint writer killed with SIGKILL mid-write leaves no complete-looking
checkpoint, its temporaries are never read as data, and the next run that writes there removes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace as NS

import pytest

from dlio_core.checkpoint import MARKER, CheckpointEngine, CheckpointError
from dlio_core.checkpoint.hygiene import is_temporary
from dlio_core.config import load_config
from dlio_core.storage import open_storage

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The writer: a 64 MiB checkpoint in 1 MiB pieces, slowed to ~25 ms a piece so the kill lands mid-write.
WRITER = textwrap.dedent("""
    import sys, time
    from dlio_core.checkpoint import CheckpointEngine, ChunkSource
    from dlio_core.config import load_config

    folder, mechanism, fsync = sys.argv[1], sys.argv[2], sys.argv[3] == "fsync"
    real = ChunkSource.chunk
    def slow(self, *a, **k):
        time.sleep(0.025)
        return real(self, *a, **k)
    ChunkSource.chunk = slow
    if mechanism == "torch_save":  # its tensors are built before the clock: slow torch.save's writes instead
        from dlio_core.checkpoint.fw_torch import CountingWriter
        write = CountingWriter.write
        CountingWriter.write = lambda self, b: (time.sleep(0.2), write(self, b))[1]
        ChunkSource.chunk = real
    cfg = load_config("unet3d_h100", [f"++workload.checkpoint.checkpoint_folder={folder}",
                                      f"++workload.checkpoint.checkpoint_mechanism={mechanism}",
                                      "++workload.model.model_size_bytes=67108864",
                                      f"++workload.checkpoint.fsync={fsync}"])  # fsync: early writeback too
    CheckpointEngine(cfg, progress=False, chunk_bytes=1 << 20).save(1, 1)
    print("finished", flush=True)
""")


def config(folder: str, mechanism: str):
    return load_config("unet3d_h100", [f"++workload.checkpoint.checkpoint_folder={folder}",
                                       f"++workload.checkpoint.checkpoint_mechanism={mechanism}",
                                       "++workload.model.model_size_bytes=67108864"])


def temporaries(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if is_temporary(n)) if os.path.isdir(folder) else []


def kill_mid_write(folder: str, mechanism: str, fsync: bool = False) -> list[str]:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, folder, mechanism, "fsync" if fsync else "-"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ck = os.path.join(folder, "global_epoch1_step1")
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            temps = temporaries(ck)
            grown = [t for t in temps if os.path.isfile(os.path.join(ck, t)) and os.path.getsize(os.path.join(ck, t))
                     >= 4 << 20]
            if grown or (temps and mechanism == "torch_save"):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        else:
            pytest.fail("the writer never started writing")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    return temporaries(ck)


@pytest.mark.parametrize("mechanism, fsync", [("stream", False), ("raw", False), ("torch_save", False),
                                              ("stream", True), ("raw", True)])
def test_kill_9_mid_write_then_the_next_run_cleans_up(tmp_path, mechanism, fsync):
    if mechanism == "torch_save":
        pytest.importorskip("torch")
    folder = str(tmp_path / "ck")
    left = kill_mid_write(folder, mechanism, fsync)
    ck = os.path.join(folder, "global_epoch1_step1")
    assert left, "the killed writer should have left its temporary behind"
    assert not os.path.exists(os.path.join(ck, MARKER))  # nothing complete-looking
    assert not os.path.exists(os.path.join(ck, "model_states-0.pt"))  # no final name either
    assert open_storage(folder).list_files("global_epoch1_step1") == []  # a temporary is never listed as data

    lines: list[str] = []
    eng = CheckpointEngine(config(folder, mechanism), log=NS(output=lines.append, warning=lines.append),
                           progress=False)
    with pytest.raises(CheckpointError, match="not a complete checkpoint .*interrupted"):
        eng.load(1, 1)
    assert temporaries(ck) == []  # the new run removed the killed writer's leftovers when it started
    assert any("left by an interrupted checkpoint writer" in m for m in lines)
    rec = eng.save(1, 1)
    assert sorted(os.listdir(ck)) == sorted([MARKER, "model_states-0.pt"]) and rec.bytes == 67108864
    assert eng.load(1, 1).bytes == rec.bytes


def test_a_save_sweeps_its_own_folder(tmp_path):
    folder = tmp_path / "ck"
    eng = CheckpointEngine(config(str(folder), "raw"), progress=False)
    ck = folder / "global_epoch1_step3"
    ck.mkdir(parents=True)
    (ck / ".model_states-0.pt.tmp-999999-deadbeef").write_bytes(b"x" * 1000)
    (ck / ".x.dcp.tmp-999999-0badf00d").mkdir()
    (ck / "notes.txt").write_text("not ours to remove")
    eng.save(1, 3)
    assert sorted(p.name for p in ck.iterdir()) == sorted([MARKER, "model_states-0.pt", "notes.txt"])
