"""Load a workload: YAML file, bundled name, ``--config-dir`` lookup, dict or ``RunConfig``, plus overrides.

Every key is resolved through ``keys`` (aliases normalised, unknown keys refused with a suggestion), merged
in order (within a file the later key wins; overrides beat the file, the later override wins), then the
sections are built and checked. Keys that have no effect in dl-driver produce a ``ConfigWarning`` that is
also kept in ``cfg.warnings``.

>>> cfg = load_config("unet3d_h100", ["++workload.reader.batch_size=8"])
>>> cfg.reader.batch_size, cfg.dataset.num_files_train, cfg.model.model_size_bytes
(8, 168, 499153191)
>>> load_config({"reader": {"batch_sise": 8}})
Traceback (most recent call last):
...
dlio_core.config.errors.ConfigError: reader.batch_sise: unknown key (no DLIO version reads it); did you mean reader.batch_size? (in <dict>)
"""

from __future__ import annotations

import difflib
import os
import warnings as _warnings
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ..redact import redact_override
from .checks import inert_keys
from .convert import show
from .enums import Compression, Format, Profiler
from .env import fill_ins
from .errors import ConfigError, ConfigWarning
from .keys import ALIASES, CONDITIONAL_NO_EFFECT, MAPPING_KEYS, NO_EFFECT, TIME_KEYS, canonical_keys, resolve
from .overrides import parse_override
from .schema import SECTIONS, RunConfig
from .timespec import TimeSpec
from .yamlio import load_yaml_text

__all__ = ["load_config", "bundled_workloads", "bundled_workload_path"]

_WRAPPER_KEYS = {"workload", "hydra", "defaults"}


