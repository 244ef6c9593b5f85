"""YAML reading as hydra/OmegaConf does it: ``1e-3`` is a float and dates stay strings.

Input is bounded before anything is built from it: the text's size, the nesting depth, and the number
of nodes once aliases are expanded (a "billion laughs" document or a recursive alias is refused in
microseconds, not after gigabytes); a key given twice in one mapping is an error, as in OmegaConf.

>>> load_yaml_text("t: 1e-3\\nd: 2024-01-01\\n")
{'t': 0.001, 'd': '2024-01-01'}
>>> load_yaml_text("a: 1\\na: 2\\n", where="w.yaml")
Traceback (most recent call last):
...
dlio_core.config.errors.ConfigError: w.yaml:2:1: duplicate key 'a' (first given at line 1); keep one of them
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["ConfigLoader", "load_yaml_text", "MAX_YAML_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES"]

# Bounds on a workload document. The largest stock workload (dlrm_b200) is 9 KiB, 6 levels deep and
# about 600 nodes; these leave room for any real config and refuse a hostile one before it is built.
MAX_YAML_BYTES = 4 * 1024 * 1024
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 200_000


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


def _at(where: str, node: yaml.Node) -> str:
    mark = node.start_mark
    return f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where


def _check_bounds(root: yaml.Node, where: str) -> None:
    """Refuse recursive aliases, deep nesting, too many nodes after alias expansion, duplicate keys.

    Expanded sizes are memoised per node, so a document of N nodes is checked in O(N) however many
    times its aliases would expand.
    """
    expanded: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in expanded:
            return expanded[key]
        if key in on_path:
            raise ConfigError(f"{_at(where, node)}: recursive YAML alias (a node that contains itself); "
                              "write the value out instead of referring to an enclosing anchor")
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{_at(where, node)}: YAML nested deeper than {MAX_YAML_DEPTH} levels; "
                              "a workload needs a handful")
        total = 1
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            on_path.add(key)
            if isinstance(node, yaml.MappingNode):
                _check_duplicates(node, where)
                children = [child for pair in node.value for child in pair]
            else:
                children = node.value
            for child in children:
                total += size(child, depth + 1)
                if total > MAX_YAML_NODES:
                    raise ConfigError(f"{_at(where, node)}: YAML expands to more than {MAX_YAML_NODES:,} values "
                                      "(aliases repeat their anchors); a workload needs a few hundred")
            on_path.discard(key)
        expanded[key] = total
        return total

    size(root, 0)


def _check_duplicates(node: yaml.MappingNode, where: str) -> None:
    seen: dict[str, yaml.Node] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        first = seen.get(key_node.value)
        if first is not None:
            raise ConfigError(f"{_at(where, key_node)}: duplicate key {key_node.value!r} (first given at line "
                              f"{first.start_mark.line + 1}); keep one of them")
        seen[key_node.value] = key_node


def load_yaml_text(text: str, *, where: str = "<string>") -> Any:
    """Parse YAML; a syntax error or an input past the bounds above becomes a one-line ``ConfigError``
    naming ``where`` and the line."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{where}: {len(text):,} characters of YAML; a workload file is at most "
                          f"{MAX_YAML_BYTES:,} (is this the right file?)")
    try:
        loader = ConfigLoader(text)  # the reader refuses control characters here, before parsing
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: malformed YAML: {str(exc).splitlines()[0]}") from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_bounds(root, where)
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{at}: malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: malformed YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # the parser itself recurses per level, before _check_bounds sees the tree
        raise ConfigError(f"{where}: YAML nested deeper than {MAX_YAML_DEPTH} levels; a workload needs a handful") from None
    finally:
        loader.dispose()
