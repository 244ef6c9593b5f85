"""Without torch, ``import dlio_torch`` fails plainly with the install hint; dlio_core still imports."""

from __future__ import annotations

import subprocess
import sys


def test_missing_torch_gives_install_hint():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # as if the extra were not installed\n"
        "import dlio_core, dlio_core.loaders\n"
        "try:\n"
        "    import dlio_torch\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'dl-driver[torch]'" in out
