"""Per-sample labels the files carry (npz ``y``), for the framework plugins that hand samples to a model.

DLIO's npz archives hold ``x`` (samples on the last axis) and ``y`` (one int64 label per sample; DLIO
writes zeros, a user's own archives hold real classes). :func:`labels_of_file` finds ``y`` in the
bytes the engine already read (a sample is a view of its file's buffer), reading the file again only
when the sample no longer leads back to them. Formats without labels (:func:`has_labels` False) give
none: plugins then yield samples only.

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_core.formats import get_format
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> np.savez(st.path("a.npz"), x=np.zeros((2, 2, 3), np.uint8), y=np.array([4, 5, 6]))
    >>> buf = np.frombuffer(st.read("a.npz"), np.uint8)
    >>> view = get_format("npz").parse(buf)[..., 0]
    >>> has_labels(get_format("npz")), labels_of_file(view, st.read, "a.npz", buf.size).tolist()
    (True, [4, 5, 6])
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any, Callable, Sequence

import numpy as np

from dlio_core.formats import _zip

_LOCAL_Y = struct.Struct("<IBBHHHHIIIHH5s")  # a local header and a five-byte name, as npz's fast path reads it
_ZIP64 = struct.Struct("<HHQQ")  # the zip64 extra field: id 1, length, uncompressed, compressed

__all__ = ["LABEL_CACHE_SAMPLES", "StepLabels", "formats_with_labels", "has_labels", "labels_of_file", "labels_of_step"]

# Labels are kept per process once read (8 bytes a sample) up to this many samples (32 MiB); larger
# datasets look each file's labels up in its bytes every time it is read.
LABEL_CACHE_SAMPLES = 1 << 22

_LABELLED = ("npz",)


def formats_with_labels() -> tuple[str, ...]:
    """Names of the formats whose files carry per-sample labels."""
    return _LABELLED


def has_labels(fmt: Any) -> bool:
    """Whether ``fmt`` (a Format object or a format name) carries labels (npz ``y``)."""
    name = getattr(fmt, "name", fmt)
    return str(getattr(name, "value", name)).lower() in _LABELLED


def _file_buffer(view: np.ndarray, size: int) -> np.ndarray | None:
    """The first ``size`` bytes of the byte buffer ``view`` is a view of (pooled buffers may be larger
    than the file, which starts at their offset 0), if its chain of bases leads to one."""
    x: Any = view
    while x is not None:
        found = None
        if isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 1 and x.size >= size:
            found = x[:size]
        elif isinstance(x, memoryview) and x.c_contiguous and x.nbytes >= size:
            found = np.frombuffer(x, np.uint8, count=size)
        if found is not None:
            # Only if the sample lies inside those bytes: a buffer holding several files must not lend
            # its first file's labels to a sample of another.
            start = found.__array_interface__["data"][0]
            return found if start <= view.__array_interface__["data"][0] < start + size else None
        x = getattr(x, "base", None)
    return None


_Y_NAMES = (b"y.npy", b"y")


def _y_member_fast(mv: memoryview) -> Any:
    """``y``'s member when the archive ends with a plain end record (no comment, no zip64 offsets), as
    np.savez and DLIO write them: a few struct reads, not the generic search's 64 KiB tail copy."""
    end = mv.nbytes
    if end < _zip.EOCD.size:
        return None
    sig, _d, _dcd, _n, count, cd_size, cd_offset, clen = _zip.EOCD.unpack_from(mv, end - _zip.EOCD.size)
    if sig != _zip.EOCD_SIG or clen or 0xFFFFFFFF in (cd_size, cd_offset) or cd_offset + cd_size > end:
        return None
    p = cd_offset
    for _ in range(count):
        fields = _zip.CENTRAL.unpack_from(mv, p)
        method, csize, usize, nlen, xlen, clen2, loff = (fields[6], fields[10], fields[11], fields[12], fields[13],
                                                         fields[14], fields[18])
        if bytes(mv[p + _zip.CENTRAL.size:p + _zip.CENTRAL.size + nlen]) in _Y_NAMES:
            if 0xFFFFFFFF in (csize, usize, loff) or loff + _zip.LOCAL.size > end:
                return None
            lfields = _zip.LOCAL.unpack_from(mv, loff)
            start = loff + _zip.LOCAL.size + lfields[-2] + lfields[-1]
            return _zip.Member(method, start, csize, usize) if start + csize <= end else None
        p += _zip.CENTRAL.size + nlen + xlen + clen2
    return None


