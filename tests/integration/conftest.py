from __future__ import annotations

import pytest

from ._cli import dl_driver


@pytest.fixture
def run_cli():
    return dl_driver
