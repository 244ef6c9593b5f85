"""Read-only, picklable containers for free-form config values, and secret redaction.

``storage.storage_options`` and ``dataset.parquet`` are passed through as given; they are stored deep-frozen
(``FrozenMap`` for mappings, tuples for lists) so a ``RunConfig`` stays immutable, hashable and picklable
(it travels to worker processes). ``repr`` hides secrets, so a config printed in a log or a traceback
never shows a key.

>>> from dlio_core.config.frozen import freeze, thaw, redact
>>> opts = freeze({"endpoint_url": "http://h:9000", "secret_access_key": "abc"})
>>> opts["endpoint_url"], opts
('http://h:9000', FrozenMap({'endpoint_url': 'http://h:9000', 'secret_access_key': '***'}))
>>> thaw(opts) == {"endpoint_url": "http://h:9000", "secret_access_key": "abc"}
True
>>> redact({"storage_options": {"session_token": "t", "access_key_id": "AKIA"}})
{'storage_options': {'session_token': '***', 'access_key_id': 'AKIA'}}
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["FrozenMap", "freeze", "thaw", "redact", "is_secret_key", "redact_value", "REDACTED"]

REDACTED = "***"

# Names whose values are credentials. ``access_key_id`` (the public half of an S3 key pair) is left visible:
# it identifies the account in a report without granting access.
_SECRET_NAME = re.compile(
    r"secret|password|passwd|token|connection_string|credential|account_key|private_key|api_key|(^|_)sas(_|$)",
    re.IGNORECASE,
)
# Secrets embedded in values: Azure connection strings, SAS query strings, passwords in URLs.
_SECRET_IN_VALUE = re.compile(r"(AccountKey=|SharedAccessSignature=|[?&]sig=)([^;&]*)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^/:@]*:)([^/@]*)(@)", re.IGNORECASE)


def is_secret_key(name: str) -> bool:
    """Whether a key name (last component of a dotted path) holds a credential.

    >>> is_secret_key("secret_access_key"), is_secret_key("access_key_id"), is_secret_key("sas_token")
    (True, False, True)
    """
    return bool(_SECRET_NAME.search(name.rsplit(".", 1)[-1]))


def redact_value(value: str) -> str:
    """``value`` with secrets embedded in it (connection-string keys, SAS signatures, URL passwords) masked."""
    value = _SECRET_IN_VALUE.sub(lambda m: m.group(1) + REDACTED, value)
    return _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), value)


class FrozenMap(Mapping[str, Any]):
    """An immutable, hashable, picklable mapping (keys are strings). ``repr`` redacts secrets."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = {str(k): freeze(v) for k, v in (data or {}).items()}
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == {k: freeze(v) for k, v in other.items()}
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({redact(thaw(self))!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (thaw(self),))


def freeze(value: Any) -> Any:
    """Deep-frozen copy: mappings -> ``FrozenMap``, lists/tuples -> tuples, scalars unchanged."""
    if isinstance(value, FrozenMap):
        return value
    if isinstance(value, Mapping):
        return FrozenMap(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain-type copy of a (possibly frozen) value: dicts and lists, for YAML/JSON."""
    if isinstance(value, Mapping):
        return {str(k): thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def redact(value: Any, name: str = "") -> Any:
    """Plain copy of ``value`` with every secret replaced by ``"***"`` (by key name or embedded in a string)."""
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, name) for v in value]
    if name and is_secret_key(name) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact_value(value)
    return value
