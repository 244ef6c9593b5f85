"""dlio_tf: dl-driver's tensorflow plugin (``pip install 'dl-driver[tf]'``).

This version ships no tensorflow loader yet: ``reader.data_loader`` values that need it fail with a clear
error naming the native engine as the alternative. Importing this package checks that tensorflow is present.
"""

from __future__ import annotations

try:
    import tensorflow  # noqa: F401 - the plugin's framework, imported first so a missing extra is plain
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("dlio_tf needs tensorflow: pip install 'dl-driver[tf]'") from exc

__all__: list[str] = []
