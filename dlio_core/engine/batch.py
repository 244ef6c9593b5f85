"""What the engine hands the consumer: :class:`Batch` (one step's figures and, optionally, samples)
and :class:`ReadError`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Batch", "ReadError"]


class ReadError(RuntimeError):
    """A sample could not be read or decoded; the message names the file."""

    @classmethod
    def from_os_error(cls, path: str, exc: OSError) -> "ReadError":
        """``cannot read <path>: <reason>``, the one wording of a failed read (raise it ``from exc``)."""
        return cls(f"cannot read {path}: {exc.strerror or exc}")


@dataclass(slots=True)  # built and read every step: slots make both cheaper (plugins' subclasses add fields)
class Batch:
    """One step's data as the runner sees it.

    ``io_s`` and ``decode_s`` are summed over the batch's samples (thread time, not wall time);
    ``bytes_read`` counts what storage actually returned, so whole-file reads of multi-sample files
    show up as amplification against ``sample_bytes``. ``h2d_s`` is the host-to-device copy, set by
    plugin loaders that make one (``None``: no copy, never a made-up 0); plugins subclass this class.
    """

    step: int
    num_samples: int
    bytes_read: int = 0
    sample_bytes: int = 0
    io_s: float = 0.0
    decode_s: float = 0.0
    samples: list[np.ndarray] | None = None
    h2d_s: float | None = None
    _release: Any = field(default=None, repr=False)

    def release(self) -> None:
        """Give the batch's buffers back to the loader (called by the consumer when done)."""
        if self._release is not None:
            self._release()
            self._release = None
