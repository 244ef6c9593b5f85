"""Bounded retries with exponential backoff and jitter, and the test for "is this error transient?".

Object-store clients each retry in their own way (botocore per request, s3fs around some errors,
gcsfs six times with up to 32 s sleeps, azure-core with 15 s backoffs). dl-driver retries whole
operations here instead, so every backend honours one setting (DLIO's ``s3_max_attempts``) and a
server that is gone ends the run within a known time instead of hanging: at most ``max_attempts``
tries, sleeps growing from ``base_delay_s`` and capped at ``max_delay_s``, and, with
``total_timeout_s``, one deadline for the whole operation, tries and sleeps together. Per-request
timeouts alone do not bound a stalled server (one that accepts connections and never answers):
60 s read timeout x 5 tries kept a run blocked for more than 197 s.

Example:
    >>> calls = []
    >>> def flaky():
    ...     calls.append(1)
    ...     if len(calls) < 3:
    ...         raise ConnectionResetError("reset by peer")
    ...     return "ok"
    >>> RetryPolicy(max_attempts=5, base_delay_s=0.0).call(flaky), len(calls)
    ('ok', 3)
"""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["RetryPolicy", "RetryExhausted", "DeadlineExceeded", "is_transient", "status_of"]

T = TypeVar("T")

# Exception class names (anywhere in the MRO) that mean the request may succeed if tried again.
# Names, not classes: the client libraries are optional and imported lazily.
_TRANSIENT_NAMES = frozenset({
    "ConnectionError", "TimeoutError", "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError",
    "ConnectTimeoutError", "ClientConnectorError", "ServerDisconnectedError", "ClientPayloadError",
    "ClientOSError", "ServerTimeoutError", "IncompleteRead", "HTTPClientError", "ResponseParserError",
    "ServiceRequestError", "ServiceResponseError", "FSTimeoutError", "ProxyConnectionError", "ContentLengthError",
    "ConnectionResetError", "ConnectionRefusedError", "BrokenPipeError", "IncompleteReadError",
})
# Error codes object stores answer with when they are overloaded or briefly failing.
_TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeoutException",
    "InternalError", "ServiceUnavailable", "ServerBusy", "OperationTimedOut", "RequestLimitExceeded",
})
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
_TRANSIENT_ERRNO = frozenset({errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT,
                              errno.EPIPE, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EAGAIN})


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in seen and len(seen) < 10:
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen


