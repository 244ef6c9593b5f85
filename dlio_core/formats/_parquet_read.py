"""Reading parquet files through the engine's ranged hook, by whole row groups of chosen columns.

A file's footer is read once per process (one read of the last 64 KiB, or of a sixteenth of a smaller
file but at least 8 KiB; a second read of the rest only when the footer is larger) and cached by storage,
path and size. A batch reads every row group holding one of its
rows: for each, the column chunks of the selected columns (from the dictionary page to the end of
the data pages), chunks that follow each other in the file in one read. That is what the fork reads
(``parquet_reader_file_iterable.py``: the compressed chunk bytes, no decode), so ``bytes_read`` is
exactly those bytes plus the footer when it was not cached.

Bytes mode stops there: a kept sample is a view of its row group's bytes (the row's share of them,
nothing is decoded). Decode mode then has pyarrow decode those row groups from the bytes read (the
chunks are placed at their file offsets in a buffer the size of the file, of which only those pages
are touched, so nothing is read twice) and converts the columns to numpy: a kept sample is the row's
values of the selected columns, end to end, as uint8.

Example:
    >>> import tempfile, numpy as np, pyarrow as pa, pyarrow.parquet as pq
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> pq.write_table(pa.table({"a": np.arange(6, dtype=np.int32), "b": np.ones(6)}), st.path("p.parquet"), row_group_size=2)
    >>> r = ParquetReader(st, "p.parquet", st.size("p.parquet"), ("a",), decode=True)
    >>> n, sample_bytes, rows, _, _ = r.read([5, 2], keep=True)
    >>> sample_bytes, [row.view(np.int32).tolist() for row in rows]
    (8, [[5], [2]])
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from dlio_core.formats._extras import pyarrow_modules
from dlio_core.formats._parquet_groups import GROUPS
from dlio_core.formats._ranged import LayoutCache
from dlio_core.formats._spans import check_wanted, coalesce, fill
from dlio_core.formats.base import FormatError
from dlio_core.storage.backend import open_ranged

__all__ = ["ParquetReader", "FOOTERS", "GROUPS", "table_rows", "column_bytes", "footer_tail_bytes"]

FOOTERS = LayoutCache(max_weight=4096)   # per process: parsed footers (weight: row groups / 64, at least 1)
_TAIL = 64 << 10                         # bytes read from the end to find the footer in one read ...
_TAIL_SHARE = 16                         # ... at most a sixteenth of the file (>= 8 KiB): small files are
_MIN_TAIL = 8 << 10                      # not read twice (a larger footer takes a second read)
_MAGIC = b"PAR1"


class _Footer:
    """What the reader needs from a file's footer: the metadata, where each row group's rows start,
    and the leaf columns (parquet columns) under each top-level field."""

    __slots__ = ("meta", "row_starts", "leaves", "_plans")

    def __init__(self, meta: Any) -> None:
        self.meta = meta
        counts = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        self.row_starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        self.leaves: dict[str, list[int]] = {}
        for j in range(meta.num_columns):
            self.leaves.setdefault(meta.schema.column(j).path.split(".")[0], []).append(j)
        self._plans: dict[tuple[int, tuple[int, ...]], tuple[int, list[tuple[int, int, int]]]] = {}

    def chunk_spans(self, group: int, leaves: Sequence[int]) -> list[tuple[int, int]]:
        """``(offset, length)`` of the chosen leaf columns' chunks in row group ``group``, by offset."""
        rg = self.meta.row_group(group)
        spans = []
        for j in leaves:
            c = rg.column(j)
            start = c.dictionary_page_offset if c.has_dictionary_page and c.dictionary_page_offset else c.data_page_offset
            spans.append((int(start), int(c.total_compressed_size)))
        return sorted(spans)

    def read_plan(self, group: int, leaves: Sequence[int]) -> tuple[int, list[tuple[int, int, int]]]:
        """``(total, runs)`` for reading the chosen chunks of ``group`` into one buffer of ``total``
        bytes: run ``(a, b, at)`` is ``buffer[a:b]`` from file offset ``at``, chunks that follow each
        other in the file in one run. Kept with the cached footer: a dlrm batch reads three groups of
        40 chunks, and walking the metadata for them cost more than the reads' system calls."""
        key = (group, tuple(leaves))
        plan = self._plans.get(key)
        if plan is None:
            spans = self.chunk_spans(group, leaves)
            starts = np.concatenate(([0], np.cumsum([n for _, n in spans], dtype=np.int64))).tolist()
            runs = [(starts[first], starts[end], at) for first, end, at, _n in coalesce(spans)]
            plan = self._plans[key] = (starts[-1], runs)
        return plan


