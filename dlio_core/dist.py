"""Rank, world size and the few collectives a run needs.

A run is one process per simulated accelerator. Under ``mpirun`` (Open MPI, MPICH, Slurm's PMI)
the ranks talk through mpi4py; a plain ``python`` or ``dl-driver`` invocation is a world of one.
mpi4py is imported only when a launcher is detected, so a single-process run pays nothing for it.

Example:
    >>> from dlio_core.dist import init
    >>> d = init()
    >>> (d.rank, d.world)
    (0, 1)
    >>> d.allgather(d.rank)
    [0]
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Dist", "init", "launcher_world_size"]

# Environment variables by which common launchers announce the world size.
_WORLD_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS")


def launcher_world_size() -> int:
    """The world size announced by an MPI launcher's environment, or 1 when none is present."""
    for name in _WORLD_SIZE_VARS[:3]:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1


@dataclass
class Dist:
    """This process's place in the run and the collectives over all ranks.

    With ``comm`` None the world is this process alone and every collective is local.
    """

    rank: int = 0
    world: int = 1
    hostname: str = field(default_factory=socket.gethostname)
    comm: Any = None  # an mpi4py communicator when world > 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.comm is not None:
            self.comm.Barrier()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj if self.comm is None else self.comm.bcast(obj, root=root)

    def allgather(self, obj: Any) -> list[Any]:
        return [obj] if self.comm is None else self.comm.allgather(obj)

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        return [obj] if self.comm is None else self.comm.gather(obj, root=root)

    def hosts(self) -> list[str]:
        """Distinct host names in rank order of first appearance (one entry per host)."""
        return list(dict.fromkeys(self.allgather(self.hostname)))


def init() -> Dist:
    """Find this process's rank and world size.

    Under an MPI launcher mpi4py must be installed (``pip install 'dl-driver[mpi]'``); a launcher
    without it would leave every rank believing it is rank 0 of 1, which silently multiplies the
    work, so that is an error.
    """
    world = launcher_world_size()
    if world <= 1:
        return Dist()
    try:
        from mpi4py import MPI  # noqa: PLC0415 - imported only under a launcher
    except ImportError as exc:
        raise RuntimeError(
            f"launched as one of {world} MPI ranks but mpi4py is not installed; "
            "run: pip install 'dl-driver[mpi]'"
        ) from exc
    comm = MPI.COMM_WORLD
    return Dist(rank=comm.Get_rank(), world=comm.Get_size(), comm=comm)
