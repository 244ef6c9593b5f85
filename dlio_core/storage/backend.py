"""The storage protocol and the scheme -> backend registry.

Every dataset and checkpoint byte goes through a :class:`Storage`. Paths handed to its methods are
relative to the storage root (``"train/img_07_of_16.npz"``) or absolute URIs/paths; ``url`` is the root
as a URI with no secrets in it. Backends are looked up by URI scheme in a registry modelled on
fsspec's ``known_implementations`` (:class:`~dlio_core.registry.Registry`): adding one is one
``register_backend`` line (or a ``dl_driver.storage`` entry point), and a scheme whose client is not
installed fails with an error naming the extra to install.

Objects keep only the root and options (never a live client), so they pickle into worker processes.

Example:
    >>> import tempfile
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> st.write_atomic("train/a.bin", b"hello")
    5
    >>> st.list_files("train", ".bin")
    [('train/a.bin', 5)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import IO, Any, Protocol, Union, runtime_checkable

from dlio_core.registry import Entry, Registry
from dlio_core.storage.uri import redact_uri, split_scheme

__all__ = [
    "Storage",
    "StorageError",
    "StorageNotFoundError",
    "CAUSE_INPUT",
    "CAUSE_UNREACHABLE",
    "CAUSE_TIMEOUT",
    "CAUSE_IO",
    "BACKENDS",
    "register_backend",
    "registered_schemes",
    "open_storage",
    "open_ranged",
    "ReadIntoRanged",
    "split_scheme",
    "redact_uri",
]

# A bytes-like object (bytes, bytearray, memoryview, C-contiguous numpy array).
Buffer = Any
Data = Union[Buffer, Sequence[Buffer]]


# Why a storage operation failed, as ``StorageError.cause``; the command's exit code follows from it.
CAUSE_INPUT = "input"              # a wrong URI, option or credential, a missing object: exit 2
CAUSE_UNREACHABLE = "unreachable"  # the server refused, reset or throttled every try: exit 1
CAUSE_TIMEOUT = "timeout"          # no answer within the per-request timeouts or the total deadline: exit 1
CAUSE_IO = "io"                    # the device failed under a valid request (disk full, I/O error): exit 1
CAUSES = (CAUSE_INPUT, CAUSE_UNREACHABLE, CAUSE_TIMEOUT, CAUSE_IO)


class StorageError(OSError):
    """A storage operation failed; the message names the path or URI and, where known, the fix.

    ``cause`` says why, set where the error is raised: ``"input"`` (the default: a bad URI or option,
    refused credentials, a missing object), ``"unreachable"``, ``"timeout"`` or ``"io"`` (the storage
    failed while the run was going). ``bad_input`` is True for the first only.

    Example:
        >>> StorageError("cannot read s3://b/k: no answer", cause="timeout").bad_input
        False
        >>> StorageError("s3://b: unknown option").cause
        'input'
    """

    def __init__(self, *args: Any, cause: str = CAUSE_INPUT) -> None:
        super().__init__(*args)
        if cause not in CAUSES:
            raise ValueError(f"StorageError cause must be one of {CAUSES}, got {cause!r}")
        self.cause = cause

    @property
    def bad_input(self) -> bool:
        """True when the input was wrong (exit 2), False when the storage failed while running (exit 1)."""
        return self.cause == CAUSE_INPUT


class StorageNotFoundError(StorageError, FileNotFoundError):
    """The named file or directory does not exist (also a ``FileNotFoundError``)."""


@runtime_checkable
class Storage(Protocol):
    """What every backend offers. Paths are relative to the root, or absolute URIs/paths.

    Optional: ``open_ranged(path)``, an object with ``read_into(buffer, offset)`` and ``close()`` for
    many ranged reads of one file (local files keep it open); callers go through :func:`open_ranged`,
    which falls back to ``read_into`` for backends without it."""

    @property
    def url(self) -> str:
        """The root as a URI (``file:///data/unet3d``), without credentials; for messages and
        reports, not for deciding what a storage can do (``local_path`` says that)."""
        ...

    def join(self, *parts: str) -> str:
        """Join path components with ``/`` (no I/O)."""
        ...

    def list_files(self, prefix: str = "", suffix: str = "") -> list[tuple[str, int]]:
        """Every file under ``prefix`` (recursively) whose name ends with ``suffix``, as sorted
        ``(relpath, size_bytes)`` pairs; one walk, never one request per object."""
        ...

    def size(self, path: str) -> int:
        """Size of one file in bytes."""
        ...

    def read_into(self, path: str, buffer: Buffer, offset: int = 0) -> int:
        """Fill the caller's writable ``buffer`` from byte ``offset`` of ``path``; return the bytes
        read (fewer than ``len(buffer)`` only at end of file)."""
        ...

    def read(self, path: str) -> bytes:
        """The whole file."""
        ...

    def write_atomic(self, path: str, data: Data, *, fsync: bool = False) -> int:
        """Write ``data`` (a buffer or a sequence of buffers) so that ``path`` appears only once
        complete; return the bytes written."""
        ...

    def open_write(self, path: str, *, fsync: bool = False) -> AbstractContextManager[IO[bytes]]:
        """A binary file object whose content becomes ``path`` atomically when the block exits
        normally; nothing appears at ``path`` if it raises."""
        ...

    def makedirs(self, path: str) -> None:
        """Create a directory and its parents (no-op where directories are implicit)."""
        ...

    def exists(self, path: str) -> bool:
        """Whether ``path`` names an existing file or directory."""
        ...

    def delete(self, path: str, *, missing_ok: bool = False) -> None:
        """Delete a file, or a directory tree."""
        ...

    def local_path(self, path: str) -> str | None:
        """The OS path of ``path`` when plain file I/O on it does exactly what this storage's methods
        do (a framework's own reader or checkpointer may then use it); None otherwise: object stores,
        and ``direct://``, whose reads must bypass the page cache."""
        ...

    def put_file(self, local_path: str, path: str) -> int:
        """Copy the local file ``local_path`` to ``path`` (atomically, as ``write_atomic``; a multipart
        upload on object stores); return its size in bytes."""
        ...

    def get_file(self, path: str, local_path: str) -> int:
        """Copy ``path`` to the local file ``local_path`` (parent directories made); return its size."""
        ...


class ReadIntoRanged:
    """The default of the optional ``open_ranged(path)`` method: ``path`` of ``storage`` read by
    ranges through ``storage.read_into`` (each read a request of its own, as before), for backends
    with nothing to keep open (object stores) or whose ``read_into`` must be kept (``direct://``).

    Example:
        >>> import tempfile; st = open_storage(tempfile.mkdtemp()); _ = st.write_atomic("a", b"xyz")
        >>> f = ReadIntoRanged(st, "a"); buf = bytearray(2); f.read_into(buf, 1), bytes(buf)
        (2, b'yz')
    """

    __slots__ = ("storage", "path")

    def __init__(self, storage: Any, path: str) -> None:
        self.storage, self.path = storage, path

    def read_into(self, buffer: Buffer, offset: int = 0) -> int:
        """``storage.read_into(path, buffer, offset)``."""
        return self.storage.read_into(self.path, buffer, offset)

    def close(self) -> None:
        """Nothing is held."""


def open_ranged(storage: Any, path: str) -> Any:
    """``storage.open_ranged(path)`` where the backend has that optional method (local files: one open
    for many reads), else :class:`ReadIntoRanged`. The result has ``read_into(buffer, offset)`` (as
    ``Storage.read_into`` without the path) and ``close()``; a ranged reader opens one per file it
    reads and closes it when its batch is read.

    Example:
        >>> import tempfile; st = open_storage(tempfile.mkdtemp()); _ = st.write_atomic("a", b"xyz")
        >>> f = open_ranged(st, "a"); buf = bytearray(3); f.read_into(buf), bytes(buf), f.close()
        (3, b'xyz', None)
    """
    # Looked up on the class: a wrapper that forwards unknown attributes (``__getattr__``) to a local
    # storage keeps its own ``read_into`` (counting, retrying) rather than the inner file's.
    opener = getattr(type(storage), "open_ranged", None)
    return opener(storage, path) if opener is not None else ReadIntoRanged(storage, path)


# scheme -> backend class, in the spirit of fsspec.registry.known_implementations. Third-party
# backends come through the ``dl_driver.storage`` entry point group (a class taking (root, options)).
BACKENDS = Registry("storage scheme", group="dl_driver.storage", error=StorageError, show=lambda s: f"'{s}://'")
_LOCAL = "dlio_core.storage.local:LocalStorage"
_S3 = "dlio_core.storage.s3:S3Storage"
_GCS = "dlio_core.storage.gcs:GCSStorage"
_AZURE = "dlio_core.storage.azure:AzureStorage"
BACKENDS.register_builtins([
    Entry("file", _LOCAL, note="local file system"),
    Entry("local", _LOCAL, note="local file system"),
    Entry("direct", "dlio_core.storage.direct:DirectStorage", note="local files read with O_DIRECT"),
    Entry("s3", _S3, extra="s3", note="S3 through fsspec + s3fs"),
    Entry("s3a", _S3, extra="s3", note="S3 through fsspec + s3fs"),
    Entry("gs", _GCS, extra="gcs", note="Google Cloud Storage through fsspec + gcsfs"),
    Entry("gcs", _GCS, extra="gcs", note="Google Cloud Storage through fsspec + gcsfs"),
    Entry("az", _AZURE, extra="azure", note="Azure Blob Storage through fsspec + adlfs"),
    Entry("abfs", _AZURE, extra="azure", note="Azure Data Lake / Blob through fsspec + adlfs"),
    Entry("abfss", _AZURE, extra="azure", note="Azure Data Lake / Blob through fsspec + adlfs"),
])


def register_backend(scheme: str, target: str | type, *, extra: str | None = None, note: str = "",
                     clobber: bool = False) -> None:
    """Make ``open_storage`` build ``target(root, options)`` for ``scheme://`` URIs.

    ``target`` is ``"module:Class"`` (imported when the scheme is first opened) or the class. A
    scheme that is registered already needs ``clobber=True`` to be replaced.

    Example:
        >>> register_backend("mylocal", "dlio_core.storage.local:LocalStorage", note="local")
        >>> registered_schemes()["mylocal"].origin
        'register()'
        >>> register_backend("mylocal", "dlio_core.storage.direct:DirectStorage")
        Traceback (most recent call last):
        ...
        dlio_core.storage.backend.StorageError: storage scheme 'mylocal://' is already registered (dlio_core.storage.local:LocalStorage); pass clobber=True to replace it
        >>> BACKENDS.unregister("mylocal")
    """
    try:
        BACKENDS.register(scheme, target, extra=extra, note=note, clobber=clobber)
    except ValueError as e:
        raise StorageError(str(e)) from None


def registered_schemes() -> dict[str, Entry]:
    """A copy of the scheme registry (entry points included).

    Example:
        >>> registered_schemes()["s3"].extra
        's3'
    """
    return {name: BACKENDS[name] for name in BACKENDS.names()}


def open_storage(uri_or_path: str, options: Mapping[str, Any] | None = None) -> Storage:
    """The storage rooted at ``uri_or_path``: ``file://`` URIs and plain paths give ``LocalStorage``.

    ``options`` are backend options (DLIO's ``storage.storage_options``); they are kept, never logged.

    Example:
        >>> open_storage("/tmp").url
        'file:///tmp'
        >>> open_storage("gss://bucket/data")
        Traceback (most recent call last):
        ...
        dlio_core.storage.backend.StorageError: gss://bucket/data: unknown storage scheme 'gss://'; did you mean 'gs://'? (available: abfs://, abfss://, az://, direct://, file://, gcs://, gs://, local://, s3://, s3a://)
    """
    if not isinstance(uri_or_path, str) or not uri_or_path:
        raise StorageError(f"storage location must be a non-empty path or URI, got {uri_or_path!r}")
    scheme, _rest = split_scheme(uri_or_path)
    try:
        backend = BACKENDS.load(scheme or "file")
    except StorageError as e:
        raise StorageError(f"{redact_uri(uri_or_path)}: {e}") from e.__cause__
    return backend(uri_or_path, options)
