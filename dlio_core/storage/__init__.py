"""Storage backends behind one protocol: local files (``file://``, ``direct://`` O_DIRECT) and object
stores through fsspec (``s3://`` s3fs, ``az://``/``abfs://`` adlfs, ``gs://`` gcsfs), each client
imported only when its scheme is opened.

Example:
    >>> import tempfile
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> st.write_atomic("x.bin", b"abc"), st.size("x.bin")
    (3, 3)
"""

from __future__ import annotations

from dlio_core.storage.backend import (
    BACKENDS,
    Storage,
    StorageError,
    StorageNotFoundError,
    open_storage,
    redact_uri,
    register_backend,
    registered_schemes,
    split_scheme,
)
from dlio_core.storage.local import LocalStorage

__all__ = [
    "BACKENDS",
    "LocalStorage",
    "Storage",
    "StorageError",
    "StorageNotFoundError",
    "open_storage",
    "redact_uri",
    "register_backend",
    "registered_schemes",
    "split_scheme",
]
