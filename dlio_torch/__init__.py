"""dlio_torch: dl-driver's PyTorch plugin (``pip install 'dl-driver[torch]'``).

This version ships no PyTorch loader yet: ``reader.data_loader: pytorch`` fails with a clear error
that names the native engine as the alternative. Importing this package checks that torch is present.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401 - the plugin's framework, imported first so a missing extra is plain
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("dlio_torch needs PyTorch: pip install 'dl-driver[torch]'") from exc

__all__: list[str] = []
