"""Reading TFRecord files through the engine's ranged hook (see ``tfrecord`` for the layout).

Where the records are comes from, in order: ``dataset.num_samples_per_file: 1`` (one record spanning
the file, nothing to read), the per-process cache, DLIO's ``.idx`` file, or a scan of the 12-byte
record headers. The records a batch asks for are read with one ``read_into`` per run of adjacent
records. The image is found by comparing the bytes around it with those of an earlier record of the
same length (two memory compares), falling back to walking the Example; lengths are always checked.
With ``DL_DRIVER_VERIFY_CHECKSUMS=1`` every record read has its length and payload CRC-32C checked
(records of one length in a few numpy calls); a mismatch is a ``FormatError`` naming the file and record.

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_core.storage import open_storage
    >>> from dlio_core.formats.tfrecord import FORMAT
    >>> st = open_storage(tempfile.mkdtemp())
    >>> _ = FORMAT.write_file(st, "valid/b.tfrecord", np.arange(12, dtype=np.uint8).reshape(3, 4))
    >>> r = TFRecordReader(st, "valid/b.tfrecord", st.size("valid/b.tfrecord"))
    >>> r.read([2, 0], keep=True)[2][0].tolist()
    [2, 6, 10]
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from dlio_core.formats._crc32c import crc32c_rows, mask
from dlio_core.formats._ranged import LayoutCache, runs
from dlio_core.formats.base import FormatError, verify_checksums
from dlio_core.formats._tfrecord_frame import FRAME_BYTES, header_length, image_span, index_path

__all__ = ["TFRecordReader", "INDEX_CACHE"]

# per process: each file's record offsets (files of equal-length records weigh 1, others their record count)
INDEX_CACHE = LayoutCache(max_weight=8 << 20)


class _FileIndex:
    """Where the records of one file are: ``offsets``/``lengths`` arrays, and ``rec`` when every record
    has that length (then record ``i`` is at ``i * rec``, no lookups)."""

    __slots__ = ("offsets", "lengths", "count", "rec")

    def __init__(self, offsets: np.ndarray | None, lengths: np.ndarray | None, *, single: int = 0) -> None:
        if single:  # one record spanning a file of ``single`` bytes (no arrays: this is per read)
            self.offsets = self.lengths = None
            self.count, self.rec = 1, single
            return
        assert offsets is not None and lengths is not None
        self.offsets, self.lengths, self.count = offsets, lengths, len(offsets)
        uniform = self.count > 0 and bool((lengths == lengths[0]).all()) and \
            bool((offsets == np.arange(self.count, dtype=np.int64) * lengths[0]).all())
        self.rec = int(lengths[0]) if uniform else 0

    def span(self, i: int) -> tuple[int, int]:
        if self.rec:
            return i * self.rec, self.rec
        assert self.offsets is not None and self.lengths is not None
        return int(self.offsets[i]), int(self.lengths[i])


# record length -> (bytes before the image, bytes after it up to the payload CRC). Every record of a
# DLIO file (and of a dataset) differs only in its image and CRC, so once one record of a length has
# been parsed, a record of that length whose surrounding bytes are equal has its image at the same
# place: two memory compares instead of a protobuf walk.
_FRAMES = LayoutCache(max_weight=4096)


class TFRecordReader:
    """Reads chosen records of one TFRecord file; see :meth:`read`. ``verify`` checks each record's
    CRC-32C; None (the default) reads ``DL_DRIVER_VERIFY_CHECKSUMS`` once, when the reader is made."""

    def __init__(self, storage: Any, path: str, size: int, samples_per_file: int | None = None, *,
                 verify: bool | None = None) -> None:
        self.storage, self.path, self.size, self.spf = storage, path, size, samples_per_file
        self.verify = verify_checksums() if verify is None else bool(verify)

    def _index(self) -> tuple[_FileIndex, int, float]:
        """``(index, bytes_read, io_s)``: from the cache, the ``.idx`` file or a header scan."""
        if self.spf == 1 and self.size > 0:  # one record spanning the file
            return _FileIndex(None, None, single=self.size), 0, 0.0
        key = (self.storage.url, self.path, self.size)
        hit = INDEX_CACHE.get(key)
        if hit is not None:
            return hit, 0, 0.0
        t0 = time.perf_counter()
        idx = index_path(self.path)
        text = None
        if idx is not None:
            try:
                text = self.storage.read(idx)
            except FileNotFoundError:
                text = None
        if text is not None:
            nread = len(text)
            offsets, lengths = self._parse_index(text, idx)
        else:
            offsets, lengths, nread = self._scan()
        io_s = time.perf_counter() - t0
        fi = _FileIndex(offsets, lengths)
        INDEX_CACHE.put(key, fi, weight=1 if fi.rec else fi.count)
        return fi, nread, io_s

    def _parse_index(self, text: bytes, idx: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            pairs = np.array(text.split(), dtype=np.int64).reshape(-1, 2)
        except ValueError:
            raise FormatError(f"{idx}: not a DALI TFRecord index (expected 'offset length' lines)") from None
        offsets, lengths = pairs[:, 0].copy(), pairs[:, 1].copy()
        if len(offsets) and (offsets[0] < 0 or (lengths < FRAME_BYTES).any() or offsets[-1] + lengths[-1] > self.size
                             or (offsets[1:] < offsets[:-1] + lengths[:-1]).any()):
            raise FormatError(f"{idx}: index does not fit {self.path} ({self.size} bytes): stale index or "
                              f"truncated data file")
        return offsets, lengths

    def _scan(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Walk the record headers (12 bytes each) when there is no index."""
        offsets, lengths = [], []
        header = bytearray(12)
        pos = nread = 0
        while pos < self.size:
            got = self.storage.read_into(self.path, header, pos)
            nread += got
            rec = header_length(header[:got], pos, self.size, self.path)
            offsets.append(pos)
            lengths.append(rec)
            pos += rec
        return np.array(offsets, np.int64), np.array(lengths, np.int64), nread

    def read(self, indices: Sequence[int], keep: bool) -> tuple[int, int, list[np.ndarray] | None, float, float]:
        """Read records ``indices`` (sample numbers in the file).

        Returns ``(bytes_read, sample_bytes, samples, io_s, decode_s)``: ``samples`` (when ``keep``) are
        1-D uint8 views of the image bytes in the order asked.
        """
        # The engine passes an int64 array: one tolist, not an int() per sample.
        wanted = indices.tolist() if isinstance(indices, np.ndarray) else [int(i) for i in indices]
        if not wanted:
            return 0, 0, [] if keep else None, 0.0, 0.0
        fi, nbytes, io_s = self._index()
        uniq = sorted(set(wanted))
        if uniq[0] < 0 or uniq[-1] >= fi.count:
            bad = uniq[-1] if uniq[-1] >= fi.count else uniq[0]
            raise FormatError(f"{self.path}: sample {bad} asked for, but the file holds {fi.count} record(s)")
        spans = [fi.span(i) for i in uniq]
        starts = [0]
        for _, n in spans:
            starts.append(starts[-1] + n)
        buf = np.empty(starts[-1], dtype=np.uint8)
        perf = time.perf_counter
        t0 = perf()
        for a, b in runs(uniq):
            k = a  # records of a run are back to back in the file unless the index says otherwise
            while k < b:
                e = k + 1
                while e < b and spans[e][0] == spans[e - 1][0] + spans[e - 1][1]:
                    e += 1
                want = starts[e] - starts[k]
                got = self.storage.read_into(self.path, buf[starts[k]:starts[e]], spans[k][0])
                nbytes += got
                if got != want:
                    raise FormatError(f"{self.path}: read {got} of {want} bytes at byte {spans[k][0]} "
                                      f"(file truncated or changed since it was listed)")
                k = e
        if self.verify:
            self._verify(buf, uniq, spans, starts)
        t1 = perf()
        mv = memoryview(buf)
        views = {i: self._image(buf, mv, starts[k], spans[k]) for k, i in enumerate(uniq)}
        sample_bytes = sum(views[i].nbytes for i in wanted)
        samples = [views[i] for i in wanted] if keep else None
        return nbytes, sample_bytes, samples, io_s + (t1 - t0), perf() - t1

    def _verify(self, buf: np.ndarray, uniq: list[int], spans: list[tuple[int, int]], starts: list[int]) -> None:
        """Check the masked CRC-32C of each record's length field and payload (records ``uniq``, read into
        ``buf`` at ``starts``); ``FormatError`` naming the file and the first bad record."""
        by_length: dict[int, list[int]] = {}
        for k, (_, rec) in enumerate(spans):
            by_length.setdefault(rec, []).append(k)
        for rec, ks in by_length.items():
            if len(ks) == len(spans):  # one length: the records lie end to end in buf
                rows = buf.reshape(-1, rec)
            else:
                rows = np.stack([buf[starts[k]:starts[k] + rec] for k in ks])
            stored = (np.ascontiguousarray(rows[:, 8:12]).view("<u4")[:, 0],
                      np.ascontiguousarray(rows[:, rec - 4:]).view("<u4")[:, 0])
            computed = mask(crc32c_rows(rows[:, :8])), mask(crc32c_rows(rows[:, 12:rec - 4]))
            for what, s, c in zip(("length", "data"), stored, computed):
                bad = np.flatnonzero(s != c)
                if len(bad):
                    k = ks[int(bad[0])]
                    raise FormatError(f"{self.path}: record {uniq[k]} (byte {spans[k][0]}) fails its {what} CRC-32C "
                                      f"check (stored {int(s[bad[0]]):#010x}, read {int(c[bad[0]]):#010x}): the file "
                                      f"is damaged")

    def _image(self, buf: np.ndarray, mv: memoryview, start: int, span: tuple[int, int]) -> np.ndarray:
        """The image bytes of the record at ``buf[start:start + rec]`` (``span``: its place in the file)."""
        rec = span[1]
        frame = _FRAMES.get(rec)
        if frame is not None:
            head, tail = frame
            end = start + rec - 4
            if mv[start:start + len(head)] == head and mv[end - len(tail):end] == tail:
                return buf[start + len(head):end - len(tail)]
        s, n = image_span(buf, start, rec, self.path, span[0])
        _FRAMES.put(rec, (bytes(mv[start:s]), bytes(mv[s + n:start + rec - 4])))
        return buf[s:s + n]

    def close(self) -> None:
        """Nothing is held open between reads."""
