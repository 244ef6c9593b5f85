"""S3 (and S3-compatible servers) through s3fs, with DLIO's ``storage_options`` understood.

DLIO's keys (typed and validated in :class:`~dlio_core.storage.options.S3Options`) map as follows; any
other key is passed to ``s3fs.S3FileSystem`` (and checked against its signature, so a misspelling is an
error, not a silently ignored option):

=======================  ==================================================================
``access_key_id``        ``key`` (else ``AWS_ACCESS_KEY_ID``, profiles, instance roles)
``secret_access_key``    ``secret`` (else ``AWS_SECRET_ACCESS_KEY``)
``session_token``        ``token`` (else ``AWS_SESSION_TOKEN``)
``endpoint_url``         the server; DLIO's comma-separated list gives rank r ``endpoints[r % N]``
                         (else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, else AWS)
``region``               the signing region (DLIO's default ``us-east-1`` is never sent as a
                         bucket's location constraint, which servers such as moto reject)
``s3_force_path_style``  ``true``: path-style addressing; ``false``: botocore's choice
``s3_max_attempts``      tries per operation (default 5, DLIO's) with bounded backoff
``connect_timeout_s``    per-request connect timeout (default 10 s; dl-driver extension)
``read_timeout_s``       per-request socket read timeout (default 60 s; dl-driver extension)
``total_timeout_s``      one deadline per operation, tries and sleeps included (default 120 s;
                         dl-driver extension; uploads and downloads of whole files are exempt)
=======================  ==================================================================

Reads stream the body of one ranged ``GetObject`` straight into the caller's buffer, chunk by
chunk, instead of assembling a ``bytes`` object first (one copy less than ``cat_file``).

Example:
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage("s3://bucket/data", {"endpoint_url": "http://127.0.0.1:9000", "secret_access_key": "x"})
    >>> st.url, "x" in repr(st)
    ('s3://bucket/data', False)
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from dlio_core.storage.fsspec_backend import FsspecStorage
from dlio_core.storage.options import S3Options, checked_endpoint
from dlio_core.storage.retry import status_of
from dlio_core.storage.uri import pick_endpoint

__all__ = ["S3Storage"]

_DLIO_DEFAULT_REGION = "us-east-1"
_CHUNK = 1 << 20  # the most we ask the body for at a time (it returns what it has)


def _codes(exc: BaseException) -> set[str]:
    out = set()
    e: BaseException | None = exc
    for _ in range(6):
        if e is None:
            break
        status, code = status_of(e)
        if code:
            out.add(code)
        if status:
            out.add(str(status))
        e = e.__cause__ or e.__context__
    return out


class S3Storage(FsspecStorage):
    """Objects under ``s3://bucket/prefix``.

    Args:
        root: ``s3://bucket`` or ``s3://bucket/prefix``.
        options: DLIO's ``storage.storage_options`` (table in the module docstring).

    Example:
        >>> S3Storage("s3://b/p", {"region": "eu-west-1"}).endpoint()
        'AWS (eu-west-1)'
    """

    scheme = "s3"
    extra = "s3"
    client_module = "s3fs"
    options_class = S3Options

    def _fs_class(self) -> type:
        import s3fs

        return s3fs.S3FileSystem

    def _client_kwargs(self, o: S3Options, root: str) -> dict[str, Any]:
        endpoint = o.endpoint_url
        for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
            if not endpoint and os.environ.get(var):
                endpoint = checked_endpoint(os.environ[var], source=var, where=self._url)
        self._endpoint = pick_endpoint(str(endpoint)) if endpoint else ""
        self._region = (o.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                        or _DLIO_DEFAULT_REGION)
        config: dict[str, Any] = {
            # dl-driver retries whole operations (retry.py); botocore's own retries would multiply them.
            "retries": {"total_max_attempts": 1, "mode": "standard"},
            "connect_timeout": o.connect_timeout_s,
            "read_timeout": o.read_timeout_s,
            # aiobotocore's default pool of 10 would cap read_threads at 10 requests in flight.
            "max_pool_connections": 64,
        }
        if o.s3_force_path_style:
            config["s3"] = {"addressing_style": "path"}
        config.update(o.config_kwargs)
        client = {"region_name": self._region, **o.client_kwargs}
        kwargs: dict[str, Any] = {"client_kwargs": client, "config_kwargs": config,
                                  "skip_instance_cache": True, "use_listings_cache": False}
        if self._endpoint:
            kwargs["endpoint_url"] = self._endpoint
        if o.access_key_id:
            kwargs["key"] = o.access_key_id
        if o.secret_access_key:
            kwargs["secret"] = o.secret_access_key
        if o.session_token:
            kwargs["token"] = o.session_token
        if o.storage_library is not None:
            # The MLCommons fork picks its S3 client with it (s3dlio, minio, s3torchconnector).
            warnings.warn(f"storage.storage_options.storage_library={o.storage_library!r} has no effect: "
                          f"dl-driver reads {self._url} through s3fs", stacklevel=4)
        self._check_passthrough(o.passthrough)
        kwargs.update(o.passthrough)
        return kwargs

    def _configure(self, fs: Any) -> None:
        fs.retries = 1  # s3fs's own retry loop (a class attribute, not a constructor option): ours instead

    def endpoint(self) -> str:
        """The endpoint URL this process talks to (``AWS (region)`` when none is configured)."""
        return self._endpoint or f"AWS ({self._region})"

    async def _create_root(self, fs: Any, bucket: str) -> None:
        params: dict[str, Any] = {"Bucket": bucket}
        if self._region and self._region != _DLIO_DEFAULT_REGION:
            params["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            await fs._call_s3("create_bucket", **params)
        except Exception as e:
            codes = _codes(e)
            if codes & {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"} or isinstance(e, FileExistsError):
                return  # another rank won the race
            if "CreateBucketConfiguration" in params and (
                    codes & {"InvalidLocationConstraint", "IllegalLocationConstraintException"}
                    or "location" in str(e).lower()):
                # Servers that know one region reject any constraint: create it without one.
                del params["CreateBucketConfiguration"]
                try:
                    await fs._call_s3("create_bucket", **params)
                except FileExistsError:
                    return
                return
            raise
        fs.invalidate_cache(bucket)

    async def _read_async(self, fs: Any, full: str) -> bytes:
        # One GET: s3fs's cat_file asks for the size first (HEAD, and a LIST when the key is missing).
        bucket, key, version = fs.split_path(full)
        resp = await fs._call_s3("get_object", Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))
        try:
            return await resp["Body"].read()
        finally:
            resp["Body"].close()

    async def _read_into_async(self, fs: Any, full: str, mv: memoryview, offset: int) -> int:
        bucket, key, version = fs.split_path(full)
        n = mv.nbytes
        extra = {"VersionId": version} if version else {}
        try:
            resp = await fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes={offset}-{offset + n - 1}",
                                     **extra)
        except OSError as e:
            if _codes(e) & {"InvalidRange", "416"}:
                return 0  # offset at or past the end of the object
            raise
        body = resp["Body"]
        expected = int(resp.get("ContentLength") or 0)
        got = 0
        try:
            while got < n:
                chunk = await body.read(min(n - got, _CHUNK))
                if not chunk:
                    break
                k = len(chunk)
                mv[got:got + k] = chunk
                got += k
        finally:
            if got < expected or got == 0:
                body.close()  # drop a half-read connection instead of returning it to the pool
        if got < min(expected, n):
            raise ConnectionResetError(f"connection closed after {got} of {expected} bytes")
        return got

