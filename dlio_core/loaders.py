"""``reader.data_loader`` -> the Loader that feeds the runner.

Loaders are found through ``LOADERS``, a :class:`~dlio_core.registry.Registry`: our own are built-in
entries that import a plugin's module only when it is chosen (so ``dlio_core`` never imports a
framework, and a source checkout works without an install), each naming the framework module it
needs and the extra that brings it; third parties add theirs through the ``dl_driver.loaders`` entry
point group (a factory with :func:`make_loader`'s signature).

Example:
    >>> from dlio_core.loaders import LOADERS
    >>> LOADERS["native"].extra is None, LOADERS["pytorch"].requires
    (True, 'torch')
"""

from __future__ import annotations

from typing import Any, Sequence

from dlio_core.registry import Entry, Registry

__all__ = ["LOADERS", "LoaderUnavailable", "make_loader"]


class LoaderUnavailable(RuntimeError):
    """The chosen loader cannot be used here; the message says what to install or choose instead."""


LOADERS = Registry("reader.data_loader", group="dl_driver.loaders", error=LoaderUnavailable,
                   fallback="use ++workload.reader.data_loader=native, the framework-free engine")
_NOT_HERE = "is not available in this version of dl-driver"
LOADERS.register_builtins([
    Entry("pytorch", "dlio_torch._loader:make_loader", extra="torch", requires="torch"),
    Entry("tensorflow", "dlio_tf._loader:make_loader", extra="tf", requires="tensorflow"),
    Entry("jax", "dlio_jax._loader:make_loader", extra="jax", requires="jax"),
    Entry("dali", "dlio_jax.dali._loader:make_loader", extra="dali", requires="nvidia.dali"),
    Entry("native_dali", "dlio_jax.dali._loader:make_native_loader", extra="dali", requires="nvidia.dali"),
    Entry("synthetic", "dlio_core.synthetic_loader:synthetic_loader",
          note="no I/O: zero batches of the nominal sample size, the harness-overhead baseline"),
    Entry("custom", None, note=_NOT_HERE + " (DLIO's plugin classes are not loaded; refused at validation)"),
])


def make_loader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str, rank: int = 0) -> Any:
    """Build the loader ``cfg.reader.data_loader`` names over ``files`` (``(relpath, size)`` pairs).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> make_loader(NS(reader=NS(data_loader="custom")), None, [], split="train")
        Traceback (most recent call last):
        ...
        dlio_core.loaders.LoaderUnavailable: reader.data_loader 'custom' is not available in this version of dl-driver (DLIO's plugin classes are not loaded; refused at validation) (available: dali, jax, native, native_dali, pytorch, synthetic, tensorflow); use ++workload.reader.data_loader=native, the framework-free engine
    """
    factory = LOADERS.load(cfg.reader.data_loader)
    return factory(cfg, storage, files, split=split, rank=rank)


def native_loader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str, rank: int = 0) -> Any:
    """The framework-free engine (:class:`~dlio_core.engine.NativeLoader`), built by :mod:`dlio_core.reader`."""
    from .reader import native_reader  # here, not at the top: choosing a loader imports no engine

    return native_reader(cfg, storage, files, rank=rank)


# The engine's entry is the function above itself (registered here, once it exists), not a string
# that leads back into this module.
LOADERS.register_builtins([Entry("native", native_loader)])