def _y_member(buf: np.ndarray) -> Any:
    mv = memoryview(buf)
    try:
        return _y_member_fast(mv) or _zip.find_member(mv, _Y_NAMES)
    except (_zip.ZipError, struct.error):
        return None


def _y_after_x(buf: np.ndarray) -> np.ndarray | None:
    """``y`` as DLIO's (and ``np.savez``'s stored) archives lay it out: its local header right after ``x``'s
    data, both stored; a copy (``buf`` goes back to a pool). None when the archive is laid out otherwise.

    A few struct reads and npy's cached header parse: the central directory scan and ``np.load``'s
    header ``eval`` cost ten times more, per file, on every step.
    """
    from dlio_core.formats.npz import _fast_offset
    from dlio_core.formats.npy import parse_at

    mv = memoryview(buf).cast("B")
    x = _fast_offset(mv, mv.nbytes)
    if x is None or x[1] + 35 > mv.nbytes:
        return None
    sig, _v, _r, flags, method, _t, _d, _crc, csize, _us, nlen, xlen, name = _LOCAL_Y.unpack_from(mv, x[1])
    if sig != _zip.LOCAL_SIG or nlen != 5 or name != b"y.npy" or method != _zip.STORED or flags & 9:
        return None
    start = x[1] + 35 + xlen
    if csize == 0xFFFFFFFF:  # zip64: the sizes are in the extra field
        if xlen < 20 or _ZIP64.unpack_from(mv, x[1] + 35)[0] != 1:
            return None
        csize = _ZIP64.unpack_from(mv, x[1] + 35)[3]
    if start + csize > mv.nbytes:
        return None
    try:
        return parse_at(mv, start, start + csize).astype(np.int64).reshape(-1)
    except ValueError:  # not an npy after all: the general path decides
        return None


def labels_of_file(view: np.ndarray, read: Callable[[str], bytes], path: str, size: int) -> np.ndarray:
    """Every label of the npz file at ``path`` (``size`` bytes) as int64, from the buffer ``view`` (one of
    its samples) lies in, else from ``read(path)``. Raises ``ValueError`` naming the file without ``y``."""
    buf = _file_buffer(view, size)
    fast = _y_after_x(buf) if buf is not None else None
    if fast is not None:
        return fast
    member = _y_member(buf) if buf is not None else None
    if member is None:  # the sample no longer leads to its file's bytes: read them again
        buf = np.frombuffer(read(path), np.uint8)
        try:
            member = _zip.find_member(memoryview(buf), _Y_NAMES)
        except _zip.ZipError as exc:
            raise ValueError(f"{path}: not a readable npz archive ({exc})") from exc
    if member is None:
        raise ValueError(f"{path}: npz archive has no y member (labels); write np.savez(path, x=..., y=...) "
                         "or pass labels=False")
    raw = bytes(buf[member.data_offset:member.data_offset + member.compressed_size])
    if member.method != _zip.STORED:
        raw = zlib.decompress(raw, -15)
    return _npy_labels(raw)


_HEADERS: dict[bytes, tuple[np.dtype, int, bool]] = {}  # npy header -> (dtype, data offset, fortran): few


def _npy_labels(raw: bytes) -> np.ndarray:
    """The int64 labels of one small ``.npy`` (headers parsed once: every file of a dataset shares one)."""
    if len(raw) < 10 or raw[:6] != b"\x93NUMPY":
        raise ValueError("y is not an .npy array")
    size = 4 if raw[6] >= 2 else 2
    head_len = 6 + 2 + size + int.from_bytes(raw[8:8 + size], "little")
    key = raw[:head_len]
    known = _HEADERS.get(key)
    if known is None:
        f = io.BytesIO(raw)
        version = np.lib.format.read_magic(f)
        shape, fortran, dtype = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                 else np.lib.format.read_array_header_2_0)(f)
        known = _HEADERS[key] = (dtype, f.tell(), fortran)
    dtype, offset, _ = known
    return np.frombuffer(raw, dtype=dtype, offset=offset).astype(np.int64).reshape(-1)


