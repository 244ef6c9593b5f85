"""Can this build run a workload? What ``dl-driver validate`` and the ``run``/``generate`` commands check
before anything starts, so a workload this installation cannot run fails at once (exit 2, one line
naming the key, the format or the loader, and the fix) instead of after generation or mid-run.

A config that loads is well formed; whether it can run here depends on what is installed and on the
combinations the parts accept:

- the loader ``reader.data_loader`` (when the workload trains): its framework installed (torch,
  tensorflow, jax, nvidia.dali), a loader this version has, and what it reads (native_dali reads npy
  and tfrecord, from local files or s3:// only);
- the format (when the workload generates or trains): pyarrow for parquet, h5py for hdf5, Pillow for
  jpeg/png where images are encoded (generation) or decoded (``reader.decode: true``), and the
  format's own refusals (an image format with several samples per file);
- the storage of the data and of the checkpoints: the client library of an object store (s3fs,
  adlfs, gcsfs);
- checkpoints (when the workload checkpoints): the framework of the checkpoint mechanism, and a zstd
  codec when ``checkpoint.compression: zstd``.

What runs but not as written is a note, not an error (``notes``): parquet rows sized by their
schema, where ``dataset.record_length_bytes`` is ignored.

Nothing here imports a framework: libraries are looked up with ``importlib.util.find_spec``.

Example:
    >>> from dlio_core.config import load_config
    >>> cfg = load_config("default", ["++workload.reader.data_loader=native_dali"])
    >>> print(blockers(cfg)[0])
    reader.data_loader: native_dali reads dataset.format npy or tfrecord, not npz; use ++workload.reader.data_loader=dali, or a format native_dali reads
    >>> blockers(cfg, installed=lambda module: module != "nvidia.dali")[0].split(";")[0]
    'reader.data_loader: native_dali needs nvidia.dali, which is not installed'
    >>> blockers(load_config("default", ["++workload.reader.data_loader=native"]))
    []
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

from .errors import ConfigError

__all__ = ["NotRunnable", "blockers", "check_runnable", "module_installed", "notes"]

Installed = Callable[[str], bool]

# format -> (module, extra, when it is needed: "always" or "images")
_FORMAT_NEEDS: dict[str, tuple[str, str]] = {"parquet": ("pyarrow", "formats"), "hdf5": ("h5py", "hdf5")}
_IMAGE_FORMATS = ("jpeg", "png")
_NATIVE_DALI_FORMATS = ("npy", "tfrecord")
_NATIVE_DALI_SCHEMES = (None, "file", "local", "direct", "s3")
# object-store scheme -> (client module, extra)
_STORE_CLIENTS: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure"), "abfss": ("adlfs", "azure")}


class NotRunnable(ConfigError):
    """A workload this build cannot run (a bad input: exit 2); the message names the key and the fix."""


def module_installed(name: str) -> bool:
    """Whether ``name`` can be imported here, found without importing it.

    Example:
        >>> module_installed("json"), module_installed("no_such_module_here")
        (True, False)
    """
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken one
        return False


def _value(v: Any) -> str:
    return str(getattr(v, "value", v))


def _missing(what: str, module: str, extra: str, instead: str = "") -> str:
    return (f"{what} needs {module}, which is not installed; run: pip install 'dl-driver[{extra}]'"
            + (f" {instead}" if instead else ""))


def _data_scheme(cfg: Any) -> str | None:
    """The scheme of the dataset's storage (None for local paths), as ``dataset_storage`` would open it."""
    from dlio_core.storage.uri import split_scheme

    scheme = split_scheme(str(cfg.dataset.data_folder))[0]
    if scheme is not None:
        return scheme
    stype = _value(cfg.storage.storage_type)
    return {"s3": "s3", "s3dlio": "s3", "adls_gen2": "az"}.get(stype)


def _loader_blockers(cfg: Any, installed: Installed) -> list[str]:
    from dlio_core.loaders import LOADERS

    name = _value(cfg.reader.data_loader)
    entry = LOADERS.entry(name)
    if not entry.available:
        return [f"reader.data_loader: {name} {entry.note}; use ++workload.reader.data_loader=native"]
    out = []
    if entry.requires and not installed(entry.requires):
        out.append(_missing(f"reader.data_loader: {name}", entry.requires, entry.extra or name,
                            "(or use ++workload.reader.data_loader=native, the framework-free engine)"))
    if name == "native_dali":
        fmt = _value(cfg.dataset.format)
        if fmt not in _NATIVE_DALI_FORMATS:
            out.append(f"reader.data_loader: native_dali reads dataset.format npy or tfrecord, not {fmt}; "
                       f"use ++workload.reader.data_loader=dali, or a format native_dali reads")
        scheme = _data_scheme(cfg)
        if scheme not in _NATIVE_DALI_SCHEMES:
            out.append(f"reader.data_loader: native_dali reads local files and s3:// only, not {scheme}://; "
                       f"use ++workload.reader.data_loader=dali")
    return out


