"""What one checkpoint save or load measured, and DLIO's summary and per-epoch figures made from them.

DLIO times each checkpoint on rank 0 alone, from before its own save to after it (stragglers count only
with ``rank_sync: True``), and reports ``checkpoint_size / duration`` where the size is the global sum over
ranks in GiB (labelled GB). Our ``duration_s`` always includes every rank: it runs from a common barrier
until the last rank has finished (and, for a save, the commit marker is written), so it is at least every
rank's ``rank_duration_s``. Throughput is global bytes over that duration, in GiB/s, which keeps DLIO's
meaning of the ``*_GB_per_second`` keys.

Example:
    >>> r = CheckpointRecord(kind="save", index=1, epoch=1, step=1, folder="global_epoch1_step1",
    ...     start="2025-01-01T00:00:00.000000", end="2025-01-01T00:00:02.000000", duration_s=2.0,
    ...     rank_duration_s=1.5, rank_durations_s=(1.5,), bytes=4 << 30, rank_bytes=4 << 30, files=1,
    ...     rank_files=1, fsync=True, cache_dropped=True, throughput_GiB_per_s=2.0)
    >>> summary_metrics([r])["save_checkpoint_io_mean_GB_per_second"]
    2.0
    >>> per_epoch_entries([r])[1]["save_ckpt1"]["throughput"]
    2.0
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CheckpointRecord", "CheckpointError", "summary_metrics", "per_epoch_entries", "GIB"]

GIB = 1024**3


class CheckpointError(RuntimeError):
    """A checkpoint could not be saved or loaded; the message names the path, the rank and the fix."""


@dataclass(frozen=True)
class CheckpointRecord:
    """One save or load, as seen by this rank (the global figures are the same on every rank).

    Attributes:
        kind: ``"save"`` or ``"load"``.
        index: 1-based count of this kind in the run.
        epoch, step: the checkpoint's ``global_epoch{epoch}_step{step}``.
        folder: that folder, relative to ``checkpoint.checkpoint_folder``.
        start, end: local time in DLIO's format (``%Y-%m-%dT%H:%M:%S.%f``); ``end`` = ``start`` + ``duration_s``.
        duration_s: common barrier -> last rank done (save: commit marker durable), measured on rank 0.
        rank_duration_s: this rank's own write or read time.
        rank_durations_s: every rank's own time, by rank.
        bytes, rank_bytes: bytes moved by all ranks / by this rank.
        files, rank_files: files moved by all ranks / by this rank.
        fsync: whether the files were fsync'd (saves).
        cache_dropped: whether POSIX_FADV_DONTNEED was applied to every file on every rank (after fsync'd
            saves; before loads). False when any file is not local or not fsync'd.
        throughput_GiB_per_s: ``bytes / duration_s`` in GiB/s (DLIO's "GB/s").
        mechanism: the checkpoint mechanism that moved the bytes (``raw``, ``stream``, ``torch_save``, ``dcp``,
            ``tf_save``, ``orbax``); ``compression``: ``none`` or ``zstd:{level}``.
        stored_bytes: bytes on storage over all ranks; ``bytes`` are the tensor bytes (what ``raw`` writes), so
            ``stored_bytes - bytes`` is a framework's metadata (``overhead_bytes`` in ``to_dict``), or what
            compression saved when negative.
        blocked_s: the longest any rank's training loop was held (saves: until the last file's save call
            returned; an asynchronous mechanism returns before its bytes are durable, which ``duration_s``
            waits for). Loads: the rank's read time.
        peak_memory_bytes: the most any rank's resident memory grew during the save or load (tensors built
            for it included); None where the kernel does not say.
        cached_bytes: loads: bytes of the checkpoint the ranks' page caches still held when the load began, after
            the eviction (``mincore``; 0 for ``O_DIRECT`` reads and object stores, None where not measurable).
            More than 0 means the load could have been served partly from memory.
        page_cache_drop: loads: ``off`` (``checkpoint.drop_page_cache`` False), ``dropped`` (every node's page cache
            was dropped before the load) or ``refused: {host}: {why}``.
    """

    kind: str
    index: int
    epoch: int
    step: int
    folder: str
    start: str
    end: str
    duration_s: float
    rank_duration_s: float
    rank_durations_s: tuple[float, ...]
    bytes: int
    rank_bytes: int
    files: int
    rank_files: int
    fsync: bool
    cache_dropped: bool
    throughput_GiB_per_s: float
    mechanism: str = "raw"
    compression: str = "none"
    stored_bytes: int = 0
    blocked_s: float = 0.0
    peak_memory_bytes: int | None = None
    cached_bytes: int | None = None
    page_cache_drop: str = "off"

    @property
    def could_be_served_from_cache(self) -> bool | None:
        """Loads: whether some of the checkpoint was in a page cache when the load began (None: unknown or a save)."""
        return None if self.kind != "load" or self.cached_bytes is None else self.cached_bytes > 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for the extended report), with ``overhead_bytes``, ``stored_over_tensor_bytes``,
        ``could_be_served_from_cache`` and, for saves, ``durable_s`` (``duration_s`` when the files were
        fsync'd, else None: the bytes were in place but maybe not yet on the device) beside ``blocked_s``."""
        d = asdict(self)
        d["rank_durations_s"] = list(self.rank_durations_s)
        d["overhead_bytes"] = self.stored_bytes - self.bytes
        d["stored_over_tensor_bytes"] = self.stored_bytes / self.bytes if self.bytes else None
        d["could_be_served_from_cache"] = self.could_be_served_from_cache
        d["durable_s"] = self.duration_s if self.kind == "save" and self.fsync else None
        return d


