"""dlio_torch: dl-driver's PyTorch plugin (``pip install 'dl-driver[torch]'``).

- :class:`DlioIterableDataset` — DLIO datasets on any storage as a ``torch.utils.data.IterableDataset``
  (rank x worker sharding, ``set_epoch``, mid-epoch resume).
- :func:`make_dataloader` / :class:`DlioDataLoader` — the config's reader section as a ``DataLoader``.
- :class:`DeviceLoader` — files to the GPU with one host copy: dlio_core's threads read into pinned
  staging buffers, copied to the device asynchronously on a side stream (``device="cpu"``: same path).
- :func:`instrument` — wait/compute/bytes per step of any loader inside a real training loop.
- :mod:`dlio_torch.checkpoint` — ``save``/``load`` (``torch.save`` to any URI) and ``dcp_save``/``dcp_load``.
- ``reader.data_loader: pytorch`` runs a workload through :mod:`dlio_torch.loader`.

Importing this package imports torch first, so a missing extra fails with the install hint.

Example:
    >>> import dlio_torch
    >>> "DlioIterableDataset" in dlio_torch.__all__
    True
"""

from __future__ import annotations

try:
    import torch  # noqa: F401 - the plugin's framework, imported first so a missing extra is plain
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("dlio_torch needs PyTorch: pip install 'dl-driver[torch]'") from exc

from . import checkpoint
from .dataloader import DlioDataLoader, dataloader_kwargs, make_dataloader
from .dataset import DlioIterableDataset, constant_shape
from .device_loader import DeviceLoader
from .h2d import DeviceCopy
from .instrument import Instrumented, instrument

# In the order the docs present them.
__all__ = [
    "DlioIterableDataset",
    "DlioDataLoader",
    "make_dataloader",
    "dataloader_kwargs",
    "instrument",
    "Instrumented",
    "DeviceCopy",
    "DeviceLoader",
    "checkpoint",
    "constant_shape",
]
