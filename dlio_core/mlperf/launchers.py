"""The launcher spellings: Open MPI's ``mpirun``/``mpiexec``, HPE PALS ``mpiexec`` and Slurm ``srun``.

mlpstorage builds ``mpirun|mpiexec -n N -host h1:s1,h2:s2 --bind-to none --map-by node|socket
[--oversubscribe] [--allow-run-as-root] [params]``, which is Open MPI's spelling. PALS (Polaris, Aurora)
refuses ``-host h:slots``, ``--map-by``, ``--bind-to`` and ``--oversubscribe``; it takes ``--hosts`` and one
``--ppn``. ``srun`` takes ``--nodelist`` and ``--ntasks-per-node``. Each spelling is built here from the same
hosts and slots (an uneven spread refuses with a one-line error for PALS and srun, which cannot express it).

Inside an allocation (Slurm ``SLURM_JOB_ID``, PBS ``PBS_NODEFILE``) without ``--hosts``, the launcher's own
allocation is used: no host list is passed (Open MPI and srun read the allocation themselves; PALS gets
``--ppn`` from the nodes in ``PBS_NODEFILE``). A ``dl-driver mlperf`` that is itself one rank of a launched
job (started under ``srun -n 8`` or ``mpirun -n 8``) refuses: it launches the ranks itself.

Example:
    >>> prefix("pals", "mpiexec", ["n1:4", "n2:4"], 8, env={})
    ['mpiexec', '-n', '8', '--ppn', '4', '--hosts', 'n1,n2']
    >>> prefix("srun", "srun", ["n1", "n2"], 8, env={})
    ['srun', '-n', '8', '--nodes', '2', '--ntasks-per-node', '4', '--nodelist', 'n1,n2']
"""

from __future__ import annotations

import os
import subprocess
from typing import Mapping, Sequence

from .errors import LaunchError

__all__ = ["LAUNCHERS", "FLAVORS", "flavor_of", "allocation_nodes", "allocation_node_count", "running_as_rank",
           "prefix", "forwarded_env"]

#: ``--mpi-bin`` choices: mlpstorage's two, and srun.
LAUNCHERS = ("mpirun", "mpiexec", "srun")
#: How a launcher is spelled: ``openmpi`` (mpirun, Open MPI's mpiexec), ``pals`` (HPE's mpiexec), ``srun``.
FLAVORS = ("openmpi", "pals", "srun")

# Environment a remote rank needs that Open MPI does not pass on by itself (mlpstorage forwards the same
# families with -x so that object-storage runs reach their endpoint from every host).
_FORWARDED_PREFIXES = ("AWS_", "DLIO_", "S3DLIO_", "AZURE_", "GOOGLE_")
_FORWARDED_NAMES = ("BUCKET", "STORAGE_LIBRARY")
# Set in every rank of a launched job, with the job's size.
_WORLD_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "PALS_SIZE", "SLURM_STEP_NUM_TASKS")


