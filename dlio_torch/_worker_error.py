"""An error raised in a DataLoader worker, carried to the main process whole.

PyTorch re-raises a worker's error as ``type(exc)(text)``, where ``text`` is the worker's whole
traceback: the one-line message a run prints becomes a 1.2 KB line, and the exception's attributes
and causes are lost (a ``StorageError``'s ``cause``, the ``StorageError`` a ``ReadError`` was raised
from), which decide the exit code (1: the storage failed; 2: the data is wrong). A dataset whose
consumer knows this protocol yields a :class:`WorkerError` instead of raising; the consumer calls
:func:`raise_if_error` on each item, which raises the same exception, message, attributes and chain of
causes as in one process, with the worker's traceback as a note (``--debug`` shows it).

Example:
    >>> from dlio_core.storage import StorageError
    >>> try:
    ...     try:
    ...         raise StorageError("cannot read s3://b/k: no answer", cause="timeout")
    ...     except StorageError as e:
    ...         raise ValueError("reading s3://b/k failed") from e
    ... except ValueError as e:
    ...     carried = WorkerError.capture(e)
    >>> import pickle
    >>> again = pickle.loads(pickle.dumps(carried)).exception()
    >>> str(again), again.__cause__.cause
    ('reading s3://b/k failed', 'timeout')
"""

from __future__ import annotations

import pickle
import traceback
from typing import Any, Iterator

__all__ = ["WorkerError", "carrying_errors", "raise_if_error"]

_MAX_CHAIN = 16


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # an exception of a type that cannot travel: its type and message still do
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class WorkerError:
    """An exception, its chain of causes and the worker's traceback, as picklable values."""

    def __init__(self, chain: list[BaseException], where: str) -> None:
        self.chain, self.where = chain, where

    @classmethod
    def capture(cls, exc: BaseException) -> "WorkerError":
        """Take ``exc`` (being handled now) and its causes."""
        chain: list[BaseException] = []
        e: BaseException | None = exc
        while e is not None and len(chain) < _MAX_CHAIN and all(e is not c for c in chain):
            chain.append(e)
            e = e.__cause__ or e.__context__
        where = "".join(traceback.format_exception(exc)).rstrip()
        copies = []
        for c in chain:  # travel without their tracebacks and links (rebuilt by exception())
            c.__cause__ = c.__context__ = None
            c.__traceback__ = None
            copies.append(_picklable(c))
        return cls(copies, where)

    def exception(self) -> BaseException:
        """The first exception, its causes linked again, the worker's traceback as a note."""
        for outer, inner in zip(self.chain, self.chain[1:]):
            outer.__cause__ = inner
        first = self.chain[0]
        first.add_note(f"raised in a DataLoader worker:\n{self.where}")
        return first


def carrying_errors(items: Iterator[Any]) -> Iterator[Any]:
    """``items``, then a :class:`WorkerError` in place of the exception that ended them, if any."""
    try:
        yield from items
    except Exception as exc:
        yield WorkerError.capture(exc)


def raise_if_error(item: Any) -> Any:
    """``item``, unless it is a :class:`WorkerError`: then its exception is raised."""
    if isinstance(item, WorkerError):
        raise item.exception()
    return item
