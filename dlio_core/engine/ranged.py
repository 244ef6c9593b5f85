"""The read path of formats read by ranges (``whole_file = False``: hdf5, tfrecord, ...):
:class:`RangedBatches`, the ``BatchReader`` the threaded path runs for them."""

from __future__ import annotations

from typing import Any

import numpy as np

from .batch import Batch, ReadError
from .read_path import ReadInputs


class RangedBatches:
    """Builds a batch of a ranged format: one reader per file the batch touches.

    ``fmt.open_reader(storage, path, size)`` returns a reader whose ``read(indices, keep)`` returns
    ``(bytes_read, sample_bytes, samples_or_None, io_s, decode_s)`` for those samples of the file;
    the reader brings its own buffers.

    Example:
        >>> import numpy as np, tempfile
        >>> from dlio_core.formats import get_format
        >>> from dlio_core.storage import open_storage
        >>> st, fmt = open_storage(tempfile.mkdtemp()), get_format("hdf5")
        >>> size = fmt.write_file(st, "f.h5", np.arange(8, dtype=np.uint8).reshape(2, 4))
        >>> reads = RangedBatches(ReadInputs.build(st, fmt, ["f.h5"], sizes=[size], keep_samples=True))
        >>> batch = reads.read(0, np.array([0, 0]), np.array([3, 1]), None, None)
        >>> [x.tolist() for x in batch.samples]
        [[3, 7], [1, 5]]
    """

    def __init__(self, inputs: ReadInputs) -> None:
        self.storage = inputs.storage
        self.fmt = inputs.fmt
        self.paths = inputs.paths
        self.sizes = inputs.size_list
        self.keep_samples = inputs.keep_samples
        self.preprocess = inputs.preprocess

    def reserve(self, scratch: Any, batch_size: int) -> None:
        """Nothing to size: a ranged format's readers bring their own buffers."""

    def read(self, step: int, files: np.ndarray, samples: np.ndarray, scratch: Any,
             rng: np.random.Generator) -> Batch:
        """Step ``step``'s batch: sample ``samples[i]`` of file ``files[i]`` for each ``i`` (``scratch``
        is unused)."""
        files_l, samples_l = files.tolist(), samples.tolist()
        groups: dict[int, list[int]] = {}
        for f, s in zip(files_l, samples_l):
            groups.setdefault(f, []).append(s)
        nbytes = sample_bytes = 0
        io_s = decode_s = 0.0
        by_file: dict[int, list[np.ndarray]] = {}
        for f, indices in groups.items():
            path = self.paths[f]
            size = self.sizes[f] if self.sizes is not None else self.storage.size(path)
            reader = self.fmt.open_reader(self.storage, path, size)
            try:
                n, sb, views, t_io, t_dec = reader.read(indices, self.keep_samples)
            except OSError as exc:
                raise ReadError.from_os_error(path, exc) from exc
            finally:
                reader.close()
            nbytes += n
            sample_bytes += sb
            io_s += t_io
            decode_s += t_dec
            if views is not None:
                by_file[f] = list(views)
        decode_s += self.preprocess(len(files_l), rng)
        kept = None
        if self.keep_samples:  # back into batch order
            kept = [by_file[f].pop(0) for f in files_l]
        return Batch(step, len(files_l), nbytes, sample_bytes, io_s, decode_s, kept)
