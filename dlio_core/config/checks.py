"""Checks across sections, made when a config loads so the error names the key, and the keys that have
no effect in dl-driver (always, or with the chosen loader), which loading warns about.

A section checks its own values when it is built (``sections.py``); what depends on two sections is
checked here, once the whole ``RunConfig`` exists: training with no training files, a ``model.name``
that would put the output folder somewhere else (it becomes ``hydra_log/{model.name}/...``), the
``custom`` loader (a DLIO plugin class), and an access-order log a loader cannot keep.

Example:
    >>> from dlio_core.config import load_config
    >>> load_config("default", ["++workload.dataset.num_files_train=0"])
    Traceback (most recent call last):
    ...
    dlio_core.config.errors.ConfigError: dataset.num_files_train: 0 is not allowed while workflow.train is True; expected an integer >= 1, or workflow.train: False (from override ++workload.dataset.num_files_train=0)
    >>> dict(inert_keys(load_config("default", ["++workload.reader.data_loader=native"])))["reader.computation_threads"]
    'only the tensorflow loader runs computation threads (reader.data_loader is native)'
"""

from __future__ import annotations

from typing import Any

from .enums import DataLoader
from .errors import ConfigError

__all__ = ["check_run", "inert_keys", "ALWAYS_INERT", "NO_ACCESS_ORDER"]

# Keys DLIO reads that change nothing in dl-driver, whatever the loader -> why.
ALWAYS_INERT: dict[str, str] = {
    "reader.read_type": "samples are read on demand by every loader (DLIO's 'memory' mode is not emulated)",
    "dataset.generation_buffer_size": "generation writes each file from one array; memory use is checked "
                                      "against the machine before generation starts instead",
    "checkpoint.rank_sync": "every rank's save already ends at a barrier",
}
# Keys that only some loaders use -> (the loaders, what they do there).
_LOADER_KEYS: dict[str, tuple[tuple[DataLoader, ...], str]] = {
    "reader.dont_use_mmap": ((DataLoader.DALI, DataLoader.NATIVE_DALI), "only the DALI loaders map files"),
    "reader.shuffle_size": ((DataLoader.TENSORFLOW, DataLoader.NATIVE_DALI),
                            "only the tensorflow and native_dali loaders keep a shuffle buffer"),
    "reader.transfer_size": ((DataLoader.TENSORFLOW,), "only the tensorflow loader reads in transfer_size chunks"),
    "reader.computation_threads": ((DataLoader.TENSORFLOW,), "only the tensorflow loader runs computation threads"),
}
# Loaders that shard and shuffle on their own, so the order they delivered is not known to dl-driver.
NO_ACCESS_ORDER = (DataLoader.TENSORFLOW, DataLoader.NATIVE_DALI)
_FORBIDDEN_IN_NAME = ("/", "\\", "\0")


def check_run(cfg: Any) -> None:
    """Raise ``ConfigError`` (naming the key) for what no section can see alone.

    Example:
        >>> from dlio_core.config import RunConfig
        >>> RunConfig(model={"name": "../../etc"})
        Traceback (most recent call last):
        ...
        dlio_core.config.errors.ConfigError: model.name: '../../etc' is not allowed; expected a name without '/', '\\\\' or NUL, not '.' or '..' (it names the output folder hydra_log/{model.name}/...)
    """
    name = cfg.model.name
    if any(c in name for c in _FORBIDDEN_IN_NAME) or name in (".", ".."):
        raise ConfigError(f"model.name: {name!r} is not allowed; expected a name without '/', '\\\\' or NUL, not "
                          f"'.' or '..' (it names the output folder hydra_log/{{model.name}}/...)", key="model.name")
    if cfg.workflow.train and cfg.dataset.num_files_train == 0:
        raise ConfigError("dataset.num_files_train: 0 is not allowed while workflow.train is True; expected an "
                          "integer >= 1, or workflow.train: False", key="dataset.num_files_train")
    loader = cfg.reader.data_loader
    if loader is DataLoader.CUSTOM:
        raise ConfigError("reader.data_loader: custom is not supported: DLIO loads a plugin class for it "
                          "(reader.data_loader_classname), which dl-driver does not; choose native, pytorch, "
                          "tensorflow, dali, native_dali, jax or synthetic", key="reader.data_loader")
    if cfg.output.record_access_order and loader in NO_ACCESS_ORDER:
        raise ConfigError(f"output.record_access_order: True is not supported with reader.data_loader: "
                          f"{loader.value}, which shards and shuffles on its own, so the samples it delivered "
                          f"are not known; use native or pytorch, or drop output.record_access_order",
                          key="output.record_access_order")


def inert_keys(cfg: Any) -> list[tuple[str, str]]:
    """``(key, why)`` for every key that has no effect in ``cfg`` (loading warns when one is set away
    from its default)."""
    out = list(ALWAYS_INERT.items())
    loader = cfg.reader.data_loader
    for key, (loaders, why) in _LOADER_KEYS.items():
        if loader not in loaders:
            out.append((key, f"{why} (reader.data_loader is {loader.value})"))
    return out
