"""Rank, world, hosts, the collectives a run needs, and the per-step status exchange.

A run is one process per simulated accelerator. :func:`init` reads the launcher from the environment
(:mod:`dlio_core.launch`: mpirun/mpiexec, torchrun, Slurm ``srun``, HPE PALS, PMI) and connects the
ranks through mpi4py or, under torchrun, ``torch.distributed`` with gloo; a plain ``python`` or
``dl-driver`` invocation is a world of one. mpi4py and torch are imported only when their launcher is
detected, so a single-process run pays nothing for them. One allgather of host names at start-up
gives every rank its host, its local rank and the number of hosts; nothing asks again later.

Every step ends with :meth:`Dist.step_status`, which replaces DLIO's per-step barrier at the same
cost (one 8-byte all-reduce): each rank says ok, failed or interrupted, and all learn the worst status
and which rank had it, so every rank stops at the same step. The failing rank's one-line message
then comes from that rank (a second collective, only when something went wrong). Waits on other
ranks are bounded (``DL_DRIVER_RANK_TIMEOUT_S``, default 300 s): a rank that died, hangs or was
stopped makes the others raise :class:`RankLost` instead of spinning forever.

After :class:`RankLost` no collective may run again and no rank may wait in ``MPI_Finalize`` for the
missing one: write this rank's files, then :meth:`Dist.abandon` (``MPI_Abort`` under MPI; an immediate
exit under torchrun, whose agent stops the others). A run that ends with all ranks alive, failed or not,
exchanges status once more when every rank has written its files, leaves the group
(:meth:`Dist.release`) and exits normally.

Example:
    >>> from dlio_core.dist import init, RankStatus
    >>> d = init()
    >>> (d.rank, d.world, d.num_hosts, d.local_rank)
    (0, 1, 1, 0)
    >>> d.allgather(d.rank)
    [0]
    >>> d.step_status(RankStatus.FAILED, "short read in f.npz").describe()
    'rank 0 failed: short read in f.npz'
"""

from __future__ import annotations

import enum
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn

import numpy as np

from .collectives import MESSAGE_BYTES, LocalComm, MpiComm, PeerLost, TorchComm, WaitTimeout, flush_and_exit
from .collectives import decode_message as _decode
from .collectives import encode_message as _encode
from .collectives import one_line as _one_line
from .launch import Launch, detect, launcher_world_size

__all__ = ["Dist", "init", "launcher_world_size", "RankStatus", "StepOutcome", "RankLost",
           "RANK_TIMEOUT_ENV", "DEFAULT_RANK_TIMEOUT_S", "USE_RANK_TIMEOUT", "resolve_rank_timeout"]

RANK_TIMEOUT_ENV = "DL_DRIVER_RANK_TIMEOUT_S"
DEFAULT_RANK_TIMEOUT_S = 300.0
_CODE_SLOTS = 256  # signal numbers and exit codes fit below this
USE_RANK_TIMEOUT = -1.0  # step_status's default timeout: the Dist's rank_timeout_s


class RankStatus(enum.IntEnum):
    """How a rank's step went; a larger value is worse and wins the exchange."""

    OK = 0
    INTERRUPTED = 1  # a signal (SIGINT, SIGTERM) asked the run to stop
    FAILED = 2  # an error on this rank


@dataclass(frozen=True)
class StepOutcome:
    """The worst status over all ranks after a step, the rank that had it and its message.

    ``rank`` is the lowest rank with the worst status (0 when every rank is ok); ``code`` is what that
    rank sent with it: the signal number of an interruption, the exit code of a failure (0: unsaid).
    """

    status: RankStatus = RankStatus.OK
    rank: int = 0
    message: str = ""
    code: int = 0

    @property
    def signum(self) -> int:
        """The signal behind an interruption, 0 otherwise."""
        return self.code if self.status == RankStatus.INTERRUPTED else 0

    @property
    def ok(self) -> bool:
        return self.status == RankStatus.OK

    @property
    def exit_code(self) -> int:
        """0; the failing rank's code (1 when it gave none); 128 + the signal number (130 SIGINT, 143 SIGTERM)."""
        if self.status == RankStatus.FAILED:
            return self.code or 1
        if self.status == RankStatus.INTERRUPTED:
            return 128 + (self.code or 2)
        return 0

    def describe(self) -> str:
        """One line for the console and dlio.log, e.g. ``rank 1 failed: short read in f.npz``."""
        if self.ok:
            return "all ranks ok"
        text = f"rank {self.rank} {self.status.name.lower()}"
        return f"{text}: {self.message}" if self.message else text


