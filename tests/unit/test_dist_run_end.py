"""`dlio_core.run_end` and the result files' `run_status`: how a run ended, never "success" unless complete."""

from __future__ import annotations

import json
import signal
import time
from types import SimpleNamespace

import pytest

from dlio_core.config import load_config
from dlio_core.dist import Dist, RankStatus, StepOutcome
from dlio_core.metrics import PhaseRecord
from dlio_core.report.dlio import metric_block, write_after_lost_rank, write_all
from dlio_core.run_end import COMPLETE, FAILED, INTERRUPTED, Progress, RankFailed, RunEnd, RunInterrupted, RunSync
from dlio_core.run_steps import eval_epoch, train_epoch
from dlio_core.runner import EpochRecord
from dlio_core.signals import StopSignals


def _sync(**kw) -> RunSync:
    return RunSync(Dist(), StopSignals(), **kw)


def test_a_guarded_error_waits_for_the_exchange_with_its_code():
    sync = _sync(exit_code_of=lambda exc: 2)
    with sync.guard():
        raise ValueError("f.npz: truncated")
    assert not sync.clear
    with sync.guard():  # a later error does not replace the first
        raise OSError("later")
    out = sync.exchange("epoch 1 step 3")
    assert (out.status, out.message, out.exit_code) == (RankStatus.FAILED, "ValueError: f.npz: truncated", 2)
    end = sync.end_from(out, epoch=1, step=3, phase="train")
    assert (end.status, end.rank, end.exit_code, end.step) == (FAILED, 0, 2, 3)
    assert isinstance(sync.stopped(end), ValueError)  # the failing rank raises its own error


def test_a_bad_classifier_or_code_falls_back_to_one():
    for classify in (lambda exc: 1 / 0, lambda exc: 999):
        sync = _sync(exit_code_of=classify)
        with sync.guard():
            raise RuntimeError("x")
        assert sync.exchange("s").exit_code == 1


def test_ctrl_c_inside_a_guard_is_an_interruption():
    sync = _sync()
    with sync.guard():
        raise KeyboardInterrupt
    out = sync.exchange("epoch 2 step 1")
    assert (out.status, out.signum, out.exit_code) == (RankStatus.INTERRUPTED, signal.SIGINT, 130)
    end = sync.end_from(out, epoch=2, step=1, phase="train")
    assert (end.status, end.signal) == (INTERRUPTED, "SIGINT")
    exc = sync.stopped(end)
    assert isinstance(exc, RunInterrupted) and isinstance(exc, KeyboardInterrupt) and exc.exit_code == 130


def test_a_signal_flag_stops_the_work():
    stop = StopSignals()
    stop.received = signal.SIGTERM
    sync = RunSync(Dist(), stop)
    assert not sync.clear
    out = sync.exchange("s")
    assert (out.message, out.exit_code) == ("SIGTERM received", 143)


def test_ranks_that_did_not_fail_raise_rank_failed_with_its_code():
    sync = RunSync(Dist(rank=0, world=2), StopSignals())
    out = StepOutcome(RankStatus.FAILED, rank=1, message="ReadError: f.npz", code=2)
    end = sync.end_from(out, epoch=1, step=9, phase="train")
    exc = sync.stopped(end)
    assert isinstance(exc, RankFailed) and exc.exit_code == 2
    assert str(exc) == "rank 1 failed: ReadError: f.npz (stopped at epoch 1 step 9, train)"
    assert sync.end_from(StepOutcome(), epoch=3, step=16, phase="train") == RunEnd(COMPLETE, "", 3, 16, "train")


class _Batch(SimpleNamespace):
    def release(self):
        return None


def _loader(fail_at: int | None = None):
    def epoch(plan, max_steps):
        for i in range(1, max_steps + 1):
            if i == fail_at:
                raise OSError(f"step {i}: short read")
            yield _Batch(num_samples=2, bytes_read=8, io_s=0.0, decode_s=0.0, sample_bytes=8)
    return SimpleNamespace(epoch=epoch)


def test_train_epoch_stops_at_the_failing_step_and_keeps_what_it_measured():
    sync, at, rec = _sync(), Progress(epoch=1), PhaseRecord(batch_size=2)
    out = train_epoch(rec, _loader(fail_at=3), None, 8, SimpleNamespace(step=lambda: 0.0), sync, at)
    assert (out.status, at.step, rec.steps) == (RankStatus.FAILED, 3, 2)
    assert "step 3: short read" in out.message


