"""The dataset manifest: what generation writes and a run's listing reads.

Generation writes ``{data_folder}/dl-driver-manifest.json``: the names (relative to the data folder)
and sizes of every file, per split, in DLIO's read order, with the ``dataset`` section that made them.
:mod:`dlio_core.listing` reads it to spare a run the listing of the data folder.

Example:
    >>> import tempfile
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> m = Manifest(format="npz", train=(("train/img_0_of_1.npz", 4594),), valid=(), dataset={})
    >>> write_manifest(st, m); load_manifest(st) == m
    True
"""

from __future__ import annotations

import json
import warnings
from json.encoder import encode_basestring_ascii as _json_str
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dlio_core.storage import Storage

__all__ = ["MANIFEST_NAME", "Manifest", "DatasetError", "load_manifest", "write_manifest", "split_dir"]

MANIFEST_NAME = "dl-driver-manifest.json"
MANIFEST_VERSION = 1
FileList = tuple[tuple[str, int], ...]


class DatasetError(Exception):
    """The dataset on storage does not match the configuration (too few files, wrong layout)."""


def split_dir(split: str) -> str:
    """DLIO's folder for a split: ``train`` or ``valid`` (``eval``/``valid``/``validation`` map to it).

    Example:
        >>> split_dir("eval")
        'valid'
    """
    s = str(getattr(split, "value", split)).lower()
    if s == "train":
        return "train"
    if s in ("valid", "eval", "evaluation", "validation"):
        return "valid"
    raise ValueError(f"unknown dataset split {split!r}; use 'train' or 'valid'")


@dataclass(frozen=True)
class Manifest:
    """Names (relative to the data folder) and sizes of a dataset's files, per split, in DLIO's
    read order, plus the ``dataset`` config section that generated them."""

    format: str
    train: FileList
    valid: FileList
    dataset: Mapping[str, Any] = field(default_factory=dict)
    version: int = MANIFEST_VERSION

    def __post_init__(self) -> None:
        # Keep the config section as it will read back from JSON (tuples -> lists, enums -> values).
        plain = json.loads(json.dumps(dict(self.dataset), default=_jsonable))
        object.__setattr__(self, "dataset", plain)

    def files(self, split: str) -> list[tuple[str, int]]:
        """The ``(relpath, size_bytes)`` list of one split."""
        return list(self.train if split_dir(split) == "train" else self.valid)

    @property
    def total_bytes(self) -> int:
        """Bytes in both splits (unknown sizes, written as -1, count as 0)."""
        return sum(max(s, 0) for _, s in self.train) + sum(max(s, 0) for _, s in self.valid)

    def to_json(self) -> str:
        """JSON text, one file per line so that it diffs and greps well."""
        def files(fl: FileList) -> str:
            if not fl:
                return "[]"
            # the text json.dumps([p, s]) writes (ensure_ascii), without its 3 us per file
            return "[\n  " + ",\n  ".join(f"[{_json_str(p)}, {int(s)}]" for p, s in fl) + "\n]"
        return (f'{{"version": {self.version},\n"format": {json.dumps(self.format)},\n'
                f'"dataset": {json.dumps(dict(self.dataset), sort_keys=True, default=_jsonable)},\n'
                f'"train": {files(self.train)},\n"valid": {files(self.valid)}}}\n')

    @classmethod
    def from_json(cls, text: str, source: str = "manifest") -> Manifest:
        """Parse :meth:`to_json` output; ``DatasetError`` naming ``source`` when malformed."""
        try:
            d = json.loads(text)
            if d.get("version") != MANIFEST_VERSION:
                raise ValueError(f"version {d.get('version')!r}, expected {MANIFEST_VERSION}")
            return cls(format=str(d["format"]),
                       train=tuple((_inside_root(p), int(s)) for p, s in d["train"]),
                       valid=tuple((_inside_root(p), int(s)) for p, s in d["valid"]),
                       dataset=d.get("dataset") or {})
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DatasetError(f"{source}: not a dl-driver manifest ({e})") from None


def _inside_root(path: Any) -> str:
    """A manifest path, refused (ValueError) unless it names a file inside the data folder."""
    p = str(path)
    if not p or p.startswith("/") or "://" in p or ".." in p.replace("\\", "/").split("/"):
        raise ValueError(f"{p!r} is not a path inside the data folder")
    return p


def _jsonable(v: Any) -> Any:
    if hasattr(v, "value"):
        return v.value
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def load_manifest(storage: Storage) -> Manifest | None:
    """The manifest at the storage root, or None when there is none (or it is unreadable: warned).

    Example:
        >>> import tempfile; from dlio_core.storage import open_storage
        >>> load_manifest(open_storage(tempfile.mkdtemp())) is None
        True
    """
    try:
        text = storage.read(MANIFEST_NAME)
    except FileNotFoundError:
        return None
    where = f"{storage.url.rstrip('/')}/{MANIFEST_NAME}"
    try:
        return Manifest.from_json(text.decode("utf8"), where)
    except (DatasetError, UnicodeDecodeError) as e:
        warnings.warn(f"ignoring {where}: {e}; the data folder will be listed instead", stacklevel=2)
        return None


def write_manifest(storage: Storage, manifest: Manifest) -> None:
    """Write the manifest atomically at the storage root."""
    storage.write_atomic(MANIFEST_NAME, manifest.to_json().encode("utf8"))