def _format_blockers(cfg: Any, installed: Installed, *, generates: bool, trains: bool) -> list[str]:
    from dlio_core.reader import reader_format

    fmt = _value(cfg.dataset.format)
    out = []
    need = _FORMAT_NEEDS.get(fmt)
    if need and not installed(need[0]):
        out.append(_missing(f"dataset.format {fmt}", *need))
    if fmt in _IMAGE_FORMATS and not installed("PIL"):
        encoded = generates and _value(cfg.dataset.image_encoding) != "raw"
        decoded = trains and bool(cfg.reader.decode)
        if encoded or decoded:
            why = "to encode images (dataset.image_encoding: encoded)" if encoded else "to decode (reader.decode: true)"
            out.append(_missing(f"dataset.format {fmt} {why}", "Pillow", "formats",
                                "(or dataset.image_encoding: raw with reader.decode: false)"))
    try:
        reader_format(cfg)  # the format's own refusals (one sample per image file, ...)
    except Exception as exc:  # FormatError and kin: their message is the one-line reason
        out.append(str(exc))
    return out


def _store_blockers(what: str, scheme: str | None, installed: Installed) -> list[str]:
    client = _STORE_CLIENTS.get(scheme or "")
    if client and not installed(client[0]):
        return [_missing(f"{what} ({scheme}://)", *client)]
    return []


def _checkpoint_blockers(cfg: Any, installed: Installed) -> list[str]:
    from dlio_core.checkpoint.mechanisms import FRAMEWORK_OF, resolve
    from dlio_core.storage.uri import split_scheme

    out = []
    mechanism = resolve(cfg).name
    module, extra = FRAMEWORK_OF.get(mechanism, (None, None))
    if module and not installed(module):
        out.append(_missing(f"checkpoint mechanism {mechanism} (framework: {_value(cfg.framework)})", module,
                            extra or mechanism, "(or ++workload.checkpoint.checkpoint_mechanism=stream)"))
    if _value(cfg.checkpoint.compression) == "zstd" and not (installed("zstandard") or installed("pyarrow")):
        out.append(_missing("checkpoint.compression: zstd", "zstandard", "zstd", "(or pyarrow's codec)"))
    folder_scheme = split_scheme(str(cfg.checkpoint.checkpoint_folder))[0]
    return out + _store_blockers("checkpoint.checkpoint_folder", folder_scheme, installed)


def blockers(cfg: Any, *, installed: Installed = module_installed, generate: bool | None = None,
             train: bool | None = None, checkpoint: bool | None = None) -> list[str]:
    """Every reason this build cannot run ``cfg``, one line each (empty: it can). ``generate``, ``train``
    and ``checkpoint`` default to the workload's ``workflow``; ``dl-driver generate`` checks generation
    alone. ``installed(module)`` says whether a module is there (a test passes its own).

    Example:
        >>> from dlio_core.config import load_config
        >>> cfg = load_config("default", ["++workload.dataset.format=parquet"])
        >>> blockers(cfg, installed=lambda m: m != "pyarrow")
        ["dataset.format parquet needs pyarrow, which is not installed; run: pip install 'dl-driver[formats]'"]
        >>> blockers(cfg, installed=lambda m: m != "torch", train=False)
        []
    """
    wf = cfg.workflow
    generates = wf.generate_data if generate is None else generate
    trains = wf.train if train is None else train
    checkpoints = wf.checkpoint if checkpoint is None else checkpoint
    out: list[str] = []
    if trains:
        out += _loader_blockers(cfg, installed)
    if generates or trains:
        out += _format_blockers(cfg, installed, generates=generates, trains=trains)
        out += _store_blockers("dataset.data_folder", _data_scheme(cfg), installed)
    if checkpoints:
        out += _checkpoint_blockers(cfg, installed)
    return out


def check_runnable(cfg: Any, **kwargs: Any) -> None:
    """Raise :class:`NotRunnable` naming every reason this build cannot run ``cfg``, on one line; keyword
    arguments as :func:`blockers`.

    Example:
        >>> from dlio_core.config import load_config
        >>> check_runnable(load_config("default", ["++workload.reader.data_loader=jax"]),
        ...                installed=lambda m: m != "jax")
        Traceback (most recent call last):
        ...
        dlio_core.config.runnable.NotRunnable: this build cannot run workload default: reader.data_loader: jax needs jax, which is not installed; run: pip install 'dl-driver[jax]' (or use ++workload.reader.data_loader=native, the framework-free engine)
    """
    found = blockers(cfg, **kwargs)
    if found:
        also = "".join(f"; also {reason}" for reason in found[1:])
        raise NotRunnable(f"this build cannot run workload {cfg.source}: {found[0]}{also}")


def notes(cfg: Any) -> list[str]:
    """What runs, but not as the config reads: warnings for ``validate`` (and generation) to print.

    Example:
        >>> from dlio_core.config import load_config
        >>> notes(load_config("dlrm_b200"))   # 761 B: what its 200 columns hold
        []
        >>> notes(load_config("dlrm_b200", ["++workload.dataset.record_length_bytes=4096"]))[0][:62]
        'dataset.record_length_bytes=4096 is ignored for parquet with d'
    """
    out = []
    if cfg.workflow.generate_data or cfg.workflow.train:
        try:
            from dlio_core.reader import reader_format

            fmt = reader_format(cfg)
        except Exception:  # reported by blockers
            return out
        note = fmt.size_note(cfg.dataset) if hasattr(fmt, "size_note") else None
        if note:
            out.append(note)
    return out
