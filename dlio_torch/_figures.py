"""The engine's io and decode seconds, summed where a dataset reads and readable from the main process.

The native engine times each batch it reads (``Batch.io_s``, ``Batch.decode_s``), but our datasets hand
the model tensors, which cannot carry those figures out of a DataLoader worker. So each dataset keeps
an :class:`EngineFigures`: running totals (io seconds, decode seconds, engine batches) in one
shared-memory tensor, one row per process that reads (row 0 the main process, row ``1 + worker id``
for a DataLoader worker), so no two processes write the same memory. Pickled into a worker (fork,
spawn or forkserver) it stays the same memory, as :class:`~dlio_torch._control.SharedControl` does.
:func:`~dlio_torch.instrument` reads the totals before and after a pass: the difference is what the
engine spent reading and decoding for that pass, whichever process did it.

Example:
    >>> figures = EngineFigures()
    >>> figures.add(io_s=0.5, decode_s=0.25)
    >>> figures.add(io_s=0.25, decode_s=0.0)
    >>> figures.totals()
    (0.75, 0.25, 2)
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["EngineFigures", "engine_figures_of"]

# Row 0 and 32 workers' rows: the dataset is pickled into every worker (and plain pickle copies a shared
# tensor's bytes), so the table stays small; worker ids past 32 share rows (modulo), where two workers'
# additions could race. A DataLoader per rank rarely has more than 32 workers.
_ROWS = 33
_IO, _DECODE, _BATCHES = range(3)


class EngineFigures:
    """Running totals of the engine's per-batch ``io_s`` and ``decode_s`` over every reading process."""

    def __init__(self) -> None:
        self._values = torch.zeros((_ROWS, 3), dtype=torch.float64).share_memory_()
        self._rows: Any = None  # this process's numpy view of the same shared memory (made when first used)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_rows": None}  # the view is remade over the memory in each process

    def add(self, *, io_s: float, decode_s: float) -> None:
        """Count one engine batch read in this process."""
        info = torch.utils.data.get_worker_info()
        row = 0 if info is None else 1 + int(info.id) % (_ROWS - 1)
        if self._rows is None:  # numpy element updates: three torch ops cost ~50 us a batch, these ~1 us
            self._rows = self._values.numpy()
        values = self._rows[row]
        values[_IO] += float(io_s)
        values[_DECODE] += float(decode_s)
        values[_BATCHES] += 1.0

    def totals(self) -> tuple[float, float, int]:
        """``(io_s, decode_s, batches)`` summed over every process so far."""
        io_s, decode_s, batches = self._values.sum(dim=0).tolist()
        return float(io_s), float(decode_s), int(batches)


def engine_figures_of(loader: object) -> EngineFigures | None:
    """The :class:`EngineFigures` behind ``loader``: one of our datasets, or a ``DataLoader`` (or a
    torchdata ``StatefulDataLoader``) over one; ``None`` for anything else."""
    for candidate in (loader, getattr(loader, "dataset", None)):
        figures = getattr(candidate, "engine_figures", None)
        if isinstance(figures, EngineFigures):
            return figures
    return None
