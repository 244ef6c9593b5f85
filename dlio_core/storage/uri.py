"""URI helpers shared by every backend: schemes, joining, redaction, option parsing.

Nothing here does I/O or imports a client library, so ``import dlio_core`` stays light.

Example:
    >>> split_scheme("s3://bucket/data"), join_uri("s3://bucket/", "train", "a.npz")
    (('s3', 'bucket/data'), 's3://bucket/train/a.npz')
    >>> scrub("could not sign with key hunter2", ["hunter2"])
    'could not sign with key ***'
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

# Redaction lives in dlio_core.redact for every caller; re-exported here for the backends.
from dlio_core.redact import REDACTED, redact_uri, scrub

__all__ = ["split_scheme", "redact_uri", "join_uri", "scrub", "as_bool", "pick_endpoint", "launcher_rank",
           "REDACTED"]

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# Launchers' rank variables, most specific first (mpirun: Open MPI, MPICH/PMI, PMIx; srun; torchrun).
_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID", "RANK")


def split_scheme(uri_or_path: str) -> tuple[str | None, str]:
    """``("s3", "bucket/key")`` for a URI, ``(None, path)`` for a plain path.

    Example:
        >>> split_scheme("file:///data/x"), split_scheme("data/x")
        (('file', '/data/x'), (None, 'data/x'))
    """
    m = _SCHEME_RE.match(uri_or_path)
    if not m:
        return None, uri_or_path
    return m.group(1).lower(), uri_or_path[m.end():]


def join_uri(root: str, *parts: str) -> str:
    """``root`` and ``parts`` joined with single slashes; empty parts are dropped.

    Example:
        >>> join_uri("az://container", "", "/ckpt/", "model.pt")
        'az://container/ckpt/model.pt'
    """
    tail = "/".join(p.strip("/") for p in parts if p and p.strip("/"))
    root = root.rstrip("/") if not root.endswith("://") else root
    if not tail:
        return root
    return root + tail if root.endswith("://") else f"{root}/{tail}"


def as_bool(value: Any, key: str = "value") -> bool:
    """DLIO writes booleans as YAML booleans or as strings (``s3_force_path_style: "true"``).

    Example:
        >>> as_bool("True"), as_bool(0), as_bool("no")
        (True, False, False)
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on", "y", "t"):
        return True
    if text in ("false", "0", "no", "off", "n", "f", "", "none", "null"):
        return False
    raise ValueError(f"storage option {key}: expected true or false, got {value!r}")


def launcher_rank() -> int:
    """This process's rank as the launcher's environment announces it (0 when none does).

    Example:
        >>> isinstance(launcher_rank(), int)
        True
    """
    for name in _RANK_VARS:
        value = os.environ.get(name)
        if value and value.strip().isdigit():
            return int(value)
    return 0


def pick_endpoint(endpoints: str | Sequence[str], rank: int | None = None) -> str:
    """One endpoint out of DLIO's comma-separated list: rank ``r`` uses ``endpoints[r % N]``.

    Example:
        >>> pick_endpoint("http://a:9000, http://b:9000", rank=3)
        'http://b:9000'
    """
    items = [e.strip() for e in (endpoints.split(",") if isinstance(endpoints, str) else endpoints)]
    items = [e for e in items if e]
    if not items:
        return ""
    return items[(launcher_rank() if rank is None else rank) % len(items)]
