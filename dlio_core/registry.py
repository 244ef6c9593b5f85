"""One registry pattern for every extension point: storage backends, formats and loaders.

In the spirit of fsspec's ``registry.py``: a table from a name to where its implementation lives
(``"module:attr"``, imported only when the name is used), the ``pip install`` that brings its
dependencies (named in the error when the import fails), an explicit ``clobber`` to replace a name,
and entry points for third parties (a distribution declares ``[project.entry-points."dl_driver.storage"]``
``myfs = "mypkg.storage:MyStorage"``; ``name = "mod:attr [extra]"`` names the extra to install).

Built-in names are registered in code, so a source checkout works without an install; entry points
are read only when a name is not found in code (or the whole table is listed), and never replace a
name registered in code.

This module imports nothing from ``dlio_core`` (a leaf: every package may use it).

Example:
    >>> colours = Registry("colour", group="example.colours")
    >>> colours.register("red", "colorsys:rgb_to_hsv")
    >>> colours.register("infrared", None, note="is not visible")
    >>> colours.load("red").__name__
    'rgb_to_hsv'
    >>> colours.load("rde")
    Traceback (most recent call last):
    ...
    LookupError: unknown colour 'rde'; did you mean 'red'? (available: red)
    >>> colours.register("red", "operator:not_")
    Traceback (most recent call last):
    ...
    ValueError: colour 'red' is already registered (colorsys:rgb_to_hsv); pass clobber=True to replace it
"""

from __future__ import annotations

import difflib
import importlib
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Entry", "Registry"]


@dataclass(frozen=True)
class Entry:
    """Where one registered name lives.

    ``target`` is ``"module:attr"`` (imported on first use), the object itself, or None for a name
    that is known but not available in this build (``note`` then says why). ``extra`` and ``dist``
    make the install hint ``pip install 'dist[extra]'``; ``requires`` is a module imported first, so
    a missing dependency is named exactly (``"torch"``). ``origin`` says who registered it.

    Example:
        >>> Entry("s3", "dlio_core.storage.s3:S3Storage", extra="s3").install
        'dl-driver[s3]'
    """

    name: str
    target: Any
    extra: str | None = None
    requires: str | None = None
    note: str = ""
    dist: str = "dl-driver"
    origin: str = "built-in"

    @property
    def available(self) -> bool:
        """Whether the name can be loaded at all (its target is known)."""
        return self.target is not None

    @property
    def install(self) -> str | None:
        """The pip requirement that brings this entry's dependencies, when it has an extra."""
        return f"{self.dist}[{self.extra}]" if self.extra else None


