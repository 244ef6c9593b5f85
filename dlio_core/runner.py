"""The training-loop emulation: epochs of steps (wait for a batch, compute, status exchange), evaluation.

Drives any Loader: an object whose ``epoch(plan, max_steps=None)`` yields batches carrying
``num_samples``, ``bytes_read``, ``sample_bytes``, ``io_s``, ``decode_s`` and a ``release()``. The
runner times what it sees itself: ``wait`` (blocked on the next batch: the data stall) and
``compute``. Each training step ends with a status exchange (:mod:`dlio_core.run_end`) that stands in
for the gradient all-reduce, as DLIO's per-step barrier does, at the same cost: when any rank fails
or is signalled (SIGINT, SIGTERM) every rank stops at that step, writes what it measured and raises
(the failing rank its own error, the others :class:`~dlio_core.run_end.RankFailed`, all of them
:class:`~dlio_core.run_end.RunInterrupted` after a signal). ``summary.json`` and ``report.json`` say
how the run ended (``run_status``). A rank that stops answering ends the others after
``$DL_DRIVER_RANK_TIMEOUT_S`` (:class:`~dlio_core.dist.RankLost`): they write their own files and, when
``run`` created the process group, end the job (``Dist.abandon``) rather than hang in MPI_Finalize.

Example (a tiny run on generated files; see ``dl-driver run`` for the whole flow):
    >>> import tempfile
    >>> from dlio_core.config import load_config
    >>> from dlio_core.runner import run
    >>> d = tempfile.mkdtemp()
    >>> cfg = load_config("default", [f"++workload.dataset.data_folder={d}/data", "++workload.reader.data_loader=native",
    ...     "++workload.workflow.generate_data=True", "++workload.train.epochs=1", "++workload.train.computation_time=0",
    ...     "++workload.workflow.evaluation=False", f"++hydra.run.dir={d}/out"])
    >>> result = run(cfg, quiet=True)
    >>> result.summary["metric"]["train_throughput_samples_per_second"][0] > 0, result.end.status
    (True, 'complete')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .dist import USE_RANK_TIMEOUT, Dist, RankLost, init as dist_init
from .emulate import make_compute
from .file_table import FileTable, shared_file_table
from .listing import dataset_files, dataset_storage
from .loaders import make_loader
from .metrics import PhaseRecord
from .node_work import NodeWork
from .output import RunLog, resolve_output_folder, write_config_copies
from .reader import epoch_plan, read_mode
from .report.host import timestamp
from .report.access_order import AccessOrderLog
from .run_end import FAILED, Progress, RunEnd, RunSync
from .run_progress import EpochProgress
from .run_steps import eval_epoch, train_epoch
from .signals import StopSignals

__all__ = ["run", "RunResult", "EpochRecord", "RunError"]


class RunError(RuntimeError):
    """A run cannot proceed; the message says why and how to fix it."""


@dataclass
class EpochRecord:
    """One epoch on this rank: the training phase and, when it ran, the evaluation phase."""

    epoch: int
    train: PhaseRecord
    train_start: str = ""
    train_end: str = ""
    eval: PhaseRecord | None = None
    eval_start: str = ""
    eval_end: str = ""


@dataclass
class RunResult:
    """What a run leaves behind: the output folder, rank 0's summary, this rank's records, how it ended."""

    output_folder: str
    summary: dict = field(default_factory=dict)
    epochs: list[EpochRecord] = field(default_factory=list)
    checkpoints: list[Any] = field(default_factory=list)  # CheckpointRecord of every save and load
    end: RunEnd = field(default_factory=RunEnd)


def _should_eval(cfg: Any, epoch: int) -> bool:
    ev = cfg.evaluation
    if not cfg.workflow.evaluation or cfg.dataset.num_files_eval <= 0:
        return False
    if epoch < ev.eval_after_epoch:
        return False
    return (epoch - ev.eval_after_epoch) % max(1, ev.epochs_between_evals) == 0


def _shared_files(cfg: Any, dist: Dist, storage: Any, split: str) -> FileTable:
    """Rank 0 lists (or reads the manifest) once and broadcasts the table as arrays; errors reach every rank."""
    return shared_file_table(dist, lambda: dataset_files(cfg, storage, split))


class _Run:
    """One run on this rank; the attributes say how far it got (for the files of a run that stopped)."""

    def __init__(self, cfg: Any, dist: Dist, log: RunLog, sync: RunSync, quiet: bool) -> None:
        self.cfg, self.dist, self.log, self.sync, self.quiet = cfg, dist, log, sync, quiet
        self.at = Progress()
        self.start_ts = timestamp()
        self.result = RunResult(output_folder="")
        self.checkpoints: Any = None
        self.train_files: Sequence[tuple[str, int]] = []
        self.eval_files: Sequence[tuple[str, int]] = []
        self.access_log: AccessOrderLog | None = None
        self.node_work: NodeWork | None = None

    # -- exchanges -----------------------------------------------------------------------------------------

    def _check(self, where: str, *, timeout_s: float | None = USE_RANK_TIMEOUT) -> None:
        """An exchange before anything is measured: when a rank failed, every rank stops (no results)."""
        outcome = self.sync.exchange(where, timeout_s=timeout_s)
        if not outcome.ok:
            end = self.sync.end_from(outcome, epoch=0, step=0, phase=self.at.phase)
            self._log_end(end)
            self.log.close()
            raise self.sync.stopped(end)

    def _log_end(self, end: RunEnd) -> None:
        if self.dist.is_root and not end.complete:
            self.log.error(f"run {end.status} at epoch {end.epoch} step {end.step} ({end.phase}): {end.reason}")

    # -- the run -------------------------------------------------------------------------------------------

    def setup(self) -> bool:
        """Everything before the epochs; False when there is nothing to train (checkpoint-only or nothing)."""
        cfg, dist, log, sync = self.cfg, self.dist, self.log, self.sync
        self.result.output_folder = folder = dist.bcast(resolve_output_folder(cfg))  # one folder for all ranks
        with sync.guard():
            if dist.is_root:
                write_config_copies(folder, cfg, cfg.overrides, subdir=cfg.hydra.get("output_subdir") or ".hydra")
            log.open_file(f"{folder}/{cfg.output.log_file}")
        self._check("setup (output folder)")
        for message in cfg.warnings:
            log.warning(message)
        log.output(f"Running dl-driver with {dist.world} process(es) on {dist.num_hosts} host(s): "
                   f"workload {cfg.source}")
        log.output(f"Read mode: {read_mode(cfg)} (reader.decode: {str(cfg.reader.decode).lower()}), "
                   f"format {cfg.dataset.format}")
        if cfg.workflow.checkpoint:
            from .checkpoint import CheckpointEngine

            self.checkpoints = CheckpointEngine(cfg, dist, log=log, progress=not self.quiet)
        self.storage = dataset_storage(cfg)
        if cfg.workflow.generate_data:
            from .generate import generate_dataset

            self.at.phase = "generation"
            log.output(f"Generating dataset in {cfg.dataset.data_folder} ({cfg.dataset.format})")
            with sync.guard():
                generate_dataset(cfg, rank=dist.rank, world=dist.world, progress=not self.quiet)
            self._check("data generation", timeout_s=None)  # ranks may take very different times here
            log.output("Generation done")
        self.at.phase = "setup"
        return bool(cfg.workflow.train)

    def prepare_training(self) -> None:
        cfg, dist, sync = self.cfg, self.dist, self.sync
        try:
            self.train_files = _shared_files(cfg, dist, self.storage, "train")
            if cfg.workflow.evaluation and cfg.dataset.num_files_eval > 0:
                self.eval_files = _shared_files(cfg, dist, self.storage, "valid")
        except Exception as exc:  # rank 0's listing error, raised on every rank: in dlio.log too
            self.log.error(f"listing the dataset: {' '.join(str(exc).split())}", console=False)
            self.log.close()
            raise
        self.random_seed = dist.bcast(_draw_seed() if dist.is_root else None)
        self.node_work = NodeWork.for_run(dist, self.storage, self.train_files)  # page-cache eviction per host
        with sync.guard():
            self.train_loader = make_loader(cfg, self.storage, self.train_files, split="train", rank=dist.rank)
            self.eval_loader = (make_loader(cfg, self.storage, self.eval_files, split="valid", rank=dist.rank)
                                if self.eval_files else None)
            rng = np.random.default_rng([cfg.train.seed, dist.rank])
            self.train_compute = make_compute(cfg, rng)
            self.eval_compute = make_compute(cfg, rng, phase="eval")
            self.steps = self._steps_per_epoch()
            if cfg.output.record_access_order:
                self.access_log = AccessOrderLog([rel for rel, _ in self.train_files])
                self.train_loader = self.access_log.watch(self.train_loader)  # records what it delivers
        self._check("setup (loaders)")

    def _plan(self, split: str, epoch: int) -> Any:  # this rank's plan, the same random seed on every rank
        return epoch_plan(self.cfg, split=split, epoch=epoch, world=self.dist.world, rank=self.dist.rank,
                          random_seed=self.random_seed)

    def _steps_per_epoch(self) -> int:
        cfg, world = self.cfg, self.dist.world
        steps = first = self._plan("train", 1).steps
        cap = cfg.train.total_training_steps
        if cap > 0:
            if cap > steps:
                raise RunError(f"train.total_training_steps={cap} but the dataset holds only {steps} steps per epoch "
                               f"for {world} rank(s); lower it or add files (dataset.num_files_train)")
            steps = cap
        self.log.output(f"Max steps per epoch: {first} = {cfg.dataset.num_samples_per_file} * "
                        f"{cfg.dataset.num_files_train} / {cfg.reader.batch_size} / {world} (samples per file * num files / batch size / comm size)")
        if steps == 0:
            raise RunError(f"0 training steps: {cfg.dataset.num_files_train} files x {cfg.dataset.num_samples_per_file} samples "
                           f"cannot fill one batch of {cfg.reader.batch_size} on each of {world} rank(s)")
        return steps

    def epochs(self) -> RunEnd:
        """Every epoch, until one ends badly; the end of the run."""
        cfg, log, sync = self.cfg, self.log, self.sync
        for epoch in range(1, cfg.train.epochs + 1):
            if self.node_work is not None and self.node_work.active:
                self.at.epoch, self.at.step, self.at.phase = epoch, 0, "cache eviction"
                with sync.guard():  # each host's leader, for its ranks' files; the others wait below
                    self.node_work.before_epoch(lambda r: epoch_plan(
                        cfg, split="train", epoch=epoch, world=self.dist.world, rank=r,
                        random_seed=self.random_seed), self.steps)
                outcome = sync.exchange(f"page-cache eviction before epoch {epoch}")
                if not outcome.ok:
                    return sync.end_from(outcome, epoch=epoch, step=0, phase=self.at.phase)
            self.at.epoch, self.at.phase = epoch, "train"
            rec = EpochRecord(epoch=epoch, train=PhaseRecord(cfg.reader.batch_size))
            self.result.epochs.append(rec)
            log.output(f"Starting epoch {epoch}: {self.steps} steps expected")
            rec.train_start = timestamp()
            plan = self._plan("train", epoch)
            checkpoint = self._step_checkpoint if (
                self.checkpoints is not None and cfg.checkpoint.steps_between_checkpoints > 0) else None
            with EpochProgress(rec.train, epoch=epoch, epochs=cfg.train.epochs, steps=self.steps,
                               enabled=self.dist.is_root and not self.quiet):  # a watcher thread, off the loop
                outcome = train_epoch(rec.train, self.train_loader, plan, self.steps, self.train_compute, sync,
                                      self.at, checkpoint)
            rec.train_end = timestamp()
            if self.access_log is not None:
                with sync.guard():
                    self.access_log.add(epoch, plan, rec.train.steps)
            if not outcome.ok:
                return sync.end_from(outcome, epoch=epoch, step=self.at.step, phase=self.at.phase)
            if rec.train.steps:
                log.output(f"Ending epoch {epoch} - {rec.train.steps} steps completed in "
                           f"{rec.train.end[-1] - rec.train.start[0]:.2f} s")
            ran = saved = False
            if self.checkpoints is not None and self.checkpoints.due_after_epoch(epoch):
                # Collective: every rank saves (even one whose local work failed since the last exchange),
                # so that no rank waits alone in the save's collectives; the exchange below tells of it.
                self.at.phase, ran, saved = "checkpoint", True, True
                with sync.guard():
                    self.result.checkpoints.append(self.checkpoints.save(epoch, self.checkpoints.epoch_end_step(self.steps)))
            if self.eval_loader is not None and _should_eval(cfg, epoch):
                self.at.phase, ran = "eval", True
                with sync.guard():
                    if sync.clear:
                        self.evaluate(rec, epoch)
            if ran:
                # After a save the slowest rank's save sets the wait: no bound then.
                outcome = sync.exchange(f"the end of epoch {epoch} ({self.at.phase})",
                                        timeout_s=None if saved else USE_RANK_TIMEOUT)
                if not outcome.ok:
                    return sync.end_from(outcome, epoch=epoch, step=self.at.step, phase=self.at.phase)
        return RunEnd(epoch=self.at.epoch, step=self.at.step, phase="train")

    def _step_checkpoint(self, step: int) -> bool:
        """After a training step: a save when one is due (collective; every rank decides alike)."""
        if not self.checkpoints.due_after_step(self.at.epoch, step):
            return False
        self.result.checkpoints.append(self.checkpoints.save(self.at.epoch, step))
        return True

    def evaluate(self, rec: EpochRecord, epoch: int) -> None:
        plan = self._plan("valid", epoch)
        self.log.output(f"Starting eval - {plan.steps} steps expected")
        rec.eval_start = timestamp()
        rec.eval = PhaseRecord(self.cfg.reader.batch_size_eval)
        try:
            eval_epoch(rec.eval, self.eval_loader, plan, self.eval_compute, self.sync)
        finally:
            rec.eval_end = timestamp()
        self.log.output(f"Ending eval - {rec.eval.steps} steps completed")

    def checkpoint_only(self) -> RunEnd:
        """DLIO's checkpoint-only mode: the writes, then the reads."""
        self.at.phase = "checkpoint"
        with self.sync.guard():
            self.result.checkpoints.extend(self.checkpoints.run_checkpoint_only())
        outcome = self.sync.exchange("checkpoints", timeout_s=None)
        return self.sync.end_from(outcome, epoch=0, step=0, phase="checkpoint")

    def until_the_end(self, part: Callable[[], RunEnd]) -> RunEnd:
        """``part()``'s end; or, when an error escapes it between the guarded pieces, the end every rank
        agrees on after hearing of that error, so that the result files are still written and say so.

        Such errors are raised wherever the main thread happens to be: torch's SIGCHLD handler raises
        "DataLoader worker (pid N) is killed by signal" when a worker dies, between epochs as well.
        """
        try:
            return part()
        except RankLost:
            raise
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every rank must hear of it
            self.sync.note(exc)
            outcome = self.sync.exchange(f"an error in {self.at.phase} (epoch {self.at.epoch})")
            return self.sync.end_from(outcome, epoch=self.at.epoch, step=self.at.step, phase=self.at.phase)

    def finish(self, end: RunEnd) -> RunResult:
        """Write what was measured (every rank), agree that it is written, raise when the run did not complete."""
        from .report import dlio as dlio_report

        cfg, dist, sync, result = self.cfg, self.dist, self.sync, self.result
        result.end = end
        self._log_end(end)
        self.at.phase = "results"
        with sync.guard():
            if self.access_log is not None:
                self.access_log.write(f"{result.output_folder}/{dist.rank}_access_order.json")
            result.summary = dlio_report.write_all(
                cfg, dist, self.log, result.output_folder, result.epochs, self.start_ts, train_files=self.train_files,
                eval_files=self.eval_files, checkpoints=self.checkpoints, checkpoint_records=result.checkpoints, end=end,
                node_stats=self.node_work.stats() if self.node_work is not None else None)
        # No rank returns (and exits, which makes mpirun end the others) before every rank has written.
        written = sync.exchange("writing the results")
        self.log.close()
        if not end.complete:
            raise sync.stopped(end)
        if not written.ok:
            raise sync.stopped(sync.end_from(written, epoch=end.epoch, step=end.step, phase="results"))
        return result

    def lost(self, exc: RankLost) -> None:
        """After a rank stopped answering: this rank's own files, no collective, the error in dlio.log."""
        from .report import dlio as dlio_report

        end = RunEnd(FAILED, str(exc), self.at.epoch, self.at.step, self.at.phase, exit_code=1)
        self.result.end = end
        self.log.error(str(exc))
        if self.result.output_folder:
            dlio_report.write_after_lost_rank(self.cfg, self.dist, self.result.output_folder, self.result.epochs,
                                              self.start_ts, end, train_files=self.train_files,
                                              checkpoints=self.checkpoints, checkpoint_records=self.result.checkpoints)
        self.log.close()


