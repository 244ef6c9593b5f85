"""Finding a checkpoint to load: one look by rank 0, shared with every rank.

Before a load rank 0 alone reads the commit marker (is the checkpoint complete, and written by this run's
mechanism and codec?) and lists the checkpoint's folder once; the engine broadcasts the verdict and the
listing. Each rank then checks that the files it will read are in that listing and hands it to the
mechanisms (a framework's folder on an object store is downloaded from it), so no other rank lists or stats
anything (512 ranks listing one prefix at once throttled a real S3 store).

Example:
    >>> import tempfile
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> st.write_atomic("g/a.pt", b"x"), st.write_atomic("g/b.dcp/.metadata", b"yy")
    (1, 2)
    >>> listing = dict(st.list_files("g"))
    >>> missing_entries(listing, ["g/a.pt", "g/b.dcp", "g/c.pt"])
    ['g/c.pt']
    >>> "not a complete checkpoint" in unloadable(st, "g", "raw", "none")
    True
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MARKER", "unloadable", "missing_entries", "where"]

MARKER = ".dl-driver-complete"


def where(storage: Any, rel: str) -> str:
    """``rel`` as a full URI of ``storage`` (for messages)."""
    return f"{storage.url.rstrip('/')}/{rel}"


def unloadable(storage: Any, folder: str, mechanism: str, compression: str) -> str | None:
    """Why a run with ``mechanism`` and ``compression`` cannot load ``folder`` (no marker, another mechanism or
    codec), or None. Rank 0 asks; the answer is shared."""
    try:
        info = json.loads(storage.read(f"{folder}/{MARKER}"))
    except FileNotFoundError:
        return (f"{where(storage, folder)} is not a complete checkpoint (no {MARKER}): it was never written, or its "
                "save failed or was interrupted; save it first (checkpoint.num_checkpoints_write) or load one "
                "that exists")
    except (OSError, ValueError) as e:
        return f"{where(storage, folder + '/' + MARKER)} is unreadable ({e}); save the checkpoint again"
    for key, ours in (("mechanism", mechanism), ("compression", compression)):
        theirs = str(info.get(key, "raw" if key == "mechanism" else "none"))
        if theirs.split(":")[0] != ours.split(":")[0] and not (key == "mechanism" and {theirs, ours} <= {"raw", "stream"}):
            return (f"{where(storage, folder)} was written with checkpoint {key} {theirs}, this run reads with "
                    f"{ours}; set checkpoint.{'checkpoint_mechanism' if key == 'mechanism' else 'compression'}"
                    f"={theirs.split(':')[0]} to read it")
    return None


def missing_entries(listing: dict[str, int], paths: list[str]) -> list[str]:
    """The ``paths`` (files, or a framework's folders) that ``listing`` (``{relpath: size}``) does not hold."""
    folders = {rel.rsplit("/", i)[0] for rel in listing for i in range(1, rel.count("/") + 1)}
    return [p for p in paths if p not in listing and p not in folders]
