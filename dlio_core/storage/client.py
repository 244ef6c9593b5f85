"""The lazy, fork-safe, retrying, redacting client holder under every fsspec-based backend.

* **Lazy, per process.** An instance keeps the root URI and the options only. The file system client
  is built on first use in each process and rebuilt when the pid changes (a fork) or after
  ``os.register_at_fork`` tells us the process forked; ``__getstate__`` drops it, so a pickled
  storage travels to spawn- and fork-started workers without a live client (async clients hang
  after fork, fsspec #835). A forked child never closes the parent's client (that would close
  connections the parent still pools).
* **Bounded retries, one place.** Client-side retries are turned down where the client allows, and
  whole operations are retried by :class:`~dlio_core.storage.retry.RetryPolicy`; the last error is a
  one-line :class:`StorageError` that names the URI, never a secret.
* **Options typed and checked.** Each backend's options are one frozen dataclass
  (:mod:`~dlio_core.storage.options`), validated when built; keys dl-driver does not map go to the
  client's constructor, and a name it does not take is an error with the nearest valid one.

Example:
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage("s3://bkt/data", {"secret_access_key": "s3cr3t-value"})
    >>> st._fs is None, "s3cr3t" in repr(st), st._scrub("bad key s3cr3t-value")
    (True, False, 'bad key ***')
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from dlio_core.redact import redact_message, secret_values
from dlio_core.storage.backend import (CAUSE_INPUT, CAUSE_TIMEOUT, CAUSE_UNREACHABLE, StorageError,
                                       StorageNotFoundError)
from dlio_core.storage.options import ClientOptions
from dlio_core.storage.retry import DeadlineExceeded, RetryExhausted, RetryPolicy, is_transient, status_of
from dlio_core.storage.uri import join_uri, redact_uri, split_scheme

__all__ = ["LazyClient", "byte_view"]

# Keys fsspec's base class takes in every file system.
_FSSPEC_KEYS = {"use_listings_cache", "listings_expiry_time", "max_paths", "skip_instance_cache"}

_LIVE: weakref.WeakSet[LazyClient] = weakref.WeakSet()
_CLIENT_LOCK = threading.Lock()


# The parent's clients, as inherited by a forked child: kept referenced and never used or closed
# there. Closing one would close connections the parent still has in its pool (measured: the
# parent's next request then waited for its 60 s read timeout).
_ORPHANS: list[Any] = []


def _after_fork_in_child() -> None:
    # The parent's clients (and the lock, if a thread held it) are unusable here; build new ones.
    global _CLIENT_LOCK
    _CLIENT_LOCK = threading.Lock()
    for st in list(_LIVE):
        if st.__dict__.get("_fs") is not None:
            _ORPHANS.append(st.__dict__["_fs"])
        st.__dict__["_fs"] = None
        st.__dict__["_fs_pid"] = None
        st.__dict__["_root_ready"] = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def byte_view(buffer: Any, what: str) -> memoryview:
    """A writable, flat ``B`` memoryview of ``buffer``; ``StorageError`` naming ``what`` otherwise.

    Example:
        >>> byte_view(bytearray(4), "x").nbytes
        4
    """
    try:
        mv = memoryview(buffer)
        if not mv.c_contiguous:
            raise BufferError("not C-contiguous")
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
    except (TypeError, ValueError, BufferError) as e:
        raise StorageError(f"read_into {what}: the destination must be a C-contiguous buffer ({e})") from None
    if mv.readonly:
        raise StorageError(f"read_into {what}: the destination buffer is read-only")
    return mv


class LazyClient:
    """Root URI, options and a per-process fsspec client; subclasses add the Storage methods.

    Subclasses name their options class (``options_class``), say how those options become client
    kwargs (``_client_kwargs``), which class the client is (``_fs_class``) and may adjust a new
    client (``_configure``).
    """

    scheme: ClassVar[str] = ""
    extra: ClassVar[str] = ""
    client_module: ClassVar[str] = ""   # the import that must work ("s3fs")
    option_hint: ClassVar[str] = "storage.storage_options"
    options_class: ClassVar[type[ClientOptions]] = ClientOptions

    def __init__(self, root: str, options: Mapping[str, Any] | None = None) -> None:
        scheme, rest = split_scheme(root)
        if scheme is None or not rest.strip("/"):
            raise StorageError(f"{type(self).__name__} needs a URI like {self.scheme}://bucket/prefix, got "
                               f"{redact_uri(str(root))!r}")
        if redact_uri(root) != root and "@" in root.split("/", 3)[2]:
            raise StorageError(f"{redact_uri(root)}: credentials inside the URI are not accepted (URIs end up in "
                               f"logs and reports); pass them in {self.option_hint} or the environment")
        self._scheme = scheme
        self._options: dict[str, Any] = dict(options or {})
        self._url = redact_uri(root).rstrip("/")
        self._require_client()
        self.options = self.options_class.parse(self._options, where=self._url)
        self._kwargs: dict[str, Any] = self._client_kwargs(self.options, root)
        self._retry: RetryPolicy = self.options.retry
        self._base = self._strip(root).rstrip("/")
        # Every string option value that could be a credential: masked in any text we emit.
        self._secrets = secret_values(self._options)
        self._fs: Any = None
        self._fs_pid: int | None = None
        self._root_ready = False
        _LIVE.add(self)

    # -- what subclasses provide -----------------------------------------------------------------
    def _fs_class(self) -> type:
        """The fsspec file system class (imported lazily)."""
        raise NotImplementedError

    def _client_kwargs(self, options: Any, root: str) -> dict[str, Any]:
        """Constructor kwargs for ``_fs_class()``, from this backend's typed options."""
        raise NotImplementedError

    async def _create_root(self, fs: Any, bucket: str) -> None:
        """Create the bucket or container ``bucket``; must tolerate it already existing."""
        await fs._mkdir(bucket, create_parents=True)

    def _check_passthrough(self, extra: Mapping[str, Any]) -> None:
        """Options we do not map go to the client's constructor; a name it does not take is an error
        naming the nearest valid one (nothing is silently ignored)."""
        ours = self.options_class.keys()
        cls = self._fs_class()
        allowed = set(_FSSPEC_KEYS)
        for c in cls.__mro__:  # subclasses may take **kwargs only (gcsfs's extended file system)
            if "__init__" in c.__dict__:
                allowed |= set(inspect.signature(c.__dict__["__init__"]).parameters)
        allowed -= {"self", "kwargs", "args", "loop", "asynchronous"}
        for k in extra:
            if k not in allowed:
                near = difflib.get_close_matches(k, sorted(allowed | ours), n=1)
                hint = f"; did you mean {near[0]}?" if near else ""
                raise StorageError(f"storage.storage_options.{k} is not an option of the {self.scheme}:// backend "
                                   f"({self._url}){hint} (dl-driver's: {', '.join(sorted(ours))}; others go to "
                                   f"{cls.__module__.split('.')[0]}.{cls.__name__})")

    def endpoint(self) -> str:
        """Where requests go, for error messages (no secrets)."""
        return ""

    def _configure(self, fs: Any) -> None:
        """Adjust a freshly built client (settings its constructor does not take)."""

    # -- pickling and identity -------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fs"] = None  # never pickle a live client: it is rebuilt in the receiving process
        state["_fs_pid"] = None
        state["_root_ready"] = False
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        _LIVE.add(self)

    def __repr__(self) -> str:
        names = ", ".join(sorted(self._options))
        return f"{type(self).__name__}({self._url!r}, options=[{names}])"

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and other._url == self._url  # type: ignore[attr-defined]
                and other._options == self._options)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._url))

    @property
    def url(self) -> str:
        """The root as a URI, without credentials."""
        return self._url

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy every operation runs under."""
        return self._retry

    # -- the client ------------------------------------------------------------------------------
    def _require_client(self) -> None:
        try:
            importlib.import_module(self.client_module)
        except ImportError as e:
            raise StorageError(
                f"{self._url} needs the {self.client_module} package, which is not installed ({e}); "
                f"run: pip install 'dl-driver[{self.extra}]'") from None

    @property
    def fs(self) -> Any:
        """The fsspec file system of this process (built on first use, rebuilt after fork)."""
        fs = self._fs
        if fs is not None and self._fs_pid == os.getpid():
            return fs
        with _CLIENT_LOCK:
            if self._fs is None or self._fs_pid != os.getpid():
                if self._fs is not None:
                    _ORPHANS.append(self._fs)  # inherited through fork: never close it here
                try:
                    fs = self._fs_class()(**self._kwargs)
                    self._configure(fs)
                    self._fs = fs
                except Exception as e:  # bad option names or values surface here
                    raise StorageError(f"cannot set up the client for {self._url}: {self._scrub(e)}; "
                                       f"check {self.option_hint}") from None
                self._fs_pid = os.getpid()
                self._root_ready = False
            return self._fs

    def _strip(self, uri: str) -> str:
        return self._fs_class()._strip_protocol(uri)

    def _full(self, path: str) -> str:
        """The client's path (``bucket/key``) for a relative path or a URI of this scheme."""
        scheme, _ = split_scheme(path)
        if scheme is not None:
            if scheme != self._scheme and not (self._scheme in _AZ and scheme in _AZ):
                raise StorageError(f"{redact_uri(path)} is not under {self._url}")
            return self._strip(path).rstrip("/")
        rel = path.strip("/")
        return f"{self._base}/{rel}" if rel else self._base

    def uri(self, path: str) -> str:
        """The full URI of ``path`` (for messages and reports; no secrets).

        Example:
            >>> from dlio_core.storage import open_storage
            >>> open_storage("s3://bkt/data").uri("train/a.npz")   # doctest: +SKIP
            's3://bkt/data/train/a.npz'
        """
        scheme, _ = split_scheme(path)
        return redact_uri(path) if scheme is not None else join_uri(self._url, path)

    def _scrub(self, exc: BaseException | str) -> str:
        return redact_message(exc, self._secrets)

    def _run(self, action: str, path: str, factory: Callable[[Any], Any], *, retry: bool = True,
             deadline: bool = True) -> Any:
        """Run ``factory(fs)`` (a coroutine) on the client's loop under the retry policy; turn every
        failure into a one-line StorageError naming the URI and its ``cause``.

        With ``deadline`` the whole operation ends by ``total_timeout_s``: a request still waiting then
        is cancelled. Whole-file transfers (checkpoint uploads and downloads) pass False: their time
        grows with their size, and the per-request timeouts still bound a stalled server.
        """
        from fsspec.asyn import sync

        def once(left_s: float | None) -> Any:
            fs = self.fs
            return sync(fs.loop, factory, fs, timeout=max(left_s, 1e-3) if left_s is not None else None)

        policy = self._retry if deadline else RetryPolicy(max_attempts=self._retry.max_attempts)
        where = redact_uri(self.endpoint())  # an endpoint from the environment may carry credentials
        server = f" at {where}" if where else ""
        try:
            return policy.call_within(once) if retry else once(policy.total_timeout_s)
        except DeadlineExceeded as e:
            raise StorageError(
                f"cannot {action} {self.uri(path)}: no answer{server} within the total deadline of "
                f"{e.deadline_s:g} s ({e.attempts} attempt(s), the last: {type(e.last).__name__}); "
                f"is the server stalled? ({self.option_hint}.total_timeout_s sets the deadline)",
                cause=CAUSE_TIMEOUT) from None
        except RetryExhausted as e:
            timed_out = any(isinstance(x, TimeoutError) or "Timeout" in type(x).__name__
                            for x in (e.last, e.last.__cause__) if x is not None)
            answered = _service_answer(e.last)
            question = (f"the server{server} answered {answered} to every try (overloaded?)" if answered
                        else f"is the server{server} reachable?")
            raise StorageError(
                f"cannot {action} {self.uri(path)}: {self._scrub(e)}; {question} "
                f"({self.option_hint}.{self.options_class.key_of('max_attempts')} sets the number of tries)",
                cause=CAUSE_TIMEOUT if timed_out else CAUSE_UNREACHABLE) from None
        except StorageError:
            raise
        except FileNotFoundError as e:
            raise StorageNotFoundError(f"cannot {action} {self.uri(path)}: not found ({self._scrub(e)})") from None
        except PermissionError as e:
            raise StorageError(f"cannot {action} {self.uri(path)}: permission denied ({self._scrub(e)}); "
                               f"check the credentials in {self.option_hint} or the environment") from None
        except Exception as e:
            raise StorageError(f"cannot {action} {self.uri(path)}: {type(e).__name__}: {self._scrub(e)}",
                               cause=CAUSE_UNREACHABLE if is_transient(e) else CAUSE_INPUT) from None


_AZ = ("az", "abfs", "abfss")


def _service_answer(exc: BaseException) -> str:
    """``HTTP 503 SlowDown``: the status and error code a server answered with, found anywhere in the
    chain of causes (s3fs turns SlowDown into ``OSError(EBUSY)`` and keeps the answer as the cause)."""
    e: BaseException | None = exc
    for _ in range(6):
        if e is None:
            break
        status, code = status_of(e)
        if status or code:
            return " ".join(x for x in (f"HTTP {status}" if status else "", code or "") if x)
        e = e.__cause__ or e.__context__
    return ""
