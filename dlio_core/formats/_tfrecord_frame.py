"""How TFRecord records are framed and where DLIO puts their index: the pieces both the writer
(``tfrecord``) and the reader (``_tfrecord_read``) need, in a leaf so imports point one way.

A record is ``uint64 length | uint32 masked_crc32c(length) | payload | uint32 masked_crc32c(payload)``
(``FRAME_BYTES`` = 16 bytes around the payload); the payload is a ``tf.train.Example``.

Example:
    >>> index_path("/data/valid/b.tfrecord")
    '/data/index/valid/b.tfrecord.idx'
    >>> FRAME_BYTES
    16
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from dlio_core.formats._crc32c import masked_crc32c
from dlio_core.formats._tfexample import ProtoError, find_feature
from dlio_core.formats.base import FormatError, where

__all__ = ["FRAME_BYTES", "U64", "index_path", "header_length", "image_span"]

FRAME_BYTES = 16           # length (8) + length CRC (4) + payload CRC (4)
U64 = struct.Struct("<Q")
_SPLITS = ("train", "valid")


def index_path(path: str) -> str | None:
    """DLIO's DALI index for a data file: ``{data_folder}/index/{split}/{name}.idx``, where the split is
    the last ``train``/``valid`` folder in the path; None when the path has none.

    Example:
        >>> index_path("/data/train/3/img_3_of_8.tfrecord")
        '/data/index/train/img_3_of_8.tfrecord.idx'
        >>> index_path("x.tfrecord") is None
        True
    """
    parts = path.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in _SPLITS:
            return "/".join(parts[:i] + ["index", parts[i], parts[-1] + ".idx"])
    return None


def header_length(header: Any, pos: int, size: int, path: str | None) -> int:
    """Record length (framing included) from the 12 header bytes at ``pos``, checked."""
    h = bytes(header)
    if len(h) < 12:
        raise FormatError(f"{where(path)}: truncated record header at byte {pos} (file is {size} bytes)")
    (length,) = U64.unpack_from(h, 0)
    if struct.unpack_from("<I", h, 8)[0] != masked_crc32c(h[:8]):
        raise FormatError(f"{where(path)}: corrupt record header at byte {pos} (length CRC mismatch); "
                          f"not a TFRecord file?")
    if pos + length + FRAME_BYTES > size:
        raise FormatError(f"{where(path)}: record at byte {pos} needs {length + FRAME_BYTES} bytes but the file "
                          f"ends at {size} (truncated)")
    return length + FRAME_BYTES


def image_span(arr: np.ndarray, offset: int, rec: int, path: str | None,
                file_offset: int | None = None) -> tuple[int, int]:
    """Absolute ``(start, length)`` in ``arr`` of the ``image`` bytes of the ``rec``-byte record at
    ``offset`` (``file_offset``: where that record is in the file, for messages)."""
    at = offset if file_offset is None else file_offset
    (length,) = U64.unpack_from(arr, offset)
    if length + FRAME_BYTES != rec:
        raise FormatError(f"{where(path)}: record at byte {at} has length field {length}, expected "
                          f"{rec - FRAME_BYTES} (corrupt file, stale index, or more samples per file than "
                          f"dataset.num_samples_per_file says)")
    try:
        found = find_feature(memoryview(arr), b"image", offset + 12, offset + 12 + length)
    except ProtoError as e:
        raise FormatError(f"{where(path)}: record at byte {at} is not a tf.train.Example: {e}") from None
    if found is None:
        raise FormatError(f"{where(path)}: record at byte {at} has no 'image' feature (not DLIO's layout)")
    return found
