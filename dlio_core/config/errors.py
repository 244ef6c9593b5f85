"""The two ways the config layer reports a problem: an error that stops loading, or a warning.

>>> from dlio_core.config.errors import ConfigError
>>> str(ConfigError("reader.batch_size: -3 is not allowed; expected an integer >= 1", key="reader.batch_size"))
'reader.batch_size: -3 is not allowed; expected an integer >= 1'
"""

from __future__ import annotations

__all__ = ["ConfigError", "ConfigWarning"]


class ConfigError(ValueError):
    """A configuration the loader cannot accept. The message is one line: key path, value, the fix.

    ``key`` holds the dotted key path the error is about (``None`` when it concerns a whole file),
    so a caller can say where the value came from (file or override) without parsing the text.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ConfigWarning(UserWarning):
    """A key some DLIO version or stock workload carries but that has no effect in dl-driver."""
