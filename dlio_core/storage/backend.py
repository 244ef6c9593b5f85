"""The storage protocol and the scheme -> backend registry.

Every dataset and checkpoint byte goes through a :class:`Storage`. Paths handed to its methods are
relative to the storage root (``"train/img_07_of_16.npz"``) or absolute URIs/paths; ``url`` is the root
as a URI with no secrets in it. Backends are looked up by URI scheme in a registry modelled on
fsspec's ``known_implementations``: adding one is one ``register_backend`` line, and a scheme whose
backend is not in this build fails with an error naming the extra to install.

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

import importlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Any, Protocol, Union, runtime_checkable

from dlio_core.storage.uri import redact_uri, split_scheme

__all__ = [
    "Storage",
    "StorageError",
    "StorageNotFoundError",
    "BackendSpec",
    "register_backend",
    "registered_schemes",
    "open_storage",
    "split_scheme",
    "redact_uri",
]

# A bytes-like object (bytes, bytearray, memoryview, C-contiguous numpy array).
Buffer = Any
Data = Union[Buffer, Sequence[Buffer]]


class StorageError(OSError):
    """A storage operation failed; the message names the path or URI and, where known, the fix."""


class StorageNotFoundError(StorageError, FileNotFoundError):
    """The named file or directory does not exist (also a ``FileNotFoundError``)."""


@runtime_checkable
class Storage(Protocol):
    """What every backend offers. Paths are relative to the root, or absolute URIs/paths."""

    @property
    def url(self) -> str:
        """The root as a URI (``file:///data/unet3d``), without credentials."""
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


@dataclass(frozen=True)
class BackendSpec:
    """Where the backend for a URI scheme lives.

    ``module``/``cls`` is None while the backend is not part of this build; ``extra`` names the
    ``pip install 'dl-driver[extra]'`` that brings its dependencies; ``note`` says what it is.
    """

    module: str | None
    cls: str | None
    extra: str | None = None
    note: str = ""


# scheme -> backend, in the spirit of fsspec.registry.known_implementations.
_REGISTRY: dict[str, BackendSpec] = {
    "file": BackendSpec("dlio_core.storage.local", "LocalStorage", None, "local file system"),
    "local": BackendSpec("dlio_core.storage.local", "LocalStorage", None, "local file system"),
    "direct": BackendSpec("dlio_core.storage.direct", "DirectStorage", None, "local files read with O_DIRECT"),
    "s3": BackendSpec("dlio_core.storage.s3", "S3Storage", "s3", "S3 through fsspec + s3fs"),
    "s3a": BackendSpec("dlio_core.storage.s3", "S3Storage", "s3", "S3 through fsspec + s3fs"),
    "gs": BackendSpec("dlio_core.storage.gcs", "GCSStorage", "gcs", "Google Cloud Storage through fsspec + gcsfs"),
    "gcs": BackendSpec("dlio_core.storage.gcs", "GCSStorage", "gcs", "Google Cloud Storage through fsspec + gcsfs"),
    "az": BackendSpec("dlio_core.storage.azure", "AzureStorage", "azure", "Azure Blob Storage through fsspec + adlfs"),
    "abfs": BackendSpec("dlio_core.storage.azure", "AzureStorage", "azure",
                        "Azure Data Lake / Blob through fsspec + adlfs"),
    "abfss": BackendSpec("dlio_core.storage.azure", "AzureStorage", "azure",
                         "Azure Data Lake / Blob through fsspec + adlfs"),
}

def register_backend(scheme: str, module: str | None, cls: str | None, *, extra: str | None = None,
                     note: str = "") -> None:
    """Make ``open_storage`` build ``module.cls(root, options)`` for ``scheme://`` URIs.

    Example:
        >>> register_backend("file", "dlio_core.storage.local", "LocalStorage", note="local")
    """
    _REGISTRY[scheme.lower()] = BackendSpec(module, cls, extra, note)


def registered_schemes() -> dict[str, BackendSpec]:
    """A copy of the scheme registry.

    Example:
        >>> registered_schemes()["s3"].extra
        's3'
    """
    return dict(_REGISTRY)


def open_storage(uri_or_path: str, options: Mapping[str, Any] | None = None) -> Storage:
    """The storage rooted at ``uri_or_path``: ``file://`` URIs and plain paths give ``LocalStorage``.

    ``options`` are backend options (DLIO's ``storage.storage_options``); they are kept, never logged.

    Example:
        >>> open_storage("/tmp").url
        'file:///tmp'
    """
    if not isinstance(uri_or_path, str) or not uri_or_path:
        raise StorageError(f"storage location must be a non-empty path or URI, got {uri_or_path!r}")
    scheme, _rest = split_scheme(uri_or_path)
    if scheme is None:
        scheme = "file"
    spec = _REGISTRY.get(scheme)
    shown = redact_uri(uri_or_path)
    if spec is None:
        known = ", ".join(sorted(f"{s}://" for s in _REGISTRY))
        raise StorageError(f"unknown storage scheme '{scheme}://' in {shown}; known schemes: {known}")
    if spec.module is None or spec.cls is None:
        how = (f"it comes with `pip install 'dl-driver[{spec.extra}]'`, " if spec.extra else "")
        raise StorageError(
            f"storage scheme '{scheme}://' ({spec.note}) is not available in this build of dl-driver yet "
            f"({shown}); {how}once its backend is added to dlio_core.storage. Use a local path or "
            f"file:// URI meanwhile.")
    try:
        mod = importlib.import_module(spec.module)
    except ImportError as e:
        hint = f"; install it with `pip install 'dl-driver[{spec.extra}]'`" if spec.extra else ""
        raise StorageError(f"storage backend for '{scheme}://' could not be imported ({e}){hint}") from e
    return getattr(mod, spec.cls)(uri_or_path, options)
