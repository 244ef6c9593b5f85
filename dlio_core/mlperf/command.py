"""The launch command of a datagen or run: ``<launcher prefix> dl-driver <generate|run> ...``.

Slots follow mlpstorage: ``host:slots`` as given (they must add up to at least N), else N spread evenly over
the hosts, the remainder to the first ones (hosts left with no rank are dropped, as a 0 slot is refused by
OpenMPI). Without ``--hosts``, inside a batch allocation the launcher's allocation is used, else 127.0.0.1.
The prefix's spelling per launcher (Open MPI, PALS, srun) is :mod:`~dlio_core.mlperf.launchers`'. Binaries
are looked up next to the running Python first, so a virtual environment's ``mpirun`` and ``dl-driver`` win
over the system's.

Example:
    >>> slotted_hosts(["a", "b", "c"], 4)
    ['a:2', 'b:1', 'c:1']
    >>> mpi_prefix(MpiLaunch("mpirun", ("n1:2", "n2:2"), 4, oversubscribe=True), binary="mpirun", env={})
    ['mpirun', '-n', '4', '-host', 'n1:2,n2:2', '--bind-to', 'none', '--map-by', 'node', '--oversubscribe']
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .errors import LaunchError
from .launchers import LAUNCHERS, allocation_nodes, flavor_of, prefix, running_as_rank

__all__ = ["MpiLaunch", "parse_hosts", "slotted_hosts", "mpi_prefix", "find_binary", "dl_driver_argv",
           "override_args", "shell_line", "LaunchError", "HYDRA_OUTPUT_SUBDIR"]

#: Where DLIO (and dl-driver) put config.yaml / overrides.yaml under mlpstorage: ``++hydra.output_subdir``.
HYDRA_OUTPUT_SUBDIR = "dlio_config"


def parse_hosts(values: Sequence[str] | None) -> list[str]:
    """``--hosts`` as mlpstorage takes it: space- or comma-separated, ``host`` or ``host:slots``.

    >>> parse_hosts(["n1:4,n2:4", "n3"])
    ['n1:4', 'n2:4', 'n3']
    """
    hosts = [h.strip() for v in (values or ()) for h in v.split(",") if h.strip()]
    return hosts or ["127.0.0.1"]


def _slots(host: str) -> tuple[str, int | None]:
    name, sep, slots = host.rpartition(":")
    if not sep:
        return host, None
    try:
        count = int(slots)
    except ValueError:
        raise LaunchError(f"--hosts: {host!r} is not host or host:slots (slots must be a whole number)") from None
    if count < 1:
        raise LaunchError(f"--hosts: {host!r} has {count} slots; give at least 1")
    return name, count


def slotted_hosts(hosts: Sequence[str], num_processes: int) -> list[str]:
    """``host:slots`` for each host, checking explicit slots cover ``num_processes``."""
    parsed = [_slots(h) for h in hosts]
    given = [s for _, s in parsed if s is not None]
    if given and len(given) != len(parsed):
        raise LaunchError("--hosts: give slots (host:slots) for every host or for none")
    if given:
        if sum(given) < num_processes:
            raise LaunchError(f"--hosts: {sum(given)} slots in total, fewer than the {num_processes} processes asked")
        return [f"{name}:{s}" for name, s in parsed]
    base, extra = divmod(num_processes, len(parsed))
    counts = [base + (1 if i < extra else 0) for i in range(len(parsed))]
    return [f"{name}:{c}" for (name, _), c in zip(parsed, counts) if c > 0]


@dataclass(frozen=True)
class MpiLaunch:
    """How to start the ranks: launcher, hosts (with or without slots), process count and extra flags."""

    mpi_bin: str
    hosts: tuple[str, ...]
    num_processes: int
    oversubscribe: bool = False
    allow_run_as_root: bool = False
    mpi_params: tuple[str, ...] = field(default_factory=tuple)
    mpi_btl: str = "auto"
    flavor: str | None = None  # openmpi | pals | srun; None: found from mpi_bin (and mpiexec --version)


def find_binary(name: str) -> str:
    """``name`` next to the running interpreter (a venv's bin), else on PATH, else ``name`` itself."""
    if os.sep in name:
        return name
    here = os.path.dirname(sys.executable)
    return shutil.which(name, path=here) or shutil.which(name) or name


def mpi_prefix(launch: MpiLaunch, *, binary: str | None = None, env: Mapping[str, str] | None = None) -> list[str]:
    """The launcher part of the command line (``env``: the environment to read allocations from)."""
    if launch.mpi_bin not in LAUNCHERS:
        raise LaunchError(f"--mpi-bin: {launch.mpi_bin!r} is not one of {', '.join(LAUNCHERS)}")
    if launch.num_processes < 1:
        raise LaunchError(f"the process count must be at least 1, got {launch.num_processes}")
    env = os.environ if env is None else env
    inside = running_as_rank(env)
    if inside:
        raise LaunchError(f"dl-driver mlperf is running as one of {inside[1]} ranks ({inside[0]} is set); start "
                          "it once, outside the launcher: it starts the ranks itself (--mpi-bin)")
    exe = binary or find_binary(launch.mpi_bin)
    flavor = launch.flavor or flavor_of(launch.mpi_bin, exe, env)
    hosts: list[str] = list(launch.hosts)
    if not hosts:
        nodes = allocation_nodes(env)
        hosts = ["127.0.0.1"] if nodes is None and flavor == "openmpi" else (nodes or [])
    if hosts and flavor == "openmpi":
        hosts = slotted_hosts(hosts, launch.num_processes)
    elif hosts:
        slotted_hosts(hosts, launch.num_processes)  # the same checks of host:slots
    argv = prefix(flavor, exe, hosts, launch.num_processes, oversubscribe=launch.oversubscribe,
                  allow_run_as_root=launch.allow_run_as_root, mpi_btl=launch.mpi_btl, env=env)
    for params in launch.mpi_params:
        argv += shlex.split(params)
    return argv


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """``{"reader.read_threads": 8}`` -> ``["++workload.reader.read_threads=8"]``."""
    return [f"++workload.{key}={_text(value)}" for key, value in overrides.items()]


def dl_driver_argv(subcommand: str, workload: str, overrides: Mapping[str, Any], run_dir: str, *,
                   binary: str | None = None) -> list[str]:
    """``dl-driver generate|run <workload> ++hydra.run.dir=D ++hydra.output_subdir=dlio_config ++workload...``."""
    exe = binary or find_binary("dl-driver")
    return [exe, subcommand, workload, f"++hydra.run.dir={run_dir}", f"++hydra.output_subdir={HYDRA_OUTPUT_SUBDIR}",
            *override_args(overrides)]


def shell_line(argv: Sequence[str]) -> str:
    """The command as one shell line (quoted where needed)."""
    return shlex.join(list(argv))
