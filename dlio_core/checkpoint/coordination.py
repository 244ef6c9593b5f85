"""The checkpoint engine's waits on other ranks, all bounded, and the per-node page-cache drop before loads.

:func:`agree` is every point where a rank waits for the others during a save or load: one
:meth:`~dlio_core.dist.Dist.step_status` exchange (8 bytes when all is well) that also carries one rank's
problem (rank 0's "not a complete checkpoint", a commit marker it could not write) to every rank. The wait is
bounded by ``$DL_DRIVER_RANK_TIMEOUT_S`` plus the time the waiting rank itself has spent in the checkpoint so
far: a straggler that is merely slower is waited for, a rank that died or hangs raises
:class:`~dlio_core.dist.RankLost` (the runner then writes this rank's files and ends the run with exit 1).

:class:`CacheDrop` runs ``checkpoint.drop_page_cache`` once per node (on its lowest rank) before each load and
says what happened (see :mod:`~dlio_core.checkpoint.coldread`).

Example:
    >>> from dlio_core.dist import Dist
    >>> agree(Dist(), "a checkpoint", 0.0)
    >>> agree(Dist(), "a checkpoint", 0.0, "disk full")
    Traceback (most recent call last):
    ...
    dlio_core.checkpoint.records.CheckpointError: disk full
    >>> drop = CacheDrop(enabled=False); drop.run(Dist(), "ck", 0.0), drop.outcome([""], print)
    ('', 'off')
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlio_core.dist import Dist, RankStatus

from .coldread import DEFAULT_DROP_TIMEOUT_S, drop_page_cache
from .records import CheckpointError

__all__ = ["agree", "CacheDrop"]


def agree(dist: Dist, where: str, since: float, problem: str | None = None) -> None:
    """Wait until every rank reaches ``where`` (bounded, see the module doc; ``since`` is this rank's
    ``perf_counter`` when the checkpoint began); a ``problem`` on any rank is raised on every rank as a
    :class:`CheckpointError` (one line, naming the rank it came from)."""
    bound = dist.rank_timeout_s + max(0.0, time.perf_counter() - since)
    outcome = dist.step_status(RankStatus.FAILED if problem else RankStatus.OK, problem or "", where=where,
                               timeout_s=bound)
    if not outcome.ok:
        mine = outcome.rank == dist.rank or dist.world == 1
        raise CheckpointError(outcome.message if mine else f"rank {outcome.rank}: {outcome.message}")


@dataclass
class CacheDrop:
    """``checkpoint.drop_page_cache``: drop each node's page cache before a load, bounded by ``timeout_s``."""

    enabled: bool = False
    timeout_s: float = DEFAULT_DROP_TIMEOUT_S
    warned: bool = False

    @classmethod
    def from_config(cls, cfg: Any) -> CacheDrop:
        ck = cfg.checkpoint
        return cls(bool(getattr(ck, "drop_page_cache", False)),
                   float(getattr(ck, "drop_page_cache_timeout_s", DEFAULT_DROP_TIMEOUT_S)))

    def run(self, dist: Dist, folder: str, since: float) -> str:
        """On the lowest rank of each host, drop the page cache; then wait for every node (bounded). Returns
        why this node's drop did not happen ("" when it did, when off, and on the other ranks)."""
        if not self.enabled:
            return ""
        why = ""
        if dist.is_node_leader:
            done, why = drop_page_cache(self.timeout_s)
            why = "" if done else f"{dist.hostname}: {why}"
        agree(dist, f"the page-cache drop before loading {folder}", since)
        return why

    def outcome(self, refusals: list[str], warn: Callable[[str, str], Any]) -> str:
        """``off``, ``dropped`` or ``refused: {host}: {why}`` from every rank's :meth:`run` result; the first
        refusal is logged once per run through ``warn(level, message)``."""
        if not self.enabled:
            return "off"
        refused = [r for r in refusals if r]
        if not refused:
            return "dropped"
        if not self.warned:
            self.warned = True
            warn("warning", f"checkpoint.drop_page_cache: the page cache was not dropped ({refused[0]}); loads rely "
                            "on evicting each checkpoint file (POSIX_FADV_DONTNEED) and report the bytes still cached")
        return f"refused: {refused[0]}"
