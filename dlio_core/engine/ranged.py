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
        files = np.asarray(files, np.int64).reshape(-1)
        samples = np.asarray(samples, np.int64).reshape(-1)
        order, cuts, firsts = group_by_file(files)
        grouped = samples[order]
        nbytes = sample_bytes = 0
        io_s = decode_s = 0.0
        views: list[Any] = []
        for f, indices in zip(firsts, np.split(grouped, cuts)):
            path = self.paths[f]
            size = self.sizes[f] if self.sizes is not None else self.storage.size(path)
            reader = self.fmt.open_reader(self.storage, path, size)
            try:
                n, sb, got, t_io, t_dec = reader.read(indices, self.keep_samples)
            except OSError as exc:
                raise ReadError.from_os_error(path, exc) from exc
            finally:
                reader.close()
            nbytes += n
            sample_bytes += sb
            io_s += t_io
            decode_s += t_dec
            if got is not None:
                views.extend(got)
        count = len(files)
        decode_s += self.preprocess(count, rng)
        kept = None
        if self.keep_samples:  # back into batch order: the j-th sample read is sample order[j] of the batch
            read_at = np.empty(count, np.intp)
            read_at[order] = np.arange(count)
            kept = list(map(views.__getitem__, read_at.tolist()))
        return Batch(step, count, nbytes, sample_bytes, io_s, decode_s, kept)


def group_by_file(files: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """A batch's samples grouped by file, in numpy (no Python work per sample).

    Returns ``(order, cuts, firsts)``: ``order`` lists the batch positions file by file, the files in
    the order the batch first names them and each file's samples in batch order (a stable sort);
    ``np.split(order, cuts)`` gives each file's positions and ``firsts`` the files, in that order.

    Example:
        >>> order, cuts, firsts = group_by_file(np.array([7, 2, 7, 5, 2]))
        >>> order.tolist(), cuts.tolist(), firsts
        ([0, 2, 1, 4, 3], [2, 4], [7, 2, 5])
    """
    n = len(files)
    if not n:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), []
    low, high = int(files.min()), int(files.max())
    if low == high:  # one file: nothing to sort
        return np.arange(n), np.zeros(0, np.intp), [low]
    # A stable sort by file; numpy's is a radix sort for 16-bit keys (a batch's files rarely span more
    # than 65,536 numbers), several times faster than its merge sort of int64.
    keys = (files - low).astype(np.uint16) if high - low <= 0xFFFF else files
    by_file = np.argsort(keys, kind="stable")
    sorted_files = files[by_file]
    starts = np.flatnonzero(np.concatenate(([True], sorted_files[1:] != sorted_files[:-1])))
    lengths = np.diff(np.append(starts, n))
    place = np.argsort(by_file[starts])  # stable sort: a file's first sample is where the batch first names it
    if (place[1:] != place[:-1] + 1).any():  # files not first named in ascending order: move their runs
        lengths, starts = lengths[place], starts[place]
        by_file = by_file[np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(n)]
    return by_file, np.cumsum(lengths)[:-1], sorted_files[starts].tolist()
