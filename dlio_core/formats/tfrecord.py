"""TFRecord files as DLIO writes them, plus DALI's ``.idx`` index files; written and read without
TensorFlow.

Layout (DLIO ``data_generator/tf_generator.py``): one record per sample, each a serialized
``tf.train.Example`` with features ``image`` (the sample's raw bytes, C order) and ``size`` (int64:
the sample's byte count, as DLIO HEAD writes it; DLIO 2.0.0 wrote ``int(sqrt(record_length))``
there, which no reader uses). Records are framed as TensorFlow's ``TFRecordWriter`` frames them:
``uint64 length | uint32 masked_crc32c(length) | payload | uint32 masked_crc32c(payload)``, all
little-endian, so our files are byte-for-byte what ``tf.io.TFRecordWriter`` writes for the same
content (with the map entries in key order, as ``SerializeToString(deterministic=True)`` puts them;
DLIO's plain ``SerializeToString()`` may put ``size`` first, which readers do not mind). Next to the data DLIO writes DALI's index ``{data_folder}/index/{train|valid}/{name}.idx``,
one ``"{offset} {record_length}"`` line per record (record length including the 16 framing bytes);
with subfolders the index still goes flat under ``index/{split}``, as DLIO does.

Reading goes through the engine's ranged hook (``whole_file = False``): the reader reads only the
records a batch needs, one ``read_into`` per run of adjacent records, using the ``.idx`` offsets (or,
without an index, the record headers scanned once); offsets are cached per process. A file holding
one sample per file (``dataset.num_samples_per_file: 1``) is one record spanning the file, so no index
is read at all. Payload CRCs are not checked on read (a benchmark moves bytes, and checking would add
a pass over them; TensorFlow's reader does check); lengths are, and a mismatch is a ``FormatError``
naming the file.

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)   # 4 samples of 2x3
    >>> FORMAT.write_file(st, "train/a.tfrecord", x) == FORMAT.file_size(x.shape, x.dtype)
    True
    >>> st.read("index/train/a.tfrecord.idx").decode().splitlines()[:2]
    ['0 54', '54 54']
    >>> r = FORMAT.open_reader(st, "train/a.tfrecord", st.size("train/a.tfrecord"))
    >>> n, sb, samples, _, _ = r.read([3, 1], keep=True); r.close()
    >>> n, sb, bytes(samples[0]) == x[..., 3].tobytes()   # 2 records of 54 bytes + the 25-byte index
    (133, 12, True)
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dlio_core.formats._crc32c import crc32c_rows, mask, masked_crc32c
from dlio_core.formats._tfexample import example_parts
from dlio_core.formats._tfrecord_frame import FRAME_BYTES, U64, header_length, image_span, index_path
from dlio_core.formats._tfrecord_read import INDEX_CACHE, TFRecordReader
from dlio_core.formats.base import FormatError, where

if TYPE_CHECKING:
    from dlio_core.storage import Storage

__all__ = ["FORMAT", "TFRecordFormat", "index_path", "record_index", "INDEX_CACHE"]


def _samples(x: np.ndarray) -> np.ndarray:
    """``(n, sample_bytes)`` uint8 rows from DLIO's layout (samples on the last axis)."""
    a = np.asarray(x)
    if a.ndim == 0:
        raise FormatError("tfrecord: the array needs a sample axis (the last one)")
    n = a.shape[-1]
    rows = np.ascontiguousarray(np.moveaxis(a, -1, 0)).reshape(n, -1)
    return rows.view(np.uint8)


def _check_compression(compression: str | None) -> None:
    c = (str(getattr(compression, "value", compression)) if compression is not None else "none").lower()
    if c not in ("none", ""):
        raise FormatError(f"tfrecord files are written uncompressed (as DLIO writes them); "
                          f"dataset.compression {compression!r} does not apply")


