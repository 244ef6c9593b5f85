"""The ``tf.train.Example`` protobuf DLIO writes, encoded and parsed by hand (no TensorFlow, no protobuf).

DLIO's TFRecord generator writes, per sample, ``Example(features=Features(feature={"image":
Feature(bytes_list=BytesList(value=[raw])), "size": Feature(int64_list=Int64List(value=[n]))}))``.
On the wire (protobuf encoding, field numbers from ``example.proto`` / ``feature.proto``)::

    Example   { 1: Features }                       0x0A len Features
    Features  { 1: repeated MapEntry }              0x0A len (0x0A len key  0x12 len Feature)
    Feature   { 1: BytesList | 3: Int64List }       0x0A len BytesList  |  0x1A len Int64List
    BytesList { 1: repeated bytes }                 0x0A len raw
    Int64List { 1: packed int64 }                   0x0A len varint

Every sample of a file has the same length and ``size``, so everything except the image bytes is the
same for all records: ``example_parts`` returns that prefix and suffix once per file. ``find_feature``
walks a serialized Example (any field order, unknown fields skipped) to locate a bytes feature.

Example:
    >>> head, tail = example_parts(3, 3)
    >>> data = head + b"abc" + tail
    >>> find_feature(data, b"image") == (len(head), 3)
    True
    >>> find_feature(data, b"label") is None
    True
"""

from __future__ import annotations

from typing import Any

__all__ = ["varint", "example_parts", "find_feature", "ProtoError"]


class ProtoError(ValueError):
    """The bytes are not a well-formed Example (the caller adds the file name)."""


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int (negative int64s as their two's complement).

    Example:
        >>> varint(300).hex()
        'ac02'
    """
    v = value & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + varint(len(payload)) + payload


def example_parts(image_bytes: int, size: int) -> tuple[bytes, bytes]:
    """``(head, tail)`` such that ``head + image + tail`` is DLIO's serialized Example for an image
    of ``image_bytes`` bytes and a ``size`` feature of ``size``."""
    bytes_list_head = b"\x0a" + varint(image_bytes)                       # BytesList.value
    feature_len = len(bytes_list_head) + image_bytes
    feature_head = b"\x0a" + varint(feature_len) + bytes_list_head        # Feature.bytes_list
    entry_len = len(b"\x0a\x05image\x12") + len(varint(len(feature_head) + image_bytes)) + \
        len(feature_head) + image_bytes
    entry_head = (b"\x0a" + varint(entry_len) + b"\x0a\x05image\x12" +
                  varint(len(feature_head) + image_bytes) + feature_head)
    size_feature = _field(0x1A, _field(0x0A, varint(size)))               # Feature.int64_list, packed
    size_entry = _field(0x0A, _field(0x0A, b"size") + _field(0x12, size_feature))
    features_len = len(entry_head) + image_bytes + len(size_entry)
    head = b"\x0a" + varint(features_len) + entry_head                   # Example.features
    return head, size_entry


def _read_varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ProtoError("truncated or overlong varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: Any, pos: int, end: int):
    """Yield ``(field_number, wire_type, start, stop)`` of length-delimited fields; skip the others."""
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 2:
            n, pos = _read_varint(buf, pos, end)
            if pos + n > end:
                raise ProtoError(f"field {number} runs past its message ({n} bytes at {pos}, message ends at {end})")
            yield number, wire, pos, pos + n
            pos += n
        elif wire == 0:
            _, pos = _read_varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProtoError(f"unsupported wire type {wire} (field {number})")
    if pos != end:
        raise ProtoError("message ends inside a field")


def find_feature(buf: Any, name: bytes, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """``(offset, length)`` of the first value of bytes feature ``name`` in a serialized Example held
    in ``buf[start:end]``, or None when the Example has no such feature. ``ProtoError`` when malformed.

    Example:
        >>> head, tail = example_parts(2, 2)
        >>> find_feature(b"xx" + head + b"hi" + tail, b"image", start=2)[1]
        2
    """
    stop = len(buf) if end is None else end
    for number, _, s, e in _fields(buf, start, stop):
        if number != 1:
            continue
        for fnum, _, es, ee in _fields(buf, s, e):       # Features.feature map entries
            if fnum != 1:
                continue
            key = value = None
            for knum, _, ks, ke in _fields(buf, es, ee):
                if knum == 1:
                    key = (ks, ke)
                elif knum == 2:
                    value = (ks, ke)
            if key is None or value is None or bytes(buf[key[0]:key[1]]) != name:
                continue
            for vnum, _, vs, ve in _fields(buf, value[0], value[1]):   # Feature oneof
                if vnum != 1:
                    raise ProtoError(f"feature {name.decode(errors='replace')!r} is not a bytes_list")
                for bnum, _, bs, be in _fields(buf, vs, ve):
                    if bnum == 1:
                        return bs, be - bs
            raise ProtoError(f"feature {name.decode(errors='replace')!r} has no value")
    return None
