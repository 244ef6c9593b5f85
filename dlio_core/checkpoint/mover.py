"""One rank's part of a checkpoint save or load: its files through the chosen mechanism, measured.

:class:`Mover` is what :class:`~dlio_core.checkpoint.engine.CheckpointEngine` asks to move a rank's files; the
engine owns the collective parts (barriers, the common clock, gathering, the commit marker). A phase is
``begin`` (untimed harness work: a framework mechanism builds its tensors, as DLIO builds its state at
start-up; a load evicts the files from the page cache), ``move`` (timed: every save call, then every wait for
durability) and ``end`` (release the tensors). The resident-memory peak spans all three. After a save is
committed the engine asks :meth:`Mover.evict` to drop what was written from the page cache (untimed: on a
1 GiB file the advice alone takes about 0.1 s), so a later load reads the device. Before a load each rank
checks its files are in the listing rank 0 shared (:mod:`~dlio_core.checkpoint.discovery`), evicts them and
measures what its node's page cache still holds of them (:mod:`~dlio_core.checkpoint.coldread`).

Example:
    >>> from dlio_core.checkpoint.mechanisms import Context
    >>> from dlio_core.checkpoint.streams import RawMechanism
    >>> mover = Mover(RawMechanism(), Context.demo(5000))
    >>> r = mover.run("save", "ck", mover.ctx.plan.rank_specs(0), lambda: None)
    >>> r.payload_bytes, r.stored_bytes, r.files, r.error
    (5000, 5000, 1, None)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .coldread import resident_bytes
from .discovery import missing_entries, where
from .mechanisms import Context, Mechanism
from .memory import PeakMemory
from .records import CheckpointError
from .state import FileSpec
from .transfer import drop_cache

__all__ = ["Mover", "RankResult"]


@dataclass
class RankResult:
    """What one rank measured in one phase (gathered by the engine)."""

    payload_bytes: int = 0
    stored_bytes: int = 0
    files: int = 0
    seconds: float = 0.0  # from the common start to this rank's last byte durable (save) or read (load)
    blocked_s: float = 0.0  # from the common start to this rank's last save call returning
    peak_memory_bytes: int | None = None
    cache_dropped: bool = False
    cached_bytes: int | None = None  # loads: bytes the page cache still held when the load began (None: unknown)
    page_cache_refused: str = ""  # loads with checkpoint.drop_page_cache: why this node's drop did not happen
    error: str | None = None
    started: float = 0.0  # this process's perf_counter at the common start (not comparable across hosts)


class Mover:
    """Moves one rank's files of a checkpoint with ``mechanism`` (see the module doc)."""

    def __init__(self, mechanism: Mechanism, ctx: Context) -> None:
        self.mechanism, self.ctx = mechanism, ctx

    def paths(self, folder: str, specs: list[FileSpec]) -> list[str]:
        """Where each planned file lies on storage for this mechanism (a file, or a framework's folder)."""
        return [f"{folder}/{self.mechanism.entry(s.name)}" for s in specs]

    @property
    def _cold_by_design(self) -> bool:
        # O_DIRECT never uses the page cache: raw, stream and torch_save on direct:// write with it and read
        # through DirectStorage (framework folders are read by the framework's own file I/O)
        return self.mechanism.name in ("raw", "stream", "torch_save") and str(self.ctx.storage.url).startswith("direct://")

    def run(self, kind: str, folder: str, specs: list[FileSpec], barrier: Callable[[], Any],
            progress: Any = None) -> RankResult:
        """``begin``, ``barrier()``, ``move``, ``end``; errors are caught into ``RankResult.error`` (the engine
        shares them with every rank). ``seconds`` and ``blocked_s`` start after ``barrier()`` returns."""
        paths = self.paths(folder, specs)
        result = RankResult(files=len(specs))
        with PeakMemory() as memory:
            try:
                result.cache_dropped = self._begin(kind, paths, specs)
                if kind == "load":
                    result.cached_bytes = self._cached(paths)
            except Exception as e:  # noqa: BLE001 - shared with every rank by the engine
                result.error = str(e) or type(e).__name__
            barrier()
            t0 = result.started = time.perf_counter()
            if result.error is None:
                try:
                    self._move(kind, paths, specs, result, t0, progress)
                except Exception as e:  # noqa: BLE001
                    result.error = str(e) or type(e).__name__
            result.seconds = time.perf_counter() - t0
            if kind == "load":
                result.blocked_s = result.seconds
            try:
                self.mechanism.release()
            except Exception as e:  # noqa: BLE001
                result.error = result.error or str(e)
        result.peak_memory_bytes = memory.grew_bytes
        return result

    def evict(self, folder: str, specs: list[FileSpec]) -> bool:
        """After a save is committed (outside its timing: harness work), evict what this rank wrote from the page
        cache so a later load reads the device; True when it could (fsync'd local files: every page is clean)."""
        if self._cold_by_design:
            return True
        return self.ctx.fsync and all([drop_cache(self.ctx.storage, p) for p in self.paths(folder, specs)])

    def _begin(self, kind: str, paths: list[str], specs: list[FileSpec]) -> bool:
        if kind == "save":
            if specs:
                self.mechanism.prepare(self.ctx, list(zip(paths, specs)))
            return False
        listing = self.ctx.listing
        missing = missing_entries(listing, paths) if listing is not None else []
        if missing:
            raise CheckpointError(f"{where(self.ctx.storage, missing[0])} is missing from the checkpoint (and "
                                  f"{len(missing) - 1} more of this rank's files): the checkpoint is incomplete or was "
                                  "written with another model or world size; save it again")
        # before the clock starts: the drop is harness work, not checkpoint I/O; dirty pages (a save without
        # fsync) are written back first so they can be evicted too
        return self._cold_by_design or all([drop_cache(self.ctx.storage, p, flush=True) for p in paths])

    def _cached(self, paths: list[str]) -> int | None:
        """Bytes of ``paths`` a load could serve from this node's page cache (none with O_DIRECT reads)."""
        if self._cold_by_design:
            return 0
        counts = [resident_bytes(self.ctx.storage, p) for p in paths]
        return None if None in counts else sum(counts)

    def _move(self, kind: str, paths: list[str], specs: list[FileSpec], result: RankResult, t0: float,
              progress: Any) -> None:
        m, ctx = self.mechanism, self.ctx
        if kind == "save":
            pending = []
            try:
                for path, spec in zip(paths, specs):
                    pending.append(m.save(ctx, path, spec))
            except BaseException:
                for p in pending:  # let saves in flight finish, so none leaves a work folder behind
                    try:
                        p.wait()
                    except Exception:  # noqa: BLE001, S110 - the first error is the one reported
                        pass
                raise
            result.blocked_s = time.perf_counter() - t0
            moved = []
            for p in pending:
                moved.append(p.wait())
                if progress is not None:
                    progress.update(files=1)
        else:
            moved = []
            for path, spec in zip(paths, specs):
                moved.append(m.load(ctx, path, spec))
                if progress is not None:
                    progress.update(files=1)
        result.payload_bytes = sum(x.payload_bytes for x in moved)
        result.stored_bytes = sum(x.stored_bytes for x in moved)