def status_of(exc: BaseException) -> tuple[int | None, str | None]:
    """The HTTP status and service error code carried by a client exception, where it has them.

    Example:
        >>> class E(Exception): response = {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}
        >>> status_of(E())
        (503, 'SlowDown')
    """
    status: Any = None
    code: Any = None
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):  # botocore ClientError
        code = (resp.get("Error") or {}).get("Code")
        status = (resp.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    for attr in ("status_code", "status", "code"):  # azure-core, aiohttp, gcsfs HttpError
        v = getattr(exc, attr, None)
        if isinstance(v, int) and status is None:
            status = v
        elif isinstance(v, str) and code is None and attr == "code":
            code = v
    if code is None:
        code = getattr(exc, "error_code", None)
    try:
        status = int(status) if status is not None else None
    except (TypeError, ValueError):
        status = None
    return status, (str(code) if code else None)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is worth retrying.

    Missing objects and refused permissions never are; dropped connections, timeouts, throttling and
    5xx answers are.

    Example:
        >>> is_transient(ConnectionRefusedError()), is_transient(FileNotFoundError("k"))
        (True, False)
    """
    for e in _chain(exc):
        if isinstance(e, _PERMANENT):
            return False
        names = {c.__name__ for c in type(e).__mro__}
        if names & _TRANSIENT_NAMES:
            return True
        status, code = status_of(e)
        if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS:
            return True
        if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNO:
            return True
    return False


class RetryExhausted(Exception):
    """Raised by :meth:`RetryPolicy.call` when every attempt failed with a transient error.

    ``last`` is the final error, ``attempts`` how many tries were made, ``elapsed_s`` how long they took.
    """

    def __init__(self, last: BaseException, attempts: int, elapsed_s: float) -> None:
        super().__init__(f"{type(last).__name__}: {last} (after {attempts} attempt(s) in {elapsed_s:.1f} s)")
        self.last = last
        self.attempts = attempts
        self.elapsed_s = elapsed_s


class DeadlineExceeded(RetryExhausted):
    """Raised by :meth:`RetryPolicy.call_within` when the operation's total deadline passed first.

    ``deadline_s`` is that deadline; ``last`` the error of the last try (often the cut-off try's timeout).
    """

    def __init__(self, last: BaseException, attempts: int, elapsed_s: float, deadline_s: float) -> None:
        super().__init__(last, attempts, elapsed_s)
        self.deadline_s = deadline_s
        self.args = (f"no success within the total deadline of {deadline_s:g} s ({attempts} attempt(s); last: "
                     f"{type(last).__name__}: {last})",)


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` tries; before try ``k`` (k >= 2) sleep a random time in
    ``[d/2, d]`` with ``d = min(max_delay_s, base_delay_s * 2**(k-2))`` ("equal jitter").

    With the defaults a permanently failing call gives up after about 1.5 s of sleeping
    (0.1 + 0.2 + 0.4 + 0.8 s at most), plus whatever the client's own timeouts take per try.

    ``total_timeout_s`` (None: no deadline) bounds the whole operation: no try starts and no sleep
    begins after it, and :meth:`call_within` hands each try the seconds left, for the client to cut
    a request that is still waiting when the deadline comes.

    Example:
        >>> RetryPolicy(max_attempts=3).max_sleep_s
        0.30000000000000004
        >>> RetryPolicy(total_timeout_s=0.2).call_within(lambda left: round(left, 1))
        0.2
    """

    max_attempts: int = 5
    base_delay_s: float = 0.1
    max_delay_s: float = 5.0
    total_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if int(self.max_attempts) < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry delays must not be negative")
        if self.total_timeout_s is not None and not self.total_timeout_s > 0:
            raise ValueError(f"total_timeout_s must be a positive number of seconds, got {self.total_timeout_s}")

    def delay_s(self, attempt: int) -> float:
        """The upper bound of the sleep before try ``attempt`` (2, 3, ...)."""
        return min(self.max_delay_s, self.base_delay_s * 2 ** max(attempt - 2, 0))

    @property
    def max_sleep_s(self) -> float:
        """The most time spent sleeping between tries."""
        return sum(self.delay_s(k) for k in range(2, int(self.max_attempts) + 1))

    def call(self, fn: Callable[[], T], *, transient: Callable[[BaseException], bool] = is_transient) -> T:
        """``fn()``, tried again on transient errors; a permanent error is raised at once, and
        :class:`RetryExhausted` (chained to the last error) when no try succeeded, or
        :class:`DeadlineExceeded` when ``total_timeout_s`` passed first."""
        return self.call_within(lambda _left: fn(), transient=transient)

    def call_within(self, fn: Callable[[float | None], T], *,
                    transient: Callable[[BaseException], bool] = is_transient) -> T:
        """As :meth:`call`, but ``fn(left_s)`` gets the seconds left before the deadline (None when
        there is none), to bound the request it makes."""
        t0 = time.monotonic()
        deadline = None if self.total_timeout_s is None else t0 + self.total_timeout_s
        attempt = 1
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            try:
                return fn(left)
            except Exception as exc:
                if not transient(exc):
                    raise
                last: Exception = exc
                if attempt >= self.max_attempts:
                    raise RetryExhausted(exc, attempt, time.monotonic() - t0) from exc
            attempt += 1
            d = self.delay_s(attempt)
            sleep_s = random.uniform(d / 2, d) if d > 0 else 0.0
            if deadline is not None and time.monotonic() + sleep_s >= deadline:
                # The next try could not start before the deadline: give up now, not after the sleep.
                raise DeadlineExceeded(last, attempt - 1, time.monotonic() - t0,
                                       float(self.total_timeout_s or 0)) from last
            if sleep_s:
                time.sleep(sleep_s)
