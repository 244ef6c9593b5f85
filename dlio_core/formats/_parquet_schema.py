"""The MLCommons fork's parquet schema (``dataset.parquet.columns``): typed columns, their Arrow types,
their generated content, and the legacy single ``data`` column.

A column is ``{name, dtype, size, read}`` (fork ``data_generator/parquet_generator.py``): ``dtype`` is
a numpy integer or float name (``uint8`` .. ``float64``), ``list`` (float32), ``string``, ``binary``
or ``bool``; ``size`` (default 1) makes a numeric column a fixed-size list of that many values per
row and gives ``binary`` its bytes per row; ``read`` (default true; the fork's selective-read flag)
says whether a reader reads the column. A plain string is a float32 column of that name, as in the
fork. Without columns a file has one ``data`` column: a fixed-size list of uint8, the sample's bytes
(the fork's legacy mode). An unknown dtype is an error here (the fork silently writes float32 lists).

Content is random per row, so samples differ: integers take random bits over their whole range,
floats are uniform in [0, 1), strings are ``s_<random int>``, as the fork generates them.

Example:
    >>> cols = columns_from([{"name": "label", "dtype": "int8"}, {"name": "emb", "dtype": "float16", "size": 4},
    ...                      {"name": "aux", "dtype": "float32", "size": 2, "read": False}])
    >>> [c.name for c in cols if c.read], row_nbytes(cols)
    (['label', 'emb'], 17)
    >>> import numpy as np
    >>> table = generate_table(cols, 3, np.random.default_rng(0))
    >>> table.num_rows, str(table.schema.field("emb").type)
    (3, 'fixed_size_list<item: halffloat>[4]')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlio_core.formats._extras import pyarrow_modules
from dlio_core.formats.base import FormatError

__all__ = ["Column", "columns_from", "legacy_column", "row_nbytes", "arrow_schema", "generate_table", "NUMERIC"]

NUMERIC = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "float32", "float64")
OTHER = ("list", "string", "binary", "bool")
_STRING_BYTES = 12   # "s_" and up to 10 digits: the nominal size of a generated string


@dataclass(frozen=True)
class Column:
    """One column of the fork's schema."""

    name: str
    dtype: str = "float32"
    size: int = 1
    read: bool = True

    @property
    def values_dtype(self) -> np.dtype | None:
        """The numpy dtype of the values (``list`` is float32); None for string, binary and bool."""
        if self.dtype in NUMERIC:
            return np.dtype(self.dtype)
        return np.dtype("float32") if self.dtype == "list" else None

    @property
    def nbytes(self) -> int:
        """Bytes of one row's value as generated (strings nominal, bools one byte)."""
        vt = self.values_dtype
        if vt is not None:
            return vt.itemsize * self.size
        return {"binary": self.size, "bool": 1}.get(self.dtype, _STRING_BYTES)

    def arrow_type(self) -> Any:
        """The column's Arrow type: a scalar, or a fixed-size list when ``size > 1`` (always for ``list``)."""
        pa, _ = pyarrow_modules()
        vt = self.values_dtype
        if vt is not None:
            scalar = pa.from_numpy_dtype(vt)
            return pa.list_(scalar, self.size) if self.size > 1 or self.dtype == "list" else scalar
        return {"string": pa.string(), "binary": pa.binary(), "bool": pa.bool_()}[self.dtype]

    def generate(self, rows: int, rng: np.random.Generator) -> Any:
        """``rows`` random values as an Arrow array of :meth:`arrow_type`."""
        pa, _ = pyarrow_modules()
        vt = self.values_dtype
        if vt is not None:
            count = rows * self.size
            if vt.kind == "f":
                flat = rng.random(count, dtype=np.float32 if vt.itemsize <= 4 else np.float64).astype(vt, copy=False)
            else:
                flat = np.frombuffer(rng.bytes(count * vt.itemsize), vt)
            values = pa.array(flat, type=pa.from_numpy_dtype(vt))
            if self.size > 1 or self.dtype == "list":
                return pa.FixedSizeListArray.from_arrays(values, self.size)
            return values
        if self.dtype == "string":
            return pa.array([f"s_{v}" for v in rng.integers(0, 2**31, size=rows).tolist()], type=pa.string())
        if self.dtype == "binary":
            offsets = np.arange(rows + 1, dtype=np.int32) * self.size
            data = rng.bytes(rows * self.size)
            return pa.Array.from_buffers(pa.binary(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        return pa.array(rng.integers(0, 2, size=rows, dtype=np.uint8).astype(bool), type=pa.bool_())


def _get(spec: Any, key: str, default: Any) -> Any:
    if isinstance(spec, Mapping):
        return spec.get(key, default)
    return getattr(spec, key, default)


def columns_from(specs: Any) -> tuple[Column, ...]:
    """The columns of a ``dataset.parquet.columns`` value (a list of mappings or names; None or empty:
    no columns, the legacy layout). ``FormatError`` naming the entry when one is wrong.

    Example:
        >>> columns_from(["x"])
        (Column(name='x', dtype='float32', size=1, read=True),)
        >>> columns_from([{"name": "x", "dtype": "complex64"}])
        Traceback (most recent call last):
        ...
        dlio_core.formats.base.FormatError: dataset.parquet.columns[0].dtype: 'complex64' is not a parquet column dtype (uint8, uint16, uint32, uint64, int8, int16, int32, int64, float16, float32, float64, list, string, binary, bool)
    """
    out: list[Column] = []
    for i, spec in enumerate(specs or ()):
        where = f"dataset.parquet.columns[{i}]"
        if isinstance(spec, str):
            out.append(Column(spec))
            continue
        name, dtype = str(_get(spec, "name", "data")), str(_get(spec, "dtype", "float32")).lower()
        if dtype not in NUMERIC + OTHER:
            raise FormatError(f"{where}.dtype: {dtype!r} is not a parquet column dtype ({', '.join(NUMERIC + OTHER)})")
        try:
            size = int(_get(spec, "size", 1))
        except (TypeError, ValueError):
            raise FormatError(f"{where}.size: {_get(spec, 'size', 1)!r} is not an integer") from None
        if size < 1:
            raise FormatError(f"{where}.size: must be at least 1, not {size}")
        if dtype in ("string", "bool") and size != 1:
            raise FormatError(f"{where}.size: a {dtype} column holds one value per row, not {size}")
        out.append(Column(name, dtype, size, bool(_get(spec, "read", True))))
    names = [c.name for c in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise FormatError(f"dataset.parquet.columns: column names must be unique, {', '.join(dup)} repeat")
    return tuple(out)


def legacy_column(row_bytes: int) -> Column:
    """The fork's column when no schema is given: ``data``, the sample's bytes as a uint8 list."""
    return Column("data", "uint8", max(int(row_bytes), 1))


def row_nbytes(columns: tuple[Column, ...]) -> int:
    """Bytes of one generated row of ``columns`` (the sample size a schema implies)."""
    return sum(c.nbytes for c in columns)


def arrow_schema(columns: tuple[Column, ...]) -> Any:
    """The Arrow schema of ``columns``."""
    pa, _ = pyarrow_modules()
    return pa.schema([pa.field(c.name, c.arrow_type()) for c in columns])


def generate_table(columns: tuple[Column, ...], rows: int, rng: np.random.Generator) -> Any:
    """An Arrow table of ``rows`` random rows of ``columns`` (``rng`` advances column after column)."""
    pa, _ = pyarrow_modules()
    return pa.Table.from_arrays([c.generate(rows, rng) for c in columns], schema=arrow_schema(columns))
