"""DLIO's ``synthetic`` format: no data I/O, the baseline that measures the harness alone.

Generation writes what DLIO's ``synthetic_generator.py`` writes: a tiny text file per name holding the
file's index (``"7"`` for ``img_07_of_16.synthetic``), so a dataset can still be listed. DLIO writes
the index in the list of all files (train, then valid); we write the index in the file's own split,
read from its name (no reader ever reads these files). Sizes depend on the name, so ``file_size`` is
None.

Reading opens nothing: a reader hands out a zero sample of the configured shape (one array per
process, as DLIO's synthetic loader yields one preallocated batch) and reports 0 bytes read; the
sample bytes it reports are the nominal ones (``record_dims`` or ``d x d``), as DLIO counts them.

Example:
    >>> import tempfile, numpy as np
    >>> from types import SimpleNamespace as NS
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> fmt = FORMAT.configure(NS(record_length_bytes=16, record_dims=(), record_element_type="uint8"))
    >>> fmt.write_file(st, "train/img_07_of_16.synthetic", np.zeros((4, 4, 2), np.uint8)), st.read("train/img_07_of_16.synthetic")
    (1, b'7')
    >>> r = fmt.open_reader(st, "train/img_07_of_16.synthetic", 1)
    >>> n, sample_bytes, samples, _, _ = r.read([0, 1], keep=True)
    >>> n, sample_bytes, samples[0].shape
    (0, 32, (4, 4))
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from dlio_core.formats._rows import nominal_sample, sample_count

if TYPE_CHECKING:
    from dlio_core.storage import Storage

__all__ = ["FORMAT", "SyntheticFormat", "SyntheticReader", "file_index"]

_INDEX = re.compile(r"_(\d+)_of_\d+\.[^/]*$")
_ZEROS: dict[tuple[tuple[int, ...], str], np.ndarray] = {}
_ZEROS_LOCK = threading.Lock()


def file_index(path: str) -> int:
    """The index in a DLIO file name (``{prefix}_{i}_of_{N}.{ext}``), or 0 for another name.

    Example:
        >>> file_index("train/3/img_0012_of_1024.synthetic"), file_index("other.bin")
        (12, 0)
    """
    m = _INDEX.search(path)
    return int(m.group(1)) if m else 0


def _zero_sample(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """One read-only zero array per shape and dtype for the whole process."""
    key = (shape, dtype.str)
    with _ZEROS_LOCK:
        z = _ZEROS.get(key)
        if z is None:
            z = np.zeros(shape, dtype)
            z.setflags(write=False)
            _ZEROS[key] = z
    return z


@dataclass(frozen=True)
class SyntheticFormat:
    """DLIO's synthetic format; ``sample_shape`` and ``dtype`` (from :meth:`configure`) are what a
    reader hands out."""

    name: ClassVar[str] = "synthetic"
    extension: ClassVar[str] = "synthetic"
    whole_file: ClassVar[bool] = False
    sample_shape: tuple[int, ...] = (256, 256)   # DLIO's default record_length_bytes, 65536
    dtype: str = "uint8"
    samples_per_file: int = 1

    def configure(self, dataset: Any, reader: Any = None) -> SyntheticFormat:
        """This format with the sample shape of a ``dataset`` section (``reader`` is not used).

        Example:
            >>> from types import SimpleNamespace as NS
            >>> FORMAT.configure(NS(record_dims=(3, 8), record_element_type="float32")).sample_shape
            (3, 8)
        """
        shape, dtype = nominal_sample(dataset)
        return replace(self, sample_shape=shape, dtype=dtype.str,
                       samples_per_file=int(getattr(dataset, "num_samples_per_file", 1) or 1))

    @property
    def sample_nbytes(self) -> int:
        """Nominal bytes of one sample."""
        return math.prod(self.sample_shape) * np.dtype(self.dtype).itemsize

    def file_size(self, shape: tuple[int, ...], dtype: Any, *, compression: str | None = "none") -> None:
        """None: the index text's length depends on the file's name."""
        return None

    def write_file(self, storage: Storage, path: str, x: np.ndarray, *, compression: str | None = "none") -> int:
        """Write DLIO's index text for ``path`` (``x`` only says how many samples the file stands for)."""
        sample_count(x, self.name)
        return storage.write_atomic(path, str(file_index(path)).encode("ascii"))

    def parse(self, buffer: Any, path: str | None = None) -> np.ndarray:
        """Zeros standing for the file's samples, ``(*sample_shape, samples_per_file)``; the bytes
        are not looked at (DLIO's synthetic reader does not read them either)."""
        z = _zero_sample((), np.dtype(self.dtype))
        return np.broadcast_to(z, (*self.sample_shape, self.samples_per_file))

    def open_reader(self, storage: Storage, path: str, size: int) -> SyntheticReader:
        """A reader that reads nothing (the engine's ranged-format hook)."""
        return SyntheticReader(self.sample_shape, np.dtype(self.dtype))


class SyntheticReader:
    """Hands out the zero sample without any I/O; see :meth:`read`."""

    __slots__ = ("sample", "nbytes")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.sample = _zero_sample(tuple(shape), dtype)
        self.nbytes = self.sample.nbytes

    def read(self, indices: Sequence[int], keep: bool) -> tuple[int, int, list[np.ndarray] | None, float, float]:
        """``(0, nominal sample bytes, [zero sample] * len(indices) or None, 0.0, 0.0)``."""
        n = len(indices)
        return 0, n * self.nbytes, [self.sample] * n if keep else None, 0.0, 0.0

    def close(self) -> None:
        """Nothing is open."""


FORMAT = SyntheticFormat()
