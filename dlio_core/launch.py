"""Which launcher started this process, read from the environment alone (no import, no collective).

Each launcher announces a rank and a world size in its own variables; some also say where the rank
sits on its host. :func:`detect` reads them in a fixed order of precedence:

========================  ==========================================================  ===========
launcher                  variables read                                              collectives
========================  ==========================================================  ===========
``openmpi`` (mpirun)      ``OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK,LOCAL_SIZE}``       mpi4py
``torchrun``              ``TORCHELASTIC_RUN_ID`` or ``LOCAL_RANK``, ``RANK``,         torch (gloo)
                          ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``GROUP_RANK``,
                          ``GROUP_WORLD_SIZE``
``slurm`` (srun)          ``SLURM_STEP_NUM_TASKS``, ``SLURM_PROCID``,                 mpi4py
                          ``SLURM_LOCALID``, ``SLURM_NODEID``, ``SLURM_STEP_NUM_NODES``
``pals`` (HPE PALS)       ``PALS_RANKID``, ``PALS_LOCAL_RANKID``, ``PALS_LOCAL_SIZE``, mpi4py
                          ``PALS_NODEID``, world from ``PMI_SIZE``
``pmi`` (MPICH, Intel)    ``PMI_RANK``, ``PMI_SIZE``, ``MPI_LOCALRANKID``,            mpi4py
                          ``MPI_LOCALNRANKS`` (or ``PMI_LOCAL_RANK``/``_SIZE``)
``pmix``                  ``PMIX_RANK``, ``PMIX_SIZE``                                mpi4py
========================  ==========================================================  ===========

Open MPI comes first (a torchrun inside mpirun is still an MPI job, as before); torchrun comes before
Slurm because ``srun torchrun ...`` gives each worker the agent's ``SLURM_PROCID``, not its own rank.
Slurm counts only inside an ``srun`` step (``SLURM_STEP_NUM_TASKS``): a batch script's own shell also
carries ``SLURM_PROCID=0`` and ``SLURM_NTASKS``, and a plain ``dl-driver run`` there is one process.
``WORLD_SIZE`` without torchrun's markers means nothing here (many tools set it).

Example:
    >>> from dlio_core.launch import detect
    >>> info = detect({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4",
    ...                "OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"})
    >>> (info.launcher, info.rank, info.world, info.local_rank, info.local_world, info.backend)
    ('openmpi', 1, 4, 1, 2, 'mpi')
    >>> detect({}).launcher
    'none'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

__all__ = ["Launch", "detect", "launcher_world_size"]


@dataclass(frozen=True)
class Launch:
    """What the launcher's environment says about this process.

    ``backend`` is how the ranks will talk: ``"mpi"`` (mpi4py), ``"torch"`` (torch.distributed, gloo)
    or None for a world of one. Fields the launcher does not announce are None; the topology
    :func:`dlio_core.dist.init` reports comes from the ranks' host names, these are hints.
    """

    launcher: str = "none"
    rank: int = 0
    world: int | None = 1
    local_rank: int | None = None
    local_world: int | None = None
    node: int | None = None
    num_nodes: int | None = None
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        """True when a launcher started this process as one of several (or an unknown number of) ranks."""
        return self.backend is not None and (self.world is None or self.world > 1)


def _int(env: Mapping[str, str], *names: str) -> int | None:
    """The first of ``names`` set to a non-negative integer, else None."""
    for name in names:
        value = env.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def _openmpi(env: Mapping[str, str]) -> Launch | None:
    world = _int(env, "OMPI_COMM_WORLD_SIZE")
    if world is None:
        return None
    return Launch("openmpi", _int(env, "OMPI_COMM_WORLD_RANK") or 0, world,
                  _int(env, "OMPI_COMM_WORLD_LOCAL_RANK"), _int(env, "OMPI_COMM_WORLD_LOCAL_SIZE"), backend="mpi")


def _torchrun(env: Mapping[str, str]) -> Launch | None:
    if "TORCHELASTIC_RUN_ID" not in env and "LOCAL_RANK" not in env:
        return None
    world = _int(env, "WORLD_SIZE")
    if world is None:
        return None
    return Launch("torchrun", _int(env, "RANK") or 0, world, _int(env, "LOCAL_RANK"), _int(env, "LOCAL_WORLD_SIZE"),
                  _int(env, "GROUP_RANK"), _int(env, "GROUP_WORLD_SIZE"), backend="torch")


def _slurm(env: Mapping[str, str]) -> Launch | None:
    world = _int(env, "SLURM_STEP_NUM_TASKS")
    rank = _int(env, "SLURM_PROCID")
    if world is None or rank is None:
        return None
    return Launch("slurm", rank, world, _int(env, "SLURM_LOCALID"), None, _int(env, "SLURM_NODEID"),
                  _int(env, "SLURM_STEP_NUM_NODES"), backend="mpi")


def _pals(env: Mapping[str, str]) -> Launch | None:
    rank = _int(env, "PALS_RANKID")
    if rank is None:
        return None
    # PALS itself does not export the world size; Cray PMI beside it does (PMI_SIZE). None: ask MPI.
    return Launch("pals", rank, _int(env, "PMI_SIZE"), _int(env, "PALS_LOCAL_RANKID"),
                  _int(env, "PALS_LOCAL_SIZE"), _int(env, "PALS_NODEID"), backend="mpi")


def _pmi(env: Mapping[str, str]) -> Launch | None:
    world = _int(env, "PMI_SIZE")
    if world is None:
        return None
    return Launch("pmi", _int(env, "PMI_RANK") or 0, world, _int(env, "MPI_LOCALRANKID", "PMI_LOCAL_RANK"),
                  _int(env, "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE"), backend="mpi")


def _pmix(env: Mapping[str, str]) -> Launch | None:
    rank = _int(env, "PMIX_RANK")
    world = _int(env, "PMIX_SIZE")
    if rank is None and world is None:
        return None
    return Launch("pmix", rank or 0, world, backend="mpi")


_DETECTORS = (_openmpi, _torchrun, _slurm, _pals, _pmi, _pmix)


def detect(environ: Mapping[str, str] | None = None) -> Launch:
    """The launcher announced by ``environ`` (default ``os.environ``), or ``Launch()`` for none.

    A launcher that announces a world of one is still returned (its backend is not needed: see
    :attr:`Launch.is_distributed`).
    """
    env = os.environ if environ is None else environ
    for probe in _DETECTORS:
        found = probe(env)
        if found is not None:
            return found
    return Launch()


def launcher_world_size(environ: Mapping[str, str] | None = None) -> int:
    """The world size a launcher announces, or 1 when none is present or it does not say.

    Example:
        >>> launcher_world_size({"PMI_RANK": "0", "PMI_SIZE": "8"})
        8
    """
    return detect(environ).world or 1
