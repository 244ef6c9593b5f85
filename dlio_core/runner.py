"""The training-loop emulation: epochs of steps (wait for a batch, compute, barrier), evaluation.

Drives any Loader: an object whose ``epoch(plan, max_steps=None)`` yields batches carrying
``num_samples``, ``bytes_read``, ``sample_bytes``, ``io_s``, ``decode_s`` and a ``release()``. The
runner times what it sees itself: ``wait`` (blocked on the next batch: the data stall) and
``compute``; the per-step barrier stands in for the gradient all-reduce, as in DLIO.

Example (a tiny run on generated files; see ``dl-driver run`` for the whole flow):
    >>> import tempfile
    >>> from dlio_core.config import load_config
    >>> from dlio_core.runner import run
    >>> d = tempfile.mkdtemp()
    >>> cfg = load_config("default", [f"++workload.dataset.data_folder={d}/data", "++workload.reader.data_loader=native",
    ...     "++workload.workflow.generate_data=True", "++workload.train.epochs=1", "++workload.train.computation_time=0",
    ...     "++workload.workflow.evaluation=False", f"++hydra.run.dir={d}/out"])
    >>> result = run(cfg, quiet=True)
    >>> result.summary["metric"]["train_throughput_samples_per_second"][0] > 0
    True
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .dist import Dist, init as dist_init
from .emulate import Compute, make_compute
from .listing import dataset_files, dataset_storage
from .loaders import make_loader
from .metrics import PhaseRecord
from .output import RunLog, resolve_output_folder, write_config_copies
from .reader import epoch_plan
from .report.host import timestamp
from .report.access_order import AccessOrderLog

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
    """What a run leaves behind: the output folder, rank 0's summary, and this rank's records."""

    output_folder: str
    summary: dict = field(default_factory=dict)
    epochs: list[EpochRecord] = field(default_factory=list)
    checkpoints: list[Any] = field(default_factory=list)  # CheckpointRecord of every save and load


def _should_eval(cfg: Any, epoch: int) -> bool:
    ev = cfg.evaluation
    if not cfg.workflow.evaluation or cfg.dataset.num_files_eval <= 0:
        return False
    if epoch < ev.eval_after_epoch:
        return False
    return (epoch - ev.eval_after_epoch) % max(1, ev.epochs_between_evals) == 0


def _run_phase(rec: PhaseRecord, loader: Any, plan: Any, steps: int, compute: Compute, dist: Dist | None,
               after_step: Callable[[int], float] | None = None) -> PhaseRecord:
    """Run ``steps`` steps into ``rec`` (filled in place, so an interrupted phase keeps what it measured).

    ``dist`` None means no per-step barrier (evaluation, as in DLIO). ``after_step(step)`` runs after a
    step's barrier (a step checkpoint) and returns the seconds it took, which the metrics keep out of
    both compute and stall.
    """
    perf = time.perf_counter
    batches = loader.epoch(plan, max_steps=steps)
    try:
        for _ in range(steps):
            t0 = perf()
            batch = next(batches)
            t1 = perf()
            compute_s = compute.step()
            batch.release()
            t2 = perf()
            if dist is not None:
                dist.barrier()
            t3 = perf()
            checkpoint_s = after_step(len(rec.start) + 1) if after_step is not None else 0.0
            rec.add_step(start=t0, wait=t1 - t0, compute=compute_s, barrier=t3 - t2, end=t3,
                         samples=batch.num_samples, bytes_read=batch.bytes_read, io_s=batch.io_s,
                         decode_s=batch.decode_s, sample_bytes=batch.sample_bytes, checkpoint_s=checkpoint_s,
                         h2d_s=getattr(batch, "h2d_s", None))
    finally:
        batches.close()
    return rec


def _shared_files(cfg: Any, dist: Dist, storage: Any, split: str) -> list[tuple[str, int]]:
    """Rank 0 lists (or reads the manifest) once and shares the result; errors reach every rank."""
    payload: Any
    if dist.is_root:
        try:
            payload = dataset_files(cfg, storage, split)
        except Exception as exc:  # shared so no rank hangs in bcast
            payload = exc
    else:
        payload = None
    payload = dist.bcast(payload)
    if isinstance(payload, Exception):
        raise payload
    return payload


def run(cfg: Any, *, dist: Dist | None = None, quiet: bool = False, log: RunLog | None = None) -> RunResult:
    """Run the workload ``cfg`` (a :class:`~dlio_core.config.RunConfig`) and write DLIO's result files."""
    from .report import dlio as dlio_report
    from .sampling import draw_random_seed

    dist = dist or dist_init()
    log = log or RunLog(dist.rank, dist.world, quiet=quiet)
    folder = resolve_output_folder(cfg)
    folder = dist.bcast(folder)  # one timestamped folder for all ranks
    result = RunResult(output_folder=folder)
    start_ts = timestamp()
    if dist.is_root:
        write_config_copies(folder, cfg, cfg.overrides, subdir=cfg.hydra.get("output_subdir") or ".hydra")
    dist.barrier()
    log.open_file(f"{folder}/{cfg.output.log_file}")
    for message in cfg.warnings:
        log.warning(message)
    log.output(f"Running dl-driver with {dist.world} process(es): workload {cfg.source}")

    checkpoints = None
    if cfg.workflow.checkpoint:
        from .checkpoint import CheckpointEngine

        checkpoints = CheckpointEngine(cfg, dist, log=log, progress=not quiet)
    storage = dataset_storage(cfg)
    if cfg.workflow.generate_data:
        from .generate import generate_dataset

        log.output(f"Generating dataset in {cfg.dataset.data_folder} ({cfg.dataset.format})")
        generate_dataset(cfg, rank=dist.rank, world=dist.world, progress=not quiet)
        dist.barrier()
        log.output("Generation done")
    if not cfg.workflow.train:
        if checkpoints is None:
            log.output("workflow.train is False: nothing more to do")
            log.close()
            return result
        try:  # DLIO's checkpoint-only mode: the writes, then the reads
            result.checkpoints.extend(checkpoints.run_checkpoint_only())
        finally:
            result.summary = dlio_report.write_all(cfg, dist, log, folder, result.epochs, start_ts, train_files=[],
                                                   eval_files=[], checkpoints=checkpoints,
                                                   checkpoint_records=result.checkpoints)
            log.close()
        return result

    train_files = _shared_files(cfg, dist, storage, "train")
    eval_files = _shared_files(cfg, dist, storage, "valid") if cfg.workflow.evaluation and cfg.dataset.num_files_eval > 0 else []
    random_seed = dist.bcast(draw_random_seed() if dist.is_root else None)
    train_loader = make_loader(cfg, storage, train_files, split="train", rank=dist.rank)
    eval_loader = make_loader(cfg, storage, eval_files, split="valid", rank=dist.rank) if eval_files else None
    rng = np.random.default_rng([cfg.train.seed, dist.rank])
    train_compute = make_compute(cfg, rng)
    eval_compute = make_compute(cfg, rng, phase="eval")

    def rank_plan(split: str, epoch: int) -> Any:  # this rank's plan, the same random seed on every rank
        return epoch_plan(cfg, split=split, epoch=epoch, world=dist.world, rank=dist.rank, random_seed=random_seed)

    first = rank_plan("train", 1)
    steps = first.steps
    cap = cfg.train.total_training_steps
    if cap > 0:
        if cap > steps:
            raise RunError(f"train.total_training_steps={cap} but the dataset holds only {steps} steps per epoch "
                           f"for {dist.world} rank(s); lower it or add files (dataset.num_files_train)")
        steps = cap
    log.output(f"Max steps per epoch: {first.steps} = {cfg.dataset.num_samples_per_file} * "
               f"{cfg.dataset.num_files_train} / {cfg.reader.batch_size} / {dist.world} (samples per file * num files / batch size / comm size)")
    if steps == 0:
        raise RunError(f"0 training steps: {cfg.dataset.num_files_train} files x {cfg.dataset.num_samples_per_file} samples "
                       f"cannot fill one batch of {cfg.reader.batch_size} on each of {dist.world} rank(s)")
    access_log = AccessOrderLog([rel for rel, _ in train_files]) if cfg.output.record_access_order else None
    if access_log is not None:
        train_loader = access_log.watch(train_loader)  # records what it delivers
    dist.barrier()
    try:
        for epoch in range(1, cfg.train.epochs + 1):
            rec = EpochRecord(epoch=epoch, train=PhaseRecord(cfg.reader.batch_size))
            result.epochs.append(rec)
            log.output(f"Starting epoch {epoch}: {steps} steps expected")
            rec.train_start = timestamp()
            train_plan = rank_plan("train", epoch)
            after_step = None
            if checkpoints is not None and cfg.checkpoint.steps_between_checkpoints > 0:
                def after_step(step: int, epoch: int = epoch) -> float:
                    if not checkpoints.due_after_step(epoch, step):
                        return 0.0
                    t0 = time.perf_counter()
                    result.checkpoints.append(checkpoints.save(epoch, step))
                    return time.perf_counter() - t0  # this rank's wall time in the save, barriers included
            try:
                _run_phase(rec.train, train_loader, train_plan, steps, train_compute, dist, after_step)
            finally:
                rec.train_end = timestamp()
                if access_log is not None:
                    access_log.add(epoch, train_plan, rec.train.steps)
            dist.barrier()
            log.output(f"Ending epoch {epoch} - {rec.train.steps} steps completed in "
                       f"{rec.train.end[-1] - rec.train.start[0]:.2f} s")
            if checkpoints is not None and checkpoints.due_after_epoch(epoch):
                result.checkpoints.append(checkpoints.save(epoch, checkpoints.epoch_end_step(steps)))
            if eval_loader is not None and _should_eval(cfg, epoch):
                eval_plan = rank_plan("valid", epoch)
                log.output(f"Starting eval - {eval_plan.steps} steps expected")
                rec.eval_start = timestamp()
                rec.eval = PhaseRecord(cfg.reader.batch_size_eval)
                try:
                    _run_phase(rec.eval, eval_loader, eval_plan, eval_plan.steps, eval_compute, None)
                finally:
                    rec.eval_end = timestamp()
                log.output(f"Ending eval - {rec.eval.steps} steps completed")
                dist.barrier()
    finally:
        if access_log is not None:
            access_log.write(f"{folder}/{dist.rank}_access_order.json")
        result.summary = dlio_report.write_all(cfg, dist, log, folder, result.epochs, start_ts,
                                               train_files=train_files, eval_files=eval_files,
                                               checkpoints=checkpoints, checkpoint_records=result.checkpoints)
        log.close()
    return result
