"""YAML reading as hydra/OmegaConf does it: ``1e-3`` is a float and dates stay strings.

>>> load_yaml_text("t: 1e-3\\nd: 2024-01-01\\n")
{'t': 0.001, 'd': '2024-01-01'}
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["ConfigLoader", "load_yaml_text"]


class ConfigLoader(yaml.SafeLoader):
    """``SafeLoader`` without timestamps and with YAML 1.2-style floats (``1e-3``), like OmegaConf."""


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def load_yaml_text(text: str, *, where: str = "<string>") -> Any:
    """Parse YAML; a syntax error becomes a one-line ``ConfigError`` naming ``where`` and the line."""
    try:
        return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{at}: malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: malformed YAML: {str(exc).splitlines()[0]}") from None
