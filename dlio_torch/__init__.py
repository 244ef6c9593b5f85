"""dlio_torch: dl-driver's PyTorch plugin (``pip install 'dl-driver[torch]'``).

- :class:`DlioIterableDataset` — DLIO datasets on any storage as a ``torch.utils.data.IterableDataset``
  (rank x worker sharding, ``set_epoch``, mid-epoch resume).
- :class:`DlioMapDataset` — the same files as a map-style ``Dataset`` (``__getitem__``, batched
  ``__getitems__``) for ``DistributedSampler`` and random access.
- :func:`make_dataloader` / :class:`DlioDataLoader` — the config's reader section as a ``DataLoader``.
  Both follow :class:`dlio_core.state.Stateful` (``state_dict`` / ``load_state_dict``).
- :class:`DeviceLoader` — files to the GPU with one host copy: dlio_core's threads read into pinned
  staging buffers, copied to the device asynchronously on a side stream (``device="cpu"``: same path);
  it yields :class:`TorchBatch` steps (``data`` plus the step's figures).
- :func:`instrument` / :class:`Instrumented` — wait/compute/bytes per step of any loader inside a real
  training loop; :class:`DeviceCopy` — a host-to-device copy timed with CUDA events.
- :mod:`dlio_torch.checkpoint` — ``save``/``load`` (``torch.save`` to any URI) and ``dcp_save``/``dcp_load``.

Modules, as in every dl-driver plugin: import from the package (``__all__`` is the public API); the
implementation modules are private (``_dataset``, ``_dataloader``, ...); the one public submodule is
``checkpoint``, the framework's checkpoint hooks. ``_loader.make_loader`` is the runner's adapter for
``reader.data_loader: pytorch``, registered in :mod:`dlio_core.loaders` and not part of this API.

Importing this package imports torch first, so a missing extra fails with the install hint.

Example:
    >>> import dlio_torch
    >>> "DlioIterableDataset" in dlio_torch.__all__, "make_loader" in dlio_torch.__all__
    (True, False)
"""

from __future__ import annotations

try:
    import torch  # noqa: F401 - the plugin's framework, imported first so a missing extra is plain
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("dlio_torch needs PyTorch: pip install 'dl-driver[torch]'") from exc

from . import checkpoint
from ._dataloader import DlioDataLoader, make_dataloader
from ._dataset import DlioIterableDataset
from ._device_loader import DeviceLoader
from ._h2d import DeviceCopy
from ._instrument import Instrumented, instrument
from ._loader import TorchBatch
from ._map_dataset import DlioMapDataset

# In the order the docs present them.
__all__ = [
    "DlioIterableDataset",
    "DlioMapDataset",
    "DlioDataLoader",
    "make_dataloader",
    "DeviceLoader",
    "TorchBatch",
    "instrument",
    "Instrumented",
    "DeviceCopy",
    "checkpoint",
]
