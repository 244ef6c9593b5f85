"""Samples -> one host batch array.

DLIO's samples are ``x[..., i]`` views of file buffers. A batch becomes one new C-contiguous array
(the buffers can then go back to the engine's pool at once, and JAX never aliases pooled memory).
Samples of different shapes (``record_length_bytes_stdev > 0``) are zero-padded to the batch's
largest shape per axis, because a ``jax.Array`` is rectangular.

Example:
    >>> import numpy as np
    >>> stack_samples([np.ones((2, 2), np.uint8), np.ones((1, 3), np.uint8)]).shape
    (2, 2, 3)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["stack_samples"]


def stack_samples(samples: Sequence[np.ndarray]) -> np.ndarray:
    """Stack ``samples`` on a new leading axis (zero-padding ragged ones)."""
    first = samples[0]
    if all(s.shape == first.shape and s.dtype == first.dtype for s in samples):
        return np.stack(samples)
    ndim = max(s.ndim for s in samples)
    shape = tuple(max(s.shape[a] if a < s.ndim else 1 for s in samples) for a in range(ndim))
    out = np.zeros((len(samples), *shape), dtype=np.result_type(*samples))
    for i, s in enumerate(samples):
        out[(i, *(slice(0, n) for n in s.shape))] = s
    return out
