"""Hostile or mistaken YAML is refused with a one-line ConfigError before anything is built from it."""

from __future__ import annotations

import time

import pytest

from dlio_core.config import ConfigError, load_config
from dlio_core.config import yamlio
from dlio_core.config.yamlio import load_yaml_text


def _laughs(levels: int, fan: int = 10) -> str:
    """The "billion laughs" shape: each level an anchor listing ``fan`` aliases of the level below."""
    lines = ["l0: &l0 [" + ",".join(["lol"] * fan) + "]"]
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * fan) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_quickly_without_building_it():
    t0 = time.process_time()
    with pytest.raises(ConfigError, match=r"^w\.yaml:\d+:\d+: YAML expands to more than 200,000 values"):
        load_yaml_text(_laughs(9), where="w.yaml")  # 10**9 values if built
    assert time.process_time() - t0 < 5  # bounded work; a built document would take minutes and GBs


def test_billion_laughs_under_a_valid_key_in_a_workload_file(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("dataset:\n  record_dims: &a [" + ",".join(["1"] * 10) + "]\n"
                    + "".join(f"  x{i}: &b{i} [" + ",".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * 10) + "]\n"
                              for i in range(8)))
    with pytest.raises(ConfigError, match="YAML expands to more than"):
        load_config(path)


def test_modest_aliases_still_work():
    doc = load_yaml_text("base: &b {batch_size: 4}\nreader: *b\n")
    assert doc == {"base": {"batch_size": 4}, "reader": {"batch_size": 4}}


@pytest.mark.parametrize("text", ["a: &x [1, *x]\n", "a: &x {b: *x}\n"])
def test_recursive_alias(text):
    with pytest.raises(ConfigError, match=r"^<string>:1:\d+: recursive YAML alias"):
        load_yaml_text(text)


@pytest.mark.parametrize("depth", [yamlio.MAX_YAML_DEPTH + 5, 20_000])
def test_deep_nesting(depth):
    with pytest.raises(ConfigError, match="nested deeper than"):
        load_yaml_text("a: " + "[" * depth + "]" * depth)


def test_too_large_text():
    with pytest.raises(ConfigError, match="characters of YAML"):
        load_yaml_text("a: " + "x" * (yamlio.MAX_YAML_BYTES + 1))


def test_duplicate_key_names_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("reader:\n  batch_size: 4\n  read_threads: 2\n  batch_size: 8\n")
    with pytest.raises(ConfigError, match=rf"^{path}:4:3: duplicate key 'batch_size' \(first given at line 2\)"):
        load_config(path)


def test_merge_keys_are_not_duplicates():
    assert load_yaml_text("b: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n") == {"b": {"x": 1}, "c": {"x": 1, "y": 2}}


def test_every_bundled_workload_is_within_the_bounds():
    from dlio_core.config.load import bundled_workload_path, bundled_workloads

    for name in bundled_workloads():
        path = bundled_workload_path(name)
        assert isinstance(load_yaml_text(path.read_text(), where=str(path)), dict), name
