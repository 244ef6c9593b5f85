"""Parquet as the MLCommons DLIO fork writes it (pyarrow, extra ``dl-driver[formats]``, imported when used).

Layout (fork ``data_generator/parquet_generator.py``): a row per sample. The columns come from
``dataset.parquet.columns`` (see ``_parquet_schema``); without them a file has one ``data`` column, a
fixed-size uint8 list holding the sample's bytes. Options, read by :meth:`ParquetFormat.configure`
with the fork's defaults:

* ``dataset.parquet.row_group_size`` (1024): rows per row group. Ours are exactly that size; the fork's
  are cut at ``generation_batch_size`` too when that is smaller.
* ``dataset.parquet.generation_batch_size`` (0: one row group): rows generated and written at a time,
  rounded up to whole row groups, so writing holds one batch in memory, not the file.
* ``dataset.parquet.partition_by``: a column to partition by, as ``pyarrow.parquet.write_to_dataset``
  does: rows with value ``v`` go to ``{folder}/{column}=v/{file name}`` without that column (the fork
  names the parts by uuid; ours keep the file's name, so a rerun replaces them). At most 1024 values.
* ``dataset.parquet.read_mode`` (``default`` or ``row_group``; both read whole row groups, as in the
  fork) and ``use_s3dlio_gen`` (ignored: we generate with numpy on any storage).
* ``dataset.compression``: none, snappy, gzip, lz4, zstd or brotli, applied (the fork's writer maps all
  but gzip to none).
* No dictionary encoding (the fork keeps pyarrow's default): random values never repeat, so the
  dictionary pyarrow tries first is dropped for plain pages anyway, after costing half the write time
  and a third more peak memory (``benchmarks/formats.py``). Readers see plain pages either way.

With a schema the row size comes from the columns: ``record_length_bytes`` is ignored for parquet
(the fork ignores it too); without one, a row holds one sample of ``record_length_bytes``.

Reading (``whole_file = False``: ``_parquet_read``) reads whole row groups of the selected columns
(``read: true``, or ``read_columns``): in bytes mode (``reader.decode: false``, the fork's
measure) exactly their column-chunk bytes, nothing decoded; in decode mode the same bytes, then
pyarrow decodes them to arrays.

Example:
    >>> import tempfile, numpy as np, pyarrow.parquet as pq
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> fmt = ParquetFormat(columns=columns_from([{"name": "a", "dtype": "int16", "size": 3}, {"name": "b", "dtype": "uint8"}]),
    ...                     row_group_size=4)
    >>> _ = fmt.write_rows(st, "t.parquet", 10, key=(1, 2))
    >>> f = pq.ParquetFile(st.path("t.parquet")); f.metadata.num_rows, f.metadata.num_row_groups
    (10, 3)
    >>> r = replace(fmt, read_columns=("b",), decode=True).open_reader(st, "t.parquet", st.size("t.parquet"))
    >>> _, sample_bytes, rows, _, _ = r.read([9, 0], keep=True)
    >>> sample_bytes, rows[0].tolist() == [f.read(columns=["b"])["b"][9].as_py()]
    (2, True)
"""

from __future__ import annotations

import hashlib
import math
import posixpath
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from dlio_core.formats._extras import pyarrow_modules
from dlio_core.formats._parquet_read import FOOTERS, ParquetReader, table_rows
from dlio_core.formats._parquet_schema import (
    Column, arrow_schema, columns_from, generate_table, legacy_column, row_nbytes,
)
from dlio_core.formats._rows import decode_flag, nominal_sample, option_name, sample_rows
from dlio_core.formats.base import FormatError, where

if TYPE_CHECKING:
    from dlio_core.storage import Storage

__all__ = ["FORMAT", "ParquetFormat", "CODECS", "FOOTERS", "columns_from"]

# dataset.compression -> pyarrow's codec (None: uncompressed)
CODECS = {"none": None, "snappy": "snappy", "gzip": "gzip", "lz4": "lz4", "zstd": "zstd", "brotli": "brotli"}
READ_MODES = ("default", "row_group")
MAX_PARTITIONS = 1024


def _codec(compression: Any) -> str | None:
    c = option_name(compression)
    if c not in CODECS:
        raise FormatError(f"parquet supports dataset.compression {', '.join(CODECS)}, not {c!r}")
    return CODECS[c]


def _get(section: Any, key: str, default: Any) -> Any:
    value = section.get(key, default) if hasattr(section, "get") else getattr(section, key, default)
    return default if value is None else value


