"""Where this process sits: rank and world size, DataLoader worker id and count.

Resolved when iteration starts, never frozen at construction (a dataset built before
``init_process_group`` must still shard correctly; s3torchconnector freezes it and silently runs as
world 1). Order of precedence: explicit arguments, an initialised ``torch.distributed`` group, the
torchrun environment (``RANK``/``WORLD_SIZE``), then a world of one.

Example:
    >>> from dlio_torch._world import resolve_rank_world, worker_info
    >>> resolve_rank_world(1, 4)
    (1, 4)
    >>> worker_info()  # the main process: worker 0 of 1
    (0, 1)
"""

from __future__ import annotations

import os

import torch

__all__ = ["agreed_random_seed", "resolve_rank_world", "resolve_rank_world_source", "worker_info"]


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else None


def resolve_rank_world(rank: int | None = None, world: int | None = None) -> tuple[int, int]:
    """``(rank, world)``: explicit values win, then ``torch.distributed``, then ``RANK``/``WORLD_SIZE``.

    Raises ``ValueError`` naming the source when the pair is inconsistent (rank outside the world).
    """
    r, w, _ = resolve_rank_world_source(rank, world)
    return r, w


def resolve_rank_world_source(rank: int | None = None, world: int | None = None) -> tuple[int, int, str]:
    """``(rank, world, source)``; ``source`` is ``"arguments"``, ``"torch.distributed"``,
    ``"RANK/WORLD_SIZE"`` or ``"default"`` (see :func:`resolve_rank_world`).

    >>> resolve_rank_world_source(0, 2)
    (0, 2, 'arguments')
    """
    source = "arguments"
    if rank is None or world is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            r, w, source = dist.get_rank(), dist.get_world_size(), "torch.distributed"
        else:
            r, w = _env_int("RANK"), _env_int("WORLD_SIZE")
            source = "RANK/WORLD_SIZE" if w is not None else "default"
            r, w = (r or 0), (w or 1)
        rank = r if rank is None else rank
        world = w if world is None else world
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world} (from {source}); "
                         "pass rank= and world= or fix RANK/WORLD_SIZE")
    return int(rank), int(world), source


def worker_info() -> tuple[int, int]:
    """``(worker_id, num_workers)`` inside a DataLoader worker, ``(0, 1)`` in the main process."""
    info = torch.utils.data.get_worker_info()
    return (0, 1) if info is None else (int(info.id), int(info.num_workers))


def agreed_random_seed(rank: int | None = None, world: int | None = None) -> int:
    """One run seed for shuffle ``random`` that every rank agrees on.

    A world of one draws it here; an initialised ``torch.distributed`` group draws it on rank 0 and
    broadcasts it. Ranks with no group to agree through (``world`` > 1 from arguments or the
    environment) would each draw their own and overlap, so that case is refused.

    >>> isinstance(agreed_random_seed(0, 1), int)
    True
    """
    from dlio_core.sampling.policy import draw_random_seed

    _, size, source = resolve_rank_world_source(rank, world)
    if size == 1:
        return draw_random_seed()
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() == size:
        box = [draw_random_seed() if dist.get_rank() == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return int(box[0])
    raise ValueError(f"shuffle 'random' over {size} ranks (from {source}) needs one seed every rank agrees on: "
                     "call torch.distributed.init_process_group first, or pass random_seed= (the same on every rank)")
