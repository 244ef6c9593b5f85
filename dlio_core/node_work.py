"""Once-per-node work: before each training epoch, every host evicts from its page cache the files its ranks
will read in that epoch.

The MLCommons fork drops the page cache before each epoch on rank 0 only, so every other host keeps serving
reads from memory (mlcommons/storage, fork ``main.py``). Here the lowest rank of each host (its leader,
:attr:`dlio_core.dist.Dist.is_node_leader`) works out which files the ranks of its host read in the epoch
(from their plans: no collective, no listing) and asks the kernel to drop them (``posix_fadvise``
``POSIX_FADV_DONTNEED``, on local files only: an object store has no client page cache, and
``direct://`` reads bypass it). The advice evicts clean pages, so a file another process keeps dirty or
mapped may stay; ``echo 3 > /proc/sys/vm/drop_caches`` between runs is the guaranteed cold cache (root).
``$DL_DRIVER_EVICT_PAGE_CACHE=0`` turns it off (rank 0's setting holds for every host).

What each leader did lands in ``report.json``'s ``hosts`` (``node_work``): the files advised, the
seconds it took and why nothing was done where nothing was.

Example:
    >>> from dlio_core.sampling import EpochPlan
    >>> plans = [EpochPlan(num_files=8, samples_per_file=1, batch_size=2, world=4, rank=r) for r in (0, 1)]
    >>> host_file_indices(plans, steps=1).tolist()  # ranks 0 and 1 of 4 read files 0-3 in their one step
    [0, 1, 2, 3]
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = ["EVICT_ENV", "eviction_wanted", "host_file_indices", "evict_files", "NodeWork"]

EVICT_ENV = "DL_DRIVER_EVICT_PAGE_CACHE"
_OFF, _ON = ("0", "false", "no", "off"), ("", "1", "true", "yes", "on")
_STEPS_PER_BLOCK = 4096  # plan steps turned into file indices at once: bounded memory for any epoch


def eviction_wanted(environ: dict[str, str] | None = None) -> bool:
    """Whether page-cache eviction is on (``$DL_DRIVER_EVICT_PAGE_CACHE``, default on).

    Example:
        >>> eviction_wanted({}), eviction_wanted({"DL_DRIVER_EVICT_PAGE_CACHE": "0"})
        (True, False)
    """
    raw = (os.environ if environ is None else environ).get(EVICT_ENV, "").strip().lower()
    if raw in _OFF:
        return False
    if raw in _ON:
        return True
    raise ValueError(f"{EVICT_ENV}={raw!r}: use 1 (evict the page cache before each epoch, the default) or 0")


def host_file_indices(plans: Iterable[Any], steps: int) -> np.ndarray:
    """The sorted, distinct file indices the first ``steps`` steps of ``plans`` read (one plan per rank)."""
    found = [np.zeros(0, np.int64)]
    for plan in plans:
        total = min(steps, plan.steps)
        for first in range(0, total, _STEPS_PER_BLOCK):
            files, _ = plan.batch_block(first, min(_STEPS_PER_BLOCK, total - first))
            found.append(np.unique(files))
    return np.unique(np.concatenate(found)).astype(np.int64)


def _evict(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        # Dirty pages (data generated moments ago) are not dropped: write them back first, as DLIO's
        # "sync; echo 3 > drop_caches" does. Cheap for a file with nothing to write.
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def evict_files(storage: Any, paths: Iterable[str]) -> int:
    """Write back and drop each local file of ``paths`` from the page cache; the number advised.

    Files that are not local (``storage.local_path`` is None) or cannot be opened count as not advised;
    so do all of them where the platform has no ``posix_fadvise``.
    """
    if not hasattr(os, "posix_fadvise"):
        return 0
    local = (storage.local_path(path) for path in paths)
    return sum(1 for p in local if p is not None and _evict(p))


@dataclass
class NodeWork:
    """This rank's share of the once-per-node work (none unless it leads its host).

    ``files`` is the run's file table (path relative to ``storage``, size); ``ranks_here`` the ranks on
    this host; ``enabled`` rank 0's :func:`eviction_wanted`.
    """

    storage: Any
    files: Sequence[tuple[str, int]]
    leader: bool
    ranks_here: Sequence[int]
    enabled: bool = True
    evicted_files: int = 0
    eviction_s: float = 0.0
    epochs: int = 0

    @property
    def reason_off(self) -> str | None:
        """Why eviction does nothing on this host (None when it runs)."""
        if not self.enabled:
            return f"off (${EVICT_ENV}=0)"
        if not self.files:
            return "no files to read"
        if self.storage.local_path(self.files[0][0]) is None:
            scheme = str(self.storage.url).split(":", 1)[0]
            if scheme == "direct":
                return "not needed: direct:// reads bypass the page cache (O_DIRECT)"
            return f"not local storage ({scheme}://): no client page cache to drop"
        return None

    @property
    def active(self) -> bool:
        """True when every rank must wait for each epoch's eviction (alike on every rank: same setting, same storage)."""
        return self.reason_off is None

    @classmethod
    def for_run(cls, dist: Any, storage: Any, files: Sequence[tuple[str, int]]) -> NodeWork:
        """This rank's part, with rank 0's :func:`eviction_wanted` (collective: one small broadcast)."""
        wanted = dist.from_root(eviction_wanted)
        here = [r for r, host in enumerate(dist.host_of_rank) if host == dist.node]
        return cls(storage, files, leader=dist.is_node_leader, ranks_here=here, enabled=bool(wanted))

    def before_epoch(self, plan_for_rank: Callable[[int], Any], steps: int) -> int:
        """On the leader: evict the files this host's ranks read in the coming epoch; files advised."""
        if not self.leader or self.reason_off is not None:
            return 0
        t0 = time.perf_counter()
        indices = host_file_indices((plan_for_rank(r) for r in self.ranks_here), steps)
        advised = evict_files(self.storage, (self.files[int(i)][0] for i in indices))
        self.eviction_s += time.perf_counter() - t0
        self.evicted_files += advised
        self.epochs += 1
        return advised

    def stats(self) -> dict[str, Any]:
        """What this rank did for its host (empty unless it leads it): ``report.json``'s ``node_work``."""
        if not self.leader:
            return {}
        return {"page_cache_eviction": self.reason_off or "posix_fadvise DONTNEED before each training epoch",
                "evicted_files": self.evicted_files, "eviction_s": self.eviction_s, "epochs": self.epochs,
                "ranks": list(self.ranks_here)}
