"""The table of every key DLIO HEAD, DLIO 2.0.0 (PyPI) and the MLCommons storage configs read or carry.

Canonical keys are DLIO HEAD's and come from the section dataclasses (``sections.py``); this module adds
what a file may say instead:

- ``ALIASES``: other spellings of one key (2.0.0 names, HEAD workload spellings HEAD itself ignores, the
  MLCommons fork's). After normalising, the last writer wins and an override beats the file.
- ``SECTION_ALIASES``: ``data_reader`` is ``reader``. A top-level ``model: NAME`` string (2.0.0) is ``model.name``.
- ``NO_EFFECT``: keys DLIO carries that do nothing in dl-driver; setting one (to a non-default value) gives a
  ``ConfigWarning`` saying so. ``CONDITIONAL_NO_EFFECT`` lists keys that are inert only in some settings.
- ``MAPPING_KEYS``: free mappings passed through (``storage.storage_options``: any option, e.g.
  ``storage_library``, ``prefetch_window``; ``dataset.parquet``: the fork's parquet layout).
- ``TIME_KEYS``: time values, each with a ``*_stdev`` sibling folded into its ``TimeSpec``.
- ``hydra.*`` keys (overrides) are accepted and recorded; ``hydra.run.dir`` sets ``output.folder`` when unset.

Anything else is an unknown key: a ``ConfigError`` naming the dotted path and the nearest known key.

>>> resolve("data_reader.batch_size").canonical
'reader.batch_size'
>>> resolve("dataset.record_length").canonical
'dataset.record_length_bytes'
>>> suggest("reader.batch_sise")
'reader.batch_size'
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from .errors import ConfigError
from .layout import SECTIONS, default_items
from .sections import PARQUET_KEYS, Section

__all__ = [
    "ALIASES", "SECTION_ALIASES", "NO_EFFECT", "CONDITIONAL_NO_EFFECT", "MAPPING_KEYS", "TIME_KEYS", "EXTENSIONS",
    "Resolved", "canonical_keys", "resolve", "suggest", "unknown_key", "attr_path", "resolve_for_get",
    "key_table",
]

# alias -> (canonical key, who spells it that way)
ALIASES: dict[str, tuple[str, str]] = {
    "dataset.record_length": ("dataset.record_length_bytes", "DLIO 2.0.0, MLCommons v1.0 and flux configs"),
    "dataset.record_length_stdev": ("dataset.record_length_bytes_stdev", "DLIO 2.0.0"),
    "dataset.record_length_resize": ("dataset.record_length_bytes_resize", "DLIO 2.0.0"),
    "model.model_size": ("model.model_size_bytes", "HEAD's unet3d_*/megatron workloads (HEAD itself ignores it)"),
    "checkpoint.model_size": ("model.model_size_bytes", "DLIO 2.0.0"),
    "checkpoint.optimization_groups": ("model.optimization_groups", "DLIO 2.0.0"),
    "checkpoint.num_layers": ("model.num_layers", "DLIO 2.0.0"),
    "checkpoint.layer_parameters": ("model.layer_parameters", "DLIO 2.0.0"),
    "checkpoint.tensor_parallelism": ("model.parallelism.tensor", "DLIO 2.0.0"),
    "checkpoint.pipeline_parallelism": ("model.parallelism.pipeline", "DLIO 2.0.0"),
    "reader.computatation_threads": ("reader.computation_threads", "DLIO 1.x (misspelt)"),
    "storage.storage_library": ("storage.storage_options.storage_library", "MLCommons DLIO fork"),
}
SECTION_ALIASES: dict[str, str] = {"data_reader": "reader"}

# keys that are read by some DLIO version but do nothing here -> why (the warning text)
NO_EFFECT: dict[str, str] = {
    "workflow.debug": "it sets DLIO's log level; use the dl-driver CLI's --debug",
    "workflow.query": "it selects what dlio_benchmark_query prints; use `dl-driver query KEY`",
    "reader.file_access": "DLIO parses it and never uses it either",
    "reader.data_loader_classname": "DLIO plugin classes are not loaded; choose a loader with reader.data_loader",
    "reader.reader_classname": "DLIO plugin classes are not loaded; formats are chosen by dataset.format",
    "reader.data_loader_sampler": "dl-driver's sampler hands whole batches to every loader; DLIO's "
                                  "iterative/index sample maps do not exist here",
    "dataset.record_element_bytes": "it is derived from dataset.record_element_type",
    "dataset.data_gen_method": "the MLCommons fork's generator switch; dl-driver has one generator",
    "checkpoint.type": "DLIO HEAD ignores it too; which ranks write follows model.parallelism",
    "checkpoint.checkpoint_mechanism_classname": "DLIO plugin classes are not loaded; choose a mechanism with "
                                                 "checkpoint.checkpoint_mechanism",
    "checkpoint.ksm": "dl-driver does not madvise checkpoint buffers (DLIO's KSM page merging)",
    "storage.post_generation_settle_seconds": "the MLCommons fork's pause after generation; dl-driver lists "
                                              "from the generation manifest",
    "dataset.keep_files": "dl-driver never deletes the dataset after a run; remove the data folder yourself",
    "profiling.iostat_devices": "dl-driver runs no iostat profiler; report.json has per-stage latencies and bytes read",
    # DLIO 2.0.0's stock dlrm.yaml carries these; no DLIO version reads them
    "workflow.do_eval": "DLIO never reads it either (evaluation is workflow.evaluation)",
    "dataset.eval_num_samples_per_file": "DLIO never reads it either (eval files hold dataset.num_samples_per_file)",
    "train.total_eval_steps": "DLIO never reads it either (eval runs its files' steps)",
    "evaluation.steps_between_evals": "DLIO never reads it either (evaluation.epochs_between_evals sets the cadence)",
}
CONDITIONAL_NO_EFFECT: dict[str, str] = {
    "dataset.enable_chunking": "no effect unless dataset.format is hdf5",
    "dataset.chunk_size": "no effect unless dataset.format is hdf5",
    "dataset.compression_level": "no effect when dataset.compression is none",
    "profiling.profiler": "dl-driver runs no external profiler (iostat, darshan, tensorboard); report.json has "
                          "per-stage latency percentiles and bytes actually read",
}
MAPPING_KEYS = ("storage.storage_options", "dataset.parquet")
TIME_KEYS = ("train.computation_time", "evaluation.eval_time", "reader.preprocess_time",
             "checkpoint.time_between_checkpoints")
EXTENSIONS: dict[str, str] = {
    "train.computation_device": "cpu (sleep) or gpu (busy kernel) compute emulation",
    "output.record_access_order": "log the (file, sample) order each rank read",
    "reader.data_loader": "values native and jax",
    "framework": "value jax",
    "reader.batch_content": "constant (DLIO's constant tensor, default) or samples: what a framework loader hands the model",
    "dataset.hdf5.layout": "records_k (DLIO HEAD, default) or records (DLIO 2.0.0; the default of configs in 2.0.0 spelling): the HDF5 layout generated",
    "checkpoint.checkpoint_mechanism": "values raw, stream, torch_save, dcp, orbax (pt_save means stream, as in the "
                                       "MLCommons fork)",
    "checkpoint.compression": "zstd-compressed raw and stream checkpoints",
    "checkpoint.compression_level": "the zstd level of checkpoint.compression",
    "checkpoint.drop_page_cache": "drop every node's page cache before each checkpoint load (root or sudo -n)",
    "checkpoint.drop_page_cache_timeout_s": "the bound on checkpoint.drop_page_cache",
    "reader.decode": "False (default: bytes, the MLCommons fork's measure) or True (decode as a trainer would)",
    "dataset.image_encoding": "encoded (real images, default) or raw (the MLCommons fork's bytes) jpeg/png files",
}


@lru_cache(maxsize=1)
def canonical_keys() -> dict[str, str]:
    """Every canonical dotted key -> its attribute path on ``RunConfig`` (``*_stdev`` siblings included)."""
    out = {"framework": "framework"}

    def walk(cls: type[Section], attr: str) -> None:
        for f in fields(cls):
            nested = _nested_section(cls, f.name)
            if nested is not None:
                walk(nested, f"{attr}.{f.name}")
            else:
                out[cls.key_of(f.name)] = f"{attr}.{f.name}"

    for name, cls in SECTIONS.items():
        walk(cls, name)
    for key in TIME_KEYS:
        out[f"{key}_stdev"] = out[key]
    return out


def _nested_section(cls: type[Section], name: str) -> type[Section] | None:
    value = cls.default_of(name)
    return type(value) if isinstance(value, Section) else None


@lru_cache(maxsize=1)
def _prefixes() -> frozenset[str]:
    """Dotted paths that are sections (hold keys): ``model``, ``model.parallelism``, ``output.metric``..."""
    out = set(SECTION_ALIASES)
    for key in (*canonical_keys(), *ALIASES, *NO_EFFECT):
        parts = key.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(out)


@dataclass(frozen=True)
class Resolved:
    """Where a dotted path lands: ``kind`` is leaf | section | noeffect | hydra; ``sub`` is the part of the
    path inside a mapping or time key (``storage.storage_options.endpoint_url`` -> ``("endpoint_url",)``)."""

    kind: str
    canonical: str
    sub: tuple[str, ...] = ()
    alias_of: str | None = None


def _dealias_section(path: str) -> str:
    head, _, rest = path.partition(".")
    if head in SECTION_ALIASES:
        return SECTION_ALIASES[head] + ("." + rest if rest else "")
    return path


def resolve(path: str) -> Resolved:
    """Classify a dotted key path, normalising every alias; unknown paths raise ``ConfigError``."""
    if path == "hydra" or path.startswith("hydra."):
        return Resolved("hydra", path)
    norm = _dealias_section(path)
    alias_of = None
    if norm in ALIASES:
        alias_of, norm = path, ALIASES[norm][0]
    keys = canonical_keys()
    if norm in keys:
        return Resolved("leaf", norm, (), alias_of)
    for base in (*MAPPING_KEYS, *TIME_KEYS):
        if norm.startswith(base + "."):
            sub = tuple(norm[len(base) + 1:].split("."))
            if base == "dataset.parquet" and sub[0] not in PARQUET_KEYS:
                raise unknown_key(path)
            return Resolved("leaf", base, sub, alias_of)
    for key in NO_EFFECT:
        if norm == key or norm.startswith(key + "."):
            return Resolved("noeffect", key, tuple(norm[len(key) + 1:].split(".")) if norm != key else (), alias_of)
    if norm in _prefixes():
        return Resolved("section", norm, (), alias_of)
    raise unknown_key(path)


@lru_cache(maxsize=1)
def _all_keys() -> tuple[str, ...]:
    parquet = tuple(f"dataset.parquet.{k}" for k in PARQUET_KEYS)
    return tuple(sorted({*canonical_keys(), *ALIASES, *NO_EFFECT, *parquet}))


def suggest(path: str) -> str | None:
    """The nearest known key to ``path``.

    Tried in order: a misspelt section name (``readr.batch_size`` -> ``reader.batch_size``), the same last name
    in another section (``reader.computation_time`` -> ``train.computation_time``), a close key in the same
    section, a close last name anywhere, a close full path anywhere. Aliases are suggested in HEAD spelling.
    """
    keys = _all_keys()
    norm = _dealias_section(path)
    section, _, rest = norm.partition(".")
    sections = sorted({k.split(".", 1)[0] for k in keys} | set(SECTION_ALIASES))
    if section not in sections:
        hit = difflib.get_close_matches(section, sections, n=1, cutoff=0.6)
        if not hit:
            return None
        fixed = _dealias_section(hit[0] + ("." + rest if rest else ""))
        if not rest or fixed in keys:
            return fixed
        return suggest(fixed) or fixed.split(".", 1)[0]
    return _canonical_spelling(_nearest(norm, keys))


def _nearest(norm: str, keys: tuple[str, ...]) -> str | None:
    section = norm.split(".", 1)[0]
    leaf = norm.rsplit(".", 1)[-1]
    exact = [k for k in keys if k.rsplit(".", 1)[-1] == leaf and k != norm]
    if exact:
        return exact[0]
    same = [k for k in keys if k.split(".", 1)[0] == section]
    hit = difflib.get_close_matches(norm, same, n=1, cutoff=0.7)
    if hit:
        return hit[0]
    by_leaf: dict[str, str] = {}
    for k in keys:
        by_leaf.setdefault(k.rsplit(".", 1)[-1], k)
    hit = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.75)
    if hit:
        return by_leaf[hit[0]]
    hit = difflib.get_close_matches(norm, keys, n=1, cutoff=0.6)
    return hit[0] if hit else None


def _canonical_spelling(key: str | None) -> str | None:
    """Suggest DLIO HEAD's spelling rather than an older alias."""
    return ALIASES[key][0] if key in ALIASES else key