class Registry(Mapping[str, Entry]):
    """Names -> :class:`Entry`, loaded lazily; a read-only mapping plus ``register`` and ``load``.

    Args:
        what: how errors name a key of this registry (``"dataset.format"``, ``"storage scheme"``).
        group: the entry point group third parties register under (``"dl_driver.formats"``).
        error: the exception class every lookup or import failure raises (one line, no traceback
            needed to act on it).
        show: how a name is written in messages (``repr`` by default; storage writes ``'s3://'``).
        fallback: what to do instead, appended to "not available" and "not installed" errors.

    Example:
        >>> r = Registry("widget", group="example.widgets")
        >>> r.register("json", "json:dumps", extra="fast")
        >>> "json" in r, r["json"].install, r.load("json")([1])
        (True, 'dl-driver[fast]', '[1]')
    """

    def __init__(self, what: str, *, group: str, error: Callable[[str], Exception] = LookupError,
                 show: Callable[[str], str] = repr, fallback: str = "") -> None:
        self.what = what
        self.group = group
        self._error = error
        self._show = show
        self._fallback = fallback
        self._entries: dict[str, Entry] = {}
        self._loaded: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._entry_points_read = False

    # -- registering ---------------------------------------------------------------------------
    def register(self, name: str, target: Any, *, extra: str | None = None, requires: str | None = None,
                 note: str = "", clobber: bool = False) -> None:
        """Make ``name`` load ``target`` (``"module:attr"``, an object, or None for "known, not available").

        Registering a name again with the same target is a no-op; with another target it raises
        ``ValueError`` unless ``clobber=True``.

        Example:
            >>> r = Registry("widget", group="example.widgets")
            >>> r.register("w", "json:dumps"); r.register("w", "json:loads", clobber=True)
            >>> r["w"].target
            'json:loads'
        """
        self._add(Entry(self._key(name), _checked_target(target), extra, requires, note,
                        origin="register()"), clobber=clobber)

    def register_builtins(self, entries: Iterable[Entry]) -> None:
        """Register dl-driver's own names (``origin`` stays ``"built-in"``).

        Example:
            >>> r = Registry("widget", group="example.widgets")
            >>> r.register_builtins([Entry("w", "json:dumps"), Entry("v", None, note="is planned")])
            >>> r["w"].origin, r.names(available=True)
            ('built-in', ('w',))
        """
        for e in entries:
            self._add(replace(e, name=self._key(e.name), target=_checked_target(e.target)), clobber=False)

    def unregister(self, name: str) -> None:
        """Forget ``name`` (no error when it is not registered).

        Example:
            >>> r = Registry("widget", group="example.widgets"); r.register("w", "json:dumps")
            >>> r.unregister("w"); "w" in r
            False
        """
        with self._lock:
            self._entries.pop(self._key(name), None)
            self._loaded.pop(self._key(name), None)

    def _add(self, entry: Entry, *, clobber: bool) -> None:
        with self._lock:
            old = self._entries.get(entry.name)
            if old is not None and not clobber and old.target != entry.target:
                raise ValueError(f"{self.what} {self._show(entry.name)} is already registered "
                                 f"({_describe(old.target)}); pass clobber=True to replace it")
            if old is None or clobber:
                self._entries[entry.name] = entry
                self._loaded.pop(entry.name, None)

    # -- looking up ----------------------------------------------------------------------------
    def entry(self, name: str) -> Entry:
        """The entry of ``name`` (nothing imported); the registry's error, with the nearest known
        name, when there is none.

        Example:
            >>> r = Registry("widget", group="example.widgets"); r.register("w", "json:dumps")
            >>> r.entry("W").target
            'json:dumps'
        """
        key = self._key(name)
        found = self._entries.get(key)
        if found is None:
            self.read_entry_points()
            found = self._entries.get(key)
        if found is None:
            known = list(self._entries)
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {self._show(close[0])}?" if close else ""
            raise self._error(f"unknown {self.what} {self._show(key)}{hint} ({self._choices()})")
        return found

    def load(self, name: str) -> Any:
        """The object ``name`` stands for, imported on first use (the registry's error, naming what to
        install, when it cannot be).

        Example:
            >>> r = Registry("widget", group="example.widgets"); r.register("w", "json:dumps")
            >>> r.load("w").__module__
            'json'
        """
        entry = self.entry(name)
        cached = self._loaded.get(entry.name, _MISSING)
        if cached is not _MISSING:
            return cached
        if entry.target is None:
            raise self._error(f"{self.what} {self._show(entry.name)} {entry.note or 'is not available'} "
                              f"({self._choices()}){self._instead('; ')}")
        if entry.requires is not None:
            try:
                importlib.import_module(entry.requires)
            except ImportError as exc:
                raise self._error(self._missing(entry, entry.requires, exc)) from exc
        obj = entry.target
        if isinstance(obj, str):
            module, _, attr = obj.partition(":")
            try:
                obj = getattr(importlib.import_module(module), attr)
            except ImportError as exc:
                raise self._error(self._missing(entry, getattr(exc, "name", None) or module, exc)) from exc
            except AttributeError as exc:
                raise self._error(f"{self.what} {self._show(entry.name)}: {module} has no {attr!r} "
                                  f"(registered by {entry.origin})") from exc
        with self._lock:
            if self._entries.get(entry.name) is entry:
                self._loaded[entry.name] = obj
        return obj

    def names(self, *, available: bool = False) -> tuple[str, ...]:
        """Every registered name, sorted (only loadable ones with ``available=True``).

        Example:
            >>> r = Registry("widget", group="example.widgets"); r.register("b", None); r.register("a", "json:dumps")
            >>> r.names(), r.names(available=True)
            (('a', 'b'), ('a',))
        """
        self.read_entry_points()
        return tuple(sorted(n for n, e in self._entries.items() if e.available or not available))

    # -- the Mapping interface (read-only; listing includes entry points) ------------------------
    def __getitem__(self, name: str) -> Entry:
        try:
            return self.entry(name)
        except Exception as exc:
            raise KeyError(name) from exc

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if self._key(name) in self._entries:
            return True
        self.read_entry_points()
        return self._key(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, group={self.group!r}, names={list(self._entries)})"

    # -- entry points --------------------------------------------------------------------------
    def read_entry_points(self, *, again: bool = False) -> None:
        """Add the names installed distributions declare in this registry's entry point group.

        Done once (``again=True`` reads them anew, e.g. after an install in this process). A name
        already registered in code stays as it is (a warning names the distribution that wanted it).
        """
        with self._lock:
            if self._entry_points_read and not again:
                return
            self._entry_points_read = True
            from importlib.metadata import entry_points

            for ep in entry_points(group=self.group):
                dist = getattr(getattr(ep, "dist", None), "name", None) or "the distribution that declares it"
                key = self._key(ep.name)
                old = self._entries.get(key)
                if old is not None:
                    if old.origin != f"entry point of {dist}" and old.target != ep.value.split()[0]:
                        warnings.warn(f"{self.what} {self._show(key)} from the entry point of {dist} is ignored: "
                                      f"{old.origin} registered it already", stacklevel=2)
                    continue
                extras = list(getattr(ep, "extras", []) or [])
                self._entries[key] = Entry(key, ep.value.split()[0].strip(), extras[0] if extras else None,
                                           dist=dist, origin=f"entry point of {dist}")

    # -- messages ------------------------------------------------------------------------------
    def _key(self, name: str) -> str:
        return str(getattr(name, "value", name)).strip().lower()

    def _choices(self) -> str:
        names = [n for n, e in sorted(self._entries.items()) if e.available]
        # Listed without the quotes ``show`` may add around a single name.
        return "available: " + (", ".join(self._show(n).strip("'") for n in names) or "none")

    def _instead(self, sep: str) -> str:
        return f"{sep}{self._fallback}" if self._fallback else ""

    def _missing(self, entry: Entry, module: str, exc: BaseException) -> str:
        how = f"; run: pip install '{entry.install}'" if entry.install else ""
        instead = f" (or {self._fallback})" if self._fallback and how else self._instead("; ")
        return (f"{self.what} {self._show(entry.name)} needs {module}, which is not installed or failed to "
                f"import ({type(exc).__name__}: {exc}){how}{instead}")


_MISSING = object()


def _checked_target(target: Any) -> Any:
    if isinstance(target, str) and (":" not in target or not all(target.partition(":")[::2])):
        raise ValueError(f"a registry target is 'module:attr', got {target!r}")
    return target


def _describe(target: Any) -> str:
    if target is None or isinstance(target, str):
        return str(target)
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', type(target).__name__)}"
