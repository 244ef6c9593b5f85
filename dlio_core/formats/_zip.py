"""Just enough ZIP to write ``np.savez`` archives reproducibly and find a member fast.

Writing mirrors what ``zipfile`` produces for ``np.savez`` on a seekable file (every member forced to
zip64, as numpy does since gh-10776; Unix "made by"; mode 0o600), except that the timestamps are fixed
at 1980-01-01 00:00 so that a rerun is byte-identical. The layout is computed up front, so the size
of a stored archive is known before any byte is written and nothing needs to seek back.

Reading finds a member through the central directory (the fallback; npz's own fast path looks at the
first local header directly).

Example:
    >>> parts = build([(b"a.txt", [b"hello"], 0)])
    >>> import io, zipfile
    >>> zipfile.ZipFile(io.BytesIO(b"".join(parts))).read("a.txt")
    b'hello'
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = ["STORED", "DEFLATED", "LOCAL", "LOCAL_SIG", "EOCD_SIG", "build", "stored_size", "find_member",
           "Member", "ZipError"]

STORED, DEFLATED = 0, 8
LOCAL_SIG, CENTRAL_SIG, EOCD_SIG = 0x04034B50, 0x02014B50, 0x06054B50
EOCD64_SIG, LOC64_SIG = 0x06064B50, 0x07064B50

LOCAL = struct.Struct("<IBBHHHHIIIHH")            # 30 bytes
CENTRAL = struct.Struct("<IBBBBHHHHIIIHHHHHII")   # 46 bytes
EOCD = struct.Struct("<IHHHHIIH")                 # 22 bytes
EOCD64 = struct.Struct("<IQHHIIQQQQ")             # 56 bytes
LOC64 = struct.Struct("<IIQI")                    # 20 bytes
_ZIP64_EXTRA = struct.Struct("<HHQQ")             # id 1, 16 bytes: uncompressed, compressed size

ZIP64_LIMIT = (1 << 31) - 1   # zipfile's threshold for zip64 fields (not 2**32 - 1)
_VERSION = 45                  # "version needed" once zip64 is in play
_UNIX = 3
_MODE = 0o600 << 16            # zipfile's default external attributes for written members
_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1   # 1980-01-01 00:00:00


class ZipError(ValueError):
    """The bytes are not a ZIP archive we can read (message says why; the caller adds the path)."""


class Member(NamedTuple):
    """Where a member's data lies in the archive buffer."""

    method: int
    data_offset: int
    compressed_size: int
    uncompressed_size: int
    crc: int = 0


def _local_len(name: bytes) -> int:
    return LOCAL.size + len(name) + _ZIP64_EXTRA.size


def _central(name: bytes, crc: int, csize: int, usize: int, method: int, offset: int) -> bytes:
    vals: list[int] = []
    if usize > ZIP64_LIMIT or csize > ZIP64_LIMIT:
        vals += [usize, csize]
        usize = csize = 0xFFFFFFFF
    if offset > ZIP64_LIMIT:
        vals.append(offset)
        offset = 0xFFFFFFFF
    extra = struct.pack("<HH" + "Q" * len(vals), 1, 8 * len(vals), *vals) if vals else b""
    return CENTRAL.pack(CENTRAL_SIG, _VERSION, _UNIX, _VERSION, 0, 0, method, _DOS_TIME, _DOS_DATE, crc,
                        csize, usize, len(name), len(extra), 0, 0, 0, _MODE, offset) + name + extra


def _central_len(name: bytes, csize: int, usize: int, offset: int) -> int:
    n = (2 if usize > ZIP64_LIMIT or csize > ZIP64_LIMIT else 0) + (1 if offset > ZIP64_LIMIT else 0)
    return CENTRAL.size + len(name) + (4 + 8 * n if n else 0)


def _end(count: int, cd_offset: int, cd_size: int) -> bytes:
    out = b""
    if count > 0xFFFF or cd_offset > ZIP64_LIMIT or cd_size > ZIP64_LIMIT:
        out = (EOCD64.pack(EOCD64_SIG, 44, _VERSION, _VERSION, 0, 0, count, count, cd_size, cd_offset)
               + LOC64.pack(LOC64_SIG, 0, cd_offset + cd_size, 1))
        count, cd_size, cd_offset = min(count, 0xFFFF), min(cd_size, 0xFFFFFFFF), min(cd_offset, 0xFFFFFFFF)
    return out + EOCD.pack(EOCD_SIG, 0, 0, count, count, cd_size, cd_offset, 0)


def _end_len(count: int, cd_offset: int, cd_size: int) -> int:
    big = count > 0xFFFF or cd_offset > ZIP64_LIMIT or cd_size > ZIP64_LIMIT
    return EOCD.size + (EOCD64.size + LOC64.size if big else 0)


def stored_size(members: Sequence[tuple[bytes, int]]) -> int:
    """Exact archive size for ``(name, data_size)`` members written STORED by :func:`build`.

    Example:
        >>> stored_size([(b"a.txt", 5)]) == sum(len(p) for p in build([(b"a.txt", [b"hello"], 0)]))
        True
    """
    offset = 0
    cd = 0
    for name, size in members:
        cd += _central_len(name, size, size, offset)
        offset += _local_len(name) + size
    return offset + cd + _end_len(len(members), offset, cd)


