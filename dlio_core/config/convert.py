"""Value checkers: each turns a YAML value into the field's type or raises a one-line ``ConfigError``.

A checker is built once per field (``integer(min=1)``) and called as ``check(key, value)``; the message
always names the key, the value and what is allowed.

>>> from dlio_core.config.convert import integer
>>> integer(min=1)("reader.batch_size", 8)
8
>>> integer(min=1)("reader.batch_size", -3)
Traceback (most recent call last):
...
dlio_core.config.errors.ConfigError: reader.batch_size: -3 is not allowed; expected an integer >= 1
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..redact import REDACTED, is_secret_path, redact
from .errors import ConfigError
from .frozen import FrozenMap

__all__ = [
    "Check", "integer", "number", "boolean", "text", "optional", "int_tuple", "str_tuple", "mapping",
    "numpy_dtype", "show", "fail",
]

Check = Callable[[str, Any], Any]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def show(key: str, value: Any) -> str:
    """``repr`` of a value for an error message, hiding it when the key (or a section above it) names a secret."""
    if is_secret_path(key):
        return REDACTED
    text = repr(redact(value))  # secrets nested in mappings, connection strings, URL passwords
    return text if len(text) <= 80 else text[:77] + "..."


def fail(key: str, value: Any, expected: str) -> ConfigError:
    """The standard error: ``KEY: VALUE is not allowed; expected EXPECTED``."""
    return ConfigError(f"{key}: {show(key, value)} is not allowed; expected {expected}", key=key)


def _as_number(value: Any) -> float | int | None:
    """``value`` as an int or float when it is one (or a numeric string such as YAML's ``1e-3``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                return float(value.strip())
            except ValueError:
                return None
    try:  # numpy scalars
        import numbers

        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
    except Exception:  # pragma: no cover - defensive
        pass
    return None


def integer(*, min: int | None = None, max: int | None = None, also: Collection[int] = (),
            floor_float: bool = False) -> Check:
    """An int in ``[min, max]`` or one of ``also`` (e.g. ``-1`` for "unset").

    ``floor_float`` accepts any float and rounds it down (DLIO's resnet50 ``record_length_bytes: 114660.07``);
    otherwise a float is accepted only when it is whole (``8.0``).
    """
    parts = []
    if min is not None and max is not None:
        parts.append(f"an integer in [{min}, {max}]")
    elif min is not None:
        parts.append(f"an integer >= {min}")
    elif max is not None:
        parts.append(f"an integer <= {max}")
    else:
        parts.append("an integer")
    expected = " or ".join([*(str(a) for a in sorted(also)), parts[0]]) if also else parts[0]

    def check(key: str, value: Any) -> int:
        num = _as_number(value)
        if num is None or (isinstance(num, float) and not math.isfinite(num)):
            raise fail(key, value, expected)
        if isinstance(num, float):
            if floor_float:
                num = math.floor(num)
            elif num.is_integer():
                num = int(num)
            else:
                raise fail(key, value, expected)
        num = int(num)
        if num in also:
            return num
        if (min is not None and num < min) or (max is not None and num > max):
            raise fail(key, value, expected)
        return num

    return check


def number(*, min: float | None = None, max: float | None = None, min_exclusive: bool = False) -> Check:
    """A finite float in the given range."""
    if min is not None and max is not None:
        expected = f"a number in {'(' if min_exclusive else '['}{min}, {max}]"
    elif min is not None:
        expected = f"a number {'>' if min_exclusive else '>='} {min}"
    else:
        expected = "a number"

    def check(key: str, value: Any) -> float:
        num = _as_number(value)
        if num is None or not math.isfinite(num):
            raise fail(key, value, expected)
        num = float(num)
        if min is not None and (num < min or (min_exclusive and num == min)):
            raise fail(key, value, expected)
        if max is not None and num > max:
            raise fail(key, value, expected)
        return num

    return check


def boolean() -> Check:
    """True/False; the strings true/false/yes/no/on/off/1/0 (any case) and the ints 0/1 are accepted too."""

    def check(key: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise fail(key, value, "True or False")

    return check


def text(*, nonempty: bool = False, forbid: str = "") -> Check:
    """A string; numbers are turned into their text (``name: 3``), booleans and containers are refused."""
    expected = "a non-empty string" if nonempty else "a string"
    if forbid:
        expected += f" without {' or '.join(repr(c) for c in forbid)}"

    def check(key: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise fail(key, value, expected)
        out = value if isinstance(value, str) else str(value)
        if (nonempty and not out) or any(c in out for c in forbid):
            raise fail(key, value, expected)
        return out

    return check


def optional(inner: Check) -> Check:
    """``None`` or what ``inner`` accepts."""

    def check(key: str, value: Any) -> Any:
        return None if value is None else inner(key, value)

    return check


def int_tuple(*, min: int = 1, allow_none_items: bool = False) -> Check:
    """A list of integers >= ``min`` (a single integer counts as a one-item list); stored as a tuple."""
    item = integer(min=min)
    expected = f"a list of integers >= {min}" + (" or null" if allow_none_items else "")

    def check(key: str, value: Any) -> tuple[Any, ...]:
        if value is None:
            return ()
        if isinstance(value, (list, tuple)):
            out = []
            for i, v in enumerate(value):
                if v is None and allow_none_items:
                    out.append(None)
                    continue
                try:
                    out.append(item(f"{key}[{i}]", v))
                except ConfigError:
                    raise fail(key, value, expected) from None
            return tuple(out)
        if _as_number(value) is not None and not isinstance(value, str):
            return (item(key, value),)
        raise fail(key, value, expected)

    return check


def str_tuple() -> Check:
    """A list of strings (a single string counts as a one-item list, as DLIO's ``iostat_devices``)."""
    item = text(nonempty=True)

    def check(key: str, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,) if value else ()
        if isinstance(value, (list, tuple)):
            try:
                return tuple(item(key, v) for v in value)
            except ConfigError:
                raise fail(key, value, "a string or a list of strings") from None
        raise fail(key, value, "a string or a list of strings")

    return check


def mapping(*, known: Collection[str] | None = None, suggest: Callable[[str], str | None] | None = None) -> Check:
    """A mapping stored as a deep-frozen ``FrozenMap``; with ``known``, other top-level keys are errors."""

    def check(key: str, value: Any) -> FrozenMap:
        if value is None:
            return FrozenMap()
        if not isinstance(value, Mapping):
            raise fail(key, value, "a mapping of option names to values")
        if known is not None:
            for name in value:
                if str(name) not in known:
                    path = f"{key}.{name}"
                    hint = suggest(path) if suggest else None
                    tail = f"did you mean {hint}?" if hint else f"known keys: {', '.join(sorted(known))}"
                    raise ConfigError(f"{path}: unknown key; {tail}", key=path)
        return FrozenMap(value)

    return check


def numpy_dtype() -> Check:
    """A numpy dtype name (``uint8``, ``float32``), stored as its canonical name."""

    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise fail(key, value, "a numpy dtype name such as uint8 or float32")
        import numpy as np

        try:
            return np.dtype(value).name
        except TypeError:
            raise fail(key, value, "a numpy dtype name such as uint8 or float32") from None

    return check