def record_index(data: Any, path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, lengths)`` of the records in the bytes of a whole TFRecord file (lengths include
    the framing), checking every header; ``FormatError`` naming ``path`` when truncated or corrupt.

    Example:
        >>> import numpy as np
        >>> from dlio_core.storage import open_storage; import tempfile
        >>> st = open_storage(tempfile.mkdtemp())
        >>> _ = FORMAT.write_file(st, "t.tfrecord", np.zeros((4, 3), np.uint8))
        >>> [a.tolist() for a in record_index(st.read("t.tfrecord"))]
        [[0, 52, 104], [52, 52, 52]]
    """
    mv = memoryview(data).cast("B")
    offsets, lengths = [], []
    pos, end = 0, mv.nbytes
    while pos < end:
        rec = header_length(mv[pos:pos + 12], pos, end, path)
        offsets.append(pos)
        lengths.append(rec)
        pos += rec
    return np.array(offsets, np.int64), np.array(lengths, np.int64)


@dataclass(frozen=True)
class TFRecordFormat:
    """DLIO's TFRecord format. ``samples_per_file`` (from ``dataset.num_samples_per_file`` through
    :meth:`configure`) lets single-sample files be read without their index."""

    name: ClassVar[str] = "tfrecord"
    extension: ClassVar[str] = "tfrecord"
    whole_file: ClassVar[bool] = False
    samples_per_file: int | None = None

    def configure(self, dataset: Any, reader: Any = None) -> TFRecordFormat:
        """This format bound to a ``dataset`` config section.

        Example:
            >>> from types import SimpleNamespace as NS
            >>> FORMAT.configure(NS(num_samples_per_file=1)).samples_per_file
            1
        """
        spf = getattr(dataset, "num_samples_per_file", None)
        return replace(self, samples_per_file=None if spf is None else int(spf))

    def file_size(self, shape: tuple[int, ...], dtype: Any, *, compression: str | None = "none") -> int:
        """Exact bytes of the file ``write_file`` writes for ``x`` of this shape (index not included).

        Example:
            >>> FORMAT.file_size((64, 64, 4), "uint8")
            16600
        """
        _check_compression(compression)
        n = int(shape[-1])
        sample = math.prod(int(s) for s in shape[:-1]) * np.dtype(dtype).itemsize
        head, tail = example_parts(sample, sample)
        return n * (len(head) + sample + len(tail) + FRAME_BYTES)

    def write_file(self, storage: Storage, path: str, x: np.ndarray, *, compression: str | None = "none") -> int:
        """Write one record per sample of ``x`` (samples on the last axis) to ``path`` and DLIO's
        ``.idx`` beside it (when the path has a ``train``/``valid`` folder); return the data bytes."""
        _check_compression(compression)
        rows = _samples(x)
        n, sample = rows.shape
        head, tail = example_parts(sample, sample)
        payload = len(head) + sample + len(tail)
        rec = payload + FRAME_BYTES
        out = np.empty((n, rec), dtype=np.uint8)  # all records are alike but for the image: fill by columns
        length = U64.pack(payload)
        out[:, 0:8] = np.frombuffer(length, np.uint8)
        out[:, 8:12] = np.frombuffer(struct.pack("<I", masked_crc32c(length)), np.uint8)
        a = 12 + len(head)
        out[:, 12:a] = np.frombuffer(head, np.uint8)
        out[:, a:a + sample] = rows
        out[:, a + sample:12 + payload] = np.frombuffer(tail, np.uint8)
        crcs = mask(crc32c_rows(out[:, 12:12 + payload]))
        out[:, 12 + payload:] = crcs.astype("<u4").view(np.uint8).reshape(n, 4)
        written = storage.write_atomic(path, out.reshape(-1))
        idx = index_path(path)
        if idx is not None:
            storage.write_atomic(idx, "".join(f"{i * rec} {rec}\n" for i in range(n)).encode("ascii"))
        return written

    def parse(self, buffer: Any, path: str | None = None) -> np.ndarray:
        """``x`` from the bytes of a whole file: ``(sample_bytes, n)`` uint8, sample ``i`` is ``x[:, i]``
        (a strided view of ``buffer`` when every record has the same length)."""
        mv = memoryview(buffer).cast("B")
        offsets, lengths = record_index(mv, path)
        if len(offsets) == 0:
            return np.empty((0, 0), np.uint8)
        arr = np.frombuffer(mv, np.uint8)
        spans = [image_span(arr, int(o), int(n), path) for o, n in zip(offsets, lengths)]
        sizes = {s[1] for s in spans}
        if len(sizes) != 1:
            raise FormatError(f"{where(path)}: records hold images of different sizes {sorted(sizes)[:4]}; "
                              f"read them with open_reader instead")
        starts = np.array([s[0] for s in spans])
        step = int(starts[1] - starts[0]) if len(starts) > 1 else 0
        if len(starts) > 1 and not (np.diff(starts) == step).all():
            return np.stack([arr[s:s + n] for s, n in spans], axis=1)
        return np.lib.stride_tricks.as_strided(arr[starts[0]:], shape=(spans[0][1], len(starts)),
                                               strides=(1, step), writeable=False)

    def open_reader(self, storage: Storage, path: str, size: int) -> Any:
        """A reader of some records of one file (the engine's ranged-format hook): a
        :class:`~dlio_core.formats._tfrecord_read.TFRecordReader`."""
        return TFRecordReader(storage, path, int(size), self.samples_per_file)


FORMAT = TFRecordFormat()
