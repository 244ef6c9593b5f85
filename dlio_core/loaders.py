"""``reader.data_loader`` -> the Loader that feeds the runner.

Our own loaders are found through this built-in table, which imports a plugin's module only when it
is chosen (so ``dlio_core`` never imports a framework, and a source checkout works without an
install). Each entry names the extra that brings its framework, for the error a user sees when it is
missing.

Example:
    >>> from dlio_core.loaders import LOADERS
    >>> LOADERS["native"].extra is None
    True
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Sequence

__all__ = ["LOADERS", "LoaderSpec", "LoaderUnavailable", "make_loader"]


class LoaderUnavailable(RuntimeError):
    """The chosen loader cannot be used here; the message says what to install or choose instead."""


@dataclass(frozen=True)
class LoaderSpec:
    """Where a loader lives: ``module:function`` building it, the framework module it needs, the extra."""

    target: str | None
    framework_module: str | None = None
    extra: str | None = None


LOADERS = MappingProxyType({
    "native": LoaderSpec("dlio_core.loaders:native_loader"),
    "pytorch": LoaderSpec("dlio_torch.loader:make_loader", "torch", "torch"),
    "tensorflow": LoaderSpec("dlio_tf:tf_loader", "tensorflow", "tf"),
    "jax": LoaderSpec("dlio_jax.loader:jax_loader", "jax", "jax"),
    "dali": LoaderSpec("dlio_jax.dali.loader:dali_loader", "nvidia.dali", "dali"),
    "native_dali": LoaderSpec("dlio_jax.dali.loader:native_dali_loader", "nvidia.dali", "dali"),
    "synthetic": LoaderSpec(None),
    "custom": LoaderSpec(None),
})


def _resolve(name: str) -> Any:
    spec = LOADERS.get(name)
    if spec is None:
        raise LoaderUnavailable(f"reader.data_loader: unknown loader {name!r}; choose one of {sorted(LOADERS)}")
    if spec.framework_module is not None:
        try:
            importlib.import_module(spec.framework_module)
        except ImportError as exc:
            raise LoaderUnavailable(
                f"reader.data_loader: {name} needs {spec.framework_module}, which is not installed; "
                f"run: pip install 'dl-driver[{spec.extra}]' (or choose ++workload.reader.data_loader=native)"
            ) from exc
    if spec.target is None:
        raise LoaderUnavailable(
            f"reader.data_loader: the {name} loader is not available in this version of dl-driver; "
            "use ++workload.reader.data_loader=native (the framework-free engine)"
        )
    module, _, func = spec.target.partition(":")
    return getattr(importlib.import_module(module), func)


def make_loader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str, rank: int = 0) -> Any:
    """Build the loader ``cfg.reader.data_loader`` names over ``files`` (``(relpath, size)`` pairs)."""
    factory = _resolve(str(getattr(cfg.reader.data_loader, "value", cfg.reader.data_loader)))
    return factory(cfg, storage, files, split=split, rank=rank)


def native_loader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str, rank: int = 0) -> Any:
    """The framework-free engine (:class:`~dlio_core.engine.NativeLoader`)."""
    from .engine import NativeLoader
    from .formats import format_for

    return NativeLoader(
        storage,
        format_for(cfg.dataset),
        [storage.join(rel) for rel, _ in files],
        sizes=[size for _, size in files],
        read_threads=cfg.reader.read_threads,
        prefetch_size=cfg.reader.prefetch_size,
        preprocess_s=cfg.reader.preprocess_time,
        seed=cfg.train.seed + 7919 * rank,
    )
