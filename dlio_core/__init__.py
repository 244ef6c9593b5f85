"""dlio_core: the framework-free heart of dl-driver.

Load a DLIO workload, generate its dataset, and run it with the native engine::

    >>> import dlio_core
    >>> cfg = dlio_core.load_config("default", ["++workload.train.epochs=1"])
    >>> cfg.reader.batch_size
    4

``import dlio_core`` imports no framework (torch, tensorflow, jax, DALI) and only what it needs:
the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_config": "dlio_core.config",
    "parse_command_line": "dlio_core.config",
    "RunConfig": "dlio_core.config",
    "ConfigError": "dlio_core.config",
    "run": "dlio_core.runner",
    "RunResult": "dlio_core.runner",
    "generate_dataset": "dlio_core.generate",
    "EpochPlan": "dlio_core.sampling",
    "NativeLoader": "dlio_core.engine",
    "open_storage": "dlio_core.storage",
    "get_format": "dlio_core.formats",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dlio_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
