"""The read path of formats read by ranges (``whole_file = False``: hdf5, tfrecord, ...).

The function here is a :class:`~dlio_core.engine.NativeLoader` method (``self`` is the loader), bound
in its class body: moved here, not wrapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .batch import Batch, ReadError

if TYPE_CHECKING:
    from .loader import NativeLoader


def read_batch_ranged(self: NativeLoader, step, files, samples, rng) -> Batch:
    """Formats read by ranges (``whole_file = False``): one reader per file the batch touches.

    ``fmt.open_reader(storage, path, size)`` returns a reader whose ``read(indices, keep)`` returns
    ``(bytes_read, sample_bytes, samples_or_None, io_s, decode_s)`` for those samples of the file.
    """
    files_l, samples_l = files.tolist(), samples.tolist()
    groups: dict[int, list[int]] = {}
    for f, s in zip(files_l, samples_l):
        groups.setdefault(f, []).append(s)
    nbytes = sample_bytes = 0
    io_s = decode_s = 0.0
    by_file: dict[int, list[np.ndarray]] = {}
    for f, indices in groups.items():
        path = self.files[f]
        size = int(self.sizes[f]) if self.sizes is not None else self.storage.size(path)
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
    decode_s += self._preprocess(len(files_l), rng)
    kept = None
    if self.keep_samples:  # back into batch order
        kept = [by_file[f].pop(0) for f in files_l]
    return Batch(step, len(files_l), nbytes, sample_bytes, io_s, decode_s, kept)

