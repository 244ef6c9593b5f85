"""DLIO's ``csv`` format: one row per sample, ``d1 * d2`` comma-separated values, no header, no index.

Layout (DLIO ``data_generator/csv_generator.py``, written with pandas ``to_csv(index=False,
header=False)``): row ``i`` holds the values of sample ``x[..., i]`` in C order, as text (integers in
decimal, floats in the shortest form that reads back the same value, as pandas writes them), lines
ending in ``\\n``. DLIO 2.0.0 called ``to_csv(path)`` with pandas' defaults, so its files start with
a header row (``,0,1,...``) and every row with its index: decoding drops both. argonne's DLIO writes
the same record in every row; the MLCommons fork and we write distinct samples. ``dataset.compression`` gzip, bz2, zip or xz compresses the whole file and
appends ``.gz``, ``.bz2``, ``.zip`` or ``.xz`` to its name, as DLIO does (a zip holds one member named
after the csv file, as pandas writes it); timestamps are fixed, so a rerun is byte-identical.

Reading is whole-file, as DLIO's ``pandas.read_csv`` is: the codec is recognised by the file's first
bytes (so the name does not matter) and the text parsed by numpy's C parser. ``parse`` returns
``(values_per_row, rows)``: the 2-D shape of a sample is not in the file. Values are read as
``record_element_type`` when :meth:`CSVFormat.configure` set one, else as int64 (or float64 when a
value is not an integer).

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> x = np.arange(6, dtype=np.uint8).reshape(1, 3, 2)               # 2 samples of 1x3
    >>> _ = FORMAT.write_file(st, "a.csv", x); st.read("a.csv")
    b'0,2,4\\n1,3,5\\n'
    >>> FORMAT.write_file(st, "b.csv", x, compression="gzip") == st.size("b.csv.gz")
    True
    >>> FORMAT.parse(st.read("b.csv.gz"))[:, 1].tolist()
    [1, 3, 5]
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
import warnings
import zipfile
import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dlio_core.formats import _zip
from dlio_core.formats._rows import decode_flag, option_name, sample_count
from dlio_core.formats.base import FormatError, where

if TYPE_CHECKING:
    from dlio_core.storage import Storage

__all__ = ["FORMAT", "CSVFormat", "CODECS", "data_path", "rows_text"]

# dataset.compression -> the suffix DLIO appends to the file name
CODECS = {"gzip": ".gz", "bz2": ".bz2", "zip": ".zip", "xz": ".xz"}
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"PK\x03\x04", "zip"))


def _codec(compression: Any) -> str:
    c = option_name(compression)
    if c in ("none", ""):
        return "none"
    if c not in CODECS:
        raise FormatError(f"csv supports dataset.compression none, gzip, bz2, zip or xz (as DLIO's pandas "
                          f"writer does), not {c!r}")
    return c


def data_path(path: str, compression: Any = "none") -> str:
    """Where DLIO's csv writer puts the file named ``path``: the codec's suffix appended.

    Example:
        >>> data_path("train/img_1_of_4.csv", "bz2"), data_path("a.csv")
        ('train/img_1_of_4.csv.bz2', 'a.csv')
    """
    c = _codec(compression)
    return path if c == "none" else path + CODECS[c]


def rows_text(x: np.ndarray) -> bytes:
    """The csv text of ``x`` (samples on the last axis): a line of comma-separated values per sample.

    Example:
        >>> rows_text(np.array([[0.5, 1.0], [0.25, 2.0]], np.float32))
        b'0.5,0.25\\n1.0,2.0\\n'
    """
    a = np.asarray(x)
    n = sample_count(a, "csv")
    if n == 0:
        return b""
    rows = np.moveaxis(a, -1, 0).reshape(n, -1)
    text = rows.astype(str).tolist()  # numpy's shortest round-trip repr for the dtype, as pandas writes
    return ("\n".join(map(",".join, text)) + "\n").encode("ascii")


def _compress(codec: str, text: bytes, member: str) -> list[Any]:
    if codec == "gzip":
        return [gzip.compress(text, mtime=0)]
    if codec == "bz2":
        return [bz2.compress(text)]
    if codec == "xz":
        return [lzma.compress(text, format=lzma.FORMAT_XZ)]
    return _zip.build([(member.encode(), [text], _zip.DEFLATED)])


def _decompress(mv: memoryview, path: str | None) -> bytes:
    head = bytes(mv[:6])
    codec = next((name for magic, name in _MAGIC if head.startswith(magic)), "none")
    try:
        if codec == "gzip":
            return gzip.decompress(mv)
        if codec == "bz2":
            return bz2.decompress(mv)
        if codec == "xz":
            return lzma.decompress(mv)
        if codec == "zip":
            with zipfile.ZipFile(io.BytesIO(mv)) as z:
                names = z.namelist()
                if len(names) != 1:
                    raise FormatError(f"{where(path)}: a zipped csv holds one member, this one {len(names)}")
                return z.read(names[0])
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, ValueError) as e:
        raise FormatError(f"{where(path)}: corrupt or truncated {codec} csv ({e})") from None
    return bytes(mv)


def _values(text: str, dtype: np.dtype | None, path: str | None) -> np.ndarray:
    """``(rows, values)`` parsed from csv text; ``FormatError`` on ragged rows or bad values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loadtxt warns on empty input; emptiness is handled by callers
        try:
            if dtype is not None and dtype.kind == "b":
                return np.loadtxt(io.StringIO(text), delimiter=",", dtype=str, ndmin=2, comments=None) == "True"
            if dtype is not None:
                return np.loadtxt(io.StringIO(text), delimiter=",", dtype=dtype, ndmin=2, comments=None)
            try:
                return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64, ndmin=2, comments=None)
            except ValueError:
                return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2, comments=None)
        except ValueError as e:
            raise FormatError(f"{where(path)}: not DLIO's csv (rows of equal length of numbers): "
                              f"{str(e).splitlines()[0]}") from None


