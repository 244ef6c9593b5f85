"""Typed, validated storage options per backend, built once from DLIO's ``storage.storage_options``.

Each object-store backend reads its options from one frozen dataclass instead of re-parsing a free
dict: the keys dl-driver understands become typed fields (checked when built, with a one-line error
that names the option and the storage), and every other key is kept in ``passthrough`` for the
client's constructor (which the backend checks against that constructor's signature).

Example:
    >>> o = S3Options.parse({"s3_max_attempts": "3", "s3_force_path_style": "true", "requester_pays": True},
    ...                     where="s3://b/d")
    >>> o.max_attempts, o.s3_force_path_style, o.connect_timeout_s, dict(o.passthrough)
    (3, True, 10.0, {'requester_pays': True})
    >>> GCSOptions.parse({"connect_timeout_s": 0}, where="gs://b/d")
    Traceback (most recent call last):
    ...
    dlio_core.storage.backend.StorageError: gs://b/d: storage.storage_options.connect_timeout_s must be a positive number of seconds, got 0; fix storage.storage_options
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from dlio_core.storage.backend import StorageError
from dlio_core.storage.retry import RetryPolicy
from dlio_core.storage.uri import as_bool, redact_uri

__all__ = ["ClientOptions", "S3Options", "AzureOptions", "GCSOptions", "DEFAULT_TOTAL_TIMEOUT_S", "checked_endpoint"]

OptionsT = TypeVar("OptionsT", bound="ClientOptions")

# The default deadline of one storage operation, tries and sleeps together (README: "Faults").
DEFAULT_TOTAL_TIMEOUT_S = 120.0


# -- converters: the option's value as given (YAML or strings) -> the field's type --------------------
def _attempts(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"must be a whole number of tries, got {v!r}")
    try:
        n = float(v)
    except ValueError:
        raise ValueError(f"must be a whole number of tries, got {v!r}") from None
    if not n.is_integer() or n < 1:
        raise ValueError(f"must be a whole number of tries of at least 1, got {v!r}")
    return int(n)


def _seconds(v: Any) -> float:
    try:
        s = float(v) if not isinstance(v, bool) else math.nan
    except (TypeError, ValueError):
        s = math.nan
    if not (s > 0 and math.isfinite(s)):
        raise ValueError(f"must be a positive number of seconds, got {v!r}")
    return s


def _flag(v: Any) -> bool:
    try:
        return as_bool(v)
    except ValueError:
        raise ValueError(f"must be true or false, got {v!r}") from None


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _endpoint(v: Any) -> str:
    text = _text(v)
    if redact_uri(text) != text:
        # botocore refuses them anyway ("Cannot combine AUTHORIZATION header with ... credentials encoded
        # in URL"), and a URL ends up in messages and reports: say so once, without the secret.
        raise ValueError(f"must not carry credentials ({redact_uri(text)}); pass them as their own options "
                         f"(access_key_id / secret_access_key, account_key, token) or in the environment")
    return text


def checked_endpoint(value: str, *, source: str, where: str) -> str:
    """An endpoint URL from ``source`` (an environment variable), refused as ``endpoint_url`` is when it
    carries credentials.

    Example:
        >>> checked_endpoint("http://k:pw@h:9000", source="AWS_ENDPOINT_URL", where="s3://b")
        Traceback (most recent call last):
        ...
        dlio_core.storage.backend.StorageError: s3://b: AWS_ENDPOINT_URL must not carry credentials (http://***@h:9000); pass them as their own options (access_key_id / secret_access_key, account_key, token) or in the environment
    """
    try:
        return _endpoint(value)
    except ValueError as e:
        raise StorageError(f"{where}: {source} {e}") from None


def _optional_text(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)


def _mapping(v: Any) -> Mapping[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise ValueError(f"must be a mapping of client settings, got {type(v).__name__}")
    return dict(v)


def _option(parse: Callable[[Any], Any], default: Any, *, key: str | None = None, secret: bool = False) -> Any:
    """A field read from the option ``key`` (the field's name when None) through ``parse``."""
    return field(default=default, repr=not secret, metadata={"parse": parse, "key": key})


@dataclass(frozen=True)
class ClientOptions:
    """What every object-store backend understands (dl-driver's extensions to DLIO's options).

    Attributes:
        max_attempts: tries per operation, with bounded backoff (``RetryPolicy``).
        connect_timeout_s: per-request connect timeout.
        read_timeout_s: per-request read timeout.
        total_timeout_s: one deadline per operation, all tries and backoff sleeps included (a stalled
            server ends the run in this time, not ``max_attempts`` x ``read_timeout_s``).
        endpoint_url: the server, when not the provider's default.
        passthrough: every other option, for the client's constructor.

    Example:
        >>> ClientOptions.parse({"max_attempts": 2}, where="az://c").retry.max_attempts
        2
    """

    max_attempts: int = _option(_attempts, 5)
    connect_timeout_s: float = _option(_seconds, 10.0)
    read_timeout_s: float = _option(_seconds, 60.0)
    total_timeout_s: float = _option(_seconds, DEFAULT_TOTAL_TIMEOUT_S)
    endpoint_url: str = _option(_endpoint, "")
    passthrough: Mapping[str, Any] = field(default_factory=dict, repr=False)

    hint: ClassVar[str] = "storage.storage_options"

    def __post_init__(self) -> None:
        # Built directly (not through ``parse``): the same checks, naming the option.
        for f in fields(self):
            parse = f.metadata.get("parse")
            if parse is not None:
                try:
                    object.__setattr__(self, f.name, parse(getattr(self, f.name)))
                except ValueError as e:
                    raise ValueError(f"{self.hint}.{self.key_of(f.name)} {e}") from None

    @classmethod
    def key_of(cls, name: str) -> str:
        """The option key a field is read from (``max_attempts`` is ``s3_max_attempts`` for S3).

        Example:
            >>> S3Options.key_of("max_attempts"), GCSOptions.key_of("max_attempts")
            ('s3_max_attempts', 'max_attempts')
        """
        f = {f.name: f for f in fields(cls)}[name]
        return f.metadata.get("key") or f.name

    @classmethod
    def keys(cls) -> frozenset[str]:
        """The option keys this backend maps itself (everything else is passed through)."""
        return frozenset(cls.key_of(f.name) for f in fields(cls) if "parse" in f.metadata)

    @classmethod
    def parse(cls: type[OptionsT], options: Mapping[str, Any] | None, *, where: str) -> OptionsT:
        """The options of the storage at ``where`` (a URI, for errors), validated; a bad value is a
        one-line ``StorageError`` naming the option."""
        given = dict(options or {})
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = cls.key_of(f.name)
            if "parse" in f.metadata and key in given:
                values[f.name] = given.pop(key)
        try:
            return cls(**values, passthrough=given)
        except ValueError as e:
            raise StorageError(f"{where}: {e}; fix {cls.hint}") from None

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy every operation runs under."""
        return RetryPolicy(max_attempts=self.max_attempts, total_timeout_s=self.total_timeout_s)


@dataclass(frozen=True)
class S3Options(ClientOptions):
    """DLIO's S3 keys (see :mod:`dlio_core.storage.s3` for how each maps to s3fs/botocore).

    Example:
        >>> o = S3Options.parse({"secret_access_key": "hunter2", "region": "eu-west-1"}, where="s3://b")
        >>> o.region, "hunter2" in repr(o)
        ('eu-west-1', False)
    """

    max_attempts: int = _option(_attempts, 5, key="s3_max_attempts")
    access_key_id: str | None = _option(_optional_text, None)
    secret_access_key: str | None = _option(_optional_text, None, secret=True)
    session_token: str | None = _option(_optional_text, None, secret=True)
    region: str | None = _option(_optional_text, None)
    s3_force_path_style: bool = _option(_flag, False)
    config_kwargs: Mapping[str, Any] = _option(_mapping, None)
    client_kwargs: Mapping[str, Any] = _option(_mapping, None, secret=True)
    storage_library: str | None = _option(_optional_text, None)


@dataclass(frozen=True)
class AzureOptions(ClientOptions):
    """Azure's: the common ones; ``account_name``/``account_key``, ``connection_string``, ``sas_token``,
    ``credential``, ... go to adlfs (``passthrough``)."""


@dataclass(frozen=True)
class GCSOptions(ClientOptions):
    """GCS's: the common ones; ``token``, ``project``, ... go to gcsfs (``passthrough``)."""
