"""``RunConfig``: the whole resolved workload, one frozen section per DLIO section.

>>> cfg = RunConfig(reader={"batch_size": 8}, dataset={"record_length_bytes": 4096})
>>> cfg.reader.batch_size, cfg.dataset.record_length_bytes, cfg.framework
(8, 4096, <Framework.TENSORFLOW: 'tensorflow'>)
>>> cfg.get("data_reader.batch_size")
8
>>> cfg.to_dict()["reader"]["batch_size"]
8
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .checks import check_run
from .enums import Framework
from .errors import ConfigError
from .frozen import FrozenMap, freeze, redact as _redact
from .keys import TIME_KEYS, attr_path, resolve_for_get
from .layout import DEFAULT_FRAMEWORK, SECTIONS, plain, section_items
from .sections import (
    CheckpointConfig, DatasetConfig, EvaluationConfig, MetricConfig, ModelConfig, OutputConfig, ProfilingConfig,
    ReaderConfig, StorageConfig, TrainConfig, WorkflowConfig,
)

__all__ = ["RunConfig", "SECTIONS", "plain"]


def _set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


@dataclass(frozen=True)
class RunConfig:
    """A validated workload. Sections may be given as section objects or as mappings of their keys.

    ``source`` (what was loaded), ``overrides`` (as given), ``warnings`` (no-effect keys) and ``hydra``
    (recorded ``hydra.*`` overrides) describe provenance and do not take part in ``==``.
    """

    framework: Framework = DEFAULT_FRAMEWORK
    model: ModelConfig = field(default_factory=ModelConfig)
    workflow: WorkflowConfig = field(default_factory=WorkflowConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    metric: MetricConfig = field(default_factory=MetricConfig)
    profiling: ProfilingConfig = field(default_factory=ProfilingConfig)
    source: str = field(default="<dict>", compare=False)
    overrides: tuple[str, ...] = field(default=(), compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)
    hydra: Mapping[str, Any] = field(default=FrozenMap(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "framework", Framework.parse(self.framework, key="framework"))
        for name, cls in SECTIONS.items():
            value = getattr(self, name)
            if isinstance(value, cls):
                continue
            if value is None:
                value = cls()
            elif isinstance(value, Mapping):
                known = {f.name for f in fields(cls)}
                unknown = [k for k in value if k not in known]
                if unknown:
                    raise ConfigError(f"{name}.{unknown[0]}: unknown key; known keys in {name}: "
                                      f"{', '.join(sorted(known))}", key=f"{name}.{unknown[0]}")
                value = cls(**value)
            else:
                raise ConfigError(f"{name}: {type(value).__name__} is not allowed; expected a {cls.__name__} "
                                  f"or a mapping of its keys", key=name)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "overrides", tuple(str(o) for o in self.overrides))
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))
        object.__setattr__(self, "hydra", freeze(dict(self.hydra)))
        check_run(self)  # what no section sees alone (training without files, a path in model.name, ...)

    # ------------------------------------------------------------------ views
    def items(self) -> list[tuple[str, Any]]:
        """(canonical dotted key, plain value) for every key, in ``to_dict`` order."""
        out: list[tuple[str, Any]] = [("framework", self.framework.value)]
        for name in SECTIONS:
            out.extend(section_items(getattr(self, name)))
        # model first, as DLIO's workload files write it
        return sorted(out, key=lambda kv: 0 if kv[0].startswith("model.") else 1)

    def to_dict(self, redact: bool = False) -> dict[str, Any]:
        """The resolved workload node as a nested dict in DLIO HEAD spelling, plain types only.

        With ``redact=True`` secret values (secret keys, tokens, passwords, connection strings, account keys)
        become ``"***"``.
        """
        tree: dict[str, Any] = {}
        for key, value in self.items():
            _set_path(tree, key, value)
        return _redact(tree) if redact else tree

    def get(self, key: str, *, redact: bool = False) -> Any:
        """The plain value of dotted ``key`` (any spelling DLIO knows), e.g. ``"reader.batch_size"``.

        A section name returns that section as a dict, ``storage.storage_options.NAME`` one option, and a
        ``*_stdev`` time key the stdev of its normal distribution (0 otherwise). ``redact`` masks secrets.
        """
        path, sub = resolve_for_get(key)
        base = path[: -len("_stdev")]
        if path.endswith("_stdev") and base in TIME_KEYS:
            spec = self._attr(base)
            value: Any = spec.stdev if spec.kind == "normal" else 0.0
        else:
            value = self.to_dict()
            for part in (*path.split("."), *sub):
                if not isinstance(value, Mapping) or part not in value:
                    raise ConfigError(f"{key}: not set in this config", key=key)
                value = value[part]
        return _redact(value, key.rsplit(".", 1)[-1]) if redact else value

    def _attr(self, path: str) -> Any:
        node: Any = self
        for part in attr_path(path).split("."):
            node = getattr(node, part)
        return node

