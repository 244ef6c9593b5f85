"""The two ways ranks talk (mpi4py, torch.distributed over gloo), behind one small interface.

:class:`dlio_core.dist.Dist` needs the four object collectives every run uses (barrier, bcast,
allgather, gather; spelled as mpi4py spells them) and three non-blocking operations on small buffers
that it can wait on with a deadline: an int64 MAX all-reduce, a byte broadcast and a barrier. A wait
that passes its deadline raises :class:`WaitTimeout`; a backend that reports a broken peer (gloo's
"Connection reset by peer", an MPI error) raises :class:`PeerLost`. Neither backend can cancel a
collective that never completed, so after either error the process must not run another collective
and must not wait in MPI_Finalize: :meth:`abandon` ends it (``MPI_Abort`` ends every rank under an MPI
launcher; under torchrun the agent stops the others when this one exits).

Example (a world of one under MPI needs no launcher; ``LocalComm`` is the world of one without MPI):
    >>> import numpy as np
    >>> from dlio_core.collectives import LocalComm
    >>> c = LocalComm()
    >>> out = np.zeros(1, np.int64)
    >>> c.start_allreduce_max(np.array([7], np.int64), out).wait(1.0)
    >>> int(out[0])
    7
"""

from __future__ import annotations

import datetime
import os
import re
import sys
import time
from typing import Any, NoReturn

import numpy as np

__all__ = ["WaitTimeout", "PeerLost", "LocalComm", "MpiComm", "TorchComm", "flush_and_exit", "MESSAGE_BYTES",
           "one_line", "encode_message", "decode_message"]

MESSAGE_BYTES = 1024  # a failing rank's one-line message travels in a fixed buffer: no size exchange

# MPI moves a non-blocking collective along only while its ranks call Test, so a rank that sleeps
# stalls the others: poll, yielding the core (ranks may outnumber cores), for as long as a step's
# straggler usually takes, and only then sleep in growing steps (a long wait: a slow or lost rank).
_SPIN_S = 100e-6  # first, Test without yielding: an idle core answers in microseconds (a yield can cost a time slice)
_YIELD_S = 0.05
_FIRST_SLEEP_S = 50e-6
_MAX_SLEEP_S = 0.001


class WaitTimeout(TimeoutError):
    """A collective did not complete before its deadline (some rank never joined it)."""


class PeerLost(RuntimeError):
    """The backend reported that the connection to another rank broke (the rank died)."""


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe must not keep the process alive
            pass


def flush_and_exit(code: int) -> NoReturn:
    """Flush stdout/stderr and end the process at once (no atexit handlers, no MPI_Finalize)."""
    _flush_stdio()
    os._exit(code)


class _Done:
    """A completed operation (world of one)."""

    def wait(self, timeout_s: float | None) -> None:
        return None


class LocalComm:
    """A world of one: every collective returns its own input."""

    def Get_rank(self) -> int:  # noqa: N802 - mpi4py's spelling
        return 0

    def Get_size(self) -> int:  # noqa: N802
        return 1

    def Barrier(self) -> None:  # noqa: N802
        return None

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def allgather(self, obj: Any) -> list[Any]:
        return [obj]

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        return [obj]

    def start_allreduce_max(self, send: np.ndarray, out: np.ndarray) -> _Done:
        out[...] = send
        return _Done()

    def start_bcast_bytes(self, buf: np.ndarray, root: int) -> _Done:
        return _Done()

    def start_barrier(self) -> _Done:
        return _Done()

    def close(self) -> None:
        return None

    def abandon(self, code: int) -> NoReturn:
        flush_and_exit(code)


class _MpiPending:
    def __init__(self, request: Any, mpi: Any) -> None:
        self._req, self._mpi = request, mpi

    def wait(self, timeout_s: float | None) -> None:
        """Poll the request (which also drives MPI's progress) until it completes or the deadline passes."""
        now = time.monotonic()
        deadline = None if timeout_s is None else now + timeout_s
        spin_until, yield_until, delay = now + _SPIN_S, now + _YIELD_S, _FIRST_SLEEP_S
        try:
            while not self._req.Test():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise WaitTimeout(f"not complete after {timeout_s:g} s")
                if now < spin_until:
                    continue
                if now < yield_until:
                    os.sched_yield()
                else:
                    time.sleep(delay)
                    delay = min(delay * 2, _MAX_SLEEP_S)
        except self._mpi.Exception as exc:
            raise PeerLost(f"MPI error: {exc}") from exc