@dataclass(frozen=True)
class CSVFormat:
    """DLIO's csv format; ``dtype`` (``record_element_type``, from :meth:`configure`) is what values
    are parsed as (None: int64, or float64 when one is not an integer). ``decode`` False (bytes mode,
    ``reader.decode: false``) checks the file's framing and hands back its bytes in ``samples_per_file``
    equal shares, parsing nothing (what the MLCommons fork counts); True parses the values."""

    name: ClassVar[str] = "csv"
    extension: ClassVar[str] = "csv"
    whole_file: ClassVar[bool] = True
    dtype: str | None = None
    decode: bool = True          # a bare FORMAT parses values; configure() follows reader.decode
    samples_per_file: int = 1

    def configure(self, dataset: Any, reader: Any = None) -> CSVFormat:
        """This format reading values as the ``dataset`` section's ``record_element_type``, in the
        ``reader`` section's mode (``reader.decode``; without a reader section, this format's).

        Example:
            >>> from types import SimpleNamespace as NS
            >>> FORMAT.configure(NS(record_element_type="float32"), NS(decode=True)).parse(b"1.5,2\\n").dtype
            dtype('float32')
            >>> FORMAT.configure(NS(num_samples_per_file=2), NS(decode=False)).parse(b"1,2\\n3,4\\n")[:, 1].tobytes()
            b'3,4\\n'
        """
        dt = getattr(dataset, "record_element_type", None)
        return replace(self, dtype=None if dt is None else np.dtype(dt).str, decode=decode_flag(reader, self.decode),
                       samples_per_file=max(1, int(getattr(dataset, "num_samples_per_file", 1) or 1)))

    def file_size(self, shape: tuple[int, ...], dtype: Any, *, compression: str | None = "none") -> None:
        """None: the length of the text depends on the values."""
        _codec(compression)
        return None

    def write_file(self, storage: Storage, path: str, x: np.ndarray, *, compression: str | None = "none") -> int:
        """Write ``x``'s samples as csv rows to ``data_path(path, compression)`` atomically; return the
        bytes written."""
        codec = _codec(compression)
        text = rows_text(x)
        if codec == "none":
            return storage.write_atomic(path, text)
        return storage.write_atomic(data_path(path, codec), _compress(codec, text, posixpath.basename(path)))

    def parse(self, buffer: Any, path: str | None = None) -> np.ndarray:
        """``(values_per_row, rows)`` from the bytes of a whole file, plain or compressed (sample ``i``
        is ``x[:, i]``). Raises ``FormatError`` naming ``path`` when truncated or not numeric csv."""
        mv = memoryview(buffer).cast("B")
        if not self.decode:
            return self._shares(mv, path)
        raw = _decompress(mv, path)
        dtype = None if self.dtype is None else np.dtype(self.dtype)
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise FormatError(f"{where(path)}: not csv text (non-ASCII bytes)") from None
        if not text.strip():
            return np.empty((0, 0), dtype or np.int64)
        if not text.endswith("\n"):  # DLIO's files end every row with a newline: a missing one is a cut
            raise FormatError(f"{where(path)}: truncated csv (the last row has no line end)")
        if text.startswith(","):  # DLIO 2.0.0's to_csv(path): pandas' header row, then an index column
            return _values(text.partition("\n")[2], dtype, path)[:, 1:].T
        return _values(text, dtype, path).T

    def _shares(self, mv: memoryview, path: str | None) -> np.ndarray:
        """Bytes mode: ``(share, samples_per_file)`` uint8, sample ``i`` the ``i``-th equal share of the
        file's bytes, after checking what can be checked without decoding (a plain file's last line end;
        a compressed one's magic is recognised by ``_decompress`` only when decoding)."""
        raw = np.frombuffer(mv, np.uint8)
        codec = next((name for magic, name in _MAGIC if bytes(mv[:6]).startswith(magic)), "none")
        if codec == "none" and len(raw) and raw[-1] != 0x0A:
            raise FormatError(f"{where(path)}: truncated csv (the last row has no line end)")
        n = self.samples_per_file
        share = len(raw) // n
        return raw[:share * n].reshape(n, share).T


FORMAT = CSVFormat()
