"""dlio_jax: dl-driver's jax plugin (``pip install 'dl-driver[jax]'``).

This version ships no jax loader yet: ``reader.data_loader`` values that need it fail with a clear
error naming the native engine as the alternative. Importing this package checks that jax is present.
"""

from __future__ import annotations

try:
    import jax  # noqa: F401 - the plugin's framework, imported first so a missing extra is plain
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("dlio_jax needs jax: pip install 'dl-driver[jax]'") from exc

__all__: list[str] = []
