"""``DlioMapDataset``: a map-style ``torch.utils.data.Dataset`` over a DLIO dataset on any storage.

For trainers built around samplers (``DistributedSampler``, ``RandomSampler``, a
``BatchSampler`` of their own), as s3torchconnector's map dataset serves them: sample ``i`` is sample
``i % samples_per_file`` of file ``i // samples_per_file`` (files in DLIO's order), so any index can be
read at any time and the sampler, not the dataset, decides order and sharding.

- ``__len__``: files x samples per file.
- ``__getitem__(i)``: one sample (``x``, or ``(x, y)`` with the label when the format carries one).
- ``__getitems__(indices)``: a whole batch in one engine call (the DataLoader calls it with each
  batch's indices when the dataset has it): the files are read by dlio_core's reader (whole files into
  pooled buffers, one read per run of samples from the same file), the samples decoded as a trainer
  needs them, the user ``transform`` applied to each sample in the worker.

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_core.formats import get_format
    >>> from dlio_core.storage import open_storage
    >>> st, npy = open_storage(tempfile.mkdtemp()), get_format("npy")
    >>> sizes = [npy.write_file(st, f"f{i}.npy", np.array([[2 * i, 2 * i + 1]])) for i in range(3)]
    >>> ds = DlioMapDataset.from_uri(st.url, format="npy")
    >>> len(ds), ds[3].tolist(), [x.tolist() for x in ds.__getitems__([5, 0])]
    (6, [3], [[5], [0]])
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ._dataset import want_labels
from ._figures import EngineFigures
from ._samples import SampleMaker
from ._source import Source, decoding

__all__ = ["DlioMapDataset"]


class _Picks:
    """One step of chosen samples, shaped like a plan for the engine (``steps``, ``batch(i)``)."""

    steps = 1

    def __init__(self, files: np.ndarray, indices: np.ndarray) -> None:
        self.files, self.indices = files, indices

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        return self.files, self.indices


class DlioMapDataset(torch.utils.data.Dataset):
    """Random access to every sample of a DLIO dataset; build it with :meth:`from_config` or :meth:`from_uri`."""

    def __init__(self, source: Source, *, samples_per_file: int, labels: bool = False,
                 transform: Callable[[Any], Any] | None = None) -> None:
        if int(samples_per_file) < 1:
            raise ValueError(f"samples_per_file must be >= 1, got {samples_per_file}")
        self.source = source
        self.samples_per_file = int(samples_per_file)
        self.labels = want_labels(labels, source)
        self._maker = SampleMaker(labels=source if self.labels else None, transform=transform,
                                  samples_per_file=self.samples_per_file)
        self.engine_figures = EngineFigures()  # io/decode seconds of every process's reads (instrument)

    @classmethod
    def from_config(cls, config: Any, *, overrides: Sequence[str] = (), split: str = "train",
                    config_dir: str | None = None, labels: bool | None = None,
                    transform: Callable[[Any], Any] | None = None) -> "DlioMapDataset":
        """From a workload (a YAML path, a bundled name or a ``RunConfig``): its files and format, the
        samples decoded, with labels when the format carries them (``labels=None``)."""
        from dlio_core.config import load_config

        cfg = load_config(config, list(overrides), config_dir=config_dir)
        source = Source.from_config(cfg, split)
        return cls(source, samples_per_file=cfg.dataset.num_samples_per_file, labels=want_labels(labels, source),
                   transform=transform)

    @classmethod
    def from_uri(cls, uri: str, *, format: str, samples_per_file: int | None = None,
                 storage_options: Mapping[str, Any] | None = None, prefix: str = "", labels: bool | None = None,
                 transform: Callable[[Any], Any] | None = None) -> "DlioMapDataset":
        """Every ``*.{format}`` file under ``uri``; ``samples_per_file`` read from the first file when not given."""
        source = Source.from_uri(uri, format=decoding(format), storage_options=storage_options, prefix=prefix)
        spf = samples_per_file or source.samples_per_file()
        return cls(source, samples_per_file=spf, labels=want_labels(labels, source), transform=transform)

    def __len__(self) -> int:
        return len(self.source) * self.samples_per_file

    def __getitem__(self, index: int) -> Any:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """The samples at ``indices`` (negative ones count from the end), read as one batch."""
        n = len(self)
        ids = np.asarray(indices, dtype=np.int64).reshape(-1)
        ids = np.where(ids < 0, ids + n, ids)
        bad = ids[(ids < 0) | (ids >= n)]
        if bad.size:
            raise IndexError(f"sample index {int(bad[0])} is out of range for a dataset of {n} samples")
        picks = _Picks(*np.divmod(ids, self.samples_per_file))
        steps = self.source.loader(keep_samples=True, read_ahead=1).epoch(picks)
        try:
            batch = next(steps)
            self.engine_figures.add(io_s=batch.io_s, decode_s=batch.decode_s)
            try:
                return self._maker.items(batch, (picks.files, picks.indices))
            finally:
                batch.release()
        finally:
            steps.close()  # the engine's reader for this call stops now, not when collected
