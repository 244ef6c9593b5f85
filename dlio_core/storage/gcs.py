"""Google Cloud Storage (``gs://bucket/prefix``, ``gcs://``) through gcsfs.

Options go to ``gcsfs.GCSFileSystem`` (``token``, ``project``, ``endpoint_url``, ``requester_pays``, ...),
checked against its signature. Without options gcsfs finds credentials the usual way
(``GOOGLE_APPLICATION_CREDENTIALS``, gcloud, metadata server) and honours ``STORAGE_EMULATOR_HOST``.
With an ``endpoint_url`` (an emulator) and no ``token`` the client is anonymous, and gcsfs's core
file system is used: its "extended" one asks Google's gRPC storage-control API about every bucket,
which emulators do not serve. dl-driver extensions (typed in :class:`~dlio_core.storage.options.GCSOptions`):
``max_attempts`` (default 5), ``connect_timeout_s`` (default 10 s, the TCP connect of each request) and
``read_timeout_s`` (default 60 s, the whole of each request).

gcsfs's own per-request retries (6 tries, sleeps up to 32 s) are replaced by dl-driver's bounded ones.

Example:
    >>> from dlio_core.storage import open_storage
    >>> open_storage("gs://bucket/data", {"endpoint_url": "http://127.0.0.1:9023"}).url
    'gs://bucket/data'
"""

from __future__ import annotations

import os
import types
from typing import Any

from dlio_core.storage.fsspec_backend import FsspecStorage
from dlio_core.storage.options import GCSOptions

__all__ = ["GCSStorage"]

class GCSStorage(FsspecStorage):
    """Objects under ``gs://bucket/prefix``.

    Example:
        >>> GCSStorage("gs://b/p", {"endpoint_url": "http://127.0.0.1:1"}).endpoint()
        'http://127.0.0.1:1'
    """

    scheme = "gs"
    extra = "gcs"
    client_module = "gcsfs"
    options_class = GCSOptions

    def _fs_class(self) -> type:
        import gcsfs
        import gcsfs.core

        emulated = self.__dict__.get("_endpoint") or os.environ.get("STORAGE_EMULATOR_HOST")
        return gcsfs.core.GCSFileSystem if emulated else gcsfs.GCSFileSystem

    def _client_kwargs(self, o: GCSOptions, root: str) -> dict[str, Any]:
        from aiohttp import ClientTimeout  # gcsfs's HTTP client (so installed with it)

        self._endpoint = o.endpoint_url
        # gcsfs hands requests_timeout to every aiohttp request: a number would be the total time only
        # (as read_timeout_s always was); a ClientTimeout also bounds the connect.
        timeout = ClientTimeout(total=o.read_timeout_s, sock_connect=o.connect_timeout_s)
        kwargs: dict[str, Any] = {"requests_timeout": timeout, "skip_instance_cache": True,
                                  "use_listings_cache": False}
        if self._endpoint:
            kwargs["endpoint_url"] = self._endpoint
            if "token" not in o.passthrough:
                kwargs["token"] = "anon"
        self._check_passthrough(o.passthrough)
        kwargs.update(o.passthrough)
        return kwargs

    def _configure(self, fs: Any) -> None:
        # gcsfs retries every HTTP request 6 times with sleeps up to 32 s (about 35 s on a dead server)
        # and takes no setting for it: re-wrap this instance's request method with one try; retry.py
        # retries whole operations instead. Left as is if gcsfs changes shape.
        raw = getattr(type(fs)._request, "__wrapped__", None)
        if raw is not None:
            from gcsfs.retry import retry_request

            fs._request = types.MethodType(retry_request(retries=1)(raw), fs)

    def endpoint(self) -> str:
        """The emulator or custom endpoint when set, else ``GCS``."""
        return self._endpoint or os.environ.get("STORAGE_EMULATOR_HOST", "") or "GCS"

    async def _create_root(self, fs: Any, bucket: str) -> None:
        try:
            await fs._mkdir(bucket, create_parents=True)
        except FileExistsError:
            return
        except Exception as e:
            if getattr(e, "code", None) == 409:  # "You already own this bucket": another rank won
                return
            raise
