"""A small labelled dataset for the examples: npz archives in DLIO's layout whose ``y`` holds real classes.

``x`` holds 16x16 uint8 images (samples on the last axis, as DLIO writes them) and ``y`` one class per
sample; class ``c`` brightens quadrant ``c`` of a noisy image, so a small model can learn the classes
and its loss falls well below its start. dl-driver's plugins yield these labels by default.

Example:
    >>> import tempfile, numpy as np, os
    >>> d = tempfile.mkdtemp()
    >>> write_labelled_npz(d, files=2)
    >>> z = np.load(os.path.join(d, sorted(os.listdir(d))[0]))
    >>> z["x"].shape, z["y"].shape
    ((16, 16, 8), (8,))
"""

from __future__ import annotations

import os

import numpy as np

CLASSES, SIDE = 4, 16


def write_labelled_npz(folder: str, *, files: int = 32, per_file: int = 8, seed: int = 0) -> None:
    """Write ``files`` archives of ``per_file`` labelled samples into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    half = SIDE // 2
    for f in range(files):
        y = rng.integers(0, CLASSES, per_file)
        x = rng.integers(0, 96, (SIDE, SIDE, per_file), dtype=np.uint8)
        for s, c in enumerate(y):
            r, q = divmod(int(c), 2)
            x[r * half:(r + 1) * half, q * half:(q + 1) * half, s] += 128
        np.savez(os.path.join(folder, f"img_{f:02d}_of_{files}.npz"), x=x, y=y)
