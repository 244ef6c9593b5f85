"""``background_map``: ``map(fn, source)`` run ahead on a background thread, at most ``depth`` results out.

The framework plugins use it to copy engine batches to a device while the consumer's step runs
(double-buffering with ``depth=2``: the batch the step uses and the next one being copied). It imports
no framework: the transform ``fn`` and the consumer-side hook ``on_ready`` carry the framework code.

How it works: one thread (started on the consumer's first ``next()``) takes items from ``source``,
acquires one of ``depth`` slots, and puts ``fn(item)`` on a queue. A slot is held from the moment its
``fn`` starts until the consumer asks for the result after it (so ``next()`` means "the previous step is
over"): at most ``depth`` results, the one the consumer holds included, exist at once. Results keep
``source``'s order. An exception in ``source`` or in ``fn`` is raised in the consumer (after the results
before it). When the source ends, fails, or the consumer closes the generator (``close()``, ``break``
in a ``for``, garbage collection), the thread stops, ``source.close()`` is called (when it has one) on the
thread, and the consumer joins the thread before returning: no thread outlives the iteration. An item
taken from ``source`` after the consumer closed is passed to ``on_drop`` (e.g. to give a pooled buffer
back) instead of to ``fn``.

Example:
    >>> import threading
    >>> from dlio_core.prefetch import background_map
    >>> out = background_map(iter(range(5)), lambda x: x * x, name="squares")
    >>> list(out)
    [0, 1, 4, 9, 16]
    >>> out = background_map(iter(range(100)), str, depth=2, name="early")
    >>> next(out), next(out)
    ('0', '1')
    >>> out.close()  # stops and joins the thread
    >>> any(t.name == "early" for t in threading.enumerate())
    False
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Generator, Iterator, TypeVar

__all__ = ["background_map"]

T = TypeVar("T")
U = TypeVar("U")

_END = object()
_POLL_S = 0.1  # how often a thread waiting for a slot checks whether the consumer closed


def background_map(source: Iterator[T], fn: Callable[[T], U], *, depth: int = 2, name: str,
                   on_ready: Callable[[U], None] | None = None,
                   on_drop: Callable[[T], None] | None = None) -> Generator[U, None, None]:
    """Yield ``fn(item)`` for each item of ``source``, in order, computed ahead on a thread named ``name``.

    ``depth`` (>= 1) bounds the results that exist at once, the one the consumer holds included
    (``depth=1``: no overlap, ``fn`` of the next item starts when the consumer asks for it).
    ``on_ready(result)`` runs on the consumer's thread just before each result is yielded (e.g. make
    the consumer's CUDA stream wait on the copy). ``on_drop(item)`` gets an item the thread took from
    ``source`` but did not map because the consumer had closed. The thread starts on the first
    ``next()``: a generator closed before that starts none and leaves ``source`` as it was. See the module.
    """
    if depth < 1:  # checked here, not on the first next(): this function is not itself a generator
        raise ValueError(f"depth must be >= 1, got {depth}")
    return _run(source, fn, depth, name, on_ready, on_drop)


def _run(source: Iterator[T], fn: Callable[[T], U], depth: int, name: str, on_ready: Callable[[U], None] | None,
         on_drop: Callable[[T], None] | None) -> Generator[U, None, None]:
    slots = threading.Semaphore(depth)
    ready: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def worker() -> None:
        try:
            for item in source:
                while not slots.acquire(timeout=_POLL_S):  # a free slot; never hang once closed
                    if stop.is_set():
                        break
                if stop.is_set():
                    if on_drop is not None:
                        on_drop(item)
                    return
                ready.put((fn(item),))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            ready.put(exc)
        finally:
            try:
                close = getattr(source, "close", None)
                if close is not None:
                    close()  # e.g. stops the engine's reader threads
            except BaseException as exc:
                ready.put(exc)
            finally:
                ready.put(_END)

    thread = threading.Thread(target=worker, name=name, daemon=True)
    thread.start()
    held = False
    try:
        while True:
            if held:  # the consumer asked for the next result: the previous one's step is over
                slots.release()
                held = False
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            (result,) = item
            held = True
            if on_ready is not None:
                on_ready(result)
            yield result
    finally:
        stop.set()
        slots.release()  # wake a worker waiting for a slot
        thread.join()