def unknown_key(path: str) -> ConfigError:
    """The error for a key no DLIO version knows, with the nearest valid key."""
    hint = suggest(path)
    if hint:
        return ConfigError(f"{path}: unknown key (no DLIO version reads it); did you mean {hint}?", key=path)
    section = _dealias_section(path).split(".", 1)[0]
    known = sorted(k for k in canonical_keys() if k.split(".", 1)[0] == section)
    listing = f"; keys in {section}: {', '.join(known)}" if known else f"; sections: framework, {', '.join(SECTIONS)}"
    return ConfigError(f"{path}: unknown key (no DLIO version reads it){listing}", key=path)


def attr_path(key: str) -> str:
    """The ``RunConfig`` attribute path of canonical key ``key`` (``output.metric.exclude_start_steps`` ->
    ``output.exclude_start_steps``)."""
    keys = canonical_keys()
    if key in keys:
        return keys[key]
    raise unknown_key(key)


def resolve_for_get(key: str) -> tuple[str, tuple[str, ...]]:
    """(path in ``RunConfig.to_dict()``, sub-path) for ``RunConfig.get``: any known spelling, attribute paths
    (``output.exclude_start_steps``) and section names (``model.parallelism``) are accepted."""
    by_attr = {attr: k for k, attr in canonical_keys().items() if not k.endswith("_stdev")}
    if key in by_attr and key not in canonical_keys():
        return by_attr[key], ()
    norm = _dealias_section(key)
    if norm in _prefixes() and norm not in NO_EFFECT:
        return norm, ()
    r = resolve(key)
    if r.kind == "noeffect":
        raise ConfigError(f"{key}: has no effect in dl-driver and is not kept ({NO_EFFECT[r.canonical]})", key=key)
    if r.kind == "hydra":
        raise ConfigError(f"{key}: hydra keys are recorded in RunConfig.hydra, not in the workload", key=key)
    return r.canonical, r.sub


def key_table() -> list[dict[str, Any]]:
    """One row per key for documentation: key, default (plain), kind (canonical | alias | no effect), note."""
    defaults = dict(default_items())
    rows: list[dict[str, Any]] = []
    for key in canonical_keys():
        note = EXTENSIONS.get(key, "") or CONDITIONAL_NO_EFFECT.get(key, "") or NO_EFFECT.get(key, "")
        if key.endswith("_stdev") and key[: -len("_stdev")] in TIME_KEYS:
            note = f"folded into {key[: -len('_stdev')]} (normal distribution)"
        rows.append({"key": key, "default": defaults.get(key), "kind": "canonical", "note": note})
    for alias, (target, who) in ALIASES.items():
        rows.append({"key": alias, "default": None, "kind": "alias", "note": f"= {target} ({who})"})
    for key, why in NO_EFFECT.items():
        if key not in canonical_keys():
            rows.append({"key": key, "default": None, "kind": "no effect", "note": why})
    return rows
