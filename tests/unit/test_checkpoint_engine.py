"""CheckpointEngine on one rank: cadence, round trips, atomic commit, fsync, cache drop, checkpoint-only mode."""

from __future__ import annotations

import json
import os
import zlib
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlio_core.checkpoint import MARKER, CheckpointEngine, CheckpointError, CheckpointRecord, ChunkSource
from dlio_core.checkpoint import engine as engine_mod
from dlio_core.checkpoint import transfer
from dlio_core.config import ConfigError, load_config
from dlio_core.dist import Dist

TINY_LLAMA = ["model.num_layers=2", "model.transformer.hidden_size=64", "model.transformer.ffn_hidden_size=128",
              "model.transformer.vocab_size=1000", "model.transformer.num_attention_heads=4",
              "model.transformer.num_kv_heads=2", "checkpoint.time_between_checkpoints=0"]


def config(tmp_path, name: str = "unet3d_h100", *overrides: str):
    return load_config(name, [f"++workload.checkpoint.checkpoint_folder={tmp_path}/ck",
                              *[f"++workload.{o}" for o in overrides]])


def engine(tmp_path, name: str = "unet3d_h100", *overrides: str, **kw) -> CheckpointEngine:
    return CheckpointEngine(config(tmp_path, name, *overrides), progress=False, **kw)


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def output(self, m: str) -> None:
        self.lines.append(("output", m))

    def warning(self, m: str) -> None:
        self.lines.append(("warning", m))


# --- round trip -------------------------------------------------------------------------------------

def test_save_then_load_moves_the_same_bytes(tmp_path):
    eng = engine(tmp_path, "unet3d_h100", "model.model_size_bytes=3000000", "checkpoint.fsync=True",
                 chunk_bytes=1 << 20, read_buffer_bytes=1 << 19)
    saved = eng.save(2, 7)
    loaded = eng.load(2, 7)
    folder = tmp_path / "ck" / "global_epoch2_step7"
    assert (folder / "model_states-0.pt").stat().st_size == 3_000_000
    assert saved.bytes == loaded.bytes == saved.rank_bytes == loaded.rank_bytes == 3_000_000
    assert (saved.kind, saved.index, saved.epoch, saved.step, saved.files) == ("save", 1, 2, 7, 1)
    assert (loaded.kind, loaded.index) == ("load", 1)
    marker = json.loads((folder / MARKER).read_text())
    assert marker["bytes"] == 3_000_000 and marker["files"] == 1 and marker["fsync"] is True
    for r in (saved, loaded):
        assert r.duration_s >= r.rank_duration_s > 0 and r.rank_durations_s == (r.rank_duration_s,)
        assert r.throughput_GiB_per_s == pytest.approx(r.bytes / 2**30 / r.duration_s)
        t0 = datetime.strptime(r.start, "%Y-%m-%dT%H:%M:%S.%f")
        t1 = datetime.strptime(r.end, "%Y-%m-%dT%H:%M:%S.%f")
        assert (t1 - t0).total_seconds() == pytest.approx(r.duration_s, abs=2e-6)


def test_transformer_files_land_where_the_plan_says(tmp_path):
    eng = engine(tmp_path, "llama3_8b", *TINY_LLAMA)
    eng.save(1, 1)
    folder = tmp_path / "ck" / "global_epoch1_step1"
    on_disk = sorted((p.name, p.stat().st_size) for p in folder.iterdir() if p.name != MARKER)
    assert on_disk == sorted(eng.plan.rank_files(0)) and len(on_disk) == 2


# --- atomic visibility ------------------------------------------------------------------------------

