"""``checkpoint.compression: zstd``: compressed checkpoint files that stream, verify and stay standard.

A compressed file is the checkpoint's pieces, each an independent zstd frame (content size in its header),
back to back -- a valid ``.zst`` stream that ``zstd -d`` decompresses to the raw checkpoint bytes -- followed by
one zstd *skippable* frame (which decoders ignore) holding the index: per piece its compressed size, its
size and a CRC-32 of its bytes. The last 16 bytes say how long that frame is, so a reader finds the index
with one small read from the end, then reads and decompresses piece by piece into bounded memory, checking
each piece's size and CRC ("verifies on read": a flipped bit or a truncated file is an error naming the
piece).

Backends: the ``zstandard`` package when importable, else pyarrow's zstd codec (the ``formats`` extra); both
write the same frames. Level: zstd's 1..22 (negative levels are zstd's fast modes, down to -7).

Example:
    >>> c = Codec("zstd", 3)
    >>> frame = c.compress(memoryview(b"x" * 4096))
    >>> len(frame) < 100, bytes(c.decompress(frame, 4096)) == b"x" * 4096
    (True, True)
    >>> idx = FrameIndex(); idx.add(len(frame), 4096, b"x" * 4096)
    >>> FrameIndex.parse(idx.trailer()).pieces == idx.pieces
    True
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Codec", "FrameIndex", "codec_for", "CodecError", "CODECS", "TRAILER_TAIL_BYTES"]

CODECS = ("none", "zstd")
_SKIPPABLE_MAGIC = 0x184D2A5E  # one of zstd's sixteen skippable-frame magics (0x184D2A50..5F)
_TAG = b"DLCZIDX1"
_PIECE = struct.Struct("<QQI")  # compressed bytes, raw bytes, crc32
TRAILER_TAIL_BYTES = 16  # u64 length of the skippable frame + the tag


class CodecError(ValueError):
    """A compressed checkpoint file does not verify (or no zstd implementation is installed)."""


def _backend() -> tuple[str, Any]:
    try:
        import zstandard

        return "zstandard", zstandard
    except ImportError:
        pass
    try:
        import pyarrow

        if pyarrow.Codec.is_available("zstd"):
            return "pyarrow", pyarrow
    except ImportError:
        pass
    raise CodecError("checkpoint.compression: zstd needs the zstandard package (pip install zstandard) or pyarrow "
                     "with zstd (pip install 'dl-driver[formats]'); neither is installed. Set "
                     "checkpoint.compression=none")


class Codec:
    """One zstd compressor/decompressor at ``level`` (thread-confined: make one per thread)."""

    def __init__(self, name: str = "zstd", level: int = 3) -> None:
        if name != "zstd":
            raise CodecError(f"checkpoint.compression: {name!r} is not supported for checkpoints; use zstd or none")
        if not -7 <= int(level) <= 22:
            raise CodecError(f"checkpoint.compression_level: {level} is outside zstd's -7..22")
        self.name, self.level = name, int(level)
        self.backend, mod = _backend()
        if self.backend == "zstandard":
            self._c = mod.ZstdCompressor(level=self.level, write_content_size=True)
            self._d = mod.ZstdDecompressor()
        else:
            self._codec = mod.Codec("zstd", compression_level=self.level)

    def compress(self, data: memoryview) -> memoryview:
        """One zstd frame holding ``data``."""
        if self.backend == "zstandard":
            return memoryview(self._c.compress(data))
        buf = self._codec.compress(data, asbytes=False)
        return memoryview(buf)[:buf.size]  # the buffer protocol exposes its whole capacity

    def decompress(self, frame: Any, size: int) -> memoryview:
        """The ``size`` bytes of one frame."""
        try:
            if self.backend == "zstandard":
                out = self._d.decompress(frame, max_output_size=size)
            else:
                buf = self._codec.decompress(frame, decompressed_size=size, asbytes=False)
                out = memoryview(buf)[:buf.size]
        except Exception as e:  # noqa: BLE001 - both libraries raise their own error types
            raise CodecError(f"zstd frame does not decompress: {e}") from None
        view = memoryview(out)
        if view.nbytes != size:
            raise CodecError(f"zstd frame holds {view.nbytes} bytes, expected {size}")
        return view


def codec_for(name: Any, level: int) -> Codec | None:
    """The codec for ``checkpoint.compression`` (None for ``none``).

    >>> codec_for("none", 3) is None, codec_for("zstd", 1).level
    (True, 1)
    """
    text = str(getattr(name, "value", name) or "none").lower()
    return None if text == "none" else Codec(text, level)


@dataclass
class FrameIndex:
    """The pieces of a compressed file: ``(compressed bytes, raw bytes, crc32)`` each, in order."""

    pieces: list[tuple[int, int, int]] = field(default_factory=list)

    def add(self, compressed: int, raw: int, data: Any) -> None:
        self.pieces.append((int(compressed), int(raw), zlib.crc32(data)))

    @property
    def raw_bytes(self) -> int:
        return sum(p[1] for p in self.pieces)

    @property
    def compressed_bytes(self) -> int:
        return sum(p[0] for p in self.pieces)

    def trailer(self) -> bytes:
        """The skippable frame that ends the file (its last 16 bytes give its own length)."""
        body = struct.pack("<Q", len(self.pieces)) + b"".join(_PIECE.pack(*p) for p in self.pieces)
        total = 8 + len(body) + TRAILER_TAIL_BYTES
        return struct.pack("<II", _SKIPPABLE_MAGIC, total - 8) + body + struct.pack("<Q", total) + _TAG

    @staticmethod
    def trailer_length(tail: bytes) -> int:
        """The trailer's length from the file's last 16 bytes (CodecError when they are not ours)."""
        if len(tail) != TRAILER_TAIL_BYTES or tail[8:] != _TAG:
            raise CodecError("not a dl-driver compressed checkpoint (no index at its end): it was written "
                             "uncompressed, by another tool, or its write did not finish")
        return struct.unpack("<Q", tail[:8])[0]

    @classmethod
    def parse(cls, trailer: bytes) -> FrameIndex:
        """Read back :meth:`trailer` output."""
        magic, size = struct.unpack_from("<II", trailer)
        if magic != _SKIPPABLE_MAGIC or size != len(trailer) - 8:
            raise CodecError("the compressed checkpoint's index frame is damaged")
        (count,) = struct.unpack_from("<Q", trailer, 8)
        need = 16 + count * _PIECE.size + TRAILER_TAIL_BYTES
        if need != len(trailer):
            raise CodecError(f"the compressed checkpoint's index lists {count} pieces but is {len(trailer)} bytes")
        return cls([_PIECE.unpack_from(trailer, 16 + i * _PIECE.size) for i in range(count)])

    @staticmethod
    def verify(piece: int, data: Any, crc: int) -> None:
        if zlib.crc32(data) != crc:
            raise CodecError(f"piece {piece} does not match its CRC-32: the file changed after it was written")