def footer_tail_bytes(size: int) -> int:
    """Bytes read from the end of a ``size``-byte file to find its footer in one read (a second read
    follows only when the footer is larger, of the footer's bytes before the tail: the footer read is
    ``max(footer_tail_bytes(size), footer_length + 8)`` bytes).

    Example:
        >>> footer_tail_bytes(4 << 20), footer_tail_bytes(256 << 10), footer_tail_bytes(1000)
        (65536, 16384, 1000)
    """
    return min(size, _TAIL, max(_MIN_TAIL, size // _TAIL_SHARE))


def read_footer(fetch: Callable[[Any, int], int], path: str, size: int) -> tuple[_Footer, int]:
    """The footer of the parquet file ``path`` of ``size`` bytes and the bytes read for it, read with
    ``fetch(view, offset)``; ``FormatError`` naming ``path`` when the file is not parquet or is truncated."""
    pa, pq = pyarrow_modules()
    tail_len = footer_tail_bytes(size)
    tail = np.empty(tail_len, np.uint8)
    nbytes = fill(tail, size - tail_len, fetch, path)
    if size < 12 or tail[-4:].tobytes() != _MAGIC:
        raise FormatError(f"{path}: not a parquet file (no PAR1 magic at the end; truncated?)")
    footer_len = int(tail[-8:-4].view("<u4")[0])
    if footer_len + 12 > size:
        raise FormatError(f"{path}: footer of {footer_len} bytes does not fit a {size}-byte file (truncated?)")
    if footer_len + 8 > tail_len:  # read only the footer's part before the tail, nothing twice
        whole = np.empty(footer_len + 8, np.uint8)
        head = len(whole) - tail_len
        nbytes += fill(whole[:head], size - len(whole), fetch, path)
        whole[head:] = tail
        tail = whole
    footer = tail[len(tail) - footer_len - 8:].tobytes()
    try:  # the metadata parser wants a whole file: the footer behind a leading magic is one
        meta = pq.read_metadata(pa.BufferReader(_MAGIC + footer))
    except (pa.ArrowException, OSError) as e:
        raise FormatError(f"{path}: corrupt parquet footer ({e})") from None
    return _Footer(meta), nbytes


def column_bytes(column: Any, path: str = "<buffer>") -> np.ndarray | list[bytes]:
    """One Arrow column as ``(rows, bytes)`` uint8 when its rows have one size (numbers, fixed lists,
    bools), else a list of each row's bytes (strings, binary, lists of varying length)."""
    pa, _ = pyarrow_modules()
    arr = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    rows = len(arr)
    t = arr.type
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        values = arr.flatten().to_numpy(zero_copy_only=False)
        width = t.list_size if pa.types.is_fixed_size_list(t) else (len(values) // rows if rows else 0)
        if width * rows == len(values) and (pa.types.is_fixed_size_list(t) or
                                            bool((np.diff(arr.offsets.to_numpy()) == width).all())):
            return np.ascontiguousarray(values).view(np.uint8).reshape(rows, -1)
        return [np.asarray(v, values.dtype).tobytes() for v in arr.to_pylist()]
    if pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        return [(v.encode() if isinstance(v, str) else v or b"") for v in arr.to_pylist()]
    values = arr.to_numpy(zero_copy_only=False)
    if values.dtype == object:
        raise FormatError(f"{path}: a parquet column of type {t} cannot be read as values of one size")
    return np.ascontiguousarray(values).view(np.uint8).reshape(rows, -1)


def table_rows(table: Any, path: str) -> np.ndarray | list[bytes]:
    """The rows of ``table`` as bytes: ``(rows, row_bytes)`` uint8 when every column's rows have one
    size, else a list of each row's bytes; columns end to end in the table's order."""
    return rows_of([column_bytes(table.column(i), path) for i in range(table.num_columns)], table.num_rows)


def rows_of(parts: list[np.ndarray | list[bytes]], count: int) -> np.ndarray | list[bytes]:
    """Columns converted by :func:`column_bytes` laid end to end, row by row (see :func:`table_rows`)."""
    if not parts:
        return np.empty((count, 0), np.uint8)
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    as_rows = [p if isinstance(p, list) else [r.tobytes() for r in p] for p in parts]
    return [b"".join(cells) for cells in zip(*as_rows)]


class _Columns:
    """A row group's selected columns, decoded (each by :func:`column_bytes`). A row's values are laid
    end to end only when that row is handed out as a sample: joining every row would copy the group again
    (a third of decode mode's time on dlrm_b200) for batches nobody keeps."""

    __slots__ = ("parts", "nbytes")

    def __init__(self, parts: list[np.ndarray | list[bytes]]) -> None:
        self.parts = parts
        self.nbytes = sum(p.nbytes if isinstance(p, np.ndarray) else sum(map(len, p)) for p in parts)

    def row_bytes(self, rows: np.ndarray) -> int:
        """Bytes of rows ``rows`` (numbers in the group), all selected columns."""
        fixed = sum(int(p.shape[1]) for p in self.parts if isinstance(p, np.ndarray)) * len(rows)
        return fixed + sum(len(p[r]) for p in self.parts if not isinstance(p, np.ndarray) for r in rows.tolist())

    def row(self, r: int) -> np.ndarray:
        """Row ``r``'s values of the selected columns, end to end, as uint8."""
        cells = [p[r] if isinstance(p, np.ndarray) else np.frombuffer(p[r], np.uint8) for p in self.parts]
        return np.concatenate(cells) if cells else np.empty(0, np.uint8)


def _by_group(wanted: np.ndarray, row_starts: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(group, positions)`` for each row group holding rows ``wanted`` (groups start at rows
    ``row_starts``), groups ascending, each group's positions in ``wanted`` ascending. Rows asked in
    file order (no sample shuffle) need no sort: a group's rows are one slice, found by searching the
    group starts in the rows (a few dozen searches, not one per row).

    Example:
        >>> starts = np.array([0, 4, 8, 12])
        >>> [(g, p.tolist()) for g, p in _by_group(np.array([9, 1, 10, 5]), starts)]
        [(0, [1]), (1, [3]), (2, [0, 2])]
        >>> [(g, p.tolist()) for g, p in _by_group(np.array([1, 2, 9, 10]), starts)]
        [(0, [0, 1]), (2, [2, 3])]
    """
    if not (wanted[1:] < wanted[:-1]).any():  # in file order: each group's rows are one run
        low, high = (np.searchsorted(row_starts, wanted[[0, -1]], side="right") - 1).tolist()
        edges = np.searchsorted(wanted, row_starts[low:high + 2]).tolist()
        every = np.arange(len(wanted))
        return [(low + k, every[a:b]) for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])) if b > a]
    group_of = np.searchsorted(row_starts, wanted, side="right") - 1
    order = np.argsort(group_of, kind="stable")
    ordered = group_of[order]
    cut = np.flatnonzero(np.diff(ordered)) + 1
    firsts = ordered[np.concatenate(([0], cut))].tolist()
    return list(zip(firsts, np.split(order, cut)))


class ParquetReader:
    """Reads the row groups holding chosen rows of one file; see :meth:`read`."""

    def __init__(self, storage: Any, path: str, size: int, columns: Sequence[str], *, decode: bool = False) -> None:
        self.storage, self.path, self.size = storage, path, int(size)
        self.columns, self.decode = tuple(columns), decode
        self._file: Any = None  # opened at the first read (a batch served from the cache opens nothing)

    def _footer(self) -> tuple[_Footer, int, float]:
        key = (self.storage.url, self.path, self.size)
        hit = FOOTERS.get(key)
        if hit is not None:
            return hit, 0, 0.0
        t0 = time.perf_counter()
        footer, nbytes = read_footer(self._fetch, self.path, self.size)
        FOOTERS.put(key, footer, weight=1 + footer.meta.num_row_groups // 64)
        return footer, nbytes, time.perf_counter() - t0

    def _leaves(self, footer: _Footer) -> list[int]:
        missing = [c for c in self.columns if c not in footer.leaves]
        if missing:
            raise FormatError(f"{self.path}: no column {', '.join(map(repr, missing))} "
                              f"(the file has {', '.join(footer.leaves)})")
        return sorted(j for c in self.columns for j in footer.leaves[c])

    def _fetch(self, view: np.ndarray, at: int) -> int:
        if self._file is None:
            self._file = open_ranged(self.storage, self.path)
        return self._file.read_into(view, at)

    def read(self, indices: Sequence[int], keep: bool) -> tuple[int, int, list[np.ndarray] | None, float, float]:
        """Read the row groups holding rows ``indices`` (row numbers in the file), each at most once per
        pass over its rows (``_parquet_groups``).

        Returns ``(bytes_read, sample_bytes, samples, io_s, decode_s)``: see the module docstring for
        what ``samples`` (when ``keep``) and ``sample_bytes`` are in each mode.
        """
        wanted = np.asarray(indices, np.int64).reshape(-1)  # no Python work per row: a batch is 16,384 for dlrm
        if not len(wanted):
            return 0, 0, [] if keep else None, 0.0, 0.0
        footer, nbytes, io_s = self._footer()
        check_wanted([int(wanted.min()), int(wanted.max())], int(footer.row_starts[-1]), self.path, "the file holds")
        leaves = self._leaves(footer)
        times = [io_s, 0.0]
        sample_bytes = 0
        samples: list[Any] = [None] * len(wanted) if keep else []
        for g, pos in _by_group(wanted, footer.row_starts):
            rows = wanted[pos] - footer.row_starts[g]
            count = int(footer.row_starts[g + 1] - footer.row_starts[g])
            key = (self.storage.url, self.path, self.size, self.columns, self.decode, g)
            value, got = GROUPS.take(key, rows, count, lambda: self._load(footer, g, leaves, times))
            nbytes += got
            sample_bytes += self._hand_out(value, rows, count, pos, samples if keep else None)
        return nbytes, sample_bytes, samples if keep else None, times[0], times[1]

    def _load(self, footer: _Footer, group: int, leaves: list[int], times: list[float]) -> tuple[Any, int]:
        """Read one row group's selected chunks: ``(value, bytes_read)``; the value is those bytes (bytes
        mode) or the decoded columns (decode mode, :class:`_Columns`)."""
        total, runs = footer.read_plan(group, leaves)
        t0 = time.perf_counter()
        got = 0
        if not self.decode:
            buf = np.empty(total, np.uint8)
            for a, b, at in runs:
                got += fill(buf[a:b], at, self._fetch, self.path)
            times[0] += time.perf_counter() - t0
            return buf, got
        sparse = np.empty(self.size, np.uint8)  # untouched pages are never allocated
        for a, b, at in runs:
            got += fill(sparse[at:at + b - a], at, self._fetch, self.path)
        t1 = time.perf_counter()
        columns = _Columns(self._decode(footer, [group], sparse))
        times[0] += t1 - t0
        times[1] += time.perf_counter() - t1
        return columns, got

    @staticmethod
    def _hand_out(value: Any, rows: np.ndarray, count: int, pos: np.ndarray, samples: list[Any] | None) -> int:
        """Put rows ``rows`` of a group's ``value`` at ``pos`` of ``samples`` (when kept); their bytes.
        Bytes mode: each row's share of the group's chunk bytes (nothing decoded); decode mode: the row."""
        if isinstance(value, np.ndarray) and value.ndim == 1:  # bytes mode
            a, b = rows * len(value) // count, (rows + 1) * len(value) // count
            if samples is not None:
                for p, x, y in zip(pos.tolist(), a.tolist(), b.tolist()):
                    samples[p] = value[x:y]
            return int((b - a).sum())
        if samples is not None:
            for p, r in zip(pos.tolist(), rows.tolist()):
                samples[p] = value.row(r)
        return value.row_bytes(rows)

    def _decode(self, footer: _Footer, groups: list[int], sparse: np.ndarray) -> list[np.ndarray | list[bytes]]:
        """The selected columns of ``groups`` decoded from ``sparse``, each by :func:`column_bytes`."""
        pa, pq = pyarrow_modules()
        try:
            pf = pq.ParquetFile(pa.BufferReader(pa.py_buffer(sparse)), metadata=footer.meta, pre_buffer=False)
            table = pf.read_row_groups(groups, columns=list(self.columns), use_threads=False)
        except (pa.ArrowException, OSError) as e:
            raise FormatError(f"{self.path}: cannot decode row groups {groups[:4]} ({e})") from None
        return [column_bytes(table.column(i), self.path) for i in range(table.num_columns)]

    def close(self) -> None:
        """Close the file if a read opened it (footers stay cached per process)."""
        f, self._file = self._file, None
        if f is not None:
            f.close()