def labels_of_step(storage: Any, files: Sequence[tuple[str, int]], views: Sequence[np.ndarray],
                   file_ids: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """int64 labels of one step's samples: ``views[j]`` is sample ``indices[j]`` of file ``files[file_ids[j]]``
    (``(relpath, size)`` pairs, as listing gives them); each file's ``y`` is looked up once per step.

    Example:
        >>> import tempfile, numpy as np
        >>> from dlio_core.storage import open_storage
        >>> st = open_storage(tempfile.mkdtemp())
        >>> np.savez(st.path("a.npz"), x=np.zeros((2, 2, 2), np.uint8), y=np.array([8, 9]))
        >>> files = [("a.npz", st.size("a.npz"))]
        >>> labels_of_step(st, files, [np.zeros(1)] * 2, np.array([0, 0]), np.array([1, 0])).tolist()
        [9, 8]
    """
    return StepLabels.of_files(storage, files, samples_per_file=0)(views, file_ids, indices)  # 0: nothing kept


class StepLabels:
    """int64 labels of steps' samples, each file's ``y`` looked up once and then kept by this object (this
    process: 8 bytes a sample, up to ``LABEL_CACHE_SAMPLES`` samples; larger datasets look each file up
    once per step). ``read(path)``, ``path_of(f)`` and ``size_of(f)`` name and read file ``f``.

    A step whose files were all seen costs one gather, not a lookup per file: later epochs (and the
    steps of a multi-sample file after its first) read no label bytes.

    Example:
        >>> import tempfile, numpy as np
        >>> from dlio_core.storage import open_storage
        >>> st = open_storage(tempfile.mkdtemp())
        >>> np.savez(st.path("a.npz"), x=np.zeros((2, 2, 2), np.uint8), y=np.array([8, 9]))
        >>> step = StepLabels.of_files(st, [("a.npz", st.size("a.npz"))], samples_per_file=2)
        >>> step([np.zeros(1)] * 2, np.array([0, 0]), np.array([1, 0])).tolist()
        [9, 8]
    """

    def __init__(self, read: Callable[[str], bytes], path_of: Callable[[int], str], size_of: Callable[[int], int],
                 num_files: int, samples_per_file: int) -> None:
        self.read, self.path_of, self.size_of = read, path_of, size_of
        self.samples_per_file = int(samples_per_file)
        cached = 0 < num_files * self.samples_per_file <= LABEL_CACHE_SAMPLES  # samples_per_file=0: keep none
        self._seen = np.zeros(num_files, bool) if cached else None
        self._labels = np.zeros(num_files * self.samples_per_file, np.int64) if cached else None

    @classmethod
    def of_files(cls, storage: Any, files: Sequence[tuple[str, int]], samples_per_file: int) -> "StepLabels":
        """Over ``files``, ``(relpath, size)`` pairs (as listing gives them) in ``storage``."""
        return cls(storage.read, lambda f: storage.join(files[f][0]), lambda f: int(files[f][1]), len(files),
                   samples_per_file)

    def __call__(self, views: Sequence[np.ndarray], file_ids: Any, indices: Any) -> np.ndarray:
        """The labels of sample ``indices[j]`` of file ``file_ids[j]``, ``views[j]`` being that sample."""
        files, indices = np.asarray(file_ids, np.int64), np.asarray(indices, np.int64)
        seen, known, spf = self._seen, self._labels, self.samples_per_file
        out = np.empty(len(views), np.int64)
        todo: Sequence[int] = range(len(views))
        if seen is not None:  # the files seen before give theirs from what is kept; only the others are read
            hit = seen[files]
            if hit.all():  # every file's labels read in an earlier step: one gather
                return known[files * spf + indices]  # type: ignore[index]
            out[hit] = known[files[hit] * spf + indices[hit]]  # type: ignore[index]
            todo = np.flatnonzero(~hit).tolist()
        per_file: dict[int, np.ndarray] = {}  # each file's y looked up once per step
        for j in todo:
            f, k = int(files[j]), int(indices[j])
            y = per_file.get(f)
            if y is None:
                y = per_file[f] = labels_of_file(views[j], self.read, self.path_of(f), self.size_of(f))
                if seen is not None and y.size == spf:
                    known[f * spf:(f + 1) * spf] = y  # type: ignore[index]
                    seen[f] = True
            out[j] = y[k]
        return out
