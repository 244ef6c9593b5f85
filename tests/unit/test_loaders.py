"""Choosing a loader: the native engine, and honest errors for the others."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace as NS

import pytest

from dlio_core.loaders import LOADERS, LoaderUnavailable, make_loader, native_loader


def test_native_is_available():
    assert callable(LOADERS.load("native"))


def test_native_entry_is_the_engine_factory_itself():
    assert LOADERS["native"].target is native_loader and LOADERS.load("native") is native_loader


def test_unknown_loader_lists_choices():
    with pytest.raises(LoaderUnavailable, match="native"):
        LOADERS.load("nonesuch")


@pytest.mark.parametrize("name", ["custom"])  # synthetic is a loader now (test_synthetic_loader.py)
def test_known_but_missing_loaders_say_what_to_use_instead(name):
    cfg = NS(reader=NS(data_loader=name))
    with pytest.raises(LoaderUnavailable, match=rf"'{name}' is not available.*data_loader=native"):
        make_loader(cfg, None, [], split="train")


def test_a_registered_loader_is_built_with_the_runner_arguments():
    seen = []
    LOADERS.register("mine", lambda cfg, storage, files, *, split, rank: seen.append((files, split, rank)) or "L")
    try:
        assert make_loader(NS(reader=NS(data_loader="Mine")), None, [("a", 1)], split="valid", rank=3) == "L"
        assert seen == [([("a", 1)], "valid", 3)]
        with pytest.raises(ValueError, match="clobber=True"):
            LOADERS.register("mine", native_loader)
    finally:
        LOADERS.unregister("mine")


@pytest.mark.parametrize("name", sorted(n for n, s in LOADERS.items() if s.extra))
def test_missing_framework_names_the_extra(name):
    spec = LOADERS[name]
    top = spec.requires.split(".")[0]
    code = (
        "import sys\n"
        f"sys.modules[{top!r}] = None  # as if the framework were not installed\n"
        "from dlio_core.loaders import LOADERS, LoaderUnavailable\n"
        "try:\n"
        f"    LOADERS.load({name!r})\n"
        "except LoaderUnavailable as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f"pip install 'dl-driver[{spec.extra}]'" in out