def _draw_seed() -> int:
    from .sampling import draw_random_seed

    return draw_random_seed()


def run(cfg: Any, *, dist: Dist | None = None, quiet: bool = False, log: RunLog | None = None,
        exit_code_of: Callable[[BaseException], int] | None = None) -> RunResult:
    """Run the workload ``cfg`` (a :class:`~dlio_core.config.RunConfig`) and write DLIO's result files.

    SIGINT and SIGTERM stop every rank at the next step while ``run`` is in progress (main thread).
    ``exit_code_of(exc)`` classifies a local error (the CLI's exit codes); the failing rank's code reaches
    every rank. When ``run`` creates the process group itself (``dist`` None) and a rank is lost, it
    ends the process after writing this rank's files (``Dist.abandon``), since no collective can
    complete any more; with a ``dist`` of the caller's it raises :class:`~dlio_core.dist.RankLost`.
    """
    owns_dist = dist is None
    dist = dist or dist_init()
    log = log or RunLog(dist.rank, dist.world, quiet=quiet)
    with StopSignals() as stop:
        state = _Run(cfg, dist, log, RunSync(dist, stop, log, exit_code_of), quiet)
        try:
            if not state.setup():
                if state.checkpoints is None:
                    log.output("workflow.train is False: nothing more to do")
                    log.close()
                    return state.result
                return state.finish(state.until_the_end(state.checkpoint_only))
            state.prepare_training()
            return state.finish(state.until_the_end(state.epochs))
        except RankLost as exc:
            state.lost(exc)
            if owns_dist:
                dist.abandon(1)
            raise
        finally:
            if owns_dist:
                dist.release()  # every rank is past its last collective (or lost: then a no-op)