def test_a_failing_writer_leaves_no_file_and_no_marker(tmp_path, monkeypatch):
    eng = engine(tmp_path, "unet3d_h100", "model.model_size_bytes=5000000", chunk_bytes=1 << 20)
    calls = {"n": 0}
    real = ChunkSource.chunk

    def failing(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk on fire")
        return real(self, *a, **k)

    monkeypatch.setattr(ChunkSource, "chunk", failing)
    with pytest.raises(CheckpointError, match="disk on fire.*not committed"):
        eng.save(1, 1)
    folder = tmp_path / "ck" / "global_epoch1_step1"
    assert list(folder.iterdir()) == []  # no final file, no temporary, no marker
    assert not eng.is_complete(1, 1)
    with pytest.raises(CheckpointError, match=f"no {MARKER}"):
        eng.load(1, 1)


def test_resave_removes_the_old_marker_first(tmp_path, monkeypatch):
    eng = engine(tmp_path, "unet3d_h100", "model.model_size_bytes=100000")
    eng.save(1, 1)
    assert eng.is_complete(1, 1)
    monkeypatch.setattr(ChunkSource, "chunk", lambda *a, **k: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(CheckpointError):
        eng.save(1, 1)
    assert not eng.is_complete(1, 1)  # the old marker must not vouch for a half-rewritten checkpoint


def test_load_of_a_file_with_the_wrong_size_names_it(tmp_path):
    eng = engine(tmp_path, "unet3d_h100", "model.model_size_bytes=100000")
    eng.save(1, 1)
    path = tmp_path / "ck" / "global_epoch1_step1" / "model_states-0.pt"
    os.truncate(path, 99_999)
    with pytest.raises(CheckpointError, match=r"model_states-0\.pt holds 99999 bytes .* expects 100000"):
        eng.load(1, 1)


# --- fsync and the page cache ---------------------------------------------------------------------

@pytest.mark.parametrize("fsync", [True, False])
def test_fsync_flag_reaches_os_fsync(tmp_path, monkeypatch, fsync):
    eng = engine(tmp_path, "llama3_8b", *TINY_LLAMA, f"checkpoint.fsync={fsync}")
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    rec = eng.save(1, 1)
    # each file and its directory entry, then the marker and its directory entry
    assert len(synced) == (2 * (rec.files + 1) if fsync else 0)
    assert rec.fsync is fsync and rec.cache_dropped is fsync


def test_loads_drop_the_page_cache_first(tmp_path, monkeypatch):
    eng = engine(tmp_path, "unet3d_h100", "model.model_size_bytes=100000", "checkpoint.fsync=True")
    eng.save(1, 1)
    advised: list[int] = []
    real = os.posix_fadvise
    monkeypatch.setattr(transfer, "_FADVISE", lambda fd, o, n, a: (advised.append(a), real(fd, o, n, a))[1])
    rec = eng.load(1, 1)
    assert advised == [os.POSIX_FADV_DONTNEED] and rec.cache_dropped


# --- content --------------------------------------------------------------------------------------

def test_content_is_incompressible_and_differs_between_checkpoints(tmp_path):
    eng = engine(tmp_path, "unet3d_h100", "model.model_size_bytes=1048576")
    eng.save(1, 1)
    eng.save(1, 2)
    a = (tmp_path / "ck/global_epoch1_step1/model_states-0.pt").read_bytes()
    b = (tmp_path / "ck/global_epoch1_step2/model_states-0.pt").read_bytes()
    assert len(zlib.compress(a, 6)) > 0.99 * len(a)
    pages_a = {a[i:i + 4096] for i in range(0, len(a), 4096)}
    pages_b = {b[i:i + 4096] for i in range(0, len(b), 4096)}
    assert len(pages_a) == len(a) // 4096 and not pages_a & pages_b  # no page repeats anywhere


def test_randomize_tensor_false_writes_ones_of_each_element_type(tmp_path):
    eng = engine(tmp_path, "llama3_8b", *TINY_LLAMA, "checkpoint.randomize_tensor=False")
    eng.save(1, 1)
    folder = tmp_path / "ck" / "global_epoch1_step1"
    model = np.fromfile(folder / "zero_pp_rank_0_mp_rank_0_model_states.pt", dtype="<f2")
    optim = np.fromfile(folder / "zero_pp_rank_0_mp_rank_0_optim_states.pt", dtype="<f4")
    assert (model == 1).all() and (optim == 1).all()


# --- cadence against DLIO's loop (main.py _train / run) -------------------------------------------

def dlio_step_checkpoints(sbc: int, steps: int, epochs: int) -> list[tuple[int, int]]:
    out = []
    for epoch in range(1, epochs + 1):
        nxt = sbc  # reset every epoch
        for step in range(1, steps + 1):
            if sbc >= 0 and step == nxt:
                out.append((epoch, step))
                nxt += sbc
    return out


def dlio_epoch_checkpoints(after: int, between: int, epochs: int) -> list[int]:
    nxt, out = after, []
    for epoch in range(1, epochs + 1):
        if epoch == nxt:
            out.append(epoch)
            nxt += between
    return out


@settings(max_examples=40, deadline=None)
@given(sbc=st.integers(1, 7), steps=st.integers(1, 20), epochs=st.integers(1, 4))
def test_step_cadence_matches_dlio(tmp_path_factory, sbc, steps, epochs):
    eng = engine(tmp_path_factory.mktemp("c"), "bert_v100", f"checkpoint.steps_between_checkpoints={sbc}")
    ours = [(e, s) for e in range(1, epochs + 1) for s in range(1, steps + 1) if eng.due_after_step(e, s)]
    assert ours == dlio_step_checkpoints(sbc, steps, epochs)
    assert not any(eng.due_after_epoch(e) for e in range(1, epochs + 1))  # step cadence has no epoch checkpoints


@settings(max_examples=40, deadline=None)
@given(after=st.integers(1, 6), between=st.integers(1, 4), epochs=st.integers(1, 12))
def test_epoch_cadence_matches_dlio(tmp_path_factory, after, between, epochs):
    eng = engine(tmp_path_factory.mktemp("c"), "unet3d_h100", f"checkpoint.checkpoint_after_epoch={after}",
                 f"checkpoint.epochs_between_checkpoints={between}")
    assert [e for e in range(1, epochs + 1) if eng.due_after_epoch(e)] == dlio_epoch_checkpoints(after, between, epochs)
    assert not eng.due_after_step(1, 1)


def test_unet3d_cadence_and_dlio_epoch_end_step_name(tmp_path):
    eng = engine(tmp_path)  # checkpoint_after_epoch 5, every 2 epochs
    assert [e for e in range(1, 10) if eng.due_after_epoch(e)] == [5, 7, 9]
    assert eng.folder(5, eng.epoch_end_step(24)) == "global_epoch5_step25"


def test_checkpoint_after_epoch_zero_counts_from_zero(tmp_path):
    # Documented difference: DLIO never checkpoints here (its counter starts at 0, epochs at 1).
    eng = engine(tmp_path, "unet3d_h100", "checkpoint.checkpoint_after_epoch=0",
                 "checkpoint.epochs_between_checkpoints=2")
    assert [e for e in range(1, 7) if eng.due_after_epoch(e)] == [2, 4, 6]


def test_no_cadence_without_workflow_checkpoint(tmp_path):
    eng = engine(tmp_path, "bert_v100", "workflow.checkpoint=False")
    assert not eng.due_after_step(1, 250) and not eng.due_after_epoch(1)


# --- checkpoint-only mode -------------------------------------------------------------------------

def test_checkpoint_only_writes_then_reads_the_oldest(tmp_path):
    log = Log()
    eng = CheckpointEngine(config(tmp_path, "llama3_8b", *TINY_LLAMA, "checkpoint.num_checkpoints_write=3",
                                  "checkpoint.num_checkpoints_read=2"), log=log, progress=False)
    recs = eng.run_checkpoint_only()
    assert [(r.kind, r.index, r.folder) for r in recs] == [
        ("save", 1, "global_epoch1_step1"), ("save", 2, "global_epoch1_step2"), ("save", 3, "global_epoch1_step3"),
        ("load", 1, "global_epoch1_step1"), ("load", 2, "global_epoch1_step2")]
    assert len({r.bytes for r in recs}) == 1 and recs[0].bytes == eng.plan.total_bytes
    metrics = eng.summary_metrics(recs)
    assert set(metrics) == {f"{k}_checkpoint_{m}" for k in ("save", "load") for m in (
        "io_mean_GB_per_second", "io_stdev_GB_per_second", "duration_mean_seconds", "duration_stdev_seconds")
    } | {"checkpoint_size_GB"}
    assert metrics["checkpoint_size_GB"] == eng.plan.total_bytes / 2**30
    entries = eng.per_epoch_entries(recs)
    assert list(entries) == [1] and list(entries[1]) == ["save_ckpt1", "save_ckpt2", "save_ckpt3",
                                                         "load_ckpt1", "load_ckpt2"]
    assert set(entries[1]["load_ckpt2"]) == {"start", "end", "duration", "throughput"}
    said = [m for _, m in log.lines]
    assert said[0].startswith("Total number of parameters in the model:")
    assert any(m.startswith("Total checkpoint size:") for m in said)
    assert "Finished saving checkpoint 3 for epoch 1 in" in " ".join(said)


@pytest.mark.parametrize("spec, slept", [("-1", []), ("0", []), ("0.25", [0.25, 0.25])])
def test_time_between_checkpoints(tmp_path, monkeypatch, spec, slept):
    naps: list[float] = []
    monkeypatch.setattr(engine_mod.time, "sleep", naps.append)
    eng = engine(tmp_path, "unet3d_h100", "model.model_size_bytes=1000", "checkpoint.num_checkpoints_write=1",
                 "checkpoint.num_checkpoints_read=1", f"checkpoint.time_between_checkpoints={spec}")
    eng.run_checkpoint_only()
    assert naps == slept


def test_read_only_run_reads_what_an_earlier_run_wrote(tmp_path):
    writer = engine(tmp_path, "unet3d_h100", "model.model_size_bytes=1000", "checkpoint.num_checkpoints_write=2")
    writer.run_checkpoint_only()
    recs = engine(tmp_path, "unet3d_h100", "model.model_size_bytes=1000", "checkpoint.num_checkpoints_write=0",
                  "checkpoint.num_checkpoints_read=2").run_checkpoint_only()
    assert [(r.kind, r.step) for r in recs] == [("load", 1), ("load", 2)]


def test_reading_missing_checkpoints_says_what_to_do(tmp_path):
    eng = engine(tmp_path, "unet3d_h100", "model.model_size_bytes=1000", "checkpoint.num_checkpoints_read=2")
    with pytest.raises(CheckpointError, match=r"num_checkpoints_read=2 .*global_epoch1_step1\); write them first"):
        eng.run_checkpoint_only()


def test_more_reads_than_writes_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="num_checkpoints_read: 3 is more than"):
        engine(tmp_path, "unet3d_h100", "checkpoint.num_checkpoints_write=2", "checkpoint.num_checkpoints_read=3")


def test_recovery_rank_shift_on_one_host_warns_and_reads_own_files(tmp_path):
    log = Log()
    eng = CheckpointEngine(config(tmp_path, "unet3d_h100", "checkpoint.recovery_rank_shift=True"), log=log,
                           progress=False)
    assert eng.load_rank == 0 and any("recovery_rank_shift has no effect" in m for k, m in log.lines if k == "warning")


def test_default_mode_data_note_is_logged_as_a_warning(tmp_path):
    log = Log()
    # rank 0 of 8 as far as sizing goes (no communicator: collectives are local)
    # the stock llama3_8b sets no parallelism.data (the bundled copy used to): set it here
    CheckpointEngine(config(tmp_path, "llama3_8b", *TINY_LLAMA, "model.parallelism.data=1"), Dist(rank=0, world=8),
                     log=log, progress=False)
    assert any(k == "warning" and "model.parallelism.data=1 has no effect" in m for k, m in log.lines)


# --- summary figures ------------------------------------------------------------------------------

def _rec(kind: str, epoch: int, duration: float, nbytes: int = 2 << 30) -> CheckpointRecord:
    return CheckpointRecord(kind=kind, index=1, epoch=epoch, step=1, folder="f", start="s", end="e",
                            duration_s=duration, rank_duration_s=duration, rank_durations_s=(duration,),
                            bytes=nbytes, rank_bytes=nbytes, files=1, rank_files=1, fsync=True, cache_dropped=True,
                            throughput_GiB_per_s=nbytes / 2**30 / duration)


def test_summary_uses_mean_and_population_stdev_like_dlio(tmp_path):
    from dlio_core.checkpoint import per_epoch_entries, summary_metrics

    recs = [_rec("save", 1, 1.0), _rec("save", 2, 2.0), _rec("save", 2, 4.0)]
    m = summary_metrics(recs)
    assert m["save_checkpoint_io_mean_GB_per_second"] == pytest.approx(np.mean([2.0, 1.0, 0.5]))
    assert m["save_checkpoint_io_stdev_GB_per_second"] == pytest.approx(np.std([2.0, 1.0, 0.5]))
    assert m["save_checkpoint_duration_stdev_seconds"] == pytest.approx(np.std([1.0, 2.0, 4.0]))
    assert m["checkpoint_size_GB"] == 2.0 and not any(k.startswith("load_") for k in m)
    entries = per_epoch_entries(recs)
    assert list(entries[2]) == ["save_ckpt1", "save_ckpt2"] and entries[2]["save_ckpt2"]["duration"] == 4.0


def test_progress_line_on_a_terminal(tmp_path, monkeypatch):
    import io
    import sys

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    eng = CheckpointEngine(config(tmp_path, "llama3_8b", *TINY_LLAMA))  # progress=None: on when stderr is a TTY
    eng.save(1, 1)
    assert "checkpoint save global_epoch1_step1 (rank 0): 2/2 files" in tty.getvalue()
    monkeypatch.setattr(sys, "stderr", Tty())
    CheckpointEngine(config(tmp_path, "llama3_8b", *TINY_LLAMA), progress=False).save(1, 2)
    assert sys.stderr.getvalue() == ""
