"""Zigzag varints as Kafka's record format uses them (ByteUtils.writeVarint/Varlong).

A signed value v is zigzag-mapped to (v << 1) ^ (v >> 63) and written as unsigned
LEB128, 7 bits a byte, least significant first. Decoding returns (value, next_index) so
callers walk a buffer without copying it.
"""

from __future__ import annotations


class VarintError(ValueError):
    """A varint ran past the end of its buffer or past 10 bytes."""


def encode_varint(value: int) -> bytes:
    """Zigzag + LEB128 encoding of a signed 64-bit integer."""
    z = (value << 1) ^ (value >> 63)
    z &= 0xFFFFFFFFFFFFFFFF
    if z < 0x80:
        return bytes((z,))
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def decode_varint(buf: bytes | bytearray | memoryview, index: int) -> tuple[int, int]:
    """Decode one zigzag varint at index; returns (value, index after it)."""
    shift = 0
    z = 0
    end = len(buf)
    while True:
        if index >= end:
            raise VarintError("varint runs past the end of the buffer")
        b = buf[index]
        index += 1
        z |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise VarintError("varint longer than 10 bytes")
    return (z >> 1) ^ -(z & 1), index


def varint_size(value: int) -> int:
    """Bytes encode_varint(value) takes, without building it."""
    z = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    n = 1
    while z >= 0x80:
        z >>= 7
        n += 1
    return n
