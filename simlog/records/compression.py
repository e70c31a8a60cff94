"""Compression codecs of Kafka record batches, with Kafka's ids and framing.

The id lives in attribute bits 0-2 of a v2 batch; the compressed unit is the whole
records region (everything after the 61-byte header). Framing per codec, as the Java
client writes it, so what we build is what a JVM producer would build:

- gzip (1): one RFC 1952 gzip member (zlib with wbits=31; no io/gzip module needed).
- snappy (2): xerial's SnappyOutputStream framing: a 16-byte header (0x82 "SNAPPY" 0,
  version 1, compat 1, big-endian), then blocks of at most 32 KiB of input, each as a
  big-endian int32 length + raw snappy block. On read a payload without the xerial
  magic is taken as one raw snappy block (librdkafka and some clients write that),
  just as kafka-python's `snappy_decode` accepts both.
- lz4 (3): the LZ4 frame format, independent 64 KiB blocks, no content size, as
  KafkaLZ4BlockOutputStream writes (with the correct header checksum of Kafka >= 0.10).
- zstd (4): one zstd frame (zstd-jni's streaming output carries no content size; we
  write it without one too and read frames either way).

Errors on decompression raise CompressionError; the batch layer turns it into a value.
"""

from __future__ import annotations

import struct
import zlib
from enum import IntEnum

import cramjam
import lz4.frame
import zstandard


class Compression(IntEnum):
    """Kafka's compression codec ids (attribute bits 0-2)."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4

    @property
    def kafka_name(self) -> str:
        """The name Kafka's `compression.type` and kafka-dump-log use."""
        return self.name.lower()


class CompressionError(ValueError):
    """The payload could not be decompressed with the batch's codec."""


_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024
_ZSTD_C = zstandard.ZstdCompressor(level=3, write_content_size=False)
_ZSTD_D = zstandard.ZstdDecompressor()


def compress(codec: Compression | int, data: bytes) -> bytes:
    """Compress a records region with codec, framed as the Java client does."""
    codec = Compression(codec)
    if codec is Compression.NONE:
        return bytes(data)
    if codec is Compression.GZIP:
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()
    if codec is Compression.SNAPPY:
        parts = [_XERIAL_HEADER]
        view = memoryview(data)
        for i in range(0, len(data), _XERIAL_BLOCK):
            block = bytes(cramjam.snappy.compress_raw(view[i : i + _XERIAL_BLOCK]))
            parts.append(struct.pack(">i", len(block)))
            parts.append(block)
        return b"".join(parts)
    if codec is Compression.LZ4:
        return lz4.frame.compress(
            data,
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            store_size=False,
        )
    return _ZSTD_C.compress(data)


def decompress(codec: Compression | int, data: bytes) -> bytes:
    """Inverse of compress; accepts raw snappy as well as xerial framing."""
    try:
        codec = Compression(codec)
    except ValueError as exc:
        raise CompressionError(f"unknown compression codec id {codec}") from exc
    try:
        if codec is Compression.NONE:
            return bytes(data)
        if codec is Compression.GZIP:
            d = zlib.decompressobj(31)
            out = d.decompress(data) + d.flush()
            if not d.eof:
                raise CompressionError("truncated gzip stream")
            return out
        if codec is Compression.SNAPPY:
            return _snappy_decode(data)
        if codec is Compression.LZ4:
            return lz4.frame.decompress(data)
        return _zstd_decode(data)
    except CompressionError:
        raise
    except Exception as exc:  # the codec libraries raise assorted types
        raise CompressionError(f"{codec.kafka_name}: {exc}") from exc


def _snappy_decode(data: bytes) -> bytes:
    if len(data) >= 16 and bytes(data[:8]) == _XERIAL_MAGIC:
        out = []
        pos = 16
        end = len(data)
        while pos < end:
            if pos + 4 > end:
                raise CompressionError("truncated xerial snappy block length")
            (n,) = struct.unpack_from(">i", data, pos)
            pos += 4
            if n < 0 or pos + n > end:
                raise CompressionError("truncated xerial snappy block")
            out.append(bytes(cramjam.snappy.decompress_raw(data[pos : pos + n])))
            pos += n
        return b"".join(out)
    return bytes(cramjam.snappy.decompress_raw(data))


def _zstd_decode(data: bytes) -> bytes:
    d = _ZSTD_D.decompressobj()
    out = d.decompress(data)
    if not d.eof:
        raise CompressionError("truncated zstd frame")
    return out