def flavor_of(mpi_bin: str, binary: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """``srun`` for srun; ``pals`` for an mpiexec under PALS (``PALS_*`` set, or ``--version`` says PALS);
    ``openmpi`` otherwise.

    >>> flavor_of("mpiexec", env={"PALS_APID": "1"}), flavor_of("mpirun", env={})
    ('pals', 'openmpi')
    """
    env = os.environ if env is None else env
    if mpi_bin == "srun":
        return "srun"
    if mpi_bin != "mpiexec":
        return "openmpi"
    if any(name.startswith("PALS_") for name in env):
        return "pals"
    try:
        out = subprocess.run([binary or mpi_bin, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "openmpi"
    return "pals" if "PALS" in (out.stdout + out.stderr) else "openmpi"


def allocation_nodes(env: Mapping[str, str] | None = None) -> list[str] | None:
    """The nodes of the batch allocation this runs in (PBS's node file, in order, once each), ``[]`` inside a
    Slurm allocation (srun and mpirun read it themselves), ``None`` outside any allocation.

    >>> allocation_nodes({}) is None, allocation_nodes({"SLURM_JOB_ID": "7"})
    (True, [])
    """
    env = os.environ if env is None else env
    nodefile = env.get("PBS_NODEFILE")
    if nodefile and os.path.isfile(nodefile):
        with open(nodefile, encoding="utf-8") as fh:
            return list(dict.fromkeys(line.strip() for line in fh if line.strip()))
    if env.get("SLURM_JOB_ID"):
        return []
    return None


def allocation_node_count(env: Mapping[str, str] | None = None) -> int | None:
    """How many nodes the batch allocation has (PBS's node file, Slurm's ``SLURM_JOB_NUM_NODES``), else None.

    >>> allocation_node_count({"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "4"}), allocation_node_count({})
    (4, None)
    """
    env = os.environ if env is None else env
    nodes = allocation_nodes(env)
    if nodes:
        return len(nodes)
    count = env.get("SLURM_JOB_NUM_NODES", "")
    return int(count) if nodes is not None and count.isdigit() else None


def running_as_rank(env: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """``(variable, world size)`` when this process is one rank of a launched job of more than one rank.

    >>> running_as_rank({"OMPI_COMM_WORLD_SIZE": "8"}), running_as_rank({"PMI_SIZE": "1"})
    (('OMPI_COMM_WORLD_SIZE', 8), None)
    """
    env = os.environ if env is None else env
    for name in _WORLD_SIZE_VARIABLES:
        value = env.get(name, "")
        if value.isdigit() and int(value) > 1:
            return name, int(value)
    return None


def forwarded_env(env: Mapping[str, str] | None = None) -> list[str]:
    """The variables set here that remote ranks need (storage credentials and endpoints, ``DLIO_*``)."""
    env = os.environ if env is None else env
    return sorted(n for n in env if n.startswith(_FORWARDED_PREFIXES) or n in _FORWARDED_NAMES)


def _split(host: str) -> tuple[str, int | None]:
    name, sep, slots = host.rpartition(":")
    return (name, int(slots)) if sep else (host, None)


def _even_ppn(launcher: str, hosts: Sequence[str], num_processes: int) -> int:
    """The one ranks-per-node figure PALS and srun take; refuses a spread they cannot express."""
    slots = [s for _, s in map(_split, hosts)]
    if all(s is not None for s in slots):
        if len(set(slots)) != 1:
            raise LaunchError(f"--hosts: {launcher} takes one ranks-per-node figure; give every host the same "
                              f"slots (got {', '.join(hosts)})")
        ppn = slots[0]
        if ppn * len(hosts) != num_processes:
            raise LaunchError(f"--hosts: {len(hosts)} hosts x {ppn} slots is not the {num_processes} processes "
                              f"asked; {launcher} starts exactly ranks-per-node x nodes")
        return ppn
    if num_processes % len(hosts):
        raise LaunchError(f"--hosts: {num_processes} processes do not spread evenly over {len(hosts)} hosts, "
                          f"which {launcher} needs (one ranks-per-node figure)")
    return num_processes // len(hosts)


def _openmpi(binary: str, hosts: Sequence[str], num_processes: int, *, oversubscribe: bool,
             allow_run_as_root: bool, mpi_btl: str, env: Mapping[str, str]) -> list[str]:
    argv = [binary, "-n", str(num_processes)]
    names = {_split(h)[0] for h in hosts}
    if hosts:
        argv += ["-host", ",".join(hosts)]
    # mlpstorage's placement for I/O ranks: unbound, spread over nodes (several hosts) or sockets (one).
    argv += ["--bind-to", "none", "--map-by", "node" if len(names) > 1 else "socket"]
    if mpi_btl != "auto" and len(names) <= 1:  # the transport choice is for single-host runs only
        argv += ["--mca", "btl", f"self,{mpi_btl}"]
    if oversubscribe:
        argv.append("--oversubscribe")
    if allow_run_as_root:
        argv.append("--allow-run-as-root")
    if len(names) > 1:
        for name in forwarded_env(env):
            argv += ["-x", name]
    return argv


def _refuse_openmpi_flags(launcher: str, *, oversubscribe: bool, allow_run_as_root: bool, mpi_btl: str,
                          allow_oversubscribe: bool = False) -> None:
    for flag, used in (("--oversubscribe", oversubscribe and not allow_oversubscribe),
                       ("--allow-run-as-root", allow_run_as_root), ("--mpi-btl", mpi_btl != "auto")):
        if used:
            raise LaunchError(f"{flag} is an Open MPI flag; {launcher} has none (drop it)")


def prefix(flavor: str, binary: str, hosts: Sequence[str], num_processes: int, *, oversubscribe: bool = False,
           allow_run_as_root: bool = False, mpi_btl: str = "auto", env: Mapping[str, str] | None = None) -> list[str]:
    """The launcher part of the command line for ``flavor``; ``hosts`` are ``host:slots`` (or bare hosts for
    an allocation's nodes), empty to let the launcher use its allocation."""
    env = os.environ if env is None else env
    if flavor == "openmpi":
        return _openmpi(binary, hosts, num_processes, oversubscribe=oversubscribe,
                        allow_run_as_root=allow_run_as_root, mpi_btl=mpi_btl, env=env)
    if flavor == "pals":
        _refuse_openmpi_flags("PALS mpiexec", oversubscribe=oversubscribe, allow_run_as_root=allow_run_as_root,
                              mpi_btl=mpi_btl)
        argv = [binary, "-n", str(num_processes)]
        if hosts:
            argv += ["--ppn", str(_even_ppn("PALS mpiexec", hosts, num_processes)),
                     "--hosts", ",".join(_split(h)[0] for h in hosts)]
        return argv
    if flavor == "srun":
        _refuse_openmpi_flags("srun", oversubscribe=oversubscribe, allow_run_as_root=allow_run_as_root,
                              mpi_btl=mpi_btl, allow_oversubscribe=True)
        argv = [binary, "-n", str(num_processes)]
        if hosts:
            argv += ["--nodes", str(len(hosts)), "--ntasks-per-node", str(_even_ppn("srun", hosts, num_processes)),
                     "--nodelist", ",".join(_split(h)[0] for h in hosts)]
        if oversubscribe:  # srun's spelling of more ranks than CPUs
            argv.append("--overcommit")
        return argv
    raise LaunchError(f"unknown launcher flavor {flavor!r}; one of {', '.join(FLAVORS)}")