def _stats(values: list[float]) -> tuple[float, float]:
    # DLIO uses numpy mean and population std
    return statistics.fmean(values), statistics.pstdev(values)


def summary_metrics(records: Iterable[CheckpointRecord], checkpoint_bytes: int | None = None) -> dict[str, float]:
    """DLIO's checkpoint keys for ``summary.json``'s ``metric`` section.

    ``save_checkpoint_io_{mean,stdev}_GB_per_second``, ``save_checkpoint_duration_{mean,stdev}_seconds``
    (present when there were saves), the ``load_*`` equivalents (when there were loads) and
    ``checkpoint_size_GB`` (GiB of one checkpoint over all ranks; from ``checkpoint_bytes``, else from the
    records). DLIO writes the save keys as NaN when nothing was saved; we leave them out (NaN is not JSON).
    """
    recs = list(records)
    out: dict[str, float] = {}
    for kind in ("save", "load"):
        mine = [r for r in recs if r.kind == kind]
        if not mine:
            continue
        io_mean, io_std = _stats([r.throughput_GiB_per_s for r in mine])
        d_mean, d_std = _stats([r.duration_s for r in mine])
        out[f"{kind}_checkpoint_io_mean_GB_per_second"] = io_mean
        out[f"{kind}_checkpoint_io_stdev_GB_per_second"] = io_std
        out[f"{kind}_checkpoint_duration_mean_seconds"] = d_mean
        out[f"{kind}_checkpoint_duration_stdev_seconds"] = d_std
    if checkpoint_bytes is None and recs:
        checkpoint_bytes = max(r.bytes for r in recs)
    if checkpoint_bytes is not None:
        out["checkpoint_size_GB"] = checkpoint_bytes / GIB
    return out


def per_epoch_entries(records: Iterable[CheckpointRecord]) -> dict[int, dict[str, dict[str, Any]]]:
    """``{epoch: {"save_ckpt{k}": {start, end, duration, throughput}, "load_ckpt{k}": ...}}``.

    ``k`` counts this kind's checkpoints within the epoch from 1, as DLIO's block number does (one block per
    checkpoint interval). Merge each epoch's dict into that epoch of ``{rank}_per_epoch_stats.json``.
    """
    out: dict[int, dict[str, dict[str, Any]]] = {}
    counts: dict[tuple[int, str], int] = {}
    for r in records:
        k = counts[(r.epoch, r.kind)] = counts.get((r.epoch, r.kind), 0) + 1
        out.setdefault(r.epoch, {})[f"{r.kind}_ckpt{k}"] = {
            "start": r.start, "end": r.end, "duration": float(r.duration_s), "throughput": r.throughput_GiB_per_s,
        }
    return out