def build(members: Sequence[tuple[bytes, Sequence[Any], int]], level: int = -1,
          crcs: Sequence[int | None] = ()) -> list[Any]:
    """The archive as a list of buffers (data buffers are passed through, not copied).

    ``members`` are ``(name, data_parts, method)`` with method ``STORED`` or ``DEFLATED``
    (``level`` is zlib's; -1 is zlib's default, as ``np.savez_compressed`` uses). ``crcs`` may give
    members' CRC-32s already known (None: computed here).
    """
    out: list[Any] = []
    central: list[bytes] = []
    offset = 0
    for i, (name, parts, method) in enumerate(members):
        known = crcs[i] if i < len(crcs) else None
        crc = 0
        usize = 0
        for p in parts:
            if known is None:
                crc = zlib.crc32(p, crc)
            usize += memoryview(p).nbytes
        crc = crc if known is None else known
        if method == DEFLATED:
            c = zlib.compressobj(level, zlib.DEFLATED, -15)
            data: list[Any] = [b"".join([c.compress(p) for p in parts] + [c.flush()])]
            csize = len(data[0])
        elif method == STORED:
            data, csize = list(parts), usize
        else:
            raise ValueError(f"unsupported zip method {method}")
        extra = _ZIP64_EXTRA.pack(1, 16, usize, csize)
        out.append(LOCAL.pack(LOCAL_SIG, _VERSION, 0, 0, method, _DOS_TIME, _DOS_DATE, crc, 0xFFFFFFFF,
                              0xFFFFFFFF, len(name), len(extra)) + name + extra)
        out.extend(data)
        central.append(_central(name, crc, csize, usize, method, offset))
        offset += _local_len(name) + csize
    cd = b"".join(central)
    out.append(cd + _end(len(members), offset, len(cd)))
    return out


def _zip64_values(extra: bytes, wanted: int) -> list[int]:
    """The zip64 (id 1) values in an extra field, in their fixed order."""
    i = 0
    while i + 4 <= len(extra):
        hid, hlen = struct.unpack_from("<HH", extra, i)
        if hid == 1:
            n = min(wanted, hlen // 8)
            return list(struct.unpack_from("<" + "Q" * n, extra, i + 4))
        i += 4 + hlen
    return []


def find_member(mv: memoryview, names: Sequence[bytes]) -> Member | None:
    """Locate the first member called one of ``names`` through the central directory.

    Raises ZipError when the archive is truncated or corrupt; returns None when no such member.
    """
    end = mv.nbytes
    if end < EOCD.size:
        raise ZipError(f"too short for a zip archive ({end} bytes)")
    tail_start = max(0, end - EOCD.size - 0xFFFF)
    tail = bytes(mv[tail_start:end])
    # The record is the last signature whose comment length reaches exactly the end of the data.
    pos = tail.rfind(b"PK\x05\x06")
    while pos >= 0:
        if pos + EOCD.size <= len(tail):
            clen = struct.unpack_from("<H", tail, pos + 20)[0]
            if tail_start + pos + EOCD.size + clen == end:
                break
        pos = tail.rfind(b"PK\x05\x06", 0, pos)
    if pos < 0:
        raise ZipError("no end-of-central-directory record (truncated?)")
    eocd = tail_start + pos
    _sig, _d, _dcd, _n, count, cd_size, cd_offset, _clen = EOCD.unpack_from(mv, eocd)
    if count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        if eocd < LOC64.size:
            raise ZipError("zip64 locator missing")
        sig, _disk, rec, _tot = LOC64.unpack_from(mv, eocd - LOC64.size)
        if sig != LOC64_SIG or rec + EOCD64.size > end:
            raise ZipError("bad zip64 end-of-central-directory locator")
        sig, *_rest, count, cd_size, cd_offset = EOCD64.unpack_from(mv, rec)
        if sig != EOCD64_SIG:
            raise ZipError("bad zip64 end-of-central-directory record")
    if cd_offset + cd_size > end:
        raise ZipError("central directory lies beyond the end of the data (truncated?)")
    p = cd_offset
    for _ in range(count):
        if p + CENTRAL.size > end:
            raise ZipError("truncated central directory")
        (sig, _cv, _cs, _ev, _r, flags, method, _t, _d, crc, csize, usize, nlen, xlen, clen, _disk, _ia, _ea,
         loff) = CENTRAL.unpack_from(mv, p)
        if sig != CENTRAL_SIG:
            raise ZipError("corrupt central directory entry")
        name = bytes(mv[p + CENTRAL.size:p + CENTRAL.size + nlen])
        if name in names:
            extra = bytes(mv[p + CENTRAL.size + nlen:p + CENTRAL.size + nlen + xlen])
            wanted = [v == 0xFFFFFFFF for v in (usize, csize, loff)]
            vals = iter(_zip64_values(extra, sum(wanted)))
            try:
                usize = next(vals) if wanted[0] else usize
                csize = next(vals) if wanted[1] else csize
                loff = next(vals) if wanted[2] else loff
            except StopIteration:
                raise ZipError("zip64 sizes missing from the central directory") from None
            if flags & 1:
                raise ZipError(f"member {name.decode(errors='replace')} is encrypted")
            if loff + LOCAL.size > end:
                raise ZipError("local header lies beyond the end of the data (truncated?)")
            lsig, *_x, lnlen, lxlen = LOCAL.unpack_from(mv, loff)
            if lsig != LOCAL_SIG:
                raise ZipError("corrupt local file header")
            start = loff + LOCAL.size + lnlen + lxlen
            if start + csize > end:
                raise ZipError(f"member data truncated ({end - start} of {csize} bytes)")
            return Member(method, start, csize, usize, crc)
        p += CENTRAL.size + nlen + xlen + clen
    return None
