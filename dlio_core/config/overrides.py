"""Hydra-style command-line arguments: ``workload=NAME``, ``--config-dir DIR`` and ``key=value`` overrides.

Override forms (all on DLIO's workload node): ``++workload.a.b=v``, ``+workload.a.b=v``, ``workload.a.b=v``
and ``a.b=v``; ``hydra.*`` keys are kept for the loader. Values are YAML (``True``, ``8``, ``0.5``, ``[md0]``,
``null``, ``{mean: 1, stdev: 0.1}``); an empty value is the empty string, as in hydra.

>>> cl = parse_command_line(["workload=unet3d_h100", "++workload.reader.batch_size=8", "--config-dir", "cfgs"])
>>> cl.source, cl.overrides, cl.config_dir
('unet3d_h100', ('++workload.reader.batch_size=8',), 'cfgs')
>>> parse_override("++workload.profiling.iostat_devices=[md0]")
('profiling.iostat_devices', ['md0'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ..redact import redact_override
from .errors import ConfigError
from .yamlio import load_yaml_text

__all__ = ["CommandLine", "parse_command_line", "parse_override"]

_DIR_FLAGS = ("--config-dir", "--config-path", "-cd", "-cp")
_NAME_FLAGS = ("--config-name", "-cn")


@dataclass(frozen=True)
class CommandLine:
    """What a DLIO-style command line asks for: the workload (``source``), overrides, and ``--config-dir``."""

    source: str | None = None
    overrides: tuple[str, ...] = ()
    config_dir: str | None = None


def parse_command_line(argv: Sequence[str]) -> CommandLine:
    """Split ``argv`` into workload, overrides and config dir; the forms may come in any order.

    Accepts ``workload=NAME``, ``--config-dir DIR`` / ``--config-dir=DIR`` (also ``--config-path``, ``-cd``,
    ``-cp``), ``--config-name NAME``, a bare positional (a YAML path or a workload name) and the override
    forms. Two workloads, a flag without its value, or an unknown ``--option`` are a ``ConfigError``.

    >>> parse_command_line(["my.yaml", "reader.batch_size=2"]).source
    'my.yaml'
    """
    source: str | None = None
    source_from = ""
    config_dir: str | None = None
    overrides: list[str] = []
    args = list(argv)
    i = 0

    def set_source(value: str, how: str) -> None:
        nonlocal source, source_from
        if not value:
            raise ConfigError(f"{how}: empty workload name; name a bundled workload or a YAML file")
        if source is not None and source != value:
            raise ConfigError(f"two workloads given ({source_from} and {how}); give one")
        source, source_from = value, how

    while i < len(args):
        arg = str(args[i])
        flag, eq, inline = arg.partition("=")
        if arg.startswith("-") and not arg.startswith(("++", "+")):
            if flag in _DIR_FLAGS or flag in _NAME_FLAGS:
                if eq:
                    value = inline
                else:
                    if i + 1 >= len(args):
                        raise ConfigError(f"{flag}: missing value; e.g. {flag} DIR")
                    i += 1
                    value = str(args[i])
                if flag in _DIR_FLAGS:
                    if not value:
                        raise ConfigError(f"{flag}: empty directory")
                    config_dir = value
                else:
                    set_source(value, f"{flag} {value}")
            else:
                raise ConfigError(f"{arg}: unknown option; expected --config-dir DIR, --config-name NAME, "
                                  f"workload=NAME or key=value overrides")
        elif eq:
            key = flag.lstrip("+")
            if key == "workload":
                set_source(inline, arg)
            else:
                if not key:
                    raise ConfigError(f"{arg}: override without a key; expected e.g. ++workload.reader.batch_size=8")
                overrides.append(arg)
        else:
            set_source(arg, f"positional {arg!r}")
        i += 1
    return CommandLine(source, tuple(overrides), config_dir)


def parse_override(token: str) -> tuple[str, Any]:
    """(dotted key on the workload node, parsed value) for one override token.

    ``hydra.*`` keys keep their ``hydra.`` prefix. ``~key`` (hydra's delete) is not supported.

    >>> parse_override("train.computation_time={mean: 1, stdev: 0.1}")
    ('train.computation_time', {'mean': 1, 'stdev': 0.1})
    """
    raw_text = str(token)
    text = redact_override(raw_text)  # what messages show: a secret value never reaches an error line
    if text.startswith("~"):
        raise ConfigError(f"{text}: deleting keys is not supported; set the key to its default instead")
    key, eq, raw = raw_text.partition("=")
    if not eq:
        raise ConfigError(f"{text}: not an override; expected KEY=VALUE, e.g. ++workload.reader.batch_size=8")
    key = key.strip()
    if key.startswith("++"):
        key = key[2:]
    elif key.startswith("+"):
        key = key[1:]
    if key.startswith("workload."):
        key = key[len("workload."):]
    elif key == "workload":
        raise ConfigError(f"{text}: selects a workload, not a key; pass it as the source (workload=NAME)")
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"{text}: malformed key {key!r}; expected dotted names such as reader.batch_size")
    if raw == "":
        return key, ""
    try:
        # The bounds of a workload file hold here too (aliases, depth, size): an override is YAML as well.
        value = load_yaml_text(raw, where="value")
    except ConfigError as exc:
        problem = str(exc).split(": ", 1)[1] if str(exc).startswith("value") else str(exc)
        problem = problem.removeprefix("malformed YAML: ")
        shown = text.partition("=")[2]
        raise ConfigError(f"{text.partition('=')[0]}: the value {shown!r} is not valid YAML ({problem})",
                          key=key) from None
    return key, value
