"""Read-only, picklable containers for free-form config values, printed with secrets redacted.

``storage.storage_options`` and ``dataset.parquet`` are passed through as given; they are stored deep-frozen
(``FrozenMap`` for mappings, tuples for lists) so a ``RunConfig`` stays immutable, hashable and picklable
(it travels to worker processes). ``repr`` hides secrets (``dlio_core.redact``), so a config printed in a
log or a traceback never shows a key.

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

from collections.abc import Iterator, Mapping
from typing import Any

# Redaction lives in one module for every caller; re-exported here for the config's users.
from ..redact import REDACTED, is_secret_key, redact, redact_value

__all__ = ["FrozenMap", "freeze", "thaw", "redact", "is_secret_key", "redact_value", "REDACTED"]


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
