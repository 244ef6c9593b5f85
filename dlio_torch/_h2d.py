"""Host-to-device copies timed with CUDA events; ``None`` (never 0) where there is no CUDA device.

The copy is issued with ``non_blocking=True`` from pinned memory (the DataLoader's ``pin_memory``), and
its time is the interval between two CUDA events on the current stream, synchronised on the end event
so the figure belongs to this batch (GPU timings synchronise at their boundaries).

Example:
    >>> import torch
    >>> copy = DeviceCopy()  # the CUDA device when there is one
    >>> out, h2d_s = copy(torch.zeros(4))
    >>> h2d_s is None or h2d_s >= 0.0
    True
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["DeviceCopy", "tensor_bytes"]


def tensor_bytes(data: Any) -> int:
    """Bytes of the tensors and numpy arrays in ``data`` (nested lists, tuples and dicts walked).

    >>> tensor_bytes({"x": torch.zeros(2, 3, dtype=torch.uint8), "y": [torch.zeros(4)]})
    22
    """
    if isinstance(data, torch.Tensor):
        return data.numel() * data.element_size()
    if hasattr(data, "nbytes") and not isinstance(data, (bytes, bytearray)):
        return int(data.nbytes)
    if isinstance(data, dict):
        return sum(tensor_bytes(v) for v in data.values())
    if isinstance(data, (list, tuple)):
        return sum(tensor_bytes(v) for v in data)
    return 0


def _to(data: Any, device: torch.device) -> Any:
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=True)
    if isinstance(data, dict):
        return {k: _to(v, device) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_to(v, device) for v in data)
    return data


class DeviceCopy:
    """Copies batches to ``device`` (default: ``cuda`` when available, else nothing to do).

    ``copy(data) -> (data_on_device, h2d_s)``; without a CUDA device the data is returned as is and
    ``h2d_s`` is ``None``: no copy happened, so there is no time to report.
    """

    def __init__(self, device: str | torch.device | None = None) -> None:
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.active = self.device.type == "cuda"

    def __call__(self, data: Any) -> tuple[Any, float | None]:
        if not self.active:
            return data, None
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = _to(data, self.device)
        end.record()
        end.synchronize()
        return out, start.elapsed_time(end) / 1000.0  # elapsed_time is in milliseconds