def test_a_signal_before_a_step_stops_the_run_after_that_step():
    """A signal landing between two steps (or before an epoch's first, where the set-up takes a while):
    the rank still runs that step, as the other ranks do, so every rank records the same steps."""
    stop = StopSignals()
    stop.received = signal.SIGTERM
    rec, at = PhaseRecord(batch_size=2), Progress(epoch=1)
    out = train_epoch(rec, _loader(), None, 8, SimpleNamespace(step=lambda: 0.0), RunSync(Dist(), stop), at)
    assert (out.status, at.step, rec.steps) == (RankStatus.INTERRUPTED, 1, 1)


def test_train_epoch_checkpoints_after_ok_steps_only():
    saved = []

    def checkpoint(step):
        saved.append(step)
        time.sleep(0.01 if step == 2 else 0)
        return step == 2  # saved at step 2 only

    sync, at, rec = _sync(), Progress(epoch=1), PhaseRecord(batch_size=2)
    out = train_epoch(rec, _loader(fail_at=4), None, 6, SimpleNamespace(step=lambda: 0.0), sync, at, checkpoint)
    assert not out.ok and saved == [1, 2, 3] and rec.steps == 3  # none after the failed step 4
    assert rec.checkpoint[1] >= 0.01 and rec.checkpoint[0] == rec.checkpoint[2] == 0.0


def test_eval_stops_early_once_signalled():
    stop = StopSignals()
    sync, rec = RunSync(Dist(), stop), PhaseRecord(batch_size=1)
    compute = SimpleNamespace(step=lambda: setattr(stop, "received", signal.SIGTERM) or 0.0)
    eval_epoch(rec, _loader(), SimpleNamespace(steps=5), compute, sync)
    assert rec.steps == 1


# --- the result files -------------------------------------------------------------------------------------

def _epochs() -> list[EpochRecord]:
    rec = PhaseRecord(batch_size=4)
    for i in range(6):
        rec.add_step(start=float(i), wait=0.01, compute=0.99, barrier=0.0, end=i + 1.0, samples=4, bytes_read=40,
                     io_s=0.01, decode_s=0.0, sample_bytes=40)
    return [EpochRecord(epoch=1, train=rec)]


LOG = SimpleNamespace(warning=lambda *_: None, output=lambda *_: None, metric_block=lambda *_: None)


@pytest.mark.parametrize("end", [RunEnd(), RunEnd(FAILED, "rank 1 failed: ReadError: f.npz", 1, 6, "train", 1, None, 2),
                                 RunEnd(INTERRUPTED, "rank 0 interrupted: SIGTERM received", 1, 6, "train", 0,
                                        "SIGTERM", 143)], ids=["complete", "failed", "interrupted"])
def test_summary_and_report_say_how_the_run_ended(tmp_path, end):
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data", "++workload.metric.au=0.5"])
    summary = write_all(cfg, Dist(), LOG, str(tmp_path), _epochs(), "start", train_files=[("a", 10)],
                        eval_files=[], end=end)
    report = json.loads((tmp_path / "report.json").read_text())
    assert summary["run_status"] == report["run_status"] == end.to_dict()
    assert json.loads((tmp_path / "summary.json").read_text())["run_status"]["status"] == end.status
    # AU 99% against a 50% target: "success" only for the run that completed.
    assert summary["metric"]["train_au_meet_expectation"] == ("success" if end.complete else "fail")
    assert report["train"]["measured_window_complete"] is end.complete
    lines = metric_block(1, summary["metric"], end)
    assert any(line.startswith("[METRIC] Run status:") for line in lines) is not end.complete


def test_after_a_lost_rank_the_files_say_failed_without_figures(tmp_path):
    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data"])
    end = RunEnd(FAILED, "rank 0: no word from some rank within 5 s at epoch 1 step 4", 1, 4, "train", exit_code=1)
    write_after_lost_rank(cfg, Dist(), str(tmp_path), _epochs(), "start", end, train_files=[("a", 10)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["run_status"] == end.to_dict() and summary["metric"] == {}
    assert json.loads((tmp_path / "report.json").read_text())["run_status"]["status"] == "failed"
    assert len(json.loads((tmp_path / "0_output.json").read_text())["1"]["load"]["block1"]) == 6
