"""Azure Blob Storage (``az://container/prefix``, ``abfs://``, ``abfss://``) through adlfs.

Options (``storage.storage_options``) go to ``adlfs.AzureBlobFileSystem`` (``connection_string``,
``account_name``, ``account_key``, ``sas_token``, ``credential``, ``anon``, ``account_host``, ...), checked
against its signature so a misspelling is an error. Without options adlfs reads the standard
environment: ``AZURE_STORAGE_CONNECTION_STRING``, ``AZURE_STORAGE_ACCOUNT_NAME`` / ``_KEY`` /
``_SAS_TOKEN``, service principals. dl-driver extensions, as for S3: ``endpoint_url`` (a blob endpoint,
e.g. Azurite's ``http://127.0.0.1:10000/devstoreaccount1``; combined with ``account_name`` and
``account_key`` into a connection string), ``max_attempts`` (default 5), ``connect_timeout_s``,
``read_timeout_s`` (typed and validated in :class:`~dlio_core.storage.options.AzureOptions`).
``abfs://container@account.dfs.core.windows.net/path`` names the account too.

Example:
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage("az://container/data", {"connection_string": "AccountName=a;AccountKey=c2VjcmV0"})
    >>> st.url, "c2VjcmV0" in repr(st)
    ('az://container/data', False)
"""

from __future__ import annotations

from typing import Any

from dlio_core.storage.fsspec_backend import FsspecStorage
from dlio_core.storage.options import AzureOptions
from dlio_core.storage.retry import status_of

__all__ = ["AzureStorage"]

class AzureStorage(FsspecStorage):
    """Blobs under ``az://container/prefix`` (also ``abfs://`` and ``abfss://``).

    Example:
        >>> AzureStorage("abfs://c@acct.dfs.core.windows.net/x", {"anon": True}).url
        'abfs://c@acct.dfs.core.windows.net/x'
    """

    scheme = "az"
    extra = "azure"
    client_module = "adlfs"
    options_class = AzureOptions

    def _fs_class(self) -> type:
        import adlfs

        return adlfs.AzureBlobFileSystem

    def _client_kwargs(self, o: AzureOptions, root: str) -> dict[str, Any]:
        self._endpoint = o.endpoint_url
        kwargs: dict[str, Any] = {"connection_timeout": o.connect_timeout_s, "read_timeout": o.read_timeout_s,
                                  "skip_instance_cache": True, "use_listings_cache": False}
        kwargs.update(self._fs_class()._get_kwargs_from_urls(root))  # account from abfs://c@acct.dfs...
        extra = dict(o.passthrough)
        if self._endpoint and extra.get("account_name") and extra.get("account_key") \
                and not extra.get("connection_string"):
            proto = self._endpoint.split("://", 1)[0]
            kwargs["connection_string"] = (f"DefaultEndpointsProtocol={proto};AccountName={extra['account_name']};"
                                           f"AccountKey={extra['account_key']};BlobEndpoint={self._endpoint};")
            extra = {k: v for k, v in extra.items() if k not in ("account_name", "account_key")}
        self._check_passthrough(extra)
        kwargs.update(extra)
        if not self._endpoint:
            conn = str(kwargs.get("connection_string") or "")
            for part in conn.split(";"):
                if part.lower().startswith("blobendpoint="):
                    self._endpoint = part.split("=", 1)[1]
        return kwargs

    def _configure(self, fs: Any) -> None:
        # azure-storage's own retry policy backs off 15 s, 18 s, 24 s... per request (about 90 s on a
        # dead server); adlfs cannot pass retry settings, so switch it off on the policy object the
        # client's pipeline (and every container/blob client made from it) shares. retry.py retries.
        policy = getattr(getattr(fs.service_client, "_config", None), "retry_policy", None)
        for attr in ("total_retries", "connect_retries", "read_retries", "status_retries"):
            if isinstance(getattr(policy, attr, None), int):
                setattr(policy, attr, 0)

    def endpoint(self) -> str:
        """The blob endpoint when known (Azurite, a custom host), else ``Azure``."""
        return self._endpoint or "Azure"

    async def _create_root(self, fs: Any, bucket: str) -> None:
        try:
            await fs._mkdir(bucket, create_parents=True)
        except FileExistsError:
            return  # another rank created it
        except Exception as e:
            _, code = status_of(e)
            if code == "ContainerAlreadyExists":
                return
            raise
