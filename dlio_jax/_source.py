"""``DlioSource``: a DLIO dataset as a Grain-compatible random-access source.

It satisfies grain's ``RandomAccessDataSource`` protocol (``__len__``, ``__getitem__``, ``__repr__``,
picklable, thread-safe) without importing grain: record ``k`` is sample ``k % samples_per_file`` of
file ``k // samples_per_file`` (DLIO's sample numbering), returned as a numpy array that owns its
memory. Each thread keeps the last file it parsed, so consecutive records of a multi-sample file cost
one read; random access over multi-sample npz/npy files reads the whole file per record (the same
read amplification the engine reports). Only the storage root + options, the format (bound to the
dataset section's options) and the file list are pickled, never a live client.

Example:
    >>> import pickle, tempfile
    >>> from dlio_core.config import load_config
    >>> from dlio_core.generate import generate_dataset
    >>> d = tempfile.mkdtemp()
    >>> cfg = load_config("default", [f"++workload.dataset.data_folder={d}", "++workload.dataset.num_files_train=4"])
    >>> _ = generate_dataset(cfg, progress=False)
    >>> src = DlioSource.from_config(cfg)
    >>> len(src), src[3].shape, len(pickle.loads(pickle.dumps(src)))
    (4, (64, 64), 4)

With grain installed: ``grain.MapDataset.source(src).shuffle(seed=1).batch(8)``.
"""

from __future__ import annotations

import operator
import threading
from typing import Any, Sequence

import numpy as np

__all__ = ["DlioSource"]


class DlioSource:
    """Random access to the samples of one split of a DLIO dataset (see the module docstring)."""

    def __init__(self, storage: Any, fmt: Any, files: Sequence[tuple[str, int]], samples_per_file: int) -> None:
        """``fmt`` is a format name or a configured :class:`~dlio_core.formats.Format` (``reader_format(cfg)``)."""
        from dlio_core.formats import get_format

        if samples_per_file < 1:
            raise ValueError(f"samples_per_file must be >= 1, got {samples_per_file}")
        self.storage = storage
        self._format = get_format(fmt) if isinstance(fmt, str) or hasattr(fmt, "value") else fmt
        self.format = self._format.name
        self.files = [(str(rel), int(size)) for rel, size in files]
        self.samples_per_file = int(samples_per_file)
        self._local = threading.local()

    @classmethod
    def from_config(cls, config: Any, *, overrides: Sequence[str] = (), split: str = "train") -> "DlioSource":
        """The source over ``split`` (``train`` or ``valid``) of a workload config (name, path, dict, RunConfig)."""
        from dlio_core.config import load_config
        from dlio_core.listing import dataset_files, dataset_storage
        from dlio_core.reader import reader_format

        cfg = load_config(config, list(overrides))
        storage = dataset_storage(cfg)
        return cls(storage, reader_format(cfg), dataset_files(cfg, storage, split), cfg.dataset.num_samples_per_file)

    def __len__(self) -> int:
        return len(self.files) * self.samples_per_file

    def __getitem__(self, record_key: Any) -> np.ndarray:
        key = operator.index(record_key)
        n = len(self)
        if key < 0:
            key += n
        if not 0 <= key < n:
            raise IndexError(f"record {record_key} is out of range for {n} records")
        f, s = divmod(key, self.samples_per_file)
        x = self._file(f)
        return np.array(x[..., s])  # a copy: the caller may keep it after the file buffer is reused

    def _file(self, f: int) -> np.ndarray:
        local = self._local
        if getattr(local, "index", None) == f:
            return local.x
        rel, size = self.files[f]
        path = self.storage.join(rel)
        buf = np.empty(size, dtype=np.uint8)
        n = self.storage.read_into(path, buf)
        if n != size:
            raise OSError(f"{path}: read {n} bytes, expected {size} (file changed or truncated?)")
        local.index, local.x = f, self._format.parse(buf, path)
        return local.x

    def __repr__(self) -> str:
        # grain keys checkpoints on repr: it must identify the data, not the object.
        url = getattr(self.storage, "url", self.storage)
        return (f"DlioSource(url={url!r}, format={self.format!r}, files={len(self.files)}, "
                f"samples_per_file={self.samples_per_file})")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_local"]  # per-thread caches stay behind
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