class MpiComm:
    """mpi4py's communicator (object collectives unchanged) plus the deadline-bounded operations."""

    def __init__(self, comm: Any, mpi: Any) -> None:
        self._comm, self._mpi = comm, mpi

    def Get_rank(self) -> int:  # noqa: N802
        return int(self._comm.Get_rank())

    def Get_size(self) -> int:  # noqa: N802
        return int(self._comm.Get_size())

    def Barrier(self) -> None:  # noqa: N802
        self._comm.Barrier()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self._comm.bcast(obj, root=root)

    def allgather(self, obj: Any) -> list[Any]:
        return self._comm.allgather(obj)

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        return self._comm.gather(obj, root=root)

    def start_allreduce_max(self, send: np.ndarray, out: np.ndarray) -> _MpiPending:
        return _MpiPending(self._comm.Iallreduce(send, out, op=self._mpi.MAX), self._mpi)

    def start_bcast_bytes(self, buf: np.ndarray, root: int) -> _MpiPending:
        return _MpiPending(self._comm.Ibcast(buf, root=root), self._mpi)

    def start_barrier(self) -> _MpiPending:
        return _MpiPending(self._comm.Ibarrier(), self._mpi)

    def close(self) -> None:
        if not self._mpi.Is_finalized():
            self._mpi.Finalize()

    def abandon(self, code: int) -> NoReturn:
        """``MPI_Abort``: the launcher ends every rank (including one that hangs) with ``code``."""
        _flush_stdio()
        self._comm.Abort(code)
        flush_and_exit(code)  # not reached under a launcher; a singleton's Abort may return


def _gloo_text(exc: BaseException) -> str:
    """gloo's error on one line, without its source location and its generic advice."""
    text = re.sub(r"\[[^\]]*\.(?:cc|cpp|h):\d+\]\s*", "", " ".join(str(exc).split()))
    return text.split(" This is typically caused", 1)[0][:300]


class _TorchPending:
    def __init__(self, work: Any, out: np.ndarray | None = None, tensor: Any = None) -> None:
        self._work, self._out, self._tensor = work, out, tensor

    def wait(self, timeout_s: float | None) -> None:
        try:
            if timeout_s is None:
                self._work.wait()
            else:
                self._work.wait(timeout=datetime.timedelta(seconds=timeout_s))
        except RuntimeError as exc:
            text = _gloo_text(exc)
            if "timed out" in text.lower():
                raise WaitTimeout(f"not complete after {timeout_s:g} s") from exc
            raise PeerLost(text) from exc
        if self._out is not None:
            self._out[...] = self._tensor.numpy()


class TorchComm:
    """The same interface over ``torch.distributed`` (gloo): object collectives and async tensor work.
    ``owns_group``: this process group was created by dl-driver (not by a caller), so dl-driver leaves it."""

    def __init__(self, tdist: Any, torch: Any, *, owns_group: bool = False) -> None:
        self._d, self._torch = tdist, torch
        self.owns_group = owns_group

    def Get_rank(self) -> int:  # noqa: N802
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

    def start_allreduce_max(self, send: np.ndarray, out: np.ndarray) -> _TorchPending:
        tensor = self._torch.from_numpy(send.copy())
        work = self._d.all_reduce(tensor, op=self._d.ReduceOp.MAX, async_op=True)
        return _TorchPending(work, out, tensor)

    def start_bcast_bytes(self, buf: np.ndarray, root: int) -> _TorchPending:
        tensor = self._torch.from_numpy(buf)  # shares memory: the received bytes land in buf
        return _TorchPending(self._d.broadcast(tensor, src=root, async_op=True))

    def start_barrier(self) -> _TorchPending:
        return _TorchPending(self._d.barrier(async_op=True))

    def close(self) -> None:
        if self._d.is_initialized():
            self._d.destroy_process_group()

    def abandon(self, code: int) -> NoReturn:
        """Exit now: destroying the group would wait for ranks that are gone; torchrun stops the others."""
        flush_and_exit(code)


def one_line(message: str) -> str:
    r"""``message`` with every run of whitespace (newlines too) made one space.

    Example:
        >>> one_line("short read\n  in f.npz")
        'short read in f.npz'
    """
    return " ".join(str(message).split())


def encode_message(text: str) -> np.ndarray:
    r"""``text`` as one line in a zero-padded :data:`MESSAGE_BYTES` buffer, ready to broadcast.

    A longer message keeps both ends: a wrapped error (a worker's traceback) ends with the cause.

    Example:
        >>> decode_message(encode_message("rank 1:\n short read"))
        'rank 1: short read'
    """
    raw = one_line(text).encode("utf-8")
    if len(raw) > MESSAGE_BYTES:
        raw = raw[:256] + b" ... " + raw[len(raw) - (MESSAGE_BYTES - 261):]
    buf = np.zeros(MESSAGE_BYTES, np.uint8)
    buf[: len(raw)] = np.frombuffer(raw, np.uint8)
    return buf


def decode_message(buf: np.ndarray) -> str:
    """The text :func:`encode_message` put in ``buf``; a cut inside a UTF-8 sequence loses that character only."""
    return bytes(buf).rstrip(b"\0").decode("utf-8", errors="ignore")
