"""The sections a ``RunConfig`` holds and how a section flattens into plain (dotted key, value) pairs.

A leaf below ``schema`` (the ``RunConfig`` class) and ``keys`` (the key table): both need the list of sections
and the plain form of a value, and neither imports the other's way back.

>>> list(SECTIONS)[:3]
['model', 'workflow', 'dataset']
>>> dict(section_items(SECTIONS["reader"]()))["reader.batch_size"]
1
>>> dict(default_items())["framework"]
'tensorflow'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from .enums import ConfigEnum, Framework
from .frozen import thaw
from .sections import (
    CheckpointConfig, DatasetConfig, EvaluationConfig, MetricConfig, ModelConfig, OutputConfig, ProfilingConfig,
    ReaderConfig, Section, StorageConfig, TrainConfig, WorkflowConfig,
)
from .timespec import TimeSpec

__all__ = ["SECTIONS", "DEFAULT_FRAMEWORK", "plain", "section_items", "default_items"]

# DLIO's default framework (its ``utils/config.py``)
DEFAULT_FRAMEWORK = Framework.TENSORFLOW

# top-level attribute -> section class, in the order ``to_dict`` writes them (DLIO's workload files' order)
SECTIONS: dict[str, type[Section]] = {
    "model": ModelConfig,
    "workflow": WorkflowConfig,
    "dataset": DatasetConfig,
    "storage": StorageConfig,
    "reader": ReaderConfig,
    "train": TrainConfig,
    "evaluation": EvaluationConfig,
    "checkpoint": CheckpointConfig,
    "output": OutputConfig,
    "metric": MetricConfig,
    "profiling": ProfilingConfig,
}


def plain(value: Any) -> Any:
    """A config value as plain YAML/JSON types (enums -> str, TimeSpec -> number/dict, tuples -> lists).

    >>> plain(Framework.JAX), plain((1, 2))
    ('jax', [1, 2])
    """
    if isinstance(value, ConfigEnum):
        return value.value
    if isinstance(value, TimeSpec):
        return value.to_config()
    if isinstance(value, Section):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (Mapping, list, tuple)):
        return thaw(value)
    return value


def section_items(section: Section) -> list[tuple[str, Any]]:
    """(dotted key, plain value) for every leaf of ``section``, nested sections flattened."""
    out: list[tuple[str, Any]] = []
    for f in fields(section):
        value = getattr(section, f.name)
        if isinstance(value, Section):
            out.extend(section_items(value))
        else:
            out.append((section.key_of(f.name), plain(value)))
    return out


def default_items() -> list[tuple[str, Any]]:
    """(dotted key, plain default) for every key of a default ``RunConfig``: what ``RunConfig().items()`` holds."""
    out: list[tuple[str, Any]] = [("framework", DEFAULT_FRAMEWORK.value)]
    for cls in SECTIONS.values():
        out.extend(section_items(cls()))
    return out