_ALL_OK = StepOutcome()  # every rank ok (frozen, so one object serves every step)


class RankLost(RuntimeError):
    """Another rank stopped answering: it died, hangs or was stopped. No collective may follow."""

    def __init__(self, message: str, *, where: str = "", timeout_s: float | None = None) -> None:
        super().__init__(message)
        self.where, self.timeout_s = where, timeout_s


def resolve_rank_timeout(value: float | None = None) -> float:
    """The bound on waits for other ranks: ``value``, else ``$DL_DRIVER_RANK_TIMEOUT_S``, else 300 s.

    Example:
        >>> resolve_rank_timeout(5)
        5.0
    """
    if value is None:
        raw = os.environ.get(RANK_TIMEOUT_ENV, "").strip()
        if not raw:
            return DEFAULT_RANK_TIMEOUT_S
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{RANK_TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise ValueError(f"the rank timeout must be a positive number of seconds, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class _RootError:  # rank 0's error in Dist.from_root, on its way to every rank (a result may be an exception)
    error: Exception


@dataclass
class Dist:
    """This process's place in the run and the collectives over all ranks.

    With ``comm`` None the world is this process alone and every collective is local. ``host_names``
    lists the hosts in order of their lowest rank; ``host_of_rank[r]`` is rank r's index in it.
    """

    rank: int = 0
    world: int = 1
    hostname: str = field(default_factory=socket.gethostname)
    comm: Any = None  # when world > 1: MpiComm or TorchComm (dlio_core.collectives)
    local_rank: int | None = None  # None: filled in as if every rank ran on this host
    local_world: int | None = None
    node: int = 0
    host_names: tuple[str, ...] = ()
    host_of_rank: tuple[int, ...] = ()
    launcher: str = "none"
    rank_timeout_s: float = DEFAULT_RANK_TIMEOUT_S
    lost: bool = False  # set once a wait on other ranks failed: no collective may run after it
    _status_buffers: tuple[np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.zeros(1, np.int64), np.zeros(1, np.int64)), init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.host_names:
            self.host_names = (self.hostname,)
            self.host_of_rank = (0,) * self.world
        if self.local_rank is None:
            self.local_rank = self.rank
        if self.local_world is None:
            self.local_world = self.world

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def num_hosts(self) -> int:
        return len(self.host_names)

    @property
    def is_node_leader(self) -> bool:
        """True on the lowest rank of each host: the one that does once-per-node work (cache eviction)."""
        return self.local_rank == 0

    def hosts(self) -> list[str]:
        """Distinct host names in rank order of first appearance (known since :func:`init`; no collective)."""
        return list(self.host_names)

    def barrier(self, timeout_s: float | None = None) -> None:
        """Wait for every rank; with ``timeout_s``, raise :class:`RankLost` when one never arrives."""
        if self.comm is None:
            return
        if timeout_s is None:
            self.comm.Barrier()
        else:
            self._wait(self.comm.start_barrier(), timeout_s, "a barrier")

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj if self.comm is None else self.comm.bcast(obj, root=root)

    def allgather(self, obj: Any) -> list[Any]:
        return [obj] if self.comm is None else self.comm.allgather(obj)

    def from_root(self, compute: Callable[[], Any]) -> Any:
        """``compute()`` on rank 0, its result (or its error, raised on every rank, so that none waits
        alone for a result that never comes) broadcast to every rank. ``Dist().from_root(lambda: 4)`` is 4.
        """
        payload: Any = None
        try:
            payload = compute() if self.is_root else None
        except Exception as exc:  # noqa: BLE001 - every rank raises it below
            payload = _RootError(exc)
        payload = self.bcast(payload)
        if isinstance(payload, _RootError):
            raise payload.error
        return payload

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        return [obj] if self.comm is None else self.comm.gather(obj, root=root)

    def bcast_buffer(self, buf: np.ndarray, root: int = 0) -> None:
        """Broadcast the bytes of the contiguous, writable array ``buf`` from ``root`` in place (no pickle)."""
        if self.comm is not None:
            self._wait(self.comm.start_bcast_bytes(buf.view(np.uint8), root), None, "a broadcast")

    def step_status(self, status: RankStatus = RankStatus.OK, message: str = "", *, code: int = 0,
                    where: str = "a step", timeout_s: float | None = USE_RANK_TIMEOUT) -> StepOutcome:
        """Exchange every rank's status after a step; all ranks return the same :class:`StepOutcome`.

        Costs one 8-byte all-reduce when all are ok (what the barrier it replaces cost), plus one
        1 KiB broadcast of the failing rank's message otherwise. ``code`` (0-255) travels with the
        status: the signal number of an interruption, the exit code of a failure. ``where`` ("epoch 2
        step 7") names the step in the :class:`RankLost` raised when some rank does not arrive within
        ``timeout_s`` (default :attr:`rank_timeout_s`; None waits without a bound, for phases whose
        length differs a lot between ranks).
        """
        if status == 0 and code == 0 and self.comm is None and self.rank == 0:
            return _ALL_OK  # the usual step of a one-process run: nothing to build (runs every step)
        status = RankStatus(status)
        if not 0 <= code < _CODE_SLOTS:
            raise ValueError(f"status code {code} out of range 0-{_CODE_SLOTS - 1}")
        if timeout_s == USE_RANK_TIMEOUT:
            timeout_s = self.rank_timeout_s
        if self.comm is None:
            return StepOutcome(status, self.rank, _one_line(message) if status else "", code if status else 0)
        # One MAX finds the worst (status, signal) and, among the ranks that had it, the lowest rank.
        world = self.world
        send, out = self._status_buffers
        send[0] = (int(status) * _CODE_SLOTS + code) * world + (world - 1 - self.rank)
        self._wait(self.comm.start_allreduce_max(send, out), timeout_s, where)
        worst, rank = divmod(int(out[0]), world)
        rank = world - 1 - rank
        worst_status, worst_code = RankStatus(worst // _CODE_SLOTS), worst % _CODE_SLOTS
        if worst_status == RankStatus.OK:
            return _ALL_OK
        buf = _encode(message) if rank == self.rank else np.zeros(MESSAGE_BYTES, np.uint8)
        self._wait(self.comm.start_bcast_bytes(buf, rank), timeout_s, where)
        return StepOutcome(worst_status, rank, _decode(buf), worst_code)

    def close(self) -> None:
        """Leave the group after the last collective, every rank alive (``MPI_Finalize``, or destroying
        torch's process group). No collective may follow."""
        if self.comm is not None and not self.lost:
            self.comm.close()

    def release(self) -> None:
        """Leave a torch group :func:`init` created, after the last collective (at interpreter shutdown gloo's
        threads can abort the rank: PyTorch #190489); MPI finalises at exit, a caller's group stays theirs."""
        if self.comm is not None and not self.lost and getattr(self.comm, "owns_group", False):
            self.comm.close()

    def finish(self, code: int) -> NoReturn:
        """End the process with ``code`` once every rank is done (after a last bounded barrier).

        With other ranks, this closes the group and exits at once, skipping the interpreter's
        shutdown: the launcher stops the remaining ranks as soon as one exits non-zero, and Python
        restores the default SIGTERM handler while it shuts down, so a rank still tearing down would
        die of that signal instead of exiting with ``code``. A world of one raises ``SystemExit``.
        """
        if self.comm is None:
            raise SystemExit(code)
        self.close()
        flush_and_exit(code)

    def abandon(self, code: int) -> NoReturn:
        """End this process now, without the shutdown collectives that would wait for lost ranks.

        Under MPI this is ``MPI_Abort(code)``: the launcher ends every rank, a hung one included.
        """
        if self.comm is None:
            flush_and_exit(code)
        self.comm.abandon(code)

    def _wait(self, pending: Any, timeout_s: float | None, where: str) -> None:
        if self.lost:
            raise RankLost(f"rank {self.rank}: another rank was lost earlier; no collective can run "
                           f"({where})", where=where)
        try:
            pending.wait(timeout_s)
        except WaitTimeout:
            self.lost = True
            waited = "the time allowed" if timeout_s is None else f"{timeout_s:g} s"
            raise RankLost(
                f"rank {self.rank}: no word from some rank within {waited} at {where}: a rank died, "
                f"hangs or was stopped (${RANK_TIMEOUT_ENV} sets the wait)", where=where, timeout_s=timeout_s
            ) from None
        except PeerLost as exc:
            self.lost = True
            raise RankLost(f"rank {self.rank}: lost contact with another rank at {where}: {exc}",
                           where=where, timeout_s=timeout_s) from exc


def _topology(names: list[str], rank: int) -> dict[str, Any]:
    """Hosts in order of their lowest rank, each rank's host index, this rank's place on its host."""
    host_names = tuple(dict.fromkeys(names))
    index = {name: i for i, name in enumerate(host_names)}
    host_of_rank = tuple(index[n] for n in names)
    mine = host_of_rank[rank]
    return {"host_names": host_names, "host_of_rank": host_of_rank, "node": mine,
            "local_rank": host_of_rank[:rank].count(mine), "local_world": host_of_rank.count(mine)}


def _connect(comm: Any, launch: Launch, timeout_s: float) -> Dist:
    hostname = socket.gethostname()
    rank, world = comm.Get_rank(), comm.Get_size()
    names = comm.allgather(hostname)  # the one start-up collective behind hosts() and local ranks
    return Dist(rank=rank, world=world, hostname=hostname, comm=comm, launcher=launch.launcher,
                rank_timeout_s=timeout_s, **_topology(names, rank))


def _init_torchrun(world: int, launch: Launch | None = None, timeout_s: float | None = None) -> Dist:
    try:
        import torch  # noqa: PLC0415 - imported only under torchrun
        import torch.distributed as tdist  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError(
            f"launched by torchrun as one of {world} ranks but torch is not installed; "
            "run: pip install 'dl-driver[torch]'"
        ) from exc
    if not tdist.is_available():
        raise RuntimeError("launched by torchrun but this torch build has no torch.distributed")
    timeout_s = resolve_rank_timeout(timeout_s)
    created = not tdist.is_initialized()
    if created:  # a caller (a user's script) may have initialised it already
        import datetime  # noqa: PLC0415

        # Blocking collectives (listing bcast, result gather) may wait on slow work, hence the long
        # group timeout; the per-step exchange has its own bound (rank_timeout_s).
        group_timeout = datetime.timedelta(seconds=max(1800.0, timeout_s))
        tdist.init_process_group("gloo", init_method="env://", timeout=group_timeout)
    comm = TorchComm(tdist, torch, owns_group=created)
    if comm.Get_size() != world:
        raise RuntimeError(f"torch.distributed has {comm.Get_size()} ranks but WORLD_SIZE is {world}")
    return _connect(comm, launch or Launch("torchrun", backend="torch"), timeout_s)


def _init_mpi(launch: Launch, timeout_s: float | None) -> Dist:
    shown = launch.world if launch.world is not None else "several"
    try:
        from mpi4py import MPI  # noqa: PLC0415 - imported only under a launcher
    except ImportError as exc:
        raise RuntimeError(
            f"launched by {launch.launcher} as one of {shown} MPI ranks but mpi4py is not installed; "
            "run: pip install 'dl-driver[mpi]'"
        ) from exc
    comm = MpiComm(MPI.COMM_WORLD, MPI)
    if launch.world is not None and comm.Get_size() != launch.world:
        hint = " (srun needs an MPI plugin: srun --mpi=pmix or --mpi=pmi2)" if launch.launcher == "slurm" else ""
        raise RuntimeError(f"{launch.launcher} started {launch.world} ranks but MPI sees {comm.Get_size()}{hint}; "
                           "every rank would run the whole workload")
    return _connect(comm, launch, resolve_rank_timeout(timeout_s))


def init(*, rank_timeout_s: float | None = None) -> Dist:
    """Find this process's rank, world and host, and connect the ranks.

    Under an MPI-style launcher mpi4py must be installed (``pip install 'dl-driver[mpi]'``); without it
    every rank would believe it is rank 0 of 1, which silently multiplies the work, so that is an
    error. Under torchrun (and no MPI launcher) the collectives go through ``torch.distributed``
    with the gloo backend (an already initialised group is reused). ``rank_timeout_s`` bounds the
    waits of :meth:`Dist.step_status` (default ``$DL_DRIVER_RANK_TIMEOUT_S`` or 300 s).
    """
    launch = detect()
    timeout_s = resolve_rank_timeout(rank_timeout_s)
    if not launch.is_distributed:
        return Dist(launcher=launch.launcher, rank_timeout_s=timeout_s)
    if launch.backend == "torch":
        return _init_torchrun(launch.world or 1, launch, timeout_s)
    return _init_mpi(launch, timeout_s)