def bundled_workloads() -> tuple[str, ...]:
    """Names of the workloads shipped in ``dlio_core/config/workloads`` (DLIO's and MLPerf Storage's).

    >>> "unet3d_h100" in bundled_workloads()
    True
    """
    folder = resources.files("dlio_core.config") / "workloads"
    return tuple(sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")))


def bundled_workload_path(name: str) -> Path:
    """The file of bundled workload ``name`` (``ConfigError`` listing close names when there is none)."""
    path = Path(str(resources.files("dlio_core.config") / "workloads" / f"{name}.yaml"))
    if not path.is_file():
        raise _not_found(name, None)
    return path


def load_config(source: str | os.PathLike[str] | Mapping[str, Any] | RunConfig, overrides: Sequence[str] = (),
                *, config_dir: str | os.PathLike[str] | None = None) -> RunConfig:
    """The validated ``RunConfig`` for ``source`` with ``overrides`` applied.

    ``source``: a YAML file path; a name found as ``config_dir/workload/NAME.yaml`` or ``config_dir/NAME.yaml``;
    a bundled workload name; a dict (the workload node, or a hydra-style ``{workload: {...}}``); or a
    ``RunConfig`` (its overrides are kept and the new ones applied on top).
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    store = _Store()
    prior: tuple[str, ...] = ()
    if isinstance(source, RunConfig):
        label, node = source.source, source.to_dict()
        prior = source.overrides
        store.hydra.update(source.hydra)
    elif isinstance(source, Mapping):
        label, node = "<dict>", source
    elif isinstance(source, (str, os.PathLike)):
        path, label = _locate(os.fspath(source), config_dir)
        node = _read(path)
    else:
        raise ConfigError(f"workload source: {type(source).__name__} is not allowed; expected a YAML path, a "
                          f"workload name, a dict or a RunConfig")
    node = _unwrap(node, label, store)
    where = f"in {label}"
    for key, value in node.items():
        store.put(str(key), value, where, source_id="file")
    for i, token in enumerate(overrides):
        key, value = parse_override(str(token))
        store.put(key, value, f"from override {redact_override(str(token))}", source_id=f"override{i}")
    run_dir = store.hydra.get("run.dir")
    if run_dir not in (None, "") and store.values.get("output.folder") is None:
        store.values["output.folder"] = str(run_dir)
        store.origin["output.folder"] = "from override hydra.run.dir"
    for key, value, where in fill_ins(store.values, os.environ):  # the MLCommons fork's DLIO_* variables
        store.put(key, value, where, source_id="env")
    cfg = _build(store, label, (*prior, *(str(o) for o in overrides)))
    for message in cfg.warnings:
        _warnings.warn(message, ConfigWarning, stacklevel=2)
    return cfg


# --------------------------------------------------------------------------- locating and reading
def _locate(text: str, config_dir: str | os.PathLike[str] | None) -> tuple[Path, str]:
    path = Path(text).expanduser()
    if path.is_file():
        return path, text
    if path.is_dir():
        raise ConfigError(f"{text}: is a directory; give a workload YAML file or name (with --config-dir DIR)")
    name = text[: -len(path.suffix)] if path.suffix in (".yaml", ".yml") else text
    if config_dir is not None:
        root = Path(config_dir).expanduser()
        for candidate in (root / "workload" / f"{name}.yaml", root / f"{name}.yaml",
                          root / "workload" / f"{name}.yml", root / f"{name}.yml"):
            if candidate.is_file():
                return candidate, str(candidate)
    if os.sep not in name and "/" not in name:
        bundled = Path(str(resources.files("dlio_core.config") / "workloads" / f"{name}.yaml"))
        if bundled.is_file():
            return bundled, name
    raise _not_found(text, config_dir)


def _not_found(text: str, config_dir: str | os.PathLike[str] | None) -> ConfigError:
    name = Path(text).stem if text.endswith((".yaml", ".yml")) else text
    close = difflib.get_close_matches(name, bundled_workloads(), n=4, cutoff=0.5)
    looked = f"; looked in {config_dir}/workload/ and {config_dir}/" if config_dir is not None else ""
    hint = f"; did you mean {', '.join(close)}?" if close else "; `dl-driver workloads` lists the bundled ones"
    return ConfigError(f"{text}: no such YAML file or bundled workload{looked}{hint}")


def _read(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read workload file ({exc.__class__.__name__}: {exc})") from None
    node = load_yaml_text(text, where=str(path))
    if node is None:
        raise ConfigError(f"{path}: the workload file is empty (or only comments); give at least the dataset "
                          "and reader sections, or name a bundled workload (`dl-driver workloads` lists them)")
    if not isinstance(node, Mapping):
        raise ConfigError(f"{path}: expected a mapping of DLIO sections (model, dataset, reader, ...) at the top "
                          f"level, got a {type(node).__name__}")
    return node


def _unwrap(node: Mapping[str, Any], label: str, store: _Store) -> Mapping[str, Any]:
    """A hydra-style root ``{workload: {...}, hydra: {...}}`` -> its workload node (hydra keys recorded)."""
    if not isinstance(node, Mapping):
        raise ConfigError(f"{label}: expected a mapping of DLIO sections, got a {type(node).__name__}")
    if "workload" in node and set(map(str, node)) <= _WRAPPER_KEYS:
        hydra = node.get("hydra")
        if isinstance(hydra, Mapping):
            store.put("hydra", hydra, f"in {label}", source_id="file")
        inner = node["workload"]
        if not isinstance(inner, Mapping):
            raise ConfigError(f"{label}: workload: expected a mapping of DLIO sections, got {show('workload', inner)}")
        return inner
    return node


# --------------------------------------------------------------------------- merging
class _Store:
    """Canonical key -> raw value, in write order, with where each value came from."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.origin: dict[str, str] = {}
        self.spelled: dict[str, str] = {}
        self.writer: dict[str, tuple[str, str]] = {}  # canonical -> (source_id, spelling) of last write
        self.unstored: dict[str, tuple[str, Any, str]] = {}  # no-effect keys DLIO carries: (spelling, value, origin)
        self.hydra: dict[str, Any] = {}
        self.notes: list[str] = []

    def put(self, path: str, value: Any, where: str, *, source_id: str) -> None:
        try:
            resolved = resolve(path)
        except ConfigError as exc:
            raise ConfigError(f"{exc} ({where})", key=exc.key) from None
        kind, canonical = resolved.kind, resolved.canonical
        if kind == "hydra":
            if isinstance(value, Mapping):
                for k, v in value.items():
                    self.put(f"{path}.{k}", v, where, source_id=source_id)
            elif path != "hydra":
                self.hydra[path[len("hydra."):]] = value
            return
        if kind == "section":
            if value is None:
                return
            if isinstance(value, Mapping):
                for k, v in value.items():
                    self.put(f"{path}.{k}", v, where, source_id=source_id)
                return
            if canonical == "model":  # DLIO 2.0.0: ``model: NAME``
                self.put("model.name", value, where, source_id=source_id)
                return
            raise ConfigError(f"{path}: {show(path, value)} is not allowed; expected a mapping of the keys of "
                              f"section {canonical} ({where})", key=path)
        if kind == "noeffect":
            self.unstored[canonical] = (path, value, where)
            return
        if resolved.sub:
            value = self._merge_sub(canonical, resolved.sub, value)
        elif canonical in MAPPING_KEYS and isinstance(value, Mapping) and isinstance(self.values.get(canonical), Mapping):
            value = {**self.values[canonical], **value}  # hydra merges dicts given twice
        previous = self.writer.get(canonical)
        if (previous and previous[0] == source_id and previous[1] != path and not resolved.sub
                and self.values.get(canonical) != value):
            self.notes.append(f"{previous[1]} and {path} are the same key ({canonical}); using the later "
                              f"{path} = {show(path, value)} ({where})")
        self.values.pop(canonical, None)  # re-insert: write order is merge order
        self.values[canonical] = value
        self.origin[canonical] = where
        self.spelled[canonical] = path
        self.writer[canonical] = (source_id, path)

    def _merge_sub(self, canonical: str, sub: tuple[str, ...], value: Any) -> dict[str, Any]:
        current = self.values.get(canonical)
        if canonical in TIME_KEYS and current is not None and not isinstance(current, Mapping):
            current = {"mean": current}
        tree: dict[str, Any] = dict(current) if isinstance(current, Mapping) else {}
        node = tree
        for part in sub[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, Mapping) else {}
            node = node[part]
        node[sub[-1]] = value
        return tree


# --------------------------------------------------------------------------- building
def _hdf5_layout_of_dialect(store: _Store) -> None:
    """An hdf5 config spelled as DLIO 2.0.0 spells it (``dataset.record_length``, ``checkpoint.model_size``,
    ...) that does not choose ``dataset.hdf5.layout`` generates 2.0.0's layout, so 2.0.0 reads what it made."""
    fmt = str(getattr(store.values.get("dataset.format"), "value", store.values.get("dataset.format"))).lower()
    if fmt != "hdf5" or "dataset.hdf5.layout" in store.values or "dataset.hdf5.num_dset_per_record" in store.values:
        return
    if any(ALIASES.get(path, ("", ""))[1].startswith("DLIO 2.0.0") for path in store.spelled.values()):
        store.put("dataset.hdf5.layout", "records", "DLIO 2.0.0's spelling", source_id="dialect")


def _build(store: _Store, label: str, overrides: tuple[str, ...]) -> RunConfig:
    _hdf5_layout_of_dialect(store)
    keys = canonical_keys()
    tree: dict[str, Any] = {}
    try:
        for canonical, value in store.values.items():
            if canonical.endswith("_stdev") and canonical[: -len("_stdev")] in TIME_KEYS:
                continue
            if canonical in TIME_KEYS:
                value = TimeSpec.parse(value, key=canonical, stdev=store.values.get(f"{canonical}_stdev"),
                                       allow_negative=canonical == "checkpoint.time_between_checkpoints")
            *parents, leaf = keys[canonical].split(".")
            node = tree
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        for base in TIME_KEYS:  # a ``*_stdev`` sibling without its base: DLIO's base default with that stdev
            if f"{base}_stdev" in store.values and base not in store.values:
                section, leaf = keys[base].split(".")
                default = getattr(SECTIONS[section].default_of(leaf), "mean", 0.0)
                tree.setdefault(section, {})[leaf] = TimeSpec.parse(default, key=base, allow_negative=True,
                                                                    stdev=store.values[f"{base}_stdev"])
        cfg = RunConfig(**tree, source=label, overrides=overrides, hydra=store.hydra)
    except ConfigError as exc:
        where = _origin_of(store, exc.key)
        raise ConfigError(f"{exc} ({where})" if where else str(exc), key=exc.key) from None
    return _with_warnings(cfg, store)


def _origin_of(store: _Store, key: str | None) -> str | None:
    if key is None:
        return None
    key = key.split("[", 1)[0]
    while key:  # the key itself, else the time / mapping key it sits in (train.computation_time.mean)
        if key in store.origin:
            return store.origin[key]
        key = key.rsplit(".", 1)[0] if "." in key else ""
    return None


def _with_warnings(cfg: RunConfig, store: _Store) -> RunConfig:
    from dataclasses import replace

    notes = list(store.notes)
    for canonical, (spelled, value, where) in store.unstored.items():
        if value is not None:
            notes.append(f"{spelled}: has no effect in dl-driver: {NO_EFFECT[canonical]} ({where})")
    for canonical, why in (*NO_EFFECT.items(), *inert_keys(cfg)):
        if canonical in store.values and cfg._attr(canonical) != _default(canonical):
            notes.append(f"{store.spelled[canonical]}: has no effect in dl-driver: {why} ({store.origin[canonical]})")
    for canonical in ("dataset.enable_chunking", "dataset.chunk_size"):
        if canonical in store.values and cfg.dataset.format is not Format.HDF5 and cfg._attr(canonical) != _default(canonical):
            notes.append(f"{store.spelled[canonical]}: has no effect in dl-driver: "
                         f"{CONDITIONAL_NO_EFFECT[canonical]} ({store.origin[canonical]})")
    if ("dataset.compression_level" in store.values and cfg.dataset.compression is Compression.NONE
            and cfg.dataset.compression_level != _default("dataset.compression_level")):
        notes.append(f"{store.spelled['dataset.compression_level']}: has no effect in dl-driver: "
                     f"{CONDITIONAL_NO_EFFECT['dataset.compression_level']} ({store.origin['dataset.compression_level']})")
    if cfg.workflow.profiling and cfg.profiling.profiler is not Profiler.NONE:
        notes.append(f"profiling.profiler: {cfg.profiling.profiler.value} has no effect in dl-driver: "
                     f"{CONDITIONAL_NO_EFFECT['profiling.profiler']}")
    return replace(cfg, warnings=tuple(notes)) if notes else cfg


def _default(canonical: str) -> Any:
    section, *rest = canonical_keys()[canonical].split(".")
    node: Any = SECTIONS[section]()
    for part in rest:
        node = getattr(node, part)
    return node
