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
    >>> x, y = src[3]  # npz files carry labels (y): records are (sample, label)
    >>> len(src), x.shape, int(y), len(pickle.loads(pickle.dumps(src)))
    (4, (64, 64), 0, 4)

Records are ``(sample, label)`` where the files carry labels (npz ``y``; ``labels=False``: the sample
alone), samples in the format's own shape and dtype, as every dl-driver plugin yields them.

With grain installed: ``grain.MapDataset.source(src).shuffle(seed=1).batch(8)``, or
``grain.DataLoader(data_source=src, sampler=..., worker_count=N)``: the source pickles into Grain's
worker processes, and Grain's own checkpointing (``get_state``/``set_state``, or
``grain.checkpoint.CheckpointSave`` in Orbax) resumes exactly, since record ``k`` is always the same.
"""

from __future__ import annotations

import operator
import threading
from typing import Any, Sequence

import numpy as np

__all__ = ["DlioSource"]


class DlioSource:
    """Random access to the samples of one split of a DLIO dataset (see the module docstring)."""

    def __init__(self, storage: Any, fmt: Any, files: Sequence[tuple[str, int]], samples_per_file: int, *,
                 labels: bool | None = None) -> None:
        """``fmt`` is a format name or a configured :class:`~dlio_core.formats.Format` (``reader_format(cfg)``);
        ``labels`` (default: where the format carries them) makes records ``(sample, label)``."""
        from dlio_core.formats import get_format
        from dlio_core.labels import formats_with_labels, has_labels

        if samples_per_file < 1:
            raise ValueError(f"samples_per_file must be >= 1, got {samples_per_file}")
        self.storage = storage
        self._format = get_format(fmt) if isinstance(fmt, str) or hasattr(fmt, "value") else fmt
        self.format = self._format.name
        if labels and not has_labels(self.format):
            raise ValueError(f"labels=True: {self.format} files carry no labels (formats with labels: "
                             f"{', '.join(formats_with_labels())}); pass labels=False")
        self.labels = has_labels(self.format) if labels is None else bool(labels)
        self.files = [(str(rel), int(size)) for rel, size in files]
        self.samples_per_file = int(samples_per_file)
        self._local = threading.local()

    @classmethod
    def from_config(cls, config: Any, *, overrides: Sequence[str] = (), split: str = "train",
                    labels: bool | None = None) -> "DlioSource":
        """The source over ``split`` (``train`` or ``valid``) of a workload config (name, path, dict, RunConfig)."""
        from dlio_core.config import load_config
        from dlio_core.listing import dataset_files, dataset_storage
        from dlio_core.reader import reader_format

        cfg = load_config(config, list(overrides))
        storage = dataset_storage(cfg)
        return cls(storage, reader_format(cfg), dataset_files(cfg, storage, split), cfg.dataset.num_samples_per_file,
                   labels=labels)

    @classmethod
    def from_uri(cls, uri: str, *, format: str, samples_per_file: int | None = None,
                 storage_options: Any = None, prefix: str = "", labels: bool | None = None) -> "DlioSource":
        """Every ``*.{format}`` file under ``uri``, sorted by name (samples per file counted in the first)."""
        from dlio_core.reader import reader_format
        from dlio_core.uri_config import files_config

        cfg, storage, files = files_config(uri, format=format, samples_per_file=samples_per_file,
                                           storage_options=storage_options, prefix=prefix)
        return cls(storage, reader_format(cfg), files, cfg.dataset.num_samples_per_file, labels=labels)

    def __len__(self) -> int:
        return len(self.files) * self.samples_per_file

    def __getitem__(self, record_key: Any) -> Any:
        key = operator.index(record_key)
        n = len(self)
        if key < 0:
            key += n
        if not 0 <= key < n:
            raise IndexError(f"record {record_key} is out of range for {n} records")
        f, s = divmod(key, self.samples_per_file)
        x = self._file(f)
        sample = np.array(x[..., s])  # a copy: the caller may keep it after the file buffer is reused
        if not self.labels:
            return sample
        return sample, self._local.y[s]

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
        x = self._format.parse(buf, path)
        if self.labels:
            from dlio_core.labels import labels_of_file

            local.y = labels_of_file(x, self.storage.read, path, size)
        local.index, local.x = f, x
        return local.x

    def __repr__(self) -> str:
        # grain keys checkpoints on repr: it must identify the data, not the object.
        url = getattr(self.storage, "url", self.storage)
        return (f"DlioSource(url={url!r}, format={self.format!r}, files={len(self.files)}, "
                f"samples_per_file={self.samples_per_file}, labels={self.labels})")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_local"]  # per-thread caches stay behind
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
