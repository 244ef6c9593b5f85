"""Rank, world size and the few collectives a run needs.

A run is one process per simulated accelerator. Under ``mpirun`` (Open MPI, MPICH, Slurm's PMI)
the ranks talk through mpi4py; under ``torchrun`` (``WORLD_SIZE``/``RANK`` with ``TORCHELASTIC_RUN_ID``
or ``LOCAL_RANK``, and no MPI launcher) through ``torch.distributed`` with the gloo backend; a plain
``python`` or ``dl-driver`` invocation is a world of one. mpi4py and torch are imported only inside
:func:`init` when their launcher is detected, so a single-process run pays nothing for them.

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


def _mpi_world_size() -> int:
    for name in _WORLD_SIZE_VARS[:3]:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1


def _torchrun_world_size() -> int:
    """``WORLD_SIZE`` when torchrun (torch.distributed.run) started this process, else 1."""
    if "TORCHELASTIC_RUN_ID" not in os.environ and "LOCAL_RANK" not in os.environ:
        return 1
    value = os.environ.get("WORLD_SIZE", "").strip()
    return int(value) if value.isdigit() else 1


def launcher_world_size() -> int:
    """The world size announced by an MPI launcher's or torchrun's environment, or 1 when none is present."""
    world = _mpi_world_size()
    return world if world > 1 else _torchrun_world_size()


@dataclass
class Dist:
    """This process's place in the run and the collectives over all ranks.

    With ``comm`` None the world is this process alone and every collective is local.
    """

    rank: int = 0
    world: int = 1
    hostname: str = field(default_factory=socket.gethostname)
    comm: Any = None  # when world > 1: an mpi4py communicator, or _TorchComm under torchrun

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


class _TorchComm:
    """The four mpi4py calls :class:`Dist` uses, over ``torch.distributed`` (object collectives, gloo)."""

    def __init__(self, tdist: Any) -> None:
        self._d = tdist

    def Get_rank(self) -> int:  # noqa: N802 - mpi4py's spelling
        return int(self._d.get_rank())

    def Get_size(self) -> int:  # noqa: N802
        return int(self._d.get_world_size())

    def Barrier(self) -> None:  # noqa: N802
        self._d.barrier()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        box = [obj]
        self._d.broadcast_object_list(box, src=root)
        return box[0]

    def allgather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.Get_size()
        self._d.all_gather_object(out, obj)
        return out

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        out: list[Any] | None = [None] * self.Get_size() if self.Get_rank() == root else None
        self._d.gather_object(obj, out, dst=root)
        return out


def _init_torchrun(world: int) -> Dist:
    try:
        import torch.distributed as tdist  # noqa: PLC0415 - imported only under torchrun
    except ImportError as exc:
        raise RuntimeError(
            f"launched by torchrun as one of {world} ranks but torch is not installed; "
            "run: pip install 'dl-driver[torch]'"
        ) from exc
    if not tdist.is_available():
        raise RuntimeError("launched by torchrun but this torch build has no torch.distributed")
    if not tdist.is_initialized():  # a caller (a user's script) may have initialised it already
        import datetime  # noqa: PLC0415

        tdist.init_process_group("gloo", init_method="env://", timeout=datetime.timedelta(minutes=30))
    comm = _TorchComm(tdist)
    if comm.Get_size() != world:
        raise RuntimeError(f"torch.distributed has {comm.Get_size()} ranks but WORLD_SIZE is {world}")
    return Dist(rank=comm.Get_rank(), world=comm.Get_size(), comm=comm)


def init() -> Dist:
    """Find this process's rank and world size.

    Under an MPI launcher mpi4py must be installed (``pip install 'dl-driver[mpi]'``); a launcher
    without it would leave every rank believing it is rank 0 of 1, which silently multiplies the
    work, so that is an error. Under torchrun (and no MPI launcher) the collectives go through
    ``torch.distributed`` with the gloo backend (CPU objects; an already initialised group is reused).
    """
    world = _mpi_world_size()
    if world <= 1:
        world = _torchrun_world_size()
        return _init_torchrun(world) if world > 1 else Dist()
    try:
        from mpi4py import MPI  # noqa: PLC0415 - imported only under a launcher
    except ImportError as exc:
        raise RuntimeError(
            f"launched as one of {world} MPI ranks but mpi4py is not installed; "
            "run: pip install 'dl-driver[mpi]'"
        ) from exc
    comm = MPI.COMM_WORLD
    return Dist(rank=comm.Get_rank(), world=comm.Get_size(), comm=comm)