@dataclass(frozen=True)
class ParquetFormat:
    """The fork's parquet format with its options (module docstring); ``columns`` empty is the legacy
    ``data`` column of ``legacy_row_bytes`` per row."""

    name: ClassVar[str] = "parquet"
    extension: ClassVar[str] = "parquet"
    whole_file: ClassVar[bool] = False
    columns: tuple[Column, ...] = ()
    row_group_size: int = 1024
    generation_batch_size: int = 0
    partition_by: str | None = None
    read_columns: tuple[str, ...] | None = None   # None: the columns marked read (all without a schema)
    decode: bool = False
    legacy_row_bytes: int = 65536

    def __post_init__(self) -> None:
        if self.row_group_size < 1:
            raise FormatError(f"dataset.parquet.row_group_size must be at least 1, not {self.row_group_size}")
        if self.generation_batch_size < 0:
            raise FormatError(f"dataset.parquet.generation_batch_size must be 0 or more, not {self.generation_batch_size}")
        scalars = [c.name for c in self.columns if c.size == 1 and c.dtype != "list"]
        if self.partition_by is not None and self.partition_by not in scalars:
            raise FormatError(f"dataset.parquet.partition_by: {self.partition_by!r} is not one of the scalar "
                              f"columns ({', '.join(scalars) or 'none'})")

    def configure(self, dataset: Any, reader: Any = None) -> ParquetFormat:
        """This format with a ``dataset`` section's ``parquet`` options and ``reader.decode``.

        Example:
            >>> from types import SimpleNamespace as NS
            >>> ds = NS(parquet={"row_group_size": 6144, "columns": [{"name": "f", "dtype": "int8", "read": False},
            ...                                                      {"name": "g", "dtype": "float32"}]})
            >>> fmt = FORMAT.configure(ds, NS(decode=True)); fmt.row_group_size, fmt.selected, fmt.decode
            (6144, ('g',), True)
        """
        p = getattr(dataset, "parquet", None) or {}
        mode = option_name(_get(p, "read_mode", "default"))
        if mode not in READ_MODES:
            raise FormatError(f"dataset.parquet.read_mode: {mode!r} is not one of {', '.join(READ_MODES)}")
        shape, dtype = nominal_sample(dataset)
        partition = _get(p, "partition_by", None)
        return replace(self, columns=columns_from(_get(p, "columns", ())),
                       row_group_size=int(_get(p, "row_group_size", 1024)),
                       generation_batch_size=int(_get(p, "generation_batch_size", 0)),
                       partition_by=None if partition in (None, "") else str(partition),
                       decode=decode_flag(reader, self.decode),
                       legacy_row_bytes=math.prod(shape) * dtype.itemsize)

    @property
    def generates_rows(self) -> bool:
        """True with a schema: generation calls :meth:`write_rows` (rows made from the columns' types a
        batch at a time) instead of building a sample array from ``record_length_bytes``."""
        return bool(self.columns)

    def size_note(self, dataset: Any) -> str | None:
        """Why ``dataset.record_length_bytes`` does not size the rows, when a schema gives them another size
        (the fork ignores it too; generation warns with this), else None.

        Example:
            >>> from types import SimpleNamespace as NS
            >>> fmt = FORMAT.configure(NS(parquet={"columns": [{"name": "a", "dtype": "int8", "size": 3}]}))
            >>> fmt.size_note(NS(record_length_bytes=4096))
            'dataset.record_length_bytes=4096 is ignored for parquet with dataset.parquet.columns: a row holds the columns, 3 bytes'
        """
        if not self.generates_rows:
            return None
        row = row_nbytes(self.columns)
        stated = int(getattr(dataset, "record_length_bytes", row) or row)
        if stated == row:
            return None
        return (f"dataset.record_length_bytes={stated} is ignored for parquet with dataset.parquet.columns: "
                f"a row holds the columns, {row} bytes")

    @property
    def schema_columns(self) -> tuple[Column, ...]:
        """The columns files are written with (the legacy ``data`` column when no schema is given)."""
        return self.columns or (legacy_column(self.legacy_row_bytes),)

    @property
    def selected(self) -> tuple[str, ...]:
        """Names of the columns a reader reads (never ``partition_by``: its value is in the parts' folder names)."""
        names = self.read_columns if self.read_columns is not None else [c.name for c in self.schema_columns if c.read]
        return tuple(n for n in names if n != self.partition_by)

    def file_size(self, shape: tuple[int, ...], dtype: Any, *, compression: str | None = "none") -> None:
        """None: page headers, statistics and the footer make the size known only after writing."""
        _codec(compression)
        return None

    def _batch_rows(self) -> int:
        batch = max(self.generation_batch_size, self.row_group_size)
        return -(-batch // self.row_group_size) * self.row_group_size  # whole row groups

    def write_rows(self, storage: Storage, path: str, rows: int, *, key: tuple[int, ...],
                   compression: str | None = "none") -> int:
        """Write ``rows`` generated rows to ``path`` (content a pure function of ``key``), a batch at a
        time; return the bytes written."""
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key))))
        columns = self.schema_columns
        return self._write(storage, path, rows, lambda n: generate_table(columns, n, rng), compression)

    def write_file(self, storage: Storage, path: str, x: np.ndarray, *, compression: str | None = "none") -> int:
        """Write ``x``'s samples as rows (samples on the last axis; return the bytes written). Without a
        schema the ``data`` column holds each sample's bytes; with one, ``x`` gives the row count and
        seeds the generated values (a file's content follows from its samples)."""
        if not self.columns:
            rows = sample_rows(x, self.name)
            pa, _ = pyarrow_modules()
            column = legacy_column(rows.shape[1])
            made = [0]

            def batch(n: int) -> Any:
                part = rows[made[0]:made[0] + n].reshape(-1)
                made[0] += n
                values = pa.FixedSizeListArray.from_arrays(pa.array(part, type=pa.uint8()), column.size)
                return pa.Table.from_arrays([values], schema=arrow_schema((column,)))

            return replace(self, legacy_row_bytes=column.size)._write(storage, path, rows.shape[0], batch, compression)
        digest = hashlib.blake2b(np.ascontiguousarray(x).reshape(-1)[:1 << 16].view(np.uint8), digest_size=16)
        digest.update(repr(np.shape(x)).encode())
        key = tuple(int.from_bytes(digest.digest()[i:i + 4], "little") for i in range(0, 16, 4))
        return self.write_rows(storage, path, int(np.shape(x)[-1]), key=key, compression=compression)

    def _write(self, storage: Storage, path: str, rows: int, batch: Callable[[int], Any], compression: Any) -> int:
        codec = _codec(compression)
        _, pq = pyarrow_modules()
        if self.partition_by is not None:
            return self._write_partitions(storage, path, batch(rows), codec)
        step = self._batch_rows()
        with storage.open_write(path) as f:
            writer = pq.ParquetWriter(f, arrow_schema(self.schema_columns), compression=codec, use_dictionary=False)
            try:
                for start in range(0, rows, step):
                    writer.write_table(batch(min(step, rows - start)), row_group_size=self.row_group_size)
            finally:
                writer.close()
            return f.tell()

    def _write_partitions(self, storage: Storage, path: str, table: Any, codec: str | None) -> int:
        """Hive partitions of ``table`` by ``partition_by``: ``{dir}/{col}={value}/{name}``, without the column."""
        pa, pq = pyarrow_modules()
        import pyarrow.compute as pc

        col = self.partition_by
        column = table.column(col)
        values = pc.unique(column)
        if len(values) > MAX_PARTITIONS:
            raise FormatError(f"{where(path)}: dataset.parquet.partition_by {col!r} has {len(values)} distinct "
                              f"values; partition by a column of at most {MAX_PARTITIONS} (e.g. a bool or int8)")
        folder, name = posixpath.split(path)
        total = 0
        for v in values:
            # pyarrow's hive naming: the value cast to a string ("true", "1"), nulls under a default name
            label = "__HIVE_DEFAULT_PARTITION__" if not v.is_valid else v.cast(pa.string()).as_py()
            part = table.filter(pc.is_null(column) if not v.is_valid else pc.equal(column, v)).drop_columns([col])
            sub = posixpath.join(folder, f"{col}={label}")
            storage.makedirs(sub)
            with storage.open_write(posixpath.join(sub, name)) as f:
                pq.write_table(part, f, compression=codec, row_group_size=self.row_group_size, use_dictionary=False)
                total += f.tell()
        return total

    def parse(self, buffer: Any, path: str | None = None) -> np.ndarray:
        """``(row_bytes, rows)`` uint8 from the bytes of a whole file: row ``i`` (``x[:, i]``) is the
        selected columns' values of that row, decoded and laid end to end."""
        pa, pq = pyarrow_modules()
        try:
            table = pq.read_table(pa.BufferReader(pa.py_buffer(buffer)), columns=list(self.selected))
        except (pa.ArrowException, OSError) as e:
            raise FormatError(f"{where(path)}: not a readable parquet file ({e})") from None
        matrix = table_rows(table, where(path))
        if not isinstance(matrix, np.ndarray):
            raise FormatError(f"{where(path)}: rows of different sizes; read them with open_reader instead")
        return matrix.T

    def open_reader(self, storage: Storage, path: str, size: int) -> Any:
        """A reader of whole row groups of the selected columns (the engine's ranged-format hook); with
        ``partition_by`` ``path`` is the logical file, read from its parts (``_parquet_parts``)."""
        if self.partition_by is not None:
            from dlio_core.formats._parquet_parts import PartitionedReader

            return PartitionedReader(storage, path, int(size), self.selected, decode=self.decode)
        return ParquetReader(storage, path, int(size), self.selected, decode=self.decode)


FORMAT = ParquetFormat()
