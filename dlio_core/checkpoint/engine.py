"""The checkpoint engine: when to checkpoint, and timed, collective saves and loads with a plain writer.

Every rank writes its own files (sizes and names from :mod:`dlio_core.checkpoint.state`) chunk by chunk,
each through an atomic rename; after all ranks are done, rank 0 writes the commit marker
``{folder}/.dl-driver-complete`` (a small JSON), the last file of a checkpoint: a checkpoint without it is
incomplete and ``load`` refuses it. Timing starts at a common barrier and ends when the last rank is
done (saves: once the marker is written), so it always includes stragglers; each rank's own time is kept
as well. ``fsync: True`` flushes every file and its rename. Loads read every file back into one reused
buffer, after a best-effort page-cache drop (see :mod:`dlio_core.checkpoint.transfer`).

Deliberate differences from DLIO (each fixes a DLIO bug or makes a figure honest):

- ``checkpoint.fsync`` is honoured (DLIO HEAD drops it: a misspelt attribute), as is
  ``recovery_rank_shift`` (each rank loads the files of the rank ``ranks-per-node`` further on).
- Durations include every rank, with or without ``rank_sync`` (DLIO: rank 0's own time only).
- The global size is what is written (see ``state``), content is incompressible and never repeats.
- ``time_between_checkpoints: -1`` (DLIO's default) means no wait; DLIO sleeps ``abs(-1)`` = 1 s.
- ``checkpoint_after_epoch: 0`` checkpoints after epochs ``k * epochs_between_checkpoints``; DLIO never
  checkpoints then (its next-epoch counter starts at 0 and epochs at 1).

Example (a 1 MiB CNN-style checkpoint saved and loaded twice in checkpoint-only mode):
    >>> import tempfile
    >>> from dlio_core.config import load_config
    >>> d = tempfile.mkdtemp()
    >>> cfg = load_config("unet3d_h100", [f"++workload.checkpoint.checkpoint_folder={d}",
    ...     "++workload.model.model_size_bytes=1048576", "++workload.checkpoint.num_checkpoints_write=2",
    ...     "++workload.checkpoint.num_checkpoints_read=2", "++workload.checkpoint.fsync=True"])
    >>> eng = CheckpointEngine(cfg, progress=False)
    >>> recs = eng.run_checkpoint_only()
    >>> [(r.kind, r.folder, r.bytes) for r in recs]  # doctest: +NORMALIZE_WHITESPACE
    [('save', 'global_epoch1_step1', 1048576), ('save', 'global_epoch1_step2', 1048576),
     ('load', 'global_epoch1_step1', 1048576), ('load', 'global_epoch1_step2', 1048576)]
    >>> sorted(eng.summary_metrics(recs))[:2], eng.due_after_epoch(5), eng.due_after_epoch(6)
    (['checkpoint_size_GB', 'load_checkpoint_duration_mean_seconds'], True, False)
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime
from typing import Any

import numpy as np

from dlio_core.config.errors import ConfigError
from dlio_core.dist import Dist
from dlio_core.progress import Progress
from dlio_core.storage.direct import aligned_array

from .codec import CodecError, codec_for
from .content import DEFAULT_CHUNK_BYTES, ChunkSource
from .hygiene import sweep, sweep_stages
from .mechanisms import Context, create, resolve
from .mover import Mover
from .records import GIB, CheckpointError, CheckpointRecord, per_epoch_entries, summary_metrics
from .state import CheckpointPlan, FileSpec
from .transfer import checkpoint_storage

__all__ = ["CheckpointEngine", "MARKER", "DEFAULT_READ_BUFFER_BYTES"]

MARKER = ".dl-driver-complete"
DEFAULT_READ_BUFFER_BYTES = 32 << 20  # one reused buffer; large reads keep per-call overhead negligible
_VERBS = {"save": ("saving", "Saved"), "load": ("loading", "Loaded")}


def _stamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s).strftime("%Y-%m-%dT%H:%M:%S.%f")


class CheckpointEngine:
    """Saves and loads checkpoints of ``cfg``'s model on every rank of ``dist``.

    Args:
        cfg: a :class:`~dlio_core.config.RunConfig`.
        dist: the ranks (None: a world of one).
        storage: where checkpoints go (None: ``checkpoint.checkpoint_folder`` resolved like the data folder).
        log: a :class:`~dlio_core.output.RunLog` for DLIO-style lines (None: silent).
        progress: a progress line on rank 0's terminal (None: when stderr is a terminal; False: never).
        chunk_bytes: write chunk; read_buffer_bytes: the reused load buffer.

    Construction, ``save``, ``load`` and ``run_checkpoint_only`` are collective: every rank calls them in the
    same order. Errors on any rank are raised on all ranks, so none is left waiting.
    """

    def __init__(self, cfg: Any, dist: Dist | None = None, storage: Any = None, log: Any = None, *,
                 progress: bool | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                 read_buffer_bytes: int = DEFAULT_READ_BUFFER_BYTES) -> None:
        self.cfg = cfg
        self.dist = dist if dist is not None else Dist()
        self.log = log
        self.progress = progress
        ck = cfg.checkpoint
        self.plan = CheckpointPlan.from_config(cfg, self.dist.world)
        if ck.num_checkpoints_write > 0 and ck.num_checkpoints_read > ck.num_checkpoints_write:
            raise ConfigError(f"checkpoint.num_checkpoints_read: {ck.num_checkpoints_read} is more than "
                              f"checkpoint.num_checkpoints_write ({ck.num_checkpoints_write}); read at most what "
                              "is written", key="checkpoint.num_checkpoints_read")
        self.storage = storage if storage is not None else checkpoint_storage(cfg)
        self.fsync = bool(ck.fsync)
        # One nonce for all ranks: content is unique per run, yet the same on every rank for the same file.
        nonce = self.dist.bcast(secrets.randbits(63) if self.dist.is_root else None)
        self.source = ChunkSource(chunk_bytes, randomize=bool(ck.randomize_tensor), nonce=nonce)
        self.read_buffer_bytes = int(read_buffer_bytes)
        self._buffer: np.ndarray | None = None
        self.choice, self.compression, self.mover = self._mechanism(cfg)
        if self.dist.is_root:  # before any rank writes: whatever temporaries exist, an earlier run left
            self._sweep("")
        self._rng = np.random.default_rng([int(cfg.train.seed), self.dist.rank])
        self._counts = {"save": 0, "load": 0}
        self._epoch_counts: dict[tuple[str, int], int] = {}
        self.load_rank = self._recovery_rank() if ck.recovery_rank_shift else self.dist.rank
        for note in self.plan.notes:
            self._say("warning", note)
        for line in self.plan.describe():
            self._say("output", line)
        self._say("output", f"Checkpoint mechanism: {self.choice.name} ({self.choice.why}); compression: "
                            f"{self.compression}")

    # ------------------------------------------------------------------ cadence
    def due_after_step(self, epoch: int, step_in_epoch: int) -> bool:
        """Whether to checkpoint after step ``step_in_epoch`` (1-based) of ``epoch``.

        DLIO: with ``steps_between_checkpoints = s > 0``, after steps ``s, 2s, ...`` of every epoch (the
        count restarts each epoch). Always False when ``workflow.checkpoint`` is off or ``s`` is -1.
        """
        s = self.cfg.checkpoint.steps_between_checkpoints
        return bool(self.cfg.workflow.checkpoint) and s > 0 and step_in_epoch > 0 and step_in_epoch % s == 0

    def due_after_epoch(self, epoch: int) -> bool:
        """Whether to checkpoint at the end of ``epoch`` (1-based): epoch-based cadence only (no step cadence),
        at ``checkpoint_after_epoch`` and every ``epochs_between_checkpoints`` epochs after it."""
        ck = self.cfg.checkpoint
        if not self.cfg.workflow.checkpoint or ck.steps_between_checkpoints > 0:
            return False
        first, every = ck.checkpoint_after_epoch, ck.epochs_between_checkpoints
        return epoch >= first and (epoch - first) % every == 0

    @staticmethod
    def epoch_end_step(steps_in_epoch: int) -> int:
        """The step number DLIO puts in an end-of-epoch checkpoint's folder name: ``steps + 1``.

        (DLIO's step counter has already moved past the last step when the epoch ends.) Pass it to
        ``save`` to get DLIO's names; step checkpoints use the step itself.
        """
        return steps_in_epoch + 1

    # ------------------------------------------------------------------ operations
    def folder(self, epoch: int, step: int) -> str:
        """``global_epoch{epoch}_step{step}``, relative to the checkpoint storage."""
        return self.plan.folder(epoch, step)

    def is_complete(self, epoch: int, step: int) -> bool:
        """Whether that checkpoint's commit marker exists (not collective)."""
        return self.storage.exists(f"{self.folder(epoch, step)}/{MARKER}")

    def save(self, epoch: int, step: int) -> CheckpointRecord:
        """Write this rank's files of checkpoint (``epoch``, ``step``), then the commit marker (collective)."""
        folder = self.folder(epoch, step)
        specs = self.plan.rank_specs(self.dist.rank)
        prep_error = None
        if self.dist.is_root:
            try:  # an older run's marker must not vouch for files being rewritten now
                self.storage.makedirs(folder)  # first: on an object store this may create the bucket
                try:
                    self.storage.delete(f"{folder}/{MARKER}", missing_ok=True)
                except FileNotFoundError:
                    pass  # nothing there at all (a bucket not created yet)
                self._sweep(folder)
            except OSError as e:
                prep_error = str(e)
        prep_error = self.dist.bcast(prep_error)
        if prep_error:
            raise CheckpointError(f"cannot prepare checkpoint {self._where(folder)}: {prep_error}")
        return self._timed("save", epoch, step, folder, specs)

    def load(self, epoch: int, step: int) -> CheckpointRecord:
        """Read back this rank's files of checkpoint (``epoch``, ``step``) (collective).

        With ``recovery_rank_shift`` each rank reads the files of rank ``(rank + ranks per node) % world``.
        """
        folder = self.folder(epoch, step)
        problem = self.dist.bcast(self._unloadable(folder) if self.dist.is_root else None)
        if problem:
            raise CheckpointError(problem)
        return self._timed("load", epoch, step, folder, self.plan.rank_specs(self.load_rank))

    def _unloadable(self, folder: str) -> str | None:
        """Why this run cannot load ``folder`` (no marker, another mechanism or codec), or None."""
        try:
            info = json.loads(self.storage.read(f"{folder}/{MARKER}"))
        except FileNotFoundError:
            return (f"{self._where(folder)} is not a complete checkpoint (no {MARKER}): it was never written, or its "
                    "save failed or was interrupted; save it first (checkpoint.num_checkpoints_write) or load one "
                    "that exists")
        except (OSError, ValueError) as e:
            return f"{self._where(folder + '/' + MARKER)} is unreadable ({e}); save the checkpoint again"
        for key, ours in (("mechanism", self.choice.name), ("compression", self.compression)):
            theirs = str(info.get(key, "raw" if key == "mechanism" else "none"))
            if theirs.split(":")[0] != ours.split(":")[0] and not (key == "mechanism" and {theirs, ours} <= {"raw", "stream"}):
                return (f"{self._where(folder)} was written with checkpoint {key} {theirs}, this run reads with "
                        f"{ours}; set checkpoint.{'checkpoint_mechanism' if key == 'mechanism' else 'compression'}"
                        f"={theirs.split(':')[0]} to read it")
        return None

    def run_checkpoint_only(self) -> list[CheckpointRecord]:
        """DLIO's checkpoint-only mode (``workflow.train: False``, ``workflow.checkpoint: True``), collective.

        ``num_checkpoints_write`` saves of ``global_epoch1_step{1..W}``, then ``num_checkpoints_read`` loads
        of steps ``1..R`` (the oldest first, the least likely to be cached), each after waiting
        ``time_between_checkpoints`` (negative: no wait). -1 counts mean none.
        """
        ck = self.cfg.checkpoint
        writes, reads = max(ck.num_checkpoints_write, 0), max(ck.num_checkpoints_read, 0)
        records: list[CheckpointRecord] = []
        if writes:
            self._say("output", "Checkpointing write started")
            for i in range(1, writes + 1):
                self._pause()
                records.append(self.save(1, i))
            self._say("output", "Checkpointing write finished")
        if reads:
            missing = self.dist.bcast([i for i in range(1, reads + 1) if not self.is_complete(1, i)]
                                      if self.dist.is_root else None)
            if missing:
                raise CheckpointError(
                    f"checkpoint.num_checkpoints_read={reads} but {len(missing)} of those checkpoints are missing or "
                    f"incomplete in {self.storage.url} (e.g. {self.folder(1, missing[0])}); write them first "
                    f"(checkpoint.num_checkpoints_write>={reads}) or read fewer")
            self._say("output", "Checkpointing read started")
            for i in range(1, reads + 1):
                self._pause()
                records.append(self.load(1, i))
            self._say("output", "Checkpointing read finished")
        return records

    # ------------------------------------------------------------------ reporting
    def summary_metrics(self, records: list[CheckpointRecord]) -> dict[str, float]:
        """DLIO's checkpoint keys for ``summary.json`` ``metric`` (``checkpoint_size_GB`` from the plan)."""
        return summary_metrics(records, self.plan.total_bytes)

    @staticmethod
    def per_epoch_entries(records: list[CheckpointRecord]) -> dict[int, dict[str, dict[str, Any]]]:
        """The ``save_ckpt{k}`` / ``load_ckpt{k}`` entries of ``{rank}_per_epoch_stats.json``, by epoch."""
        return per_epoch_entries(records)

    # ------------------------------------------------------------------ internals
    def _mechanism(self, cfg: Any) -> tuple[Any, str, Mover]:
        ck = cfg.checkpoint
        choice = resolve(cfg)
        level = int(getattr(ck, "compression_level", 3))
        try:
            codec = codec_for(getattr(ck, "compression", "none"), level)
        except CodecError as e:
            raise ConfigError(str(e), key="checkpoint.compression") from None
        try:
            mechanism = create(choice.name)
        except ImportError as e:
            raise ConfigError(str(e), key="checkpoint.checkpoint_mechanism") from None
        if codec is not None and not mechanism.compresses:
            raise ConfigError(f"checkpoint.compression: {codec.name} applies to the raw and stream mechanisms; "
                              f"{choice.name} writes through its framework (set checkpoint.compression=none)",
                              key="checkpoint.compression")
        ctx = Context(self.storage, self.source, self.plan, fsync=self.fsync, codec=codec,
                      read_buffer=self._read_buffer)
        return choice, "none" if codec is None else f"{codec.name}:{codec.level}", Mover(mechanism, ctx)

    def _sweep(self, folder: str) -> None:
        removed, freed = sweep(self.storage, folder)
        if not folder:
            sweep_stages()
        if removed:
            self._say("warning", f"removed {removed} temporary file(s) or folder(s) ({freed} bytes) left by an "
                                 f"interrupted checkpoint writer under {self._where(folder)}")

    def _timed(self, kind: str, epoch: int, step: int, folder: str, specs: list[FileSpec]) -> CheckpointRecord:
        d = self.dist
        k = self._epoch_counts[(kind, epoch)] = self._epoch_counts.get((kind, epoch), 0) + 1
        if d.is_root:
            self._say("output", f"Starting {_VERBS[kind][0]} checkpoint {k} after total step {step} for epoch {epoch}")
        bar = self._bar(kind, folder, len(specs))
        self.mover.ctx.on_chunk = (lambda n: bar.update(files=0, nbytes=n)) if bar is not None else None
        wall: list[float] = []
        res = self.mover.run(kind, folder, specs, lambda: (d.barrier(), wall.append(time.time())), bar)
        t0 = res.started
        if bar is not None:
            bar.close()
        if res.error is not None:
            res.error = f"rank {d.rank}: {res.error}"
        gathered = d.allgather(res)
        errors = [g.error for g in gathered if g.error]
        if errors:
            extra = f" (and {len(errors) - 1} more rank(s))" if len(errors) > 1 else ""
            nothing = "; it is not committed (no marker)" if kind == "save" else ""
            raise CheckpointError(f"checkpoint {kind} of {self._where(folder)} failed on {errors[0]}{extra}{nothing}")
        total = sum(g.payload_bytes for g in gathered)
        stored = sum(g.stored_bytes for g in gathered)
        nfiles = sum(g.files for g in gathered)
        payload: Any = None
        if d.is_root:
            try:
                if kind == "save":
                    self._commit(folder, epoch, step, total, stored, nfiles, _stamp(wall[0]))
                payload = (wall[0], time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001 - shared with every rank
                payload = f"cannot write the commit marker {self._where(folder + '/' + MARKER)}: {e}"
        payload = d.bcast(payload)
        if isinstance(payload, str):
            raise CheckpointError(payload)
        start_wall, duration = payload
        self._counts[kind] += 1
        peaks = [g.peak_memory_bytes for g in gathered if g.peak_memory_bytes is not None]
        rec = CheckpointRecord(
            kind=kind, index=self._counts[kind], epoch=epoch, step=step, folder=folder, start=_stamp(start_wall),
            end=_stamp(start_wall + duration), duration_s=duration, rank_duration_s=res.seconds,
            rank_durations_s=tuple(g.seconds for g in gathered), bytes=total, rank_bytes=res.payload_bytes,
            files=nfiles, rank_files=len(specs), fsync=self.fsync if kind == "save" else False,
            cache_dropped=all(g.cache_dropped for g in gathered),
            throughput_GiB_per_s=(total / GIB / duration) if duration > 0 else 0.0, mechanism=self.choice.name,
            compression=self.compression, stored_bytes=stored, blocked_s=max(g.blocked_s for g in gathered),
            peak_memory_bytes=max(peaks) if len(peaks) == len(gathered) else None)
        if d.is_root:
            self._say("output", f"Finished {_VERBS[kind][0]} checkpoint {k} for epoch {epoch} in {duration:.4f} s; "
                                f"Throughput: {rec.throughput_GiB_per_s:.4f} GB/s")
        return rec

    def _commit(self, folder: str, epoch: int, step: int, total: int, stored: int, nfiles: int, start: str) -> None:
        info = {"dl_driver_checkpoint": 1, "epoch": epoch, "step": step, "world": self.dist.world,
                "files": nfiles, "bytes": total, "stored_bytes": stored, "mechanism": self.choice.name,
                "compression": self.compression, "fsync": self.fsync,
                "randomize_tensor": bool(self.cfg.checkpoint.randomize_tensor), "start": start}
        self.storage.write_atomic(f"{folder}/{MARKER}", json.dumps(info).encode("utf8"), fsync=self.fsync)

    def _read_buffer(self) -> np.ndarray:
        if self._buffer is None:  # page-aligned, so direct:// reads go straight into it with O_DIRECT
            self._buffer = aligned_array(self.read_buffer_bytes)
        return self._buffer

    def _bar(self, kind: str, folder: str, nfiles: int) -> Progress | None:
        if not self.dist.is_root or self.progress is False or nfiles == 0:
            return None
        return Progress(nfiles, f"checkpoint {kind} {folder} (rank 0)", enabled=self.progress)

    def _pause(self) -> None:
        spec = self.cfg.checkpoint.time_between_checkpoints
        if spec.kind == "fixed" and spec.mean < 0:
            return  # DLIO's -1 default: "not set"
        seconds = float(spec.sample(self._rng))
        if seconds > 0:
            time.sleep(seconds)

    def _recovery_rank(self) -> int:
        hosts = self.dist.allgather(self.dist.hostname)
        per_node = hosts.count(self.dist.hostname)
        if len(set(hosts)) < 2:
            self._say("warning", "checkpoint.recovery_rank_shift has no effect on a single host: "
                                 "every rank loads its own files")
            return self.dist.rank
        return (self.dist.rank + per_node) % self.dist.world

    def _where(self, rel: str) -> str:
        return f"{self.storage.url.rstrip('/')}/{rel}"

    def _say(self, level: str, message: str) -> None:
        if self.log is not None and self.dist.is_root:
            getattr(self.log, level)(message)
