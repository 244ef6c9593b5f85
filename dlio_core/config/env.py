"""The MLCommons DLIO fork's environment fill-ins (``utils/config.py:_apply_env_overrides``).

A ``DLIO_*`` variable fills its key only when neither the workload file nor an override set it, so
explicit values always win (the fork's order: overrides and YAML, then the environment, then defaults):

==========================  ==============================================================
``DLIO_OUTPUT_FOLDER``      ``output.folder`` (after ``hydra.run.dir``, which sets it first)
``DLIO_STORAGE_TYPE``       ``storage.storage_type``
``DLIO_BUCKET``             ``storage.storage_root``
``DLIO_STORAGE_LIBRARY``    ``storage.storage_options.storage_library``
``DLIO_DATA_GEN``           ``dataset.data_gen_method`` (no effect: one generator here)
==========================  ==============================================================

The fork also copies ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` and
``AWS_REGION`` into ``storage_options``; dl-driver's S3 backend reads those variables itself when the
options do not set them (``dlio_core.storage.s3``), so they are not copied into the config (where
secrets would travel in config copies). The fork's ``.env`` file is not read: export its variables
(``set -a; . ./.env; set +a``).

Example:
    >>> fill_ins({}, {"DLIO_BUCKET": "bkt", "HOME": "/root"})
    [('storage.storage_root', 'bkt', 'from environment DLIO_BUCKET')]
    >>> fill_ins({"storage.storage_root": "mine"}, {"DLIO_BUCKET": "bkt"})
    []
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .keys import resolve

__all__ = ["ENV_FILL_INS", "fill_ins"]

ENV_FILL_INS: dict[str, str] = {
    "DLIO_OUTPUT_FOLDER": "output.folder",
    "DLIO_STORAGE_TYPE": "storage.storage_type",
    "DLIO_BUCKET": "storage.storage_root",
    "DLIO_STORAGE_LIBRARY": "storage.storage_library",
    "DLIO_DATA_GEN": "dataset.data_gen_method",
}


def _is_set(values: Mapping[str, Any], path: str) -> bool:
    r = resolve(path)
    if r.kind == "noeffect":
        return False
    node: Any = values.get(r.canonical)
    for part in r.sub:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return node is not None


def fill_ins(values: Mapping[str, Any], environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """``(key, value, where)`` for each ``DLIO_*`` variable set in ``environ`` whose key ``values`` (the
    canonical keys set so far) does not hold."""
    out = []
    for var, path in ENV_FILL_INS.items():
        value = environ.get(var)
        if value and not _is_set(values, path):
            out.append((path, value.lower() if var in ("DLIO_STORAGE_TYPE", "DLIO_DATA_GEN") else value,
                        f"from environment {var}"))
    return out
