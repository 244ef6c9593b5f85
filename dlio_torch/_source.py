"""What a dataset reads: a storage, a format, and the files as numpy arrays (small to pickle).

A :class:`Source` is what travels into DataLoader worker processes: the ``Storage`` object (which by
contract keeps only its root URI and options, never a live client, and makes its client lazily in
each process), the format's name, and the file paths and sizes as numpy arrays. Never a Python list
of paths (DLIO #141/#165: per-worker copies of large Python lists grew RSS by gigabytes).

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_core.formats import get_format
    >>> from dlio_core.storage import open_storage
    >>> root = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     _ = get_format("npy").write_file(open_storage(root), f"f{i}.npy", np.zeros((4, 4, 2), np.uint8))
    >>> src = Source.from_uri(root, format="npy")
    >>> len(src), src.samples_per_file()
    (3, 2)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from dlio_core.formats import get_format
from dlio_core.storage import open_storage

__all__ = ["Source", "decoding"]


def decoding(fmt: Any) -> Any:
    """``fmt`` (a name or a Format) set to decode as a trainer needs (pixels, parquet columns, csv numbers)
    when it has a ``decode`` option; the format itself otherwise (npy, npz, hdf5, tfrecord read the same).

    >>> decoding("png").decode, decoding("npz").name
    (True, 'npz')
    """
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    if dataclasses.is_dataclass(fmt) and any(f.name == "decode" for f in dataclasses.fields(fmt)):
        return dataclasses.replace(fmt, decode=True)
    return fmt


@dataclass
class Source:
    """Files of one format on one storage; ``paths`` are relative to the storage root."""

    storage: Any
    format: Any  # a format name, or a configured Format object (``format_for(cfg.dataset)``); kept picklable
    paths: np.ndarray  # numpy str array: one compact block, pickles as such
    sizes: np.ndarray  # int64 bytes
    _loaders: dict = field(default_factory=dict, repr=False, compare=False)
    _pid: int = field(default=-1, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.format, str) or hasattr(self.format, "value"):  # a name (or a config enum)
            self.format = str(getattr(self.format, "value", self.format)).lower()
        self.paths = np.asarray(self.paths, dtype=np.str_)
        self.sizes = np.asarray(self.sizes, dtype=np.int64)
        if self.paths.shape != self.sizes.shape or self.paths.ndim != 1:
            raise ValueError(f"paths and sizes must be 1-D and of equal length, got {self.paths.shape} and "
                             f"{self.sizes.shape}")
        self.fmt()  # an unknown format fails here, in the main process, not in a worker

    def fmt(self) -> Any:
        """The :class:`~dlio_core.formats.Format` object."""
        return get_format(self.format) if isinstance(self.format, str) else self.format

    def __len__(self) -> int:
        return int(self.paths.size)

    def __getstate__(self) -> dict[str, Any]:
        # Per-process readers (threads, buffer pools) never travel; workers build their own.
        state = dict(self.__dict__)
        state["_loaders"], state["_pid"] = {}, -1
        return state

    @classmethod
    def from_files(cls, storage: Any, fmt: Any, files: Sequence[tuple[str, int]]) -> "Source":
        """From ``(relpath, size_bytes)`` pairs as ``dlio_core.listing.dataset_files`` returns them."""
        paths = [rel for rel, _ in files]
        sizes = [size for _, size in files]
        return cls(storage, fmt, np.asarray(paths, dtype=np.str_), np.asarray(sizes, dtype=np.int64))

    @classmethod
    def from_config(cls, cfg: Any, split: str = "train", *, decode: bool = True) -> "Source":
        """A loaded config's ``split``: its storage, its files (manifest or one listing) and its format
        (``decode``: as a trainer needs the samples, :func:`decoding`). ``DatasetError`` when the files
        hold another ``num_samples_per_file`` than the config says; ``ValueError`` for an empty split."""
        from dlio_core.listing import dataset_files, dataset_storage
        from dlio_core.reader import check_samples_per_file, reader_format

        storage = dataset_storage(cfg)
        check_samples_per_file(cfg, storage)
        files = dataset_files(cfg, storage, split)
        if not files:
            key = "num_files_train" if split == "train" else "num_files_eval"
            raise ValueError(f"split {split!r} has no files (dataset.{key} is 0)")
        return cls.from_files(storage, decoding(reader_format(cfg)) if decode else reader_format(cfg), files)

    @classmethod
    def from_uri(cls, uri: str, *, format: Any, storage_options: Mapping[str, Any] | None = None,
                 prefix: str = "") -> "Source":
        """Every ``*.{format}`` file under ``uri`` (one listing), sorted by name as DLIO sorts them."""
        storage = open_storage(uri, dict(storage_options) if storage_options else None)
        ext = (get_format(format) if isinstance(format, str) else format).extension
        files = sorted(storage.list_files(prefix, "." + ext), key=lambda f: (os.path.basename(f[0]), f[0]))
        if not files:
            raise FileNotFoundError(f"no *.{ext} files under {storage.url}/{prefix}".rstrip("/"))
        return cls.from_files(storage, format, files)

    def samples_per_file(self) -> int:
        """Samples in the first file (DLIO's layout keeps them on the last axis); reads that file once."""
        size = int(self.sizes[0])
        buf = np.empty(size, dtype=np.uint8)
        self.storage.read_into(str(self.paths[0]), buf)
        return int(self.fmt().parse(buf, str(self.paths[0])).shape[-1])

    def loader(self, *, keep_samples: bool, read_ahead: int, read_threads: int = 1) -> Any:
        """This process's :class:`~dlio_core.engine.NativeLoader` over the files (``read_threads`` readers).

        Built lazily and rebuilt after a fork, so buffer pools and threads are never shared.
        """
        if self._pid != os.getpid():
            self._loaders, self._pid = {}, os.getpid()
        key = (keep_samples, read_ahead, read_threads)
        loader = self._loaders.get(key)
        if loader is None:
            from dlio_core.engine import NativeLoader

            loader = NativeLoader(self.storage, self.fmt(), self.paths.tolist(),
                                  sizes=self.sizes, read_threads=read_threads, prefetch_size=read_ahead,
                                  keep_samples=keep_samples)
            self._loaders[key] = loader
        return loader
