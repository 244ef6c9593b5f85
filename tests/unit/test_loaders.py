"""Choosing a loader: the native engine, and honest errors for the others."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dlio_core.loaders import LOADERS, LoaderUnavailable, _resolve


def test_native_is_available():
    assert callable(_resolve("native"))


def test_unknown_loader_lists_choices():
    with pytest.raises(LoaderUnavailable, match="native"):
        _resolve("nonesuch")


@pytest.mark.parametrize("name", sorted(n for n, s in LOADERS.items() if s.extra))
def test_missing_framework_names_the_extra(name):
    spec = LOADERS[name]
    top = spec.framework_module.split(".")[0]
    code = (
        "import sys\n"
        f"sys.modules[{top!r}] = None  # as if the framework were not installed\n"
        "from dlio_core.loaders import _resolve, LoaderUnavailable\n"
        "try:\n"
        f"    _resolve({name!r})\n"
        "except LoaderUnavailable as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f"pip install 'dl-driver[{spec.extra}]'" in out
